"""Entry point: ``resnetlint [OPTIONS] [PATH]...``.

The common invocations (a pre-commit hook, an editor, CI: paths plus a few
flags) are parsed here by a small parser and run directly; anything else
(``--help``, ``--version``, ``--list-rules``, ``--explain``, a malformed or
unknown flag) goes to the typer application in :mod:`resnetlint.cli_app`,
which owns the documentation and the error messages.  Both produce the same
:class:`~resnetlint.command.CliOptions` (a test compares them), so the fast
path can only ever accept a subset of what typer accepts.

Why: typer validates options through pydantic, and importing and building
that costs about 0.1 s, a third of a one-file run.
"""
from __future__ import annotations

import sys
from typing import Dict, List, Optional, Sequence, Tuple

from . import __version__  # noqa: F401  (re-exported for ``resnetlint.cli.__version__`` users)

# flag -> (CliOptions field, value); flags that take no argument.
FLAGS: Dict[str, Tuple[str, object]] = {
    "--force-exclude": ("force_exclude", True),
    "--respect-gitignore": ("respect_gitignore", True),
    "--no-respect-gitignore": ("respect_gitignore", False),
    "--isolated": ("isolated", True),
    "--exit-zero": ("exit_zero", True),
    "--statistics": ("statistics", True),
    "--full-parse": ("full", True),
    "--no-cache": ("no_cache", True),
    "--trace": ("trace", True),
    "--no-trace": ("trace", False),
    "--trace-all": ("trace_all", True),
    "--fix": ("fix", True),
    "--no-fix": ("fix", False),
    "--unsafe-fixes": ("unsafe_fixes", True),
    "--no-unsafe-fixes": ("unsafe_fixes", False),
    "--diff": ("diff", True),
    "--show-fixes": ("show_fixes", True),
    "--add-noqa": ("add_noqa", True),
    "--show-traceback": ("show_traceback", True),
}
# flag -> (field, kind); flags that take one argument.  "list" options may
# repeat and accumulate, as in typer.
VALUED: Dict[str, Tuple[str, str]] = {
    "--format": ("output_format", "format"),
    "--output-format": ("output_format", "format"),
    "-o": ("output_file", "str"),
    "--output-file": ("output_file", "str"),
    "--select": ("select", "list"),
    "--ignore": ("ignore", "list"),
    "--extend-select": ("extend_select", "list"),
    "--exclude": ("exclude", "list"),
    "--extend-exclude": ("extend_exclude", "list"),
    "--config": ("config", "str"),
    "-j": ("jobs", "jobs"),
    "--jobs": ("jobs", "jobs"),
    "--cache-dir": ("cache_dir", "str"),
    "--device": ("device", "str"),
    "--trace-timeout": ("trace_timeout", "timeout"),
    "--stdin-filename": ("stdin_filename", "str"),
}


def fast_parse(argv: Sequence[str]):
    """The :class:`CliOptions` for ``argv``, or None when typer should
    handle it (anything unusual, so that typer's messages stay the only
    ones)."""
    from .command import FORMATS, CliOptions

    values: Dict[str, object] = {}
    paths: List[str] = []
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "-" or not arg.startswith("-"):
            paths.append(arg)
            continue
        name, eq, inline = arg.partition("=")
        if name in FLAGS and not eq:
            field, value = FLAGS[name]
            values[field] = value
            continue
        if name not in VALUED:
            return None  # --help, --version, --list-rules, a typo, "--": typer's job
        if eq:
            value = inline
        elif i < len(args):
            value, i = args[i], i + 1
        else:
            return None
        field, kind = VALUED[name]
        parsed = _convert(value, kind, FORMATS)
        if parsed is None:
            return None
        if kind == "list":
            values[field] = list(values.get(field) or []) + [parsed]
        else:
            values[field] = parsed
    return CliOptions(paths=tuple(paths), **values)


def _convert(value: str, kind: str, formats) -> Optional[object]:
    if kind == "format":
        return value if value in formats else None
    if kind == "jobs":
        return int(value) if value.isdigit() else None
    if kind == "timeout":
        try:
            number = float(value)
        except ValueError:
            return None
        return number if number >= 1.0 else None
    return value


def main(argv: Optional[List[str]] = None) -> None:
    try:
        _main(argv)
    except KeyboardInterrupt:
        # Ctrl-C: one line, not a traceback.  Files being fixed are either
        # old or new (writes hold signals off while a file is swapped in).
        sys.stderr.write("resnetlint: interrupted\n")
        raise SystemExit(130)


def _main(argv: Optional[List[str]]) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["server"]:  # the editor server (lint a directory named server as ./server)
        from .server import main as serve

        raise SystemExit(serve(argv[1:]))
    options = fast_parse(argv)
    if options is None:
        from .cli_app import main as full_main

        full_main(argv)
        return
    from .command import CliExit, execute

    try:
        code = execute(options)
    except CliExit as exc:
        code = exc.code
    sys.stdout.flush()
    raise SystemExit(code)


def __getattr__(name: str):
    # ``from resnetlint.cli import app`` (tests, typer tooling) still works.
    if name in ("app", "OutputFormat"):
        from . import cli_app

        return getattr(cli_app, name)
    raise AttributeError(name)


if __name__ == "__main__":
    main()
