"""``resnetlint server``: findings, fixes and rule documentation in the editor.

A language server (the Language Server Protocol over stdin/stdout) built on
pygls, an optional dependency: ``pip install 'resnetlint[server]'``.  See
:mod:`resnetlint.server.lsp` for what it offers and
:mod:`resnetlint.server.workspace` for the analysis behind it.
"""
from __future__ import annotations

import sys
from typing import List, Optional

USAGE = """\
usage: resnetlint server

Run the resnetlint language server on stdin/stdout (the Language Server
Protocol), for editors: diagnostics as you type, fixes as code actions, rule
documentation on hover.  Configuration comes from the [tool.resnetlint]
table of the nearest pyproject.toml above each file.  See the README's
"Editors" section for VS Code, Neovim and Helix.
"""


def main(argv: Optional[List[str]] = None) -> int:
    """Serve until the editor says ``exit``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        sys.stdout.write(USAGE)
        return 0
    if argv and argv != ["--stdio"]:  # --stdio: what some clients pass by habit; stdio is the only transport
        sys.stderr.write(f"resnetlint server: error: unexpected argument {argv[0]!r} (it takes none; see --help)\n")
        return 2
    try:
        from .lsp import create_server
    except ImportError as exc:
        if getattr(exc, "name", "") and exc.name.split(".")[0] in ("pygls", "lsprotocol"):
            sys.stderr.write("resnetlint server: error: the language server needs pygls; "
                             "install it with: pip install 'resnetlint[server]'\n")
            return 2
        raise
    create_server().start_io()
    return 0
