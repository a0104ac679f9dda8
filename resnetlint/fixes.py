"""What a fix is, and how it becomes text.

A rule describes its fix as a :class:`FixPlan`: a description, a safety level
and a few operations on syntax nodes (replace a node, insert a statement
before/after one, set a keyword argument of a call).  The engine turns the
operations into :class:`~resnetlint.findings.Edit` text replacements using the
nodes' exact spans, so everything outside the edited spans stays byte for
byte as it was (comments, blank lines, line continuations, tabs, CRLF).
Inserted statements copy the indentation of the statement they sit next to
and use the file's own line ending.

Safety follows Ruff: ``safe`` fixes cannot change what correct code computes
(they only change configurations that crashed); ``unsafe`` ones may, and are
applied only with ``--unsafe-fixes``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import libcst as cst

from .findings import Edit
from .model.syntax import SourceIndex

SAFE, UNSAFE = "safe", "unsafe"


@dataclass
class Operation:
    kind: str  # "replace" | "insert-before" | "insert-after" | "set-argument" | "delete"
    node: cst.CSTNode
    text: str
    name: str = ""  # set-argument: the keyword
    index: Optional[int] = None  # set-argument: its position when passed positionally
    after: Tuple[str, ...] = ()  # set-argument: a new keyword goes after the last of these the call passes


@dataclass
class FixPlan:
    description: str
    safety: str
    operations: List[Operation] = field(default_factory=list)
    # Offered instead when this plan cannot be turned into edits (a line to
    # delete that is alone in its block).
    fallback: Optional["FixPlan"] = None


def replace(node: cst.CSTNode, text: str) -> Operation:
    return Operation("replace", node, text)


def insert_before(statement: cst.CSTNode, text: str) -> Operation:
    return Operation("insert-before", statement, text)


def insert_after(statement: cst.CSTNode, text: str) -> Operation:
    return Operation("insert-after", statement, text)


def delete(statement: cst.CSTNode) -> Operation:
    """Remove a statement that is alone on its lines (the lines go too)."""
    return Operation("delete", statement, "")


# ``nn.Conv2d``'s arguments in the order of its signature: where a fix finds
# one passed positionally (``CONV_SIGNATURE.index("stride")``), and where an
# added keyword goes.
CONV_SIGNATURE = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "bias")
# The names helpers give the widths, each beside the conv's own.
_WIDTH_ALIASES = {"in_channels": ("in_chs", "in_planes", "inplanes", "inp"),
                  "out_channels": ("out_chs", "out_planes", "planes", "oup")}
# So that an added `stride=` lands where people write it: after the last of
# the keywords before it that the call passes.
CONV_KEYWORDS = tuple(keyword for name in CONV_SIGNATURE for keyword in (name,) + _WIDTH_ALIASES.get(name, ()))


def set_argument(call: cst.Call, name: str, text: str, index: Optional[int] = None) -> Operation:
    """Give a call's argument ``name`` (positional ``index`` if passed that
    way) the value ``text``, adding ``name=text`` when it is not passed: for
    a conv's keyword, after the last keyword its signature puts before it
    that the call passes (``stride`` after ``out_channels``), else at the end."""
    after = CONV_KEYWORDS[:CONV_KEYWORDS.index(name)] if name in CONV_KEYWORDS else ()
    return Operation("set-argument", call, text, name=name, index=index, after=after)


class FixError(Exception):
    """A fix cannot be turned into edits (a node without a position)."""


def materialize(plan: FixPlan, index: SourceIndex, lines: Sequence[str], newline: str) -> List[Edit]:
    edits: List[Edit] = []
    for operation in plan.operations:
        edits.extend(_edits(operation, index, lines, newline))
    # The same operation reached twice (from two paths through forward) is one
    # edit; two different edits of one span would garble the text.
    edits = sorted(set(edits), key=lambda e: (e.line, e.column, e.end_line, e.end_column))
    for first, second in zip(edits, edits[1:]):
        if (second.line, second.column) < (first.end_line, first.end_column) or \
                (first.line, first.column, first.end_line, first.end_column) == \
                (second.line, second.column, second.end_line, second.end_column):
            raise FixError("overlapping edits")
    return edits


def _span(node, index: SourceIndex):
    position = index.position(node)
    if position is None:
        raise FixError(f"no position for {type(node).__name__}")
    line, column, end_line, end_column = position
    return line, column + 1, end_line, end_column + 1


def _indent(lines: Sequence[str], line: int) -> str:
    text = lines[line - 1]
    return text[: len(text) - len(text.lstrip(" \t"))]


def _line_length(lines: Sequence[str], line: int) -> int:
    return len(lines[line - 1].rstrip("\r\n"))


def _edits(operation: Operation, index: SourceIndex, lines: Sequence[str], newline: str) -> List[Edit]:
    kind = operation.kind
    if kind == "replace":
        line, column, end_line, end_column = _span(operation.node, index)
        return [Edit(line, column, end_line, end_column, operation.text)]
    if kind == "insert-before":
        line, _, _, _ = _span(operation.node, index)
        indent = _indent(lines, line)
        return [Edit(line, 1, line, 1, f"{indent}{operation.text}{newline}")]
    if kind == "insert-after":
        _, _, end_line, _ = _span(operation.node, index)
        start_line, _, _, _ = _span(operation.node, index)
        end = _line_length(lines, end_line) + 1  # after any trailing comment
        return [Edit(end_line, end, end_line, end, f"{newline}{_indent(lines, start_line)}{operation.text}")]
    if kind == "set-argument":
        return [_set_argument(operation, index, lines)]
    if kind == "delete":
        line, column, end_line, end_column = _span(operation.node, index)
        before = lines[line - 1][:column - 1]
        after = lines[end_line - 1][end_column - 1:]
        rest = after.strip()
        if before.strip() or (rest and not rest.startswith("#")):
            raise FixError("the statement shares its line")  # (its trailing comment goes with it)
        if _alone_in_block(lines, line, end_line):
            raise FixError("the statement is alone in its block")
        return [Edit(line, 1, end_line + 1, 1, "")]
    raise FixError(kind)


def _code_line(lines: Sequence[str], number: int, step: int) -> Optional[str]:
    """The nearest line from ``number`` on (``step`` -1: before) that holds
    code, or None."""
    while 1 <= number <= len(lines):
        text = lines[number - 1].strip()
        if text and not text.startswith("#"):
            return lines[number - 1]
        number += step
    return None


def _alone_in_block(lines: Sequence[str], line: int, end_line: int) -> bool:
    """Deleting these lines would leave an empty block (``else:`` and
    nothing under it)."""
    previous, following = _code_line(lines, line - 1, -1), _code_line(lines, end_line + 1, 1)
    if previous is None or not previous.split("#")[0].rstrip().endswith(":"):
        return False
    indent = len(lines[line - 1]) - len(lines[line - 1].lstrip(" \t"))
    return following is None or len(following) - len(following.lstrip(" \t")) < indent


def _set_argument(operation: Operation, index: SourceIndex, lines: Sequence[str]) -> Edit:
    call = operation.node
    assert isinstance(call, cst.Call)
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == operation.name:
            line, column, end_line, end_column = _span(arg.value, index)
            return Edit(line, column, end_line, end_column, operation.text)
    positional = [a for a in call.args if a.keyword is None and not a.star]
    if operation.index is not None and operation.index < len(positional):
        line, column, end_line, end_column = _span(positional[operation.index].value, index)
        return Edit(line, column, end_line, end_column, operation.text)
    if operation.index is not None and operation.index == len(positional) == len(call.args) and call.args:
        # The next positional slot, in a call written positionally: keep its style.
        _, _, end_line, end_column = _span(call.args[-1].value, index)
        return Edit(end_line, end_column, end_line, end_column, f", {operation.text}")
    keyword = f"{operation.name}={operation.text}"
    anchors = [i for i, arg in enumerate(call.args) if arg.keyword is not None and arg.keyword.value in operation.after]
    start = _next_keyword_start(call, anchors[-1] + 1, index, lines) if anchors else None
    if start is not None:
        # Before the next keyword, separated from it as the anchor is (one argument per line stays so).
        _, _, end_line, end_column = _span(call.args[anchors[-1]].value, index)
        return Edit(*start, *start, keyword + _separator(_text_between(lines, (end_line, end_column), start)))
    if call.args:
        _, _, end_line, end_column = _span(call.args[-1].value, index)
        return Edit(end_line, end_column, end_line, end_column, f", {keyword}")
    _, _, end_line, end_column = _span(call, index)  # `f()`: just before the closing parenthesis
    return Edit(end_line, end_column - 1, end_line, end_column - 1, f"{operation.name}={operation.text}")


def _next_keyword_start(call: cst.Call, position: int, index: SourceIndex,
                        lines: Sequence[str]) -> Optional[Tuple[int, int]]:
    """Where the keyword argument at ``position`` starts (its name), when it
    is one and is written on its value's line (only values carry positions)."""
    if position >= len(call.args) or call.args[position].keyword is None:
        return None
    line, column, _, _ = _span(call.args[position].value, index)
    written = re.search(r"(\w+)\s*=\s*$", lines[line - 1][:column - 1])
    if written is None or written.group(1) != call.args[position].keyword.value:
        return None
    return line, written.start(1) + 1


def _separator(gap: str) -> str:
    """The separator between two arguments, from the text between them as
    written: a comma and the next line's indentation when they are on
    separate lines (a comment stays where it was), else a comma and a space."""
    if "\n" not in gap:
        return ", "
    newline = "\r\n" if "\r\n" in gap else "\n"
    return "," + newline + gap[gap.rfind("\n") + 1:]


def _text_between(lines: Sequence[str], start: Tuple[int, int], end: Tuple[int, int]) -> str:
    """The source text from ``start`` up to ``end`` (1-based line and column)."""
    (line, column), (end_line, end_column) = start, end
    if line == end_line:
        return lines[line - 1][column - 1:end_column - 1]
    middle = "".join(lines[line:end_line - 1])
    return lines[line - 1][column - 1:] + middle + lines[end_line - 1][:end_column - 1]


def apply_edits(text: str, lines: Sequence[str], edits: Sequence[Edit]) -> str:
    """Apply non-overlapping edits (the caller drops overlapping ones)."""
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))

    def offset(line: int, column: int) -> int:
        return offsets[line - 1] + column - 1

    out = text
    for edit in sorted(edits, key=lambda e: (e.line, e.column, e.end_line, e.end_column), reverse=True):
        start, end = offset(edit.line, edit.column), offset(edit.end_line, edit.end_column)
        out = out[:start] + edit.text + out[end:]
    return out


def overlaps(a: Sequence[Edit], b: Sequence[Edit]) -> bool:
    def key(edit: Edit, start: bool):
        return (edit.line, edit.column) if start else (edit.end_line, edit.end_column)

    for x in a:
        for y in b:
            if key(x, True) <= key(y, False) and key(y, True) <= key(x, False):
                return True
    return False
