"""Entry point: ``resnetlint [OPTIONS] [PATH]...`` and ``resnetlint COMMAND ...``.

A lint run is read by :func:`resnetlint.options.parse_argv` from the option
table and run directly, without importing typer (with pydantic, its import
costs about 0.09 s, a third of a one-file run: a pre-commit hook calls this
once per commit).  What that reader does not understand (``--help``, a typo,
a flag without its value) goes to the typer application in
:mod:`resnetlint.cli_app`, built from the same table, which prints the help
or the error.  A first argument naming a subcommand goes to typer too.
"""
from __future__ import annotations

import os
import sys
import warnings
from typing import List, Optional, Sequence

from . import __version__  # noqa: F401  (re-exported for ``resnetlint.cli.__version__`` users)

# Subcommands (cli_app.commands), so that a lint run need not import typer to
# know that its first argument is not one.
SUBCOMMANDS: Sequence[str] = ("server",)


def main(argv: Optional[List[str]] = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not sys.warnoptions:
        # A Python warning from a library is not the user's business; -W or
        # PYTHONWARNINGS still show them (tests run with them on).
        warnings.simplefilter("ignore")
    try:
        code = _main(argv)
        sys.stdout.flush()
    except KeyboardInterrupt:
        # Ctrl-C: one line, not a traceback.  Files being fixed are either
        # old or new (writes hold signals off while a file is swapped in).
        sys.stderr.write("resnetlint: interrupted\n")
        code = 130
    except BrokenPipeError:
        # `resnetlint ... | head`: the reader has gone; stop quietly (and
        # keep Python from complaining when it flushes stdout at exit).
        _silence_stdout()
        code = 1
    raise SystemExit(code)


def _main(argv: List[str]) -> int:
    if argv and argv[0] in SUBCOMMANDS:
        from .cli_app import run_subcommand

        run_subcommand(argv)
        return 0
    from .options import options_from_raw, parse_argv

    raw = parse_argv(argv)
    if raw is None:
        from .cli_app import main as typer_main

        typer_main(argv)  # exits
        return 0
    from .command import error, run
    from .errors import UsageError

    try:
        options = options_from_raw(raw)
    except UsageError as exc:
        error(str(exc))
        return 2
    return run(options)


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def __getattr__(name: str):
    # ``from resnetlint.cli import app`` (tests, typer tooling) still works.
    if name == "app":
        from . import cli_app

        return cli_app.app
    raise AttributeError(name)


if __name__ == "__main__":
    main()
