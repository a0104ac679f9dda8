"""The conditions under which a finding predicts a failure, and whether a
run of the block met them.

A finding predicts a failure only in some configurations: `stride != 1`, the
widths differ, ``planes * 4 != inplanes``.  Rules state them in
``expect["conditions"]``: Python expressions over the block's constructor
parameters (and ``self.<attr>`` for plain attributes of the built block), all
of which must hold; an empty list means "in every configuration".  Until a
rule states them, :func:`conditions_of` derives them from what its ``expect``
says today (``widths``, ``stride``, ``expected``/``got``).

Conditions are evaluated here, in the parent process, over the JSON values
the worker reported for a configuration: an ``ast`` walk that knows numbers,
names, arithmetic, comparisons and ``and``/``or``/``not`` and nothing else.
Nothing of the user's code is evaluated in this process.
"""
from __future__ import annotations

import ast
import operator
import re
from typing import Any, Dict, List, Optional

_BINARY = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.FloorDiv: operator.floordiv,
    ast.Div: operator.truediv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}
_COMPARE = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge,
}
# `groups=G` does not divide `in_channels=C`: RL205's message (until it states its conditions).
_GROUPS_MESSAGE = re.compile(r"`groups=(?P<groups>[^`]+)` does not divide `\w+=(?P<width>[^`]+)`")


class Unknown(Exception):
    """The condition cannot be decided for this configuration (a name it does
    not know, a value that is not a number, an expression it does not allow)."""


def conditions_of(finding) -> Optional[List[str]]:
    """What must hold for the finding's failure, or None when nothing says
    (such a finding can be confirmed, never refuted).  ``expect["conditions"]``
    wins; otherwise they are read off the evidence the rule expects."""
    expect = finding.expect or {}
    stated = expect.get("conditions")
    if isinstance(stated, (list, tuple)) and all(isinstance(c, str) for c in stated):
        return list(stated)
    kind = expect.get("kind")
    if kind == "shape-error":
        if expect.get("widths") and len(expect["widths"]) == 2:
            a, b = expect["widths"]
            return [f"{_group(a)} != {_group(b)}"]
        if expect.get("stride"):
            return [f"{_group(expect['stride'])} != 1"]
        if finding.code == "RL204":
            return []  # a padding that loses the border: at every stride and width
        return None
    if kind == "channel-error" and expect.get("expected") and expect.get("got"):
        return [f"{_group(expect['expected'])} != {_group(expect['got'])}"]
    if kind == "construction-error":
        match = _GROUPS_MESSAGE.search(finding.message)
        return [f"{_group(match['width'])} % {_group(match['groups'])} != 0"] if match else None
    if kind in ("dead-chain", "no-grad", "shape-or-dead"):
        # A layer whose output never reaches the result: in every configuration
        # (the stale layer's channel error is a second, width-dependent sign).
        return []
    return None


def _group(expression: str) -> str:
    """Parenthesized unless it is one name or number."""
    expression = str(expression).strip()
    return expression if re.fullmatch(r"[\w.]+", expression) else f"({expression})"


def evaluate(condition: str, names: Dict[str, Any]) -> bool:
    """Whether ``condition`` holds with these values; :class:`Unknown` when it
    cannot be decided."""
    try:
        tree = ast.parse(condition.strip(), mode="eval")
    except SyntaxError as exc:
        raise Unknown(f"not an expression: {condition}") from exc
    return bool(_value(tree.body, names))


def value_of(expression: str, names: Dict[str, Any]) -> Any:
    """The value of an arithmetic expression (a width) with these values."""
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise Unknown(f"not an expression: {expression}") from exc
    return _value(tree.body, names)


def holds(conditions: List[str], names: Dict[str, Any]) -> Optional[bool]:
    """True when every condition holds, False when one does not, None when
    one cannot be decided (and none is false)."""
    unknown = False
    for condition in conditions:
        try:
            if not evaluate(condition, names):
                return False
        except Unknown:
            unknown = True
    return None if unknown else True


def _number(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool) for v in value) \
            and len(set(value)) == 1:
        return value[0]  # `stride=(2, 2)`: one number for both dimensions
    raise Unknown(f"not a number: {value!r}")


def _value(node: ast.AST, names: Dict[str, Any]) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, bool)) or \
            isinstance(node, ast.Constant) and node.value is None:
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in names:
            raise Unknown(f"`{node.id}` is not a constructor argument of this configuration")
        return _number(names[node.id])
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
        key = f"self.{node.attr}"
        if key not in names:
            raise Unknown(f"`{key}` is not a plain attribute of the built block")
        return _number(names[key])
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _value(node.left, names), _value(node.right, names)
        if not all(isinstance(v, (int, float)) for v in (left, right)):
            raise Unknown("arithmetic on a value that is not a number")
        if isinstance(node.op, ast.Pow) and abs(right) > 64:
            raise Unknown("exponent too large")
        try:
            return _BINARY[type(node.op)](left, right)
        except ZeroDivisionError as exc:
            raise Unknown("division by zero") from exc
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd, ast.Not)):
        operand = _value(node.operand, names)
        if isinstance(node.op, ast.Not):
            return not operand
        if not isinstance(operand, (int, float)):
            raise Unknown("sign of a value that is not a number")
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.Compare):
        left = _value(node.left, names)
        for op, comparator in zip(node.ops, node.comparators):
            if type(op) in _COMPARE:
                right = _value(comparator, names)
                if not _COMPARE[type(op)](left, right):
                    return False
                left = right
            elif isinstance(op, (ast.Is, ast.IsNot)) and isinstance(comparator, ast.Constant) \
                    and comparator.value is None:
                same = left is None
                if same != isinstance(op, ast.Is):
                    return False
            else:
                raise Unknown("a comparison other than ==, !=, <, <=, >, >=, is None")
        return True
    if isinstance(node, ast.BoolOp):
        values = [_value(v, names) for v in node.values]
        return all(values) if isinstance(node.op, ast.And) else any(values)
    raise Unknown(f"`{ast.unparse(node)}` is not arithmetic over the constructor arguments")
