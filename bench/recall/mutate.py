"""Applying a mutant's edits to real source text with libcst.

Edits are keyed by the identity of nodes in the parsed tree; only the
module-level statement holding the mutated class is transformed and
re-generated, and spliced back into the original text, so every other byte
of the file is unchanged.
"""
from __future__ import annotations

from typing import Callable, Dict, Optional, Union

import libcst as cst

Replacement = Union[cst.CSTNode, cst.RemovalSentinel, cst.FlattenSentinel, Callable[[cst.CSTNode], cst.CSTNode]]
PASS_LINE = cst.SimpleStatementLine(body=[cst.Pass()])


class _Rewriter(cst.CSTTransformer):
    def __init__(self, edits: Dict[int, Replacement]):
        super().__init__()
        self.edits = edits
        self.applied = 0

    def on_leave(self, original_node, updated_node):
        edit = self.edits.get(id(original_node))
        if edit is not None:
            self.applied += 1
            return edit(updated_node) if callable(edit) else edit
        if isinstance(updated_node, cst.IndentedBlock) and not updated_node.body:
            return updated_node.with_changes(body=[PASS_LINE])
        return updated_node


class SourceFile:
    """One parsed file and the text span of each module-level statement."""

    def __init__(self, text: str, module: cst.Module):
        self.text = text
        self.module = module
        self._spans: Optional[Dict[int, tuple]] = None

    @property
    def spans(self) -> Dict[int, tuple]:
        """id(module-level statement) -> (start, end) offsets in the text
        (computed on first use: only applying a mutant needs them)."""
        if self._spans is None:
            self._spans = {}
            cursor = 0
            for stmt in self.module.body:
                stmt_code = self.module.code_for_node(stmt)
                start = self.text.find(stmt_code, cursor)
                if start < 0:
                    continue
                self._spans[id(stmt)] = (start, start + len(stmt_code))
                cursor = start + len(stmt_code)
        return self._spans

    def apply(self, top: cst.CSTNode, edits: Dict[int, Replacement]) -> Optional[str]:
        """The file's text with ``edits`` applied inside ``top`` (None when
        an edit did not apply)."""
        rewriter = _Rewriter(edits)
        new_top = top.visit(rewriter)
        if rewriter.applied != len(edits):
            return None
        span = self.spans.get(id(top))
        if span is None:  # could not locate the statement: regenerate the whole module
            body = [new_top if stmt is top else stmt for stmt in self.module.body]
            return self.module.with_changes(body=body).code
        start, end = span
        return self.text[:start] + self.module.code_for_node(new_top) + self.text[end:]

    def statement(self, text: str) -> cst.BaseStatement:
        return cst.parse_statement(text, config=self.module.config_for_parsing)


def expression(text: str) -> cst.BaseExpression:
    return cst.parse_expression(text)


def compiles(text: str, filename: str) -> Optional[str]:
    """None when ``text`` compiles, else the error."""
    try:
        compile(text, filename, "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as error:
        return f"{type(error).__name__}: {error}"
    return None


def first_changed_line(before: str, after: str) -> int:
    a, b = before.splitlines(), after.splitlines()
    for index, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return index + 1
    return min(len(a), len(b)) + 1


def diff_excerpt(before: str, after: str, context: int = 0, limit: int = 12) -> str:
    """A short unified diff of the change (for the report)."""
    import difflib

    lines = list(difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=context))
    body = [line for line in lines[2:] if not line.startswith("@@")]
    if len(body) > limit:
        body = body[:limit] + ["..."]
    return "\n".join(body)
