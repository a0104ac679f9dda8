"""Human output: ``path:line:col: CODE [*] [name] message``, a code frame, a summary.

Every line is built once, as pieces of text with a style each, and written
one of two ways:

* plain (:class:`PlainOut`): on a pipe, in a file, in CI logs and in a
  pre-commit hook.  No rich import here: this runs on every hook call and
  must start fast;
* with rich (:class:`RichOut`) when colour is on: ``--color always``, or
  ``auto`` (the default) on a terminal without ``NO_COLOR``
  (https://no-color.org; ``FORCE_COLOR`` turns it on).  Colours, and on a
  real terminal the location is a link to the file.

``[*]`` marks a finding whose fix ``--fix`` would apply (a safe fix, or any
fix with ``--unsafe-fixes``), as in Ruff; ``--show-fixes`` shows the fix as a
diff under its finding.
"""
from __future__ import annotations

import os
from typing import IO, Iterable, List, Optional, Sequence, Tuple

from ..findings import Finding

Piece = Tuple[str, str]  # (text, rich style; "" for none)
Line = List[Piece]

GUTTER = "blue"
LOCATION = "bold"
CODE = {"error": "bold red", "warning": "bold yellow"}
CARETS = {"error": "bold red", "warning": "bold yellow"}
FIXABLE = "bold cyan"
LABEL = "bold"
VERDICT = {"confirmed": "bold red", "not-confirmed": "bold yellow", "unverified": "dim", "refuted": "bold green"}
REMOVED, ADDED = "red", "green"
SUMMARY = "bold"
ERROR = "bold red"


def use_color(stream: IO[str], choice: str = "auto") -> bool:
    """``--color``: always, never, or auto (a terminal, unless NO_COLOR)."""
    if choice in ("always", "never"):
        return choice == "always"
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return _is_terminal(stream)


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class PlainOut:
    def __init__(self, stream: IO[str]):
        self.stream = stream

    def line(self, pieces: Iterable[Piece]) -> None:
        self.stream.write("".join(text for text, _ in pieces) + "\n")


class RichOut:
    """The same lines through rich; locations are links on a real terminal."""

    def __init__(self, stream: IO[str]):
        from rich.console import Console

        self.links = _is_terminal(stream)
        # Colour was decided (use_color): NO_COLOR does not get a second say.
        self.console = Console(file=stream, force_terminal=True, no_color=False, highlight=False, markup=False,
                               emoji=False, soft_wrap=True, color_system="auto" if self.links else "standard")

    def line(self, pieces: Iterable[Piece]) -> None:
        from rich.text import Text

        self.console.print(Text.assemble(*pieces))


def output(stream: IO[str], color: str = "auto"):
    return RichOut(stream) if use_color(stream, color) else PlainOut(stream)


def link_style(path: str, out) -> str:
    if isinstance(out, RichOut) and out.links:
        return f"{LOCATION} link file://{os.path.abspath(path)}"
    return LOCATION


# -- one finding


def fixable(finding: Finding, unsafe: bool) -> bool:
    """``--fix`` (with ``unsafe``: ``--unsafe-fixes``) would apply its fix."""
    fix = finding.fix
    return fix is not None and bool(fix.edits) and not fix.applied and (fix.safety == "safe" or unsafe)


def headline(finding: Finding, location_style: str = LOCATION, unsafe: bool = False) -> Line:
    pieces: Line = [(f"{finding.path}:{finding.line}:{finding.column}:", location_style), (" ", ""),
                    (finding.code, CODE.get(finding.severity, "bold"))]
    if fixable(finding, unsafe):
        pieces += [(" ", ""), ("[*]", FIXABLE)]
    pieces.append((f" [{finding.rule}] {finding.message}", ""))
    return pieces


def code_frame(finding: Finding, lines: List[str]) -> List[Line]:
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
    return [
        [(f"{pad} |", GUTTER)],
        [(f"{gutter} |", GUTTER), (f" {shown}", "")],
        [(f"{pad} |", GUTTER), (" " + " " * offset_start, ""), ("^" * width, CARETS.get(finding.severity, "bold"))],
    ]


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


def _note(pad: str, label: str, text: Line) -> Line:
    return [(f"{pad} = ", GUTTER), (label, LABEL)] + text


def fix_diff(finding: Finding, text: str) -> List[Line]:
    """The lines the finding's fix changes, ``-`` before and ``+`` after,
    with their line numbers."""
    import difflib

    from ..fixes import apply_edits  # only with --show-fixes: it imports libcst
    from ..prefilter import split_lines

    before = split_lines(text)
    after = split_lines(apply_edits(text, before, finding.fix.edits))
    width = len(str(max(len(before), len(after))))
    out: List[Line] = []
    matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        for number in range(i1, i2):
            out.append([(f"{number + 1:>{width}} -", REMOVED), (" " + _expand(before[number].rstrip("\r\n"), 0)[0],
                                                                   REMOVED)])
        for number in range(j1, j2):
            out.append([(f"{number + 1:>{width}} +", ADDED), (" " + _expand(after[number].rstrip("\r\n"), 0)[0],
                                                                 ADDED)])
    return out


def finding_lines(finding: Finding, text: Optional[str], location_style: str = LOCATION, concise: bool = False,
                  show_fixes: bool = False, unsafe: bool = False) -> List[Line]:
    out = [headline(finding, location_style, unsafe)]
    if concise:
        return out
    if text is not None:
        from ..prefilter import split_lines

        out += code_frame(finding, split_lines(text))
    pad = " " * len(str(finding.line))
    if finding.help:
        out.append(_note(pad, "help", [(f": {finding.help}", "")]))
    status, detail = finding.confirmation.status, finding.confirmation.detail
    if status != "not-run":
        out.append(_note(pad, "trace", [(": ", ""), (status, VERDICT.get(status, ""))]
                         + ([(f": {detail}", "")] if detail else [])))
    elif detail:
        out.append(_note(pad, "trace", [(f": not run ({detail})", "")]))
    fix = finding.fix
    if fix is not None and fix.applied:
        out.append(_note(pad, "fix", [(f" applied: {fix.description}", "")]))
    elif fix is not None and show_fixes:
        out.append(_note(pad, "fix", [(f" available ({fix.safety}): {fix.description}", "")]))
        if fix.edits and text is not None:
            out += fix_diff(finding, text)
    out.append([])
    return out


# -- the whole report


def render(run, out, concise: bool = False, show_fixes: bool = False, unsafe: bool = False, quiet: bool = False,
           trace_mode: str = "off", fix_only: bool = False, verbose: bool = False) -> None:
    """Findings, rejected fixes, unreadable files, then (unless ``quiet``)
    the summary and the trace's line.  ``fix_only``: what was fixed, and
    nothing about what remains.  ``verbose`` (``-v``): the trace's line
    also when it had nothing to do."""
    for finding in [] if fix_only else run.unfixed_findings():
        style = link_style(finding.path, out)
        for line in finding_lines(finding, run.sources.get(finding.path), style, concise, show_fixes, unsafe):
            out.line(line)
    for outcome in run.fixes:
        for line in fix_notes(outcome):
            out.line([(line[0], LOCATION), (line[1], "")])
    for error in run.errors:
        out.line([(f"{error.path}:", LOCATION), (" ", ""), ("error", ERROR), (f": {error.message}", "")])
    if quiet:
        return
    summary = summary_line(run, unsafe) if not fix_only else \
        f"Fixed {plural(run.resolved, 'problem')}." if run.resolved else "No fixes applied."
    if summary:
        out.line([(summary, SUMMARY)])
    trace = trace_line(run.trace, trace_mode, verbose)
    if trace:
        out.line([(trace, "")])


def fix_notes(outcome) -> List[Tuple[str, str]]:
    """(location, text) for each fix that was not applied although asked
    for: rejected (the trace disproved it, it broke the syntax...) or
    unproven (no trace, and the static model could not prove it), named by
    the finding the user saw."""
    notes = []
    for verb, items in (("rejected", outcome.rejected), ("not applied", getattr(outcome, "unproven", []))):
        for item in items:
            finding = item.shown
            notes.append((f"{outcome.path}:{finding.line}:{finding.column}:",
                          f" fix {verb} for {finding.code} [{finding.rule}] in {finding.symbol}: {item.rejected}"))
    return notes


def summary_line(run, unsafe: bool = False) -> str:
    """What was found and fixed ('' when no file was checked: that is a
    warning on stderr)."""
    remaining = run.unfixed_findings()
    fixed = run.resolved
    files_with = len({f.path for f in run.findings})
    parts = []
    if fixed:
        found = len(remaining) + fixed
        parts.append(f"Found {plural(found, 'problem')} in {plural(files_with, 'file')} "
                     f"({fixed} fixed, {len(remaining)} remaining).")
    elif run.findings:
        parts.append(f"Found {plural(len(run.findings), 'problem')} in {plural(files_with, 'file')}.")
    with_edits = [f for f in remaining if f.fix is not None and f.fix.edits]
    safe = sum(1 for f in with_edits if f.fix.safety == "safe")
    unsafe_only = sum(1 for f in with_edits if f.fix.safety == "unsafe")
    if unsafe and safe + unsafe_only:
        parts.append(f"[*] {safe + unsafe_only} fixable with --fix --unsafe-fixes.")
    else:
        if safe:
            parts.append(f"[*] {safe} fixable with --fix.")
        if unsafe_only:
            parts.append(f"{unsafe_only} more fixable with --unsafe-fixes.")
    if run.errors:
        parts.append(f"{plural(len(run.errors), 'file')} could not be checked.")
    if not run.findings and not run.errors:
        if run.files == 0:
            return ""
        return f"All checks passed! ({plural(run.files, 'file')}, {plural(run.classes, 'module class')})"
    return " ".join(parts)


def trace_line(report, mode: str = "auto", verbose: bool = False) -> str:
    """The trace's summary line ('' when there was nothing to say).  Without
    torch in ``auto`` mode (a pre-commit hook) it says so and nothing more:
    the trace is meant to be off there."""
    if report is None:
        return ""
    if not report.ran and report.reason == "nothing to trace":
        return "Trace: nothing to trace (no class has a finding)." if verbose else ""
    if not report.ran:
        from ..trace import torch_available

        if mode == "auto" and not torch_available():
            return "Trace: off in this environment (no torch)."
        return f"Trace: not run ({report.reason})."
    from ..trace.summary import summary_lines

    # Refuted findings and the blocks that could not be run, by reason (listed with -v).
    return "\n".join(summary_lines(report, verbose))


def plural(count: int, word: str) -> str:
    if count == 1:
        return f"{count} {word}"
    return f"{count} {word}es" if word.endswith("ss") else f"{count} {word}s"


def statistics_rows(run) -> List[Tuple[str, str, int, int]]:
    """(code, name, count, fixable) per rule, most frequent first."""
    counts = {}
    for finding in run.unfixed_findings():
        entry = counts.setdefault(finding.code, [finding.rule, 0, 0])
        entry[1] += 1
        entry[2] += bool(finding.fix is not None and finding.fix.edits)
    return [(code, name, count, fix) for code, (name, count, fix) in
            sorted(counts.items(), key=lambda item: (-item[1][1], item[0]))]


def write_statistics(run, out) -> None:
    for code, name, count, fix in statistics_rows(run):
        out.line([(f"{count:>5}  ", ""), (code, "bold"), (f"  {name}", ""),
                  (f"  [{fix} fixable]" if fix else "", FIXABLE)])
    if run.errors:
        out.line([(f"{len(run.errors):>5}  files could not be checked", ERROR)])


def plain_lines(lines: Sequence[Line]) -> List[str]:
    """The text of styled lines (tests and callers that want strings)."""
    return ["".join(text for text, _ in line) for line in lines]
