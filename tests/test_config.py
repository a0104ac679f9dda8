"""Configuration (``[tool.resnetlint]``), its precedence against the flags,
per-file ignores, excludes, .gitignore, suppressions (noqa, RL100,
--add-noqa), stdin, --statistics and --output-file."""
import json
import os
import subprocess
import sys
import textwrap

import pytest
from typer.testing import CliRunner

from resnetlint.cli import app
from resnetlint.gitignore import GitIgnore

from helpers import FIXTURES

runner = CliRunner()

STALE = textwrap.dedent("""\
    import torch.nn as nn


    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(c)
            self.conv2 = nn.Conv2d(c, c, 3, padding=1)
            self.bn2 = nn.BatchNorm2d(c)

        def forward(self, x):
            out = self.bn1(self.conv1(x))
            out = self.conv2(x)
            return self.bn2(out) + x
""")
# RL101 at line 14 (conv2 fed x), RL104 at 7/8 (conv1, bn1 dead), RL301 at 9 (conv2 bias before bn2).


def invoke(*args, cwd=None, input=None):
    old = os.getcwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        return runner.invoke(app, list(args) + ["--no-trace", "--no-cache"], env={"NO_COLOR": "1"}, input=input)
    finally:
        os.chdir(old)


def codes_in(output: str):
    doc = json.loads(output)
    return sorted((f["code"], os.path.basename(f["path"]), f["line"]) for f in doc["findings"])


def project(tmp_path, config: str = "", files=None):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n\n[tool.resnetlint]\n" + textwrap.dedent(config))
    for name, text in (files or {"pkg/block.py": STALE}).items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


# -- configuration -------------------------------------------------------------

def test_config_is_found_walking_up_from_the_path(tmp_path):
    root = project(tmp_path, 'select = ["RL101"]\n')
    result = invoke(str(root / "pkg" / "block.py"), "--format", "json")
    assert codes_in(result.output) == [("RL101", "block.py", 14)]


def test_flags_override_the_file(tmp_path):
    root = project(tmp_path, 'select = ["RL101"]\nignore = ["RL301"]\n')
    # --select replaces the configured selection (and its ignore list).
    result = invoke("pkg", "--select", "RL104,RL301", "--format", "json", cwd=root)
    assert [c for c, _, _ in codes_in(result.output)] == ["RL104", "RL104", "RL301"]
    # --ignore adds to the configured selection.
    result = invoke("pkg", "--ignore", "RL101", "--format", "json", cwd=root)
    assert codes_in(result.output) == [] and result.exit_code == 0
    # --extend-select adds to it.
    result = invoke("pkg", "--extend-select", "RL301", "--format", "json", cwd=root)
    assert [c for c, _, _ in codes_in(result.output)] == ["RL101", "RL301"]


def test_explicit_config_and_isolated(tmp_path):
    root = project(tmp_path, 'select = ["RL101"]\n')
    other = tmp_path / "other.toml"
    other.write_text('[tool.resnetlint]\nselect = ["RL301"]\n')
    assert [c for c, _, _ in codes_in(invoke("pkg", "--config", str(other), "--format", "json", cwd=root).output)] == ["RL301"]
    isolated = invoke("pkg", "--isolated", "--format", "json", cwd=root)
    assert [c for c, _, _ in codes_in(isolated.output)] == ["RL101", "RL104", "RL104", "RL301"]
    missing = invoke("pkg", "--config", "nope.toml", cwd=root)
    assert missing.exit_code == 2 and "nope.toml: no such configuration file" in missing.output


@pytest.mark.parametrize("config,message", [
    ('selct = ["RL101"]\n', "unknown key `selct` in [tool.resnetlint] (did you mean `select`?)"),
    ('trace = "maybe"\n', "`trace` must be one of auto, on, off, not 'maybe'"),
    ('select = "RL101"\n', "`select` must be a list of rule codes, not the string 'RL101'"),
    ('select = ["RL9"]\n', "`select`"),
    ('respect-gitignore = "yes"\n', "`respect-gitignore` must be true or false"),
    ('per-file-ignores = { "a.py" = "RL101" }\n', "`per-file-ignores`['a.py'] must be a list of rule codes"),
    ('per-file-ignores = ["a.py"]\n', "`per-file-ignores` must map glob patterns to lists of codes"),
    ('trace-timeout = -1\n', "`trace-timeout` must be a number of seconds, at least 1"),
    ('select = [\n', "not valid TOML"),
])
def test_bad_configuration_is_a_usage_error_naming_file_and_key(tmp_path, config, message):
    root = project(tmp_path, config)
    result = invoke("pkg", cwd=root)
    assert result.exit_code == 2, result.output
    assert "pyproject.toml" in result.output and message in result.output, result.output


def test_per_file_ignores(tmp_path):
    root = project(tmp_path, 'per-file-ignores = { "legacy/*" = ["RL1"], "gen_*.py" = ["ALL"] }\n',
                   {"pkg/block.py": STALE, "legacy/old.py": STALE, "pkg/gen_x.py": STALE})
    found = codes_in(invoke(".", "--format", "json", cwd=root).output)
    assert ("RL101", "block.py", 14) in found
    assert [c for c, name, _ in found if name == "old.py"] == ["RL301"]  # RL1xx off there, RL301 still on
    assert not [f for f in found if f[1] == "gen_x.py"]


def test_exclude_and_extend_exclude(tmp_path):
    root = project(tmp_path, 'exclude = ["generated/"]\nextend-exclude = ["pkg/skip_*.py"]\n',
                   {"pkg/block.py": STALE, "generated/g.py": STALE, "pkg/skip_me.py": STALE})
    found = {name for _, name, _ in codes_in(invoke(".", "--format", "json", cwd=root).output)}
    assert found == {"block.py"}
    # --exclude replaces the configured list; extend-exclude still applies.
    found = {name for _, name, _ in codes_in(invoke(".", "--exclude", "nothing", "--format", "json", cwd=root).output)}
    assert found == {"block.py", "g.py"}
    # A file named explicitly is checked unless --force-exclude (pre-commit passes every file).
    assert invoke("generated/g.py", cwd=root).exit_code == 1
    forced = invoke("generated/g.py", "--force-exclude", cwd=root)
    assert forced.exit_code == 0 and "resnetlint: warning: No Python files found under generated/g.py" in forced.output


def test_gitignore_is_respected_unless_disabled(tmp_path):
    root = project(tmp_path, "", {"pkg/block.py": STALE, "out/gen.py": STALE, "pkg/tmp_a.py": STALE,
                                  "pkg/keep_tmp.py": STALE})
    (root / ".gitignore").write_text("out/\ntmp_*.py\n")
    (root / "pkg" / ".gitignore").write_text("keep_*.py\n!keep_tmp.py\n")
    os.makedirs(root / ".git")
    found = {name for _, name, _ in codes_in(invoke(".", "--format", "json", cwd=root).output)}
    assert found == {"block.py", "keep_tmp.py"}
    found = {name for _, name, _ in codes_in(invoke(".", "--no-respect-gitignore", "--format", "json", cwd=root).output)}
    assert found == {"block.py", "gen.py", "tmp_a.py", "keep_tmp.py"}
    (root / "pyproject.toml").write_text("[tool.resnetlint]\nrespect-gitignore = false\n")
    found = {name for _, name, _ in codes_in(invoke(".", "--format", "json", cwd=root).output)}
    assert "gen.py" in found


@pytest.mark.skipif(subprocess.run(["git", "--version"], capture_output=True).returncode != 0, reason="no git")
def test_gitignore_reader_agrees_with_git(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text("build/\n*.gen.py\n/top.py\n!keep.gen.py\nsub/**/deep.py\n\\#hash.py\n"
                                         "docs/*.py\n[ab]_*.py\n")
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / ".gitignore").write_text("local.py\n")
    names = ["build/x/m.py", "a/build/m.py", "x.gen.py", "keep.gen.py", "top.py", "a/top.py", "sub/q/r/deep.py",
             "sub/deep.py", "a/b/local.py", "a/local.py", "ok.py", "#hash.py", "docs/x.py", "docs/y/x.py",
             "a_1.py", "c_1.py"]
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    git = subprocess.run(["git", "check-ignore", "--no-index", *names], cwd=tmp_path, capture_output=True, text=True)
    expected = set(git.stdout.split())
    reader = GitIgnore()
    got = {name for name in names if reader.is_ignored(str(tmp_path / name), False)}
    assert got == expected


# -- suppressions ----------------------------------------------------------------

def _lint_text(tmp_path, text, *args):
    path = tmp_path / "block.py"
    path.write_text(text)
    return invoke(str(path), "--format", "json", *args)


def test_noqa_on_the_line_bare_and_with_codes(tmp_path):
    coded = STALE.replace("out = self.conv2(x)", "out = self.conv2(x)  # noqa: RL101")
    assert "RL101" not in [c for c, _, _ in codes_in(_lint_text(tmp_path, coded).output)]
    bare = STALE.replace("out = self.conv2(x)", "out = self.conv2(x)  # NOQA")
    assert "RL101" not in [c for c, _, _ in codes_in(_lint_text(tmp_path, bare).output)]
    prefix = STALE.replace("out = self.conv2(x)", "out = self.conv2(x)  # noqa:RL1")
    assert "RL101" not in [c for c, _, _ in codes_in(_lint_text(tmp_path, prefix).output)]
    other = STALE.replace("out = self.conv2(x)", "out = self.conv2(x)  # noqa: RL201")
    found = [c for c, _, _ in codes_in(_lint_text(tmp_path, other).output)]
    assert "RL101" in found and "RL100" in found  # wrong code: not suppressed, and the noqa is unused
    in_string = STALE.replace("out = self.conv2(x)", "out = self.conv2(x); s = '# noqa'")
    assert "RL101" in [c for c, _, _ in codes_in(_lint_text(tmp_path, in_string).output)]


def test_noqa_on_the_class_line_covers_the_class(tmp_path):
    text = STALE.replace("class Block(nn.Module):", "class Block(nn.Module):  # noqa: RL104, RL301")
    assert [c for c, _, _ in codes_in(_lint_text(tmp_path, text).output)] == ["RL101"]
    bare = STALE.replace("class Block(nn.Module):", "class Block(nn.Module):  # noqa")
    assert len(codes_in(_lint_text(tmp_path, bare).output)) == 4  # bare noqa: the class line only


def test_file_level_noqa(tmp_path):
    assert codes_in(_lint_text(tmp_path, "# resnetlint: noqa\n" + STALE).output) == []
    found = codes_in(_lint_text(tmp_path, "# resnetlint: noqa: RL104\n" + STALE).output)
    assert [c for c, _, _ in found] == ["RL101", "RL301"]
    # Not on a line of its own: not a file-level directive.
    found = codes_in(_lint_text(tmp_path, STALE.replace("import torch.nn as nn", "import torch.nn as nn  # resnetlint: noqa")).output)
    assert len(found) == 4


def test_unused_noqa_is_reported_and_fixed(tmp_path):
    text = STALE.replace("out = self.conv2(x)", "out = self.conv2(out)") \
        .replace("return self.bn2(out) + x", "return self.bn2(out) + x  # noqa: RL101, E501") \
        .replace("class Block(nn.Module):", "class Block(nn.Module):  # noqa: RL202")
    found = codes_in(_lint_text(tmp_path, text, "--select", "RL100,RL101,RL202").output)
    assert found == [("RL100", "block.py", 4), ("RL100", "block.py", 15)]
    # Not judged when the code did not run.
    assert [c for c, _, _ in codes_in(_lint_text(tmp_path, text, "--select", "RL100,RL301").output)] == ["RL301"]
    path = tmp_path / "block.py"
    result = invoke(str(path), "--select", "RL100,RL101,RL202", "--fix")
    assert result.exit_code == 0, result.output
    fixed = path.read_text()
    assert "return self.bn2(out) + x  # noqa: E501\n" in fixed
    assert "class Block(nn.Module):\n" in fixed
    assert invoke(str(path), "--select", "RL100,RL101,RL202").exit_code == 0


def test_a_clean_file_is_only_tokenized_when_a_comment_may_name_our_codes(tmp_path):
    from resnetlint.noqa import may_name_our_codes

    assert may_name_our_codes("x = 1  # noqa:rl104\n") and may_name_our_codes("# resnetlint: NOQA: E501, RL3\n")
    assert not may_name_our_codes("import os  # noqa: F401\nx = 1  # noqa\n# RL101 elsewhere\n")
    clean = STALE.replace("out = self.conv2(x)", "out = self.conv2(out)")\
        .replace("nn.Conv2d(c, c, 3, padding=1)\n", "nn.Conv2d(c, c, 3, padding=1, bias=False)\n")
    assert codes_in(_lint_text(tmp_path, clean + "import os  # noqa: F401\n", "--select", "RL1").output) == []
    # Lower case, on a file with no findings at all: still judged.
    found = codes_in(_lint_text(tmp_path, "# resnetlint: noqa: rl202\n" + clean, "--select", "RL1,RL2").output)
    assert found == [("RL100", "block.py", 1)]


def test_add_noqa_suppresses_everything_and_is_idempotent(tmp_path):
    path = tmp_path / "block.py"
    path.write_text(STALE.replace("out = self.conv2(x)", "out = self.conv2(x)  # noqa: E501"))
    result = invoke(str(path), "--add-noqa")
    assert result.exit_code == 0 and "Added `# noqa` to 4 lines in 1 file." in result.output
    text = path.read_text()
    assert "out = self.conv2(x)  # noqa: E501, RL101\n" in text
    assert "self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)  # noqa: RL104\n" in text
    assert invoke(str(path)).exit_code == 0
    again = invoke(str(path), "--add-noqa")
    assert "Added `# noqa` to 0 lines in 0 files." in again.output and path.read_text() == text


# -- stdin, statistics, output file -----------------------------------------------

def test_stdin_check_fix_and_diff(tmp_path):
    result = invoke("-", "--stdin-filename", "pkg/block.py", "--format", "json", input=STALE)
    assert result.exit_code == 1
    assert {f["path"] for f in json.loads(result.output)["findings"]} == {"pkg/block.py"}
    fixed = subprocess.run([sys.executable, "-m", "resnetlint", "-", "--stdin-filename", "b.py", "--fix",
                            "--unsafe-fixes", "--no-trace", "--no-cache"], input=STALE, capture_output=True, text=True)
    assert "out = self.conv2(out)" in fixed.stdout and "bias=False" in fixed.stdout
    assert "(4 fixed, 0 remaining)" in fixed.stderr  # RL104 resolves once conv1 feeds conv2
    compile(fixed.stdout, "b.py", "exec")
    assert invoke("-", "--stdin-filename", "b.py", "--diff", input=STALE).exit_code == 0  # only unsafe fixes here
    diff = invoke("-", "--stdin-filename", "b.py", "--diff", "--unsafe-fixes", input=STALE)
    assert diff.exit_code == 1 and "-        out = self.conv2(x)" in diff.output
    clean = invoke("-", "--stdin-filename", "b.py", "--fix", input="x = 1\n")
    assert clean.exit_code == 0 and clean.output.startswith("x = 1\n")
    # per-file-ignores apply to the stdin file name too.
    root = project(tmp_path, 'per-file-ignores = { "gen/*" = ["ALL"] }\n', {})
    ignored = invoke("-", "--stdin-filename", "gen/x.py", input=STALE, cwd=root)
    assert ignored.exit_code == 0


def test_statistics_and_output_file(tmp_path):
    stats = invoke(str(FIXTURES / "seeds"), "--statistics")
    assert stats.exit_code == 1
    findings = json.loads(invoke(str(FIXTURES / "seeds"), "--format", "json").output)["findings"]
    expected = {}
    for finding in findings:
        expected[finding["code"]] = expected.get(finding["code"], 0) + 1
    rows = [line.split() for line in stats.output.splitlines()]
    assert {row[1]: int(row[0]) for row in rows} == expected
    assert [int(row[0]) for row in rows] == sorted(expected.values(), reverse=True)
    assert ["RL104", "unused-submodule"] == next(row[1:3] for row in rows if row[1] == "RL104")
    assert all("fixable]" not in " ".join(row) for row in rows if row[1] == "RL104")  # no fix for RL104
    report = tmp_path / "report.sarif"
    result = invoke(str(FIXTURES / "seeds"), "--format", "sarif", "-o", str(report))
    assert result.exit_code == 1 and result.output == ""
    document = json.loads(report.read_text())
    assert document["version"] == "2.1.0" and document["runs"][0]["results"]


@pytest.mark.parametrize("fmt,marker", [("github", "::error file="), ("junit", "<testsuites"),
                                        ("sarif", '"$schema"'), ("concise", "RL102 [residual-overwritten]")])
def test_every_format_from_the_command_line(fmt, marker):
    result = invoke(str(FIXTURES / "seeds" / "seed003_block.py"), "--format", fmt)
    assert result.exit_code == 1 and marker in result.output


def test_a_directory_named_explicitly_is_checked_even_if_an_enclosing_repo_ignores_it(tmp_path):
    # e.g. a pyenv tree (its .gitignore has /versions) or a vendored checkout.
    root = project(tmp_path, "", {"versions/lib/block.py": STALE, "versions/lib/out/gen.py": STALE})
    os.makedirs(root / ".git")
    (root / ".gitignore").write_text("/versions\nout/\n")
    assert invoke(".", cwd=root).exit_code == 0  # ignored when walking from the top
    found = {name for _, name, _ in codes_in(invoke("versions/lib", "--format", "json", cwd=root).output)}
    assert found == {"block.py"}  # named: checked; what lies below it still honours .gitignore
