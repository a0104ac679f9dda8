"""Human output: ``path:line:col: CODE [name] message``, a code frame, a summary.

Colour only on a terminal, never when ``NO_COLOR`` is set (https://no-color.org),
always when ``FORCE_COLOR`` is.  No dependency on rich here: this runs on every
pre-commit invocation and must start fast.
"""
from __future__ import annotations

import os
from typing import IO, List

from ..findings import Finding

RESET = "\033[0m"
BOLD = "\033[1m"
RED = "\033[31m"
YELLOW = "\033[33m"
BLUE = "\033[34m"
CYAN = "\033[36m"
GREEN = "\033[32m"
DIM = "\033[2m"


def use_color(stream: IO[str]) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return hasattr(stream, "isatty") and stream.isatty()


class Painter:
    def __init__(self, enabled: bool):
        self.enabled = enabled

    def __call__(self, text: str, *styles: str) -> str:
        if not self.enabled or not styles:
            return text
        return "".join(styles) + text + RESET


def headline(finding: Finding, paint: Painter) -> str:
    colour = RED if finding.severity == "error" else YELLOW
    location = paint(f"{finding.path}:{finding.line}:{finding.column}:", BOLD)
    return f"{location} {paint(finding.code, BOLD, colour)} [{finding.rule}] {finding.message}"


def code_frame(finding: Finding, lines: List[str], paint: Painter) -> List[str]:
    """The reported line with the span underlined (tabs expanded so the
    carets line up)."""
    if not (1 <= finding.line <= len(lines)):
        return []
    raw = lines[finding.line - 1].rstrip("\r\n")
    start = max(finding.column - 1, 0)
    end = finding.end_column - 1 if finding.end_line == finding.line else len(raw)
    end = max(end, start + 1)
    raw, start, end = _window(raw, start, end)
    shown, offset_start = _expand(raw, start)
    _, offset_end = _expand(raw, min(end, len(raw)))
    width = max(offset_end - offset_start, 1)
    gutter = str(finding.line)
    pad = " " * len(gutter)
    colour = RED if finding.severity == "error" else YELLOW
    out = [
        paint(f"{pad} |", BLUE),
        paint(f"{gutter} |", BLUE) + f" {shown}",
        paint(f"{pad} |", BLUE) + " " + " " * offset_start + paint("^" * width, colour, BOLD),
    ]
    return out


FRAME_WIDTH = 160  # characters of a long line shown around the span


def _window(raw: str, start: int, end: int):
    """A long line (generated or minified code) cut to the part around the
    span, with an ellipsis for what is left out."""
    if len(raw) <= FRAME_WIDTH:
        return raw, start, end
    left = max(0, min(start - FRAME_WIDTH // 4, len(raw) - FRAME_WIDTH))
    right = left + FRAME_WIDTH
    shown = ("…" if left else "") + raw[left:right] + ("…" if right < len(raw) else "")
    shift = left - (1 if left else 0)
    return shown, start - shift, max(min(end, right) - shift, start - shift + 1)


def _expand(line: str, column: int):
    """Line with tabs expanded and the display offset of ``column``."""
    shown = []
    offset = 0
    display_column = None
    for index, ch in enumerate(line):
        if index == column:
            display_column = offset
        if ch == "\t":
            width = 4 - offset % 4
            shown.append(" " * width)
            offset += width
        else:
            shown.append(ch)
            offset += 1
    if display_column is None:
        display_column = offset
    return "".join(shown), display_column


def render(findings: List[Finding], sources, stream: IO[str], paint: Painter, concise: bool = False,
           show_fixes: bool = False) -> None:
    for finding in findings:
        stream.write(headline(finding, paint) + "\n")
        if concise:
            continue
        text = sources.get(finding.path)
        if text is not None:
            from ..prefilter import split_lines

            for line in code_frame(finding, split_lines(text), paint):
                stream.write(line + "\n")
        pad = " " * len(str(finding.line))
        if finding.help:
            stream.write(paint(f"{pad} = ", BLUE) + paint("help", BOLD) + f": {finding.help}\n")
        if finding.confirmation.status != "not-run":
            stream.write(paint(f"{pad} = ", BLUE) + paint("trace", BOLD) + ": "
                         + _status(finding.confirmation.status, paint)
                         + (f": {finding.confirmation.detail}" if finding.confirmation.detail else "") + "\n")
        elif finding.confirmation.detail:
            stream.write(paint(f"{pad} = ", BLUE) + paint("trace", BOLD) + f": not run ({finding.confirmation.detail})\n")
        if finding.fix is not None and (show_fixes or finding.fix.applied):
            state = "applied" if finding.fix.applied else f"available ({finding.fix.safety})"
            stream.write(paint(f"{pad} = ", BLUE) + paint("fix", BOLD) + f" {state}: {finding.fix.description}\n")
        stream.write("\n")


def _status(status: str, paint: Painter) -> str:
    colour = {"confirmed": RED, "not-confirmed": YELLOW, "unverified": DIM}.get(status, "")
    return paint(status, BOLD, colour) if colour else status


def plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")
