"""Deciding whether two width / stride / groups expressions of a block can
differ, by evaluating them in random environments.

The operators replace one expression of a block by another (``planes`` by
``inplanes``, ``groups=hidden`` by ``groups=inp``).  A mutant is only kept
when the new expression can really take another value, so the mutant is a
bug and not a rewrite of the same program.  Instead of a symbolic algebra
(none of the well-kept ones is a dependency here, and the expressions are
tiny) the expressions are evaluated in ``TRIALS`` random environments:

* every free name (a constructor parameter) gets a random positive integer,
  the same one for the same name within a trial, or in half of the trials
  its literal default (``aa_layer=None``, ``stride=1``) when it has one;
* local variables and ``self.x`` attributes assigned once in ``__init__``
  are replaced by what they were assigned (``width = int(planes * (base_width
  / 64.)) * groups``), class constants by their value (``expansion = 4``);
* names asserted equal (``assert in_channels == out_channels``,
  ``assert self.expansion == 1``) share a value;
* a call of an unknown function (``make_divisible(x, 8)``) is an
  uninterpreted function: the same arguments give the same (random) value,
  so ``f(a)`` and ``f(a)`` are equal and ``f(a)`` and ``f(b)`` are not.

Two expressions that agree in every trial are treated as equal (the
mutant is dropped); a trial that fails (``None * 2``) is left out; an
expression that cannot be evaluated at all is "unknown" and the operators
treat it as unusable.  Inside the expression assigned to ``x``, ``x`` is
the parameter (``first_dilation = first_dilation or dilation``).  The method can miss an equality that
holds only for rare values, never one that always holds.
"""
from __future__ import annotations

import ast
import hashlib
import math
import random
from typing import Callable, Dict, Iterable, List, Optional, Sequence

TRIALS = 32
# Values a free name can take: channel-like and small (stride, ratio) numbers.
VALUES = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 256)
MAX_DEPTH = 12  # inlining depth (guards against self-referential assignments)

PURE_CALLS: Dict[str, Callable] = {
    "int": int, "float": float, "round": round, "abs": abs, "max": max, "min": min,
    "math.ceil": math.ceil, "math.floor": math.floor, "ceil": math.ceil, "floor": math.floor,
}


class Unknown(Exception):
    """The expression uses something the evaluator does not model."""


class Scope:
    """What names mean in one block: inlined assignments, constants and the
    equalities the block asserts."""

    def __init__(self, assignments: Optional[Dict[str, str]] = None,
                 constants: Optional[Dict[str, object]] = None,
                 equal_pairs: Iterable[Sequence[str]] = (), defaults: Optional[Dict[str, object]] = None):
        self.assignments = dict(assignments or {})  # name or "self.x" -> expression text
        self.constants = dict(constants or {})  # name or "self.x" -> value
        self.defaults = dict(defaults or {})  # parameter -> its literal default
        self._parent: Dict[str, str] = {}
        for left, right in equal_pairs:
            self._union(left, right)
        # a constant known for one name of an equal set holds for all of them
        for name, value in list(self.constants.items()):
            self.constants.setdefault(self._find(name), value)

    def _find(self, name: str) -> str:
        while self._parent.get(name, name) != name:
            name = self._parent[name]
        return name

    def _union(self, left: str, right: str) -> None:
        a, b = self._find(left), self._find(right)
        if a != b:
            self._parent[max(a, b)] = min(a, b)

    def representative(self, name: str) -> str:
        return self._find(name)


def _parse(text: str) -> ast.expr:
    return ast.parse(text.strip(), mode="eval").body


def _dotted(node: ast.expr) -> Optional[str]:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


class _Trial:
    def __init__(self, scope: Scope, rng: random.Random, salt: int):
        self.scope, self.rng, self.salt = scope, rng, salt
        self.values: Dict[str, object] = {}

    def free(self, name: str) -> object:
        key = self.scope.representative(name)
        if key in self.scope.constants:
            return self.scope.constants[key]
        if key not in self.values:
            if key in self.scope.defaults and self.rng.random() < 0.5:
                self.values[key] = self.scope.defaults[key]
            else:
                self.values[key] = self.rng.choice(VALUES)
        return self.values[key]

    def name(self, name: str, depth: int, inlining: frozenset = frozenset()) -> object:
        representative = self.scope.representative(name)
        for key in (name, representative):
            if key in self.scope.constants:
                return self.scope.constants[key]
        if representative != name:
            return self.name(representative, depth, inlining)
        if name in self.scope.assignments and name not in inlining and depth < MAX_DEPTH:
            return self.eval(_parse(self.scope.assignments[name]), depth + 1, inlining | {name})
        return self.free(name)

    def uninterpreted(self, label: str, args: List[object]) -> int:
        digest = hashlib.sha256(repr((self.salt, label, args)).encode()).digest()
        return VALUES[digest[0] % len(VALUES)] + digest[1] % 7

    def eval(self, node: ast.expr, depth: int = 0, inlining: frozenset = frozenset()) -> object:
        if isinstance(node, ast.Constant):
            return node.value
        dotted = _dotted(node)
        if dotted is not None:
            return self.name(dotted, depth, inlining)
        if isinstance(node, ast.BinOp):
            left, right = self.eval(node.left, depth, inlining), self.eval(node.right, depth, inlining)
            return _binop(node.op, left, right)
        if isinstance(node, ast.UnaryOp):
            value = self.eval(node.operand, depth, inlining)
            if isinstance(node.op, ast.USub):
                return -value
            if isinstance(node.op, ast.Not):
                return not value
            if isinstance(node.op, ast.UAdd):
                return +value
            raise Unknown("unary")
        if isinstance(node, ast.IfExp):
            return self.eval(node.body if self.eval(node.test, depth, inlining) else node.orelse, depth, inlining)
        if isinstance(node, ast.BoolOp):
            values = [self.eval(v, depth, inlining) for v in node.values]
            result = values[0]
            for value in values[1:]:
                if isinstance(node.op, ast.Or):
                    result = result or value
                else:
                    result = result and value
            return result
        if isinstance(node, ast.Compare):
            left = self.eval(node.left, depth, inlining)
            for op, comparator in zip(node.ops, node.comparators):
                right = self.eval(comparator, depth, inlining)
                if not _compare(op, left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.Call):
            label = _dotted(node.func)
            if label is None or any(isinstance(a, ast.Starred) for a in node.args):
                raise Unknown("call")
            args = [self.eval(a, depth, inlining) for a in node.args]
            kwargs = sorted((k.arg or "**", self.eval(k.value, depth, inlining)) for k in node.keywords)
            if label in PURE_CALLS and not kwargs:
                return PURE_CALLS[label](*args)
            return self.uninterpreted(label, [args, kwargs])
        if isinstance(node, (ast.Tuple, ast.List)):
            return tuple(self.eval(e, depth, inlining) for e in node.elts)
        if isinstance(node, ast.Subscript):
            base = ast.unparse(node)
            return self.uninterpreted(base, [])
        raise Unknown(type(node).__name__)


def _binop(op: ast.operator, left, right):
    if isinstance(op, ast.Add):
        return left + right
    if isinstance(op, ast.Sub):
        return left - right
    if isinstance(op, ast.Mult):
        return left * right
    if isinstance(op, ast.Div):
        return left / right
    if isinstance(op, ast.FloorDiv):
        return left // right
    if isinstance(op, ast.Mod):
        return left % right
    if isinstance(op, ast.Pow):
        if abs(right) > 8:
            raise Unknown("pow")
        return left ** right
    raise Unknown("operator")


def _compare(op: ast.cmpop, left, right) -> bool:
    table = {ast.Eq: lambda a, b: a == b, ast.NotEq: lambda a, b: a != b, ast.Lt: lambda a, b: a < b,
             ast.LtE: lambda a, b: a <= b, ast.Gt: lambda a, b: a > b, ast.GtE: lambda a, b: a >= b,
             ast.Is: lambda a, b: a is b, ast.IsNot: lambda a, b: a is not b}
    for kind, fn in table.items():
        if isinstance(op, kind):
            return fn(left, right)
    raise Unknown("comparison")


def evaluate_all(texts: Sequence[str], scope: Scope, trials: int = TRIALS, seed: int = 0) -> Optional[List[tuple]]:
    """The values of ``texts`` in each trial (one tuple per trial), or None
    when one of them cannot be evaluated."""
    try:
        nodes = [_parse(t) for t in texts]
    except SyntaxError:
        return None
    rows = []
    for index in range(trials):
        trial = _Trial(scope, random.Random(seed * 1000 + index), salt=index)
        try:
            rows.append(tuple(trial.eval(n) for n in nodes))
        except Unknown:
            return None
        except (ArithmeticError, TypeError, ValueError, RecursionError, OverflowError):
            continue  # this configuration makes no sense (None * 2): leave it out
    return rows or None


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        try:
            return math.isclose(float(a), float(b), rel_tol=1e-9)
        except (TypeError, ValueError):
            return False
    return a == b


def can_differ(a: str, b: str, scope: Scope) -> Optional[bool]:
    """True when ``a`` and ``b`` take different values in some trial, False
    when they always agree, None when one cannot be evaluated."""
    rows = evaluate_all([a, b], scope)
    if rows is None:
        return None
    return any(not _same(x, y) for x, y in rows)


def is_constant(text: str, value: object, scope: Scope) -> Optional[bool]:
    """Whether ``text`` always evaluates to ``value`` (None: unknown)."""
    rows = evaluate_all([text], scope)
    if rows is None:
        return None
    return all(_same(row[0], value) for row in rows)


def divides_always(groups: str, channels: Sequence[str], scope: Scope) -> Optional[bool]:
    """Whether ``groups`` divides every expression of ``channels`` in every
    trial in which all are positive integers (None: unknown, or no such
    trial)."""
    rows = evaluate_all([groups, *channels], scope)
    if rows is None:
        return None
    usable = 0
    for g, *cs in rows:
        values = [g, *cs]
        if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values):
            continue
        usable += 1
        if any(c % g for c in cs):
            return False
    return True if usable else None
