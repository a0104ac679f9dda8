"""One definition of every option: the entry point's fast reader and the
typer application are both built from ``resnetlint.options.OPTIONS``, agree
on every command line the fast reader accepts, and give the same message
for a bad value; everything else goes to typer."""
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from resnetlint import cli, cli_app
from resnetlint.options import OPTIONS, CliOptions, options_from_raw, parse_argv

ACCEPTED = [
    [],
    ["src/"],
    ["a.py", "b.py", "--no-trace"],
    ["src", "--format", "json", "--no-cache", "--exit-zero"],
    ["src", "--format=sarif", "-o", "out.sarif"],
    ["src", "--output-format", "github", "--output-file=x"],
    ["--select", "RL1,RL201", "--select", "RL3", "--ignore=RL102", "--extend-select", "RL303", "src"],
    ["--select", "stale-input", "--ignore", "bias-before-norm,RL999"],
    ["--exclude", "gen/", "--extend-exclude", "b/", "--force-exclude", "x.py"],
    ["--respect-gitignore", "--no-respect-gitignore", "--isolated", "--config", "pyproject.toml"],
    ["-j", "2", "--jobs=0", "--cache-dir", "/tmp/c", "--full-parse", "--statistics"],
    ["--trace", "--trace-all", "--device", "meta", "--trace-timeout", "2.5"],
    ["--trace-path", "src", "--trace-path", "lib", "--show-refuted", "-v"],
    ["--fix", "--unsafe-fixes", "--no-fix", "--no-unsafe-fixes", "--diff", "--show-fixes", "--no-show-fixes"],
    ["--fix-only", "--exit-non-zero-on-fix", "-q", "--color", "never"],
    ["--add-noqa", "--show-traceback", "src"],
    ["--show-files", "--show-settings", "src"],
    ["--list-rules", "--format", "json"],
    ["--explain", "RL101"],
    ["--version"],
    ["-", "--stdin-filename", "pkg/x.py", "--fix"],
    ["--", "-weird.py", "--not-a-flag.py"],
]
REJECTED = [
    ["--help"], ["-h"], ["src", "-h"], ["--bogus"], ["-j"], ["--fix=yes"], ["-j2"], ["-qv"], ["--select"],
    ["--select", "--fix"],
]


def _typer_options(argv):
    captured = []
    original = cli_app.run_options
    cli_app.run_options = lambda options: captured.append(options) or 0
    try:
        result = CliRunner().invoke(cli_app.app, argv)
    finally:
        cli_app.run_options = original
    assert result.exit_code == 0, result.output
    return captured[0]


@pytest.mark.parametrize("argv", ACCEPTED, ids=lambda a: " ".join(a) or "(none)")
def test_fast_reader_matches_typer(argv):
    raw = parse_argv(argv)
    assert raw is not None
    fast = options_from_raw(raw)
    assert isinstance(fast, CliOptions)
    assert fast == _typer_options(argv)


def _sample(option):
    """A valid command-line value for an option."""
    samples = {"FORMAT": "json", "CODES": "RL1", "N": "3", "SECONDS": "5", "auto|always|never": "never",
               "cpu|cuda|meta|auto": "meta"}
    return samples.get(option.value.metavar, "some/path")


@pytest.mark.parametrize("option", [o for o in OPTIONS if o.flags], ids=lambda o: o.name)
def test_every_option_reads_the_same_both_ways(option):
    spellings = [[flag] if option.is_flag else [flag, _sample(option)] for flag in option.flags]
    if option.negative:
        spellings.append([option.negative])
    for argv in spellings:
        fast = options_from_raw(parse_argv(argv))
        assert fast == _typer_options(argv), argv
        assert getattr(fast, option.name) is not None, argv


@pytest.mark.parametrize("argv", REJECTED, ids=" ".join)
def test_everything_else_goes_to_typer(argv):
    assert parse_argv(argv) is None


@pytest.mark.parametrize("argv,message", [
    (["--format", "xml"], "resnetlint: error: `--format` must be one of text, concise, json, sarif, github, junit, "
                          "not 'xml'"),
    (["-j", "two"], "resnetlint: error: `--jobs` must be a whole number (0 or more), not 'two'"),
    (["--trace-timeout", "0.5"], "resnetlint: error: `--trace-timeout` must be a number of seconds, at least 1, "
                                 "not 0.5"),
    (["--select", "RL9"], "resnetlint: error: `--select`: 'RL9' matches no rule (see --list-rules)"),
    (["--device", "tpu"], "resnetlint: error: `--device` must be one of cpu, cuda, meta, auto, not 'tpu'"),
    (["--color", "yes"], "resnetlint: error: `--color` must be one of auto, always, never, not 'yes'"),
])
def test_a_bad_value_is_the_same_one_line_from_both_parsers(argv, message, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 2
    assert capsys.readouterr().err == message + "\n"
    typer_result = CliRunner().invoke(cli_app.app, argv)
    assert typer_result.exit_code == 2 and typer_result.output == message + "\n"


@pytest.mark.parametrize("argv,message", [
    (["--bogus"], "resnetlint: error: unknown option `--bogus`; see `resnetlint --help`\n"),
    (["--selct", "RL1"], "resnetlint: error: unknown option `--selct` (did you mean `--select`?); "
                         "see `resnetlint --help`\n"),
    (["--no-trac"], "resnetlint: error: unknown option `--no-trac` (did you mean `--no-trace`?); "
                    "see `resnetlint --help`\n"),
    (["--select"], "resnetlint: error: `--select` needs a value (CODES)\n"),
    (["--fix=yes"], "resnetlint: error: `--fix` takes no value\n"),
])
def test_usage_errors_are_one_line_and_suggest_only_close_flags(argv, message, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 2
    assert capsys.readouterr().err == message


def test_a_plain_run_does_not_import_typer(tmp_path):
    code = ("import sys\nfrom resnetlint.cli import main\n"
            "try:\n    main([sys.argv[1], '--no-trace', '--no-cache', '--select', 'stale-input'])\n"
            "except SystemExit:\n    pass\n"
            "print(sorted(m for m in ('typer', 'pydantic', 'torch', 'rich') if m in sys.modules))")
    (tmp_path / "ok.py").write_text("x = 1\n")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "ok.py")], capture_output=True, text=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr


def test_a_subcommand_goes_to_the_commands_app(monkeypatch, capsys):
    """The hook a subcommand (``resnetlint server``) plugs into."""
    monkeypatch.setattr(cli_app.commands, "registered_commands", [])

    @cli_app.commands.command("hello")
    def hello(name: str = "world"):
        print(f"hello {name}")

    monkeypatch.setattr(cli, "SUBCOMMANDS", ("hello",))
    with pytest.raises(SystemExit) as exited:
        cli.main(["hello", "--name", "there"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == "hello there\n"
    assert "resnetlint <COMMAND> [ARGS]..." in cli_app.help_text() and "  hello" in cli_app.help_text()
