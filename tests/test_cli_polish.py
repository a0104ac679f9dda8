"""The command line as a new user meets it: loud errors for every mistake,
output that survives pipes and umasks, listing and settings, the text
report on a terminal and on a pipe, the progress display, the cache's
place.  Through the real CLI (a subprocess where a terminal, a pipe or the
process's state matters) or the real API."""
import io
import json
import os
import pty
import shutil
import signal
import stat
import subprocess
import sys
import textwrap

import pytest
from typer.testing import CliRunner

from resnetlint import Settings, UsageError, check_paths
from resnetlint.cli import app

from helpers import FIXTURES

BUGGY = FIXTURES / "seeds" / "seed003_block.py"  # 7 findings, one with a safe fix
STALE = textwrap.dedent("""\
    import torch.nn as nn


    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)

        def forward(self, x):
            out = self.conv1(x)
            out = self.conv2(x)
            return out + x
""")  # RL101 at 12:26 (conv2 fed x), RL104 at 7:9 (conv1 dead)


def resnetlint(*args, cwd=None, env=None, stdout=subprocess.PIPE, **popen):
    """The real command, in a subprocess (static only, no cache unless asked)."""
    environment = dict(os.environ, NO_COLOR="1")
    environment.pop("FORCE_COLOR", None)
    environment.update(env or {})
    extra = [] if "--trace" in args else ["--no-trace"]
    return subprocess.run([sys.executable, "-m", "resnetlint", *map(str, args), *extra], cwd=cwd, env=environment,
                          stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=120, **popen)


def invoke(*args, cwd=None):
    old = os.getcwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        return CliRunner().invoke(app, [*map(str, args), "--no-trace", "--no-cache"], env={"NO_COLOR": "1"})
    finally:
        os.chdir(old)


# -- loud errors ---------------------------------------------------------------

def test_a_config_file_without_the_table_is_an_error_not_silently_nothing(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.resnetlint]\nselect = ["RL101"]\n')
    (tmp_path / "block.py").write_text(STALE)
    other = tmp_path / "other.toml"
    other.write_text("[tool.ruff]\nline-length = 100\n")
    result = resnetlint("block.py", "--config", other, cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == f"resnetlint: error: {other}: no [tool.resnetlint] table (an empty one is enough to " \
                            "use this file)\n"
    other.write_text("[tool.resnetlint]\n")  # an empty table: the defaults, the project's file ignored
    result = resnetlint("block.py", "--config", other, "--format", "json", cwd=tmp_path)
    assert sorted(f["code"] for f in json.loads(result.stdout)["findings"]) == ["RL101", "RL104"]


def test_the_api_checks_settings_and_paths_like_the_command_line(tmp_path):
    with pytest.raises(UsageError, match=r"^Settings\.select: 'RL9' matches no rule \(see --list-rules\)$"):
        Settings(select=["RL9"])
    with pytest.raises(UsageError, match=r"^Settings\.select must be a list of rule codes, not the string 'RL101'"):
        Settings(select="RL101")
    with pytest.raises(UsageError, match="Settings.fix must be one of off, fix, diff, not 'yes'"):
        Settings(fix="yes")
    with pytest.raises(UsageError, match=r"Settings\.jobs must be a whole number \(0 or more\), not -1"):
        Settings(jobs=-1)
    with pytest.raises(UsageError, match=r"^/nonexistent: no such file or directory$"):
        check_paths(["/nonexistent"])
    # the command line: the same check, the same words
    cli = resnetlint("--select", "RL9", BUGGY)
    assert cli.returncode == 2 and cli.stderr == "resnetlint: error: `--select`: 'RL9' matches no rule " \
                                                 "(see --list-rules)\n"
    missing = resnetlint("/nonexistent", BUGGY)
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr == "resnetlint: error: /nonexistent: no such file or directory\n"
    assert isinstance(UsageError("x"), ValueError)


def test_rule_names_are_accepted_wherever_codes_are(tmp_path):
    (tmp_path / "block.py").write_text(STALE)

    def codes(*args, cwd=tmp_path):
        return sorted(f["code"] for f in json.loads(invoke("block.py", "--format", "json", *args,
                                                           cwd=cwd).output)["findings"])

    assert codes("--select", "stale-input") == ["RL101"]
    assert codes("--ignore", "stale-input,unused-submodule") == []
    assert Settings(select=["stale-input", "RL2"], ignore=["Bias-Before-Norm"]).select == ["RL101", "RL2"]
    (tmp_path / "pyproject.toml").write_text('[tool.resnetlint]\nper-file-ignores = { "block.py" = '
                                             '["unused-submodule"] }\n')
    assert codes() == ["RL101"]
    typo = invoke("block.py", "--select", "stale-inputs", cwd=tmp_path)
    assert typo.exit_code == 2
    assert typo.output == "resnetlint: error: `--select`: 'stale-inputs' is not a rule code, prefix or name; " \
                          "did you mean 'stale-input'?\n"
    explained = resnetlint("--explain", "stale-input")
    assert explained.returncode == 0 and explained.stdout.startswith("# RL101 `stale-input`")


def test_rl000_and_rl999_are_listed_selectable_and_explained():
    listed = resnetlint("--list-rules").stdout.splitlines()
    assert listed[0].split()[:2] == ["RL000", "syntax-error"] and listed[-1].split()[:2] == ["RL999", "internal-error"]
    for code in ("RL000", "RL999"):
        assert resnetlint("--explain", code).stdout.startswith(f"# {code} `")
        assert resnetlint("--select", code, BUGGY).returncode == 0  # selects no rule: nothing to find
    broken = invoke(str(FIXTURES / "seeds" / "seed003_block.py"), "--select", "RL000")
    assert broken.exit_code == 0


# -- robust output --------------------------------------------------------------

@pytest.fixture(scope="module")
def big_tree(tmp_path_factory):
    """Enough findings that every format overflows a pipe's buffer."""
    root = tmp_path_factory.mktemp("big")
    for i in range(60):
        shutil.copy(BUGGY, root / f"block_{i:02}.py")
    cache = tmp_path_factory.mktemp("cache")
    resnetlint(root, "--cache-dir", cache, "--format", "concise")  # warm: the checks below are quick
    return root, cache


@pytest.mark.parametrize("fmt", ["text", "concise", "json", "sarif", "github", "junit"])
def test_a_closed_pipe_ends_the_run_quietly(big_tree, fmt):
    root, cache = big_tree
    env = dict(os.environ, NO_COLOR="1")
    process = subprocess.Popen([sys.executable, "-m", "resnetlint", str(root), "--no-trace", "--cache-dir", str(cache),
                                "--format", fmt], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                               preexec_fn=lambda: signal.signal(signal.SIGPIPE, signal.SIG_DFL) and None)
    assert process.stdout.read(100)  # `| head -c 100`
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=60) == 1
    assert stderr == ""


def test_the_listing_commands_survive_a_closed_pipe_too():
    for args in (["--list-rules"], ["--explain", "RL101"], ["--help"]):
        process = subprocess.Popen([sys.executable, "-m", "resnetlint", *args], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
        process.stdout.read(5)
        process.stdout.close()
        assert process.stderr.read() == b"", args
        assert process.wait(timeout=60) in (0, 1)


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_the_output_file_gets_the_mode_the_umask_gives(tmp_path, umask, mode):
    report = tmp_path / "report.json"
    result = resnetlint(BUGGY, "--format", "json", "-o", report, preexec_fn=lambda: os.umask(umask) and None)
    assert result.returncode == 1 and result.stdout == ""
    assert stat.S_IMODE(report.stat().st_mode) == mode
    assert json.loads(report.read_text())["summary"]["findings"] == 7


def test_an_output_file_that_exists_keeps_its_mode(tmp_path):
    report = tmp_path / "report.txt"
    report.write_text("old\n")
    report.chmod(0o640)
    resnetlint(BUGGY, "-o", report)
    assert stat.S_IMODE(report.stat().st_mode) == 0o640 and "Found 7 problems" in report.read_text()


def test_no_python_warning_reaches_the_user(tmp_path):
    """The .gitignore patterns once compiled into `FutureWarning: Possible nested set`."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text("[[]weird.py\n[[:digit:]]*_gen.py\n[[:upper:]][[:upper:]].py\n")
    for name in ("[weird.py", "1_gen.py", "AB.py", "ok.py", "x_gen.py"):
        (tmp_path / name).write_text("x = 1\n")
    result = resnetlint(".", "--show-files", cwd=tmp_path, env={"PYTHONWARNINGS": "always"})
    assert result.stderr == ""
    assert result.stdout.split() == ["./ok.py", "./x_gen.py"]
    git = subprocess.run(["git", "check-ignore", "--no-index", "[weird.py", "1_gen.py", "AB.py", "ok.py", "x_gen.py"],
                         cwd=tmp_path, capture_output=True, text=True)
    assert sorted(git.stdout.split()) == ["1_gen.py", "AB.py", "[weird.py"]  # resnetlint agrees with git


def test_no_python_files_is_a_warning_on_stderr(tmp_path):
    (tmp_path / "README.md").write_text("nothing\n")
    result = resnetlint(tmp_path)
    assert result.returncode == 0 and result.stdout == ""
    assert result.stderr == f"resnetlint: warning: No Python files found under {tmp_path}\n"
    quiet = resnetlint(tmp_path, "-q")
    assert quiet.returncode == 0 and quiet.stdout == "" and quiet.stderr == ""
    as_json = resnetlint(tmp_path, "--format", "json")
    assert json.loads(as_json.stdout)["summary"] == {"files": 0, "findings": 0}


# -- listing and settings -------------------------------------------------------

def test_list_rules_is_plain_text_with_full_names_when_piped_and_json_on_request():
    from resnetlint.registry import ENGINE_CODES
    from resnetlint.rules import ALL_RULES

    every = sorted([(r.code, r.name) for r in ALL_RULES] + [(c.code, c.name) for c in ENGINE_CODES])
    plain = resnetlint("--list-rules")
    assert plain.returncode == 0 and "\033[" not in plain.stdout and "│" not in plain.stdout
    assert [tuple(line.split()[:2]) for line in plain.stdout.splitlines()] == every
    long_summary = next(r.summary for r in ALL_RULES if r.code == "RL102")
    assert long_summary in plain.stdout  # not cut to a terminal's width
    listed = json.loads(resnetlint("--list-rules", "--format", "json").stdout)
    assert [(r["code"], r["name"]) for r in listed] == every
    rl204 = next(r for r in listed if r["code"] == "RL204")
    assert rl204["fix"] == {"availability": "sometimes", "safety": "safe"} and rl204["default"] is True


def test_statistics_honours_the_json_format():
    result = resnetlint(BUGGY, "--statistics", "--format", "json")
    assert result.returncode == 1
    doc = json.loads(result.stdout)
    rows = {row["code"]: row for row in doc["statistics"]}
    assert sum(row["count"] for row in rows.values()) == 7
    assert rows["RL102"] == {"code": "RL102", "name": "residual-overwritten", "count": 2, "fixable": 2}
    text = resnetlint(BUGGY, "--statistics").stdout.splitlines()
    assert text[0].split()[:3] == ["2", "RL102", "residual-overwritten"]


def test_show_files_lists_what_a_run_would_check(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.resnetlint]\nexclude = ["gen/"]\n')
    for name in ("pkg/a.py", "pkg/b.py", "gen/g.py", "build/x.py", "pkg/notes.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x = 1\n")
    result = resnetlint(".", "--show-files", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.splitlines() == ["./pkg/a.py", "./pkg/b.py"]


def test_show_settings_says_where_each_value_came_from(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.resnetlint]\nselect = ["RL1"]\ntrace-path = ["src"]\n')
    result = resnetlint(".", "--show-settings", "--ignore", "unused-submodule", cwd=tmp_path,
                        env={"RESNETLINT_CACHE_DIR": ""})
    assert result.returncode == 0
    settings = {line.split("=")[0].strip(): line for line in result.stdout.splitlines() if " = " in line}
    config = str(tmp_path / "pyproject.toml")
    assert settings["select"].split("#")[-1].strip() == config and '["RL1"]' in settings["select"]
    assert settings["ignore"].split("#")[-1].strip() == "command line" and '["RL104"]' in settings["ignore"]
    assert settings["device"].split("#")[-1].strip() == "default"
    assert f'["{tmp_path / "src"}"]' in settings["trace-path"]  # relative to the configuration file
    assert str(tmp_path / ".resnetlint_cache") in settings["cache-dir"]
    assert result.stdout.splitlines()[-1] == "# rules that run: RL100, RL101, RL102, RL103"


def test_quiet_prints_the_findings_only_and_verbose_says_more(tmp_path):
    quiet = resnetlint(BUGGY, "-q")
    assert quiet.returncode == 1 and "Found 7 problems" not in quiet.stdout and quiet.stdout.count(": RL") == 7
    verbose = resnetlint(BUGGY, "--verbose", "--no-cache")
    assert verbose.returncode == 1 and "Found 7 problems" in verbose.stdout
    assert "resnetlint: configuration: " in verbose.stderr and "resnetlint: checked 1 file in " in verbose.stderr


def test_fix_only_and_exit_non_zero_on_fix(tmp_path):
    target = tmp_path / "block.py"
    buggy = BUGGY.read_text().replace("        out = F.relu(out)", "        out = F.relu(out)  # noqa: RL301")
    target.write_text(buggy)  # an unused noqa: RL100's safe fix removes it
    fixed = resnetlint(target, "--fix-only")
    assert fixed.returncode == 0  # findings remain (no safe fix for them), but --fix-only does not fail on them
    assert fixed.stdout == "Fixed 1 problem.\n"
    assert target.read_text() == BUGGY.read_text()
    target.write_text(buggy)
    assert resnetlint(target, "--fix-only", "--exit-non-zero-on-fix").returncode == 1  # a file was fixed
    assert resnetlint(target, "--fix-only", "--exit-non-zero-on-fix").returncode == 0  # nothing left to fix
    clean = FIXTURES / "seeds" / "seed003_block_corrected.py"
    shutil.copy(clean, target)
    assert resnetlint(target, "--fix", "--exit-non-zero-on-fix").returncode == 0


def test_unsafe_fixes_alone_writes_nothing_and_marks_more_findings(tmp_path):
    target = tmp_path / "block.py"
    shutil.copy(BUGGY, target)
    safe = resnetlint(target, "--format", "concise").stdout
    unsafe = resnetlint(target, "--format", "concise", "--unsafe-fixes").stdout
    assert target.read_bytes() == BUGGY.read_bytes()
    def marked(output):
        return sum(": RL" in line and "[*]" in line for line in output.splitlines())

    assert marked(safe) == 0 and marked(unsafe) == 6  # no safe fix here: RL201's changes a weight's shape
    assert "[*] 6 fixable with --fix --unsafe-fixes." in unsafe and "more fixable" not in unsafe


def test_show_fixes_shows_each_fix_as_a_diff():
    lines = resnetlint(BUGGY, "--show-fixes").stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if ":37:35: RL201 [channel-mismatch]" in line)
    block = lines[at:lines.index("", at)]
    assert any(line.startswith("   = fix available (unsafe): ") for line in block)
    minus = [line for line in block if line.startswith("37 -")]
    plus = [line for line in block if line.startswith("37 +")]
    assert len(minus) == len(plus) == 1 and minus[0][4:] != plus[0][4:]


# -- noqa -----------------------------------------------------------------------

def test_add_noqa_replaces_an_unused_code_instead_of_adding_rl100(tmp_path):
    target = tmp_path / "block.py"
    target.write_text(STALE.replace("out = self.conv2(x)", "out = self.conv2(x)  # noqa: RL201, E501")
                      .replace("self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)",
                               "self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)  # noqa: RL301"))
    before = json.loads(resnetlint(target, "--format", "json").stdout)["findings"]
    assert sorted((f["code"], f["line"]) for f in before) == [("RL100", 7), ("RL100", 12), ("RL101", 12),
                                                              ("RL104", 7)]
    result = resnetlint(target, "--add-noqa")
    assert result.returncode == 0 and result.stderr == "Added `# noqa` to 2 lines in 1 file.\n"
    lines = target.read_text().splitlines()
    assert lines[6].endswith("bias=False)  # noqa: RL104")
    assert lines[11].endswith("out = self.conv2(x)  # noqa: E501, RL101")
    assert resnetlint(target).returncode == 0  # nothing left, RL100 included


# -- the text report: a terminal, a pipe, --color --------------------------------

def _on_a_terminal(*args, env=None):
    """stdout and stderr on a pseudo-terminal; returns what it showed."""
    main, secondary = pty.openpty()
    environment = dict(os.environ, COLUMNS="200")
    for name in ("NO_COLOR", "FORCE_COLOR", "CI"):
        environment.pop(name, None)
    environment.update(env or {})
    process = subprocess.Popen([sys.executable, "-m", "resnetlint", *map(str, args)], stdout=secondary,
                               stderr=secondary, env=environment)
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(main)
    process.wait(timeout=120)
    return b"".join(chunks).decode(errors="replace")


def test_on_a_terminal_the_report_has_colours_and_links():
    shown = _on_a_terminal(BUGGY, "--no-trace", "--no-cache")
    assert "\033[" in shown
    assert "\033]8;" in shown and f"file://{BUGGY}" in shown  # the location links to the file
    assert "RL102" in shown and "Found 7 problems in 1 file." in shown
    plain = _on_a_terminal(BUGGY, "--no-trace", "--no-cache", env={"NO_COLOR": "1"})
    assert "\033[" not in plain and "Found 7 problems in 1 file." in plain


def test_on_a_pipe_the_report_is_plain_unless_color_always():
    plain = resnetlint(BUGGY, env={"NO_COLOR": ""})
    assert "\033" not in plain.stdout
    forced = resnetlint(BUGGY, "--color", "always")
    assert "\033[1;31mRL102\033[0m" in forced.stdout and "\033]8;" not in forced.stdout  # no links into a pipe
    never = _on_a_terminal(BUGGY, "--no-trace", "--no-cache", "--color", "never")
    assert "\033[" not in never and "Found 7 problems" in never


def test_the_progress_display_shows_only_on_a_terminal_after_a_second(monkeypatch):
    from resnetlint.report import progress as progress_module
    from resnetlint.report.progress import Progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    assert Progress.for_stream(io.StringIO()) is None  # a pipe, a file
    monkeypatch.setenv("CI", "true")
    assert Progress.for_stream(Terminal()) is None  # a CI log
    monkeypatch.delenv("CI")
    monkeypatch.delenv("TERM", raising=False)
    terminal = Terminal()
    shown = Progress.for_stream(terminal)
    clock = [100.0]
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: clock[0])
    shown.started = clock[0]
    shown("check", 1, 40)
    assert terminal.getvalue() == ""  # a quick run shows nothing
    clock[0] += 1.5
    shown("check", 20, 40)
    assert "Checking files" in terminal.getvalue() and "20/40" in terminal.getvalue()
    shown("trace", 0, 0)
    shown.close()
    assert "Tracing blocks" in terminal.getvalue()


def test_no_progress_display_in_a_piped_run(big_tree):
    root, cache = big_tree
    result = resnetlint(root, "--cache-dir", cache, "--no-cache", "-j", "1", "--format", "concise")
    assert result.stderr == ""


# -- the cache's place -----------------------------------------------------------

def test_the_cache_lives_at_the_project_root(tmp_path):
    project = tmp_path / "project"
    (project / "pkg" / "sub").mkdir(parents=True)
    (project / "pyproject.toml").write_text("[project]\nname = 'x'\n")  # no [tool.resnetlint] table
    (project / "pkg" / "sub" / "block.py").write_text(STALE)
    env = {"RESNETLINT_CACHE_DIR": ""}
    assert resnetlint(".", cwd=project / "pkg" / "sub", env=env).returncode == 1
    assert resnetlint("project/pkg", cwd=tmp_path, env=env).returncode == 1
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob(".resnetlint_cache")) == \
        ["project/.resnetlint_cache"]
    indexes = list((project / ".resnetlint_cache").glob("results-*.json"))
    assert len(indexes) == 1  # both runs used the same cache


# -- --help ----------------------------------------------------------------------

def test_help_reads_like_ruff():
    from resnetlint.options import OPTIONS

    result = resnetlint("--help")
    text = result.stdout
    assert result.returncode == 0
    assert text.startswith("Find, confirm and fix bugs in PyTorch residual blocks.\n\nUsage: resnetlint [OPTIONS] "
                           "[PATH]...\n")
    for section in ("Options:", "Rule selection:", "File selection:", "Trace:", "Miscellaneous:", "Log levels:",
                    "Global options:"):
        assert f"\n{section}\n" in text
    for metavar in ("<CODES>", "<SECONDS>", "<cpu|cuda|meta|auto>", "<FORMAT>", "<FILE>", "<N>"):
        assert metavar in text
    for placeholder in ("list[str]", "int range", "float range", "<str>", "<text>"):
        assert placeholder not in text
    assert "[possible values: text, concise, json, sarif, github, junit]" in " ".join(text.split())
    for option in OPTIONS:
        for flag in option.flags:
            assert (flag in text) != option.hidden, flag
