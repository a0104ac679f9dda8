"""Syntax access shared by the two front ends.

The model is written against libcst node classes.  Those nodes come from one
of two front ends:

* **libcst** (``libcst.parse_module``): complete nodes with every token and
  whitespace; used by ``--fix`` (which must rewrite the file byte for byte) and
  by the ``--full-parse`` debugging mode;
* **lite** (:mod:`resnetlint.model.lite`): the same libcst classes built
  directly from CPython's ``ast``, holding only the fields the model reads.
  About twenty times cheaper than libcst's parser, which is what makes linting
  a model zoo fast.

Everything that must work on both goes through this module: the children of
a node (:func:`iter_children`, driven by :data:`FIELDS`, the one list of the
fields the model reads) and a :class:`SourceIndex` giving a node's position
and text.
"""
from __future__ import annotations

from typing import Dict, Iterator, List, Optional, Tuple

import libcst as cst

Position = Tuple[int, int, int, int]  # line (1-based), column (0-based, characters), end line, end column

# Child fields per node class (by name), in source order.  The lite front end
# sets exactly these (plus scalar fields such as Name.value); libcst nodes
# have them too.
FIELDS: Dict[str, Tuple[str, ...]] = {
    "Module": ("body",),
    "SimpleStatementLine": ("body",),
    "SimpleStatementSuite": ("body",),
    "IndentedBlock": ("body",),
    "Else": ("body",),
    "Finally": ("body",),
    "If": ("test", "body", "orelse"),
    "For": ("target", "iter", "body", "orelse"),
    "While": ("test", "body", "orelse"),
    "With": ("items", "body"),
    "WithItem": ("item", "asname"),
    "AsName": ("name",),
    "Try": ("body", "handlers", "orelse", "finalbody"),
    "TryStar": ("body", "handlers", "orelse", "finalbody"),
    "ExceptHandler": ("type", "name", "body"),
    "ExceptStarHandler": ("type", "name", "body"),
    "Match": ("subject", "cases"),
    "MatchCase": ("guard", "body"),
    "FunctionDef": ("decorators", "params", "body"),
    "ClassDef": ("decorators", "bases", "keywords", "body"),
    "Decorator": ("decorator",),
    "Parameters": ("posonly_params", "params", "star_arg", "kwonly_params", "star_kwarg"),
    "Param": ("default",),
    "Assign": ("targets", "value"),
    "AssignTarget": ("target",),
    "AnnAssign": ("target", "value"),
    "AugAssign": ("target", "value"),
    "Expr": ("value",),
    "Return": ("value",),
    "Raise": ("exc", "cause"),
    "Assert": ("test", "msg"),
    "Del": ("target",),
    "Call": ("func", "args"),
    "Arg": ("value",),
    "Attribute": ("value",),
    "Subscript": ("value", "slice"),
    "SubscriptElement": ("slice",),
    "Index": ("value",),
    "Slice": ("lower", "upper", "step"),
    "Tuple": ("elements",),
    "List": ("elements",),
    "Set": ("elements",),
    "Element": ("value",),
    "StarredElement": ("value",),
    "Dict": ("elements",),
    "DictElement": ("key", "value"),
    "StarredDictElement": ("value",),
    "BinaryOperation": ("left", "right"),
    "UnaryOperation": ("expression",),
    "BooleanOperation": ("left", "right"),
    "Comparison": ("left", "comparisons"),
    "ComparisonTarget": ("comparator",),
    "IfExp": ("test", "body", "orelse"),
    "NamedExpr": ("target", "value"),
    "Lambda": ("params", "body"),
    "ListComp": ("elt", "for_in"),
    "SetComp": ("elt", "for_in"),
    "GeneratorExp": ("elt", "for_in"),
    "DictComp": ("key", "value", "for_in"),
    "CompFor": ("target", "iter", "ifs", "inner_for_in"),
    "CompIf": ("test",),
    "Await": ("expression",),
    "Yield": ("value",),
    "From": ("item",),
    "FormattedString": ("parts",),
    "FormattedStringExpression": ("expression",),
    "ConcatenatedString": ("left", "right"),
}


def iter_children(node) -> Iterator[cst.CSTNode]:
    """The child nodes the model cares about, for libcst and lite nodes alike."""
    for field in FIELDS.get(type(node).__name__, ()):
        value = getattr(node, field, None)
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            for item in value:
                if isinstance(item, cst.CSTNode):
                    yield item
        elif isinstance(value, cst.CSTNode):
            yield value


def walk(node) -> Iterator[cst.CSTNode]:
    """Pre-order traversal (iterative: deep expressions must not overflow)."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        children = list(iter_children(current))
        children.reverse()
        stack.extend(children)


class SourceIndex:
    """Positions and source text of nodes for one file."""

    def position(self, node) -> Optional[Position]:
        raise NotImplementedError

    def text(self, node) -> str:
        raise NotImplementedError

    def source_text(self, node) -> str:
        """The node's text as the file has it: the lines after its first with
        their own indentation (``text`` may print a statement as if it
        started a file)."""
        return self.text(node)


class LibcstIndex(SourceIndex):
    """For modules parsed by libcst: positions from libcst's metadata,
    computed on first use (a whole-module pass, paid only by files with
    findings)."""

    def __init__(self, module: cst.Module, line_map=None):
        self.module = module
        self._positions = None
        self._line_map = line_map  # reduced line -> original line, if any

    def position(self, node) -> Optional[Position]:
        if self._positions is None:
            from libcst.metadata import MetadataWrapper, PositionProvider

            self._positions = MetadataWrapper(self.module, unsafe_skip_copy=True).resolve(PositionProvider)
        found = self._positions.get(node)
        if found is None:
            return None
        start, end = found.start, found.end
        line, end_line = start.line, end.line
        if self._line_map is not None:
            line, end_line = self._line_map(line), self._line_map(end_line)
        return line, start.column, end_line, end.column

    def text(self, node) -> str:
        return self.module.code_for_node(node)

    def source_text(self, node) -> str:
        if self.position(node) is None:
            return self.text(node)
        found = self._positions[node]
        lines = self.module.code.splitlines(True)
        start, end = found.start, found.end
        if start.line == end.line:
            return lines[start.line - 1][start.column:end.column]
        return "".join([lines[start.line - 1][start.column:], *lines[start.line:end.line - 1],
                        lines[end.line - 1][:end.column]])


class LiteIndex(SourceIndex):
    """For modules built by the lite front end: positions read from the
    ``ast`` node each lite node was built from (byte columns turned into
    character columns) when first asked for, since only reported nodes ever
    are; text sliced from the source lines."""

    def __init__(self, lines: List[str]):
        self.lines = lines
        # id(node) -> (node, its position or the ast node to read it from)
        self.positions: Dict[int, Tuple[cst.CSTNode, object]] = {}

    def record(self, node, where) -> None:
        """``where``: a :data:`Position`, or an ``ast`` node with one."""
        self.positions[id(node)] = (node, where)

    def position(self, node) -> Optional[Position]:
        found = self.positions.get(id(node))
        if found is None:
            return None
        where = found[1]
        if where is None or type(where) is tuple:
            return where
        position = self._ast_position(where)
        self.positions[id(node)] = (node, position)
        return position

    def _ast_position(self, source) -> Optional[Position]:
        line = getattr(source, "lineno", None)
        if line is None:
            return None
        end_line = source.end_lineno or line
        return (line, self._column(line, source.col_offset), end_line,
                self._column(end_line, source.end_col_offset or 0))

    def _column(self, line: int, byte_column: int) -> int:
        """ast columns are UTF-8 byte offsets; ours count characters."""
        if not (1 <= line <= len(self.lines)):
            return byte_column
        text = self.lines[line - 1]
        if text.isascii():
            return byte_column
        return len(text.encode("utf-8")[:byte_column].decode("utf-8", errors="ignore"))

    def text(self, node) -> str:
        position = self.position(node)
        if position is None:
            return "?"
        line, col, end_line, end_col = position
        if line == end_line:
            return self.lines[line - 1][col:end_col]
        parts = [self.lines[line - 1][col:]]
        parts.extend(self.lines[line:end_line - 1])
        parts.append(self.lines[end_line - 1][:end_col])
        return "".join(parts)
