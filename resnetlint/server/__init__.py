"""``resnetlint server``: findings, fixes and rule documentation in the editor.

A language server (the Language Server Protocol over stdin/stdout) built on
pygls, an optional dependency: ``pip install 'resnetlint[server]'``.  The
command line (:mod:`resnetlint.cli_app`) starts it; see
:mod:`resnetlint.server.lsp` for what it offers and
:mod:`resnetlint.server.workspace` for the analysis behind it.
"""
from __future__ import annotations

import sys


def main() -> int:
    """Serve until the editor says ``exit`` (pygls then ends the process
    itself, with status 0 after a ``shutdown`` and 1 without); returns 2
    when pygls is not installed."""
    try:
        from .lsp import create_server
    except ImportError as exc:
        if exc.name and exc.name.split(".")[0] in ("pygls", "lsprotocol"):
            sys.stderr.write("resnetlint server: error: the language server needs pygls; "
                             "install it with: pip install 'resnetlint[server]'\n")
            return 2
        raise
    create_server().start_io()
    return 0
