"""The entry point's fast parser agrees with the typer application on every
invocation it accepts, and hands everything else to typer."""
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from resnetlint import cli, cli_app
from resnetlint.command import CliOptions

ACCEPTED = [
    [],
    ["src/"],
    ["a.py", "b.py", "--no-trace"],
    ["src", "--format", "json", "--no-cache", "--exit-zero"],
    ["src", "--format=sarif", "-o", "out.sarif"],
    ["src", "--output-format", "github", "--output-file=x"],
    ["--select", "RL1,RL201", "--select", "RL3", "--ignore=RL102", "--extend-select", "RL303", "src"],
    ["--exclude", "gen/", "--extend-exclude", "b/", "--force-exclude", "x.py"],
    ["--respect-gitignore", "--no-respect-gitignore", "--isolated", "--config", "pyproject.toml"],
    ["-j", "2", "--jobs=0", "--cache-dir", "/tmp/c", "--full-parse", "--statistics"],
    ["--trace", "--trace-all", "--device", "meta", "--trace-timeout", "2.5"],
    ["--fix", "--unsafe-fixes", "--no-fix", "--no-unsafe-fixes", "--diff", "--show-fixes"],
    ["--add-noqa", "--show-traceback", "src"],
    ["-", "--stdin-filename", "pkg/x.py", "--fix"],
]
REJECTED = [
    ["--help"], ["-h"], ["--version"], ["--list-rules"], ["--explain", "RL101"], ["--bogus"], ["src", "--format", "xml"],
    ["-j", "two"], ["-j"], ["--trace-timeout", "0.5"], ["--", "-weird.py"], ["--fix=yes"], ["-j2"],
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
def test_fast_parser_matches_typer(argv):
    fast = cli.fast_parse(argv)
    assert isinstance(fast, CliOptions)
    assert fast == _typer_options(argv)


@pytest.mark.parametrize("argv", REJECTED, ids=" ".join)
def test_everything_else_goes_to_typer(argv):
    assert cli.fast_parse(argv) is None


def test_a_plain_run_does_not_import_typer(tmp_path):
    code = ("import sys\nfrom resnetlint.cli import main\n"
            "try:\n    main([sys.argv[1], '--no-trace', '--no-cache'])\n"
            "except SystemExit:\n    pass\n"
            "print(sorted(m for m in ('typer', 'pydantic', 'torch') if m in sys.modules))")
    (tmp_path / "ok.py").write_text("x = 1\n")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "ok.py")], capture_output=True, text=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr
