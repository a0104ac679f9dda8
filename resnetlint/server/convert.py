"""Findings, fixes and rule documentation as Language Server Protocol objects.

Positions: findings count lines from 1 and columns in characters (code
points) from 1; the protocol counts both from 0, columns in the code units
the client and server agreed on (UTF-16 unless the client offers another).
pygls's position codec does the unit conversion; the lines it is given are
split the way Python (and the protocol) split them, at ``\\n``, ``\\r\\n``
and ``\\r`` only.
"""
from __future__ import annotations

import difflib
from typing import Dict, List, Optional, Sequence

from lsprotocol import types as lsp
from pygls.workspace.position_codec import PositionCodec

from ..findings import Finding
from ..prefilter import split_lines
from ..report.sarif import INFORMATION_URI

SOURCE = "resnetlint"
SEVERITY = {"error": lsp.DiagnosticSeverity.Error, "warning": lsp.DiagnosticSeverity.Warning}


def rule_by_code() -> Dict[str, type]:
    from ..rules import ALL_RULES

    return {rule.code: rule for rule in ALL_RULES}


def documentation_url(rule) -> str:
    """The rule's documentation: the docstring of its module, which
    ``--explain`` prints."""
    module = rule.__module__.rsplit(".", 1)[-1]
    return f"{INFORMATION_URI}/blob/main/rules/{module}.py"


def position(lines: Sequence[str], line: int, column: int, codec: PositionCodec) -> lsp.Position:
    """A finding's 1-based (line, character column) as a protocol position."""
    if not lines:
        return lsp.Position(0, 0)
    row = min(max(line - 1, 0), len(lines) - 1)
    text = lines[row].rstrip("\r\n")
    character = min(max(column - 1, 0), len(text))
    return lsp.Position(row, codec.client_num_units(text[:character]))


def finding_range(finding: Finding, lines: Sequence[str], codec: PositionCodec) -> lsp.Range:
    return lsp.Range(position(lines, finding.line, finding.column, codec),
                     position(lines, finding.end_line, finding.end_column, codec))


def diagnostic(finding: Finding, lines: Sequence[str], codec: PositionCodec,
               rules: Optional[Dict[str, type]] = None) -> lsp.Diagnostic:
    """One finding: code, rule name, severity, message, the help line, the
    trace's verdict when there is one, and a link to the rule's docs."""
    rules = rules if rules is not None else rule_by_code()
    message = f"[{finding.rule}] {finding.message}"
    if finding.help:
        message += f"\nhelp: {finding.help}"
    verdict = finding.confirmation
    if verdict.status != "not-run" or verdict.detail:
        message += f"\ntrace: {verdict.status}" + (f": {verdict.detail}" if verdict.detail else "")
    rule = rules.get(finding.code)
    return lsp.Diagnostic(
        range=finding_range(finding, lines, codec),
        message=message,
        severity=SEVERITY.get(finding.severity, lsp.DiagnosticSeverity.Error),
        code=finding.code,
        code_description=lsp.CodeDescription(href=documentation_url(rule)) if rule is not None else None,
        source=SOURCE,
        data={"rule": finding.rule, "symbol": finding.symbol, "trace": verdict.status,
              "fix": finding.fix.safety if finding.fix is not None and finding.fix.edits else None},
    )


def diagnostics(findings: Sequence[Finding], text: str, codec: PositionCodec) -> List[lsp.Diagnostic]:
    lines = split_lines(text)
    rules = rule_by_code()
    return [diagnostic(finding, lines, codec, rules) for finding in findings]


def contains(finding: Finding, line: int, column: int) -> bool:
    """(1-based line, character column) lies on the finding's span (its
    end included, so a zero-width span can be pointed at)."""
    return (finding.line, finding.column) <= (line, column) <= (finding.end_line, finding.end_column)


def overlaps(finding: Finding, start: tuple, end: tuple) -> bool:
    """The finding's span meets the 1-based range [start, end]."""
    return (finding.line, finding.column) <= end and start <= (finding.end_line, finding.end_column)


def server_position(lines: Sequence[str], where: lsp.Position, codec: PositionCodec) -> tuple:
    """A protocol position as a 1-based (line, character column)."""
    if not lines:
        return (1, 1)
    row = min(where.line, len(lines) - 1)
    text = lines[row].rstrip("\r\n")
    units = 0
    column = 0
    for char in text:
        if units >= where.character:
            break
        units += codec.client_num_units(char)
        column += 1
    return (row + 1, column + 1)


def text_edits(original: str, fixed: str, codec: PositionCodec) -> List[lsp.TextEdit]:
    """The changes from ``original`` to ``fixed`` as whole-line edits of
    ``original`` (what changed, not the whole file: the editor keeps
    cursors, folds and marks on the lines in between)."""
    old, new = split_lines(original), split_lines(fixed)
    edits = []
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        edits.append(lsp.TextEdit(lsp.Range(_line_start(old, i1, codec), _line_start(old, i2, codec)),
                                  "".join(new[j1:j2])))
    return edits


def _line_start(lines: Sequence[str], index: int, codec: PositionCodec) -> lsp.Position:
    """The start of line ``index`` (0-based); past the last line, the end of
    the text (which is not a line start when the text has no final newline)."""
    if index < len(lines) or not lines or lines[-1].endswith(("\n", "\r")):
        return lsp.Position(index, 0)
    last = lines[-1]
    return lsp.Position(len(lines) - 1, codec.client_num_units(last))


def explanation(rule) -> str:
    """The ``--explain`` text, as Markdown (it is written in Markdown)."""
    fix = "no automatic fix" if rule.fix_availability == "none" else f"fix: {rule.fix_availability}, {rule.fix_safety}"
    header = (f"**{rule.code}** `{rule.name}`: *{rule.summary}* — {rule.severity}, "
              f"{'on' if rule.default_enabled else 'off'} by default, {fix}.\n\n")
    return header + rule.documentation()
