"""GitHub Actions workflow commands: inline annotations on pull requests.

One line per finding::

    ::error file=PATH,line=L,col=C,endLine=EL,endColumn=EC,title=RL101 [stale-input]::MESSAGE

``::warning`` for warning severity.  MESSAGE is the finding's message followed
by ``help:`` (and the trace verdict when the trace ran) on their own lines;
GitHub shows the escaped newlines as line breaks.  Positions are ours as they
are: 1-based lines and character columns.  PATH is relative to the current
directory (the workspace root in a workflow) when possible.

A file that could not be checked is ``::error file=PATH::MESSAGE``.

Escaping is what the runner requires: in the message (data) ``%``, ``\\r`` and
``\\n`` become ``%25``, ``%0D``, ``%0A``; in property values ``:`` and ``,``
also become ``%3A`` and ``%2C``, since they delimit the properties.
"""
from __future__ import annotations

from typing import IO, Any, List, Optional, Sequence

from .sarif import display_path, full_message


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _command(kind: str, properties: List[tuple], message: str) -> str:
    props = ",".join(f"{name}={escape_property(str(value))}" for name, value in properties)
    return f"::{kind} {props}::{escape_data(message)}"


def document(run, rules: Optional[Sequence[Any]] = None) -> List[str]:
    """The annotation lines for ``run`` (``rules`` is accepted for a uniform
    interface; the annotations need nothing from it)."""
    lines = []
    for f in run.findings:
        kind = "warning" if f.severity == "warning" else "error"
        lines.append(_command(kind, [
            ("file", display_path(f.path)), ("line", f.line), ("col", f.column),
            ("endLine", f.end_line), ("endColumn", f.end_column), ("title", f"{f.code} [{f.rule}]"),
        ], full_message(f)))
    for error in run.errors:
        lines.append(_command("error", [("file", display_path(error.path))], error.message))
    return lines


def render(run, stream: IO[str], rules: Optional[Sequence[Any]] = None) -> None:
    for line in document(run, rules):
        stream.write(line + "\n")
