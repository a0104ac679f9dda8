"""Symbolic integers and conditions: the arithmetic the rules compare with.

Channel counts, strides and paddings in real blocks are expressions of the
constructor's parameters (``planes * self.expansion``, ``int(inp * ratio)``),
so the model keeps them as canonical polynomials over *atoms*:

* a parameter or a parameter's attribute: ``in_channels``, ``block.expansion``;
* an opaque application that we do not interpret: ``make_divisible(c, 8)``,
  ``c // 3``.  Opaque atoms compare structurally but never make two
  expressions *provably* different, because ``make_divisible(64)`` may well be
  ``64``.

Two expressions built from parameters only are "provably different" when their
canonical forms differ (``in_channels`` vs ``out_channels``): they disagree for
some constructor arguments, which is what the rules report and the trace then
demonstrates.

:class:`Facts` records what a branch condition established (``stride == 1``,
``inp == oup``) so that a guarded add or a guarded projection is judged under
its guard.
"""
from __future__ import annotations

import itertools
from fractions import Fraction
from typing import Dict, FrozenSet, Iterable, Optional, Tuple, Union

from .records import record

Atom = str
Monomial = Tuple[Tuple[Atom, int], ...]
OPAQUE_PREFIX = "@"


_ZERO, _ONE = Fraction(0), Fraction(1)
_CACHED_CONSTANT_LIMIT = 4096  # constants made once: the small ones (widths, kernels, strides)
_CACHED_ATOMS_LIMIT = 65536  # atoms made once, up to this many (a per-process table)
_CONSTANTS: Dict[Union[int, Fraction], "Num"] = {}
_ATOMS: Dict[Atom, "Num"] = {}


class Num:
    """A canonical polynomial with rational coefficients over named atoms."""

    __slots__ = ("terms", "_hash")

    def __init__(self, terms: Dict[Monomial, Fraction]):
        cleaned = tuple(sorted((m, c) for m, c in terms.items() if c != 0))
        self.terms: Tuple[Tuple[Monomial, Fraction], ...] = cleaned
        self._hash = hash(cleaned)

    # -- construction -------------------------------------------------------
    # Nums are immutable, so the small constants and the atoms that every
    # expression starts from are made once (they were ~4% of a run).
    @staticmethod
    def const(value: Union[int, Fraction]) -> "Num":
        made = _CONSTANTS.get(value)
        if made is None:
            made = Num({(): Fraction(value)})
            if -_CACHED_CONSTANT_LIMIT <= value <= _CACHED_CONSTANT_LIMIT:
                _CONSTANTS[value] = made
        return made

    @staticmethod
    def atom(name: Atom) -> "Num":
        made = _ATOMS.get(name)
        if made is None:
            made = Num({((name, 1),): _ONE})
            if len(_ATOMS) < _CACHED_ATOMS_LIMIT:
                _ATOMS[name] = made
        return made

    @staticmethod
    def opaque(func: str, args: Iterable["Num"]) -> "Num":
        args = tuple(args)
        name = OPAQUE_PREFIX + _python_text(func, args)
        if name not in OPAQUE_DEFINITIONS and len(OPAQUE_DEFINITIONS) < _OPAQUE_DEFINITIONS_LIMIT:
            OPAQUE_DEFINITIONS[name] = (func, args)
        return Num.atom(name)

    # -- queries ------------------------------------------------------------
    def is_const(self) -> bool:
        return all(m == () for m, _ in self.terms)

    def const_value(self) -> Optional[Fraction]:
        if not self.is_const():
            return None
        return self.terms[0][1] if self.terms else _ZERO

    def int_value(self) -> Optional[int]:
        value = self.const_value()
        if value is None or value.denominator != 1:
            return None
        return int(value)

    def atoms(self) -> FrozenSet[Atom]:
        return frozenset(a for m, _ in self.terms for a, _ in m)

    def is_opaque_free(self) -> bool:
        return not any(a.startswith(OPAQUE_PREFIX) for a in self.atoms())

    def is_integral(self) -> bool:
        return all(c.denominator == 1 for _, c in self.terms)

    def single_atom(self) -> Optional[Atom]:
        """The atom if this is exactly one atom with coefficient 1."""
        if len(self.terms) == 1:
            mono, coeff = self.terms[0]
            if coeff == 1 and len(mono) == 1 and mono[0][1] == 1:
                return mono[0][0]
        return None

    # -- arithmetic ---------------------------------------------------------
    def __add__(self, other: "Num") -> "Num":
        out = dict(self.terms)
        for m, c in other.terms:
            out[m] = out.get(m, _ZERO) + c
        return Num(out)

    def __neg__(self) -> "Num":
        return Num({m: -c for m, c in self.terms})

    def __sub__(self, other: "Num") -> "Num":
        return self + (-other)

    def __mul__(self, other: "Num") -> "Num":
        out: Dict[Monomial, Fraction] = {}
        for m1, c1 in self.terms:
            for m2, c2 in other.terms:
                m = _mono_mul(m1, m2)
                out[m] = out.get(m, _ZERO) + c1 * c2
        return Num(out)

    def truediv(self, other: "Num") -> "Num":
        divisor = other.const_value()
        if divisor is not None and divisor != 0:
            return Num({m: c / divisor for m, c in self.terms})
        return Num.opaque("truediv", (self, other))

    def floordiv(self, other: "Num") -> "Num":
        divisor = other.const_value()
        mine = self.const_value()
        if divisor is not None and divisor != 0:
            if mine is not None:
                return Num.const(Fraction(mine // divisor))
            scaled = self.truediv(other)
            if scaled.is_integral():
                # (4 * c) // 2 is exactly 2 * c for every integer c.
                return scaled
        return Num.opaque("floordiv", (self, other))

    def mod(self, other: "Num") -> "Num":
        a, b = self.const_value(), other.const_value()
        if a is not None and b is not None and b != 0:
            return Num.const(a % b)
        return Num.opaque("mod", (self, other))

    def power(self, other: "Num") -> "Num":
        exponent = other.int_value()
        if exponent is not None and 0 <= exponent <= 4:
            out = Num.const(1)
            for _ in range(exponent):
                out = out * self
            return out
        return Num.opaque("pow", (self, other))

    def substitute(self, mapping: Dict[Atom, "Num"]) -> "Num":
        if not mapping or not (self.atoms() & mapping.keys()):
            return self
        total = Num.const(0)
        for mono, coeff in self.terms:
            term = Num.const(coeff)
            for atom, power in mono:
                base = mapping.get(atom, Num.atom(atom))
                for _ in range(power):
                    term = term * base
            total = total + term
        return total

    # -- identity -----------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        return isinstance(other, Num) and self.terms == other.terms

    def __hash__(self) -> int:
        return self._hash

    def __lt__(self, other: "Num") -> bool:
        return self.terms < other.terms

    def __repr__(self) -> str:
        return f"Num({self.render()})"

    def render(self) -> str:
        """Readable Python-like text: ``out_channels * 4``, ``c // 2 + 1``."""
        if not self.terms:
            return "0"
        parts = []
        for mono, coeff in sorted(self.terms, key=lambda t: (-len(t[0]), t[0])):
            factors = []
            alone = len(mono) == 1 and mono[0][1] == 1 and coeff == 1
            for atom, power in mono:
                name = atom[len(OPAQUE_PREFIX):] if atom.startswith(OPAQUE_PREFIX) else atom
                if " " in name and not alone:
                    name = f"({name})"  # c // 2 times something: keep the division first
                factors.extend([name] * power)
            text = " * ".join(factors)
            if not factors:
                text = _fraction_text(coeff)
            elif coeff == -1:
                text = "-" + text
            elif coeff != 1:
                text = f"{text} * {_fraction_text(coeff)}"
            parts.append(text)
        out = parts[0]
        for part in parts[1:]:
            out += f" - {part[1:]}" if part.startswith("-") else f" + {part}"
        return out


_INFIX = {"floordiv": "//", "truediv": "/", "mod": "%", "pow": "**"}


def _python_text(func: str, args: Tuple["Num", ...]) -> str:
    """An opaque term as Python would write it: ``c // 2``, ``int(c * 3 / 2)``."""
    if func in _INFIX and len(args) == 2:
        left, right = (a.render() for a in args)
        wrap = lambda text: f"({text})" if " " in text else text
        return f"{wrap(left)} {_INFIX[func]} {wrap(right)}"
    return f"{func}({', '.join(a.render() for a in args)})"


# What each opaque atom stands for (``§floordiv(c, 2)`` -> ("floordiv", (c, 2))),
# so that a configuration can evaluate it (see :mod:`resnetlint.model.concrete`).
OPAQUE_DEFINITIONS: Dict[str, Tuple[str, Tuple["Num", ...]]] = {}
_OPAQUE_DEFINITIONS_LIMIT = 200_000


def _fraction_text(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    return f"{value.numerator} / {value.denominator}"


def _mono_mul(a: Monomial, b: Monomial) -> Monomial:
    powers: Dict[Atom, int] = dict(a)
    for atom, power in b:
        powers[atom] = powers.get(atom, 0) + power
    return tuple(sorted(powers.items()))


def provably_different(a: Optional[Num], b: Optional[Num]) -> bool:
    """True when both are known, parameter-only expressions that differ.

    This is the precision gate of every comparison rule: an opaque helper
    (``make_divisible``) or an unknown value on either side means "silent".
    """
    if a is None or b is None:
        return False
    if not (a.is_opaque_free() and b.is_opaque_free()):
        return False
    return a != b


def unless(a: Num, b: Num) -> str:
    """When two provably different expressions actually differ, as a
    condition on the block's parameters: "" when always (both constant),
    ``dilation != 1`` when the difference is linear in one parameter,
    ``a != b`` otherwise."""
    difference = a - b
    if difference.is_const():
        return ""
    varying = [(mono, coefficient) for mono, coefficient in difference.terms if mono]
    if len(varying) == 1 and len(varying[0][0]) == 1 and varying[0][0][0][1] == 1:
        (name, _), = varying[0][0]
        constant = sum((c for mono, c in difference.terms if not mono), Fraction(0))
        root = -constant / varying[0][1]
        if root <= 0:
            return ""  # widths, strides and kernels are positive: they always differ
        return f"{name} != {_fraction_text(root)}"
    return f"{a.render()} != {b.render()}"


# ----------------------------------------------------------------------------
# Conditions
# ----------------------------------------------------------------------------


@record(eq=True)
class Cmp:
    op: str  # "==", "!=", "<", "<=", ">", ">="
    left: Num
    right: Num


@record(eq=True)
class And:
    items: Tuple["Cond", ...]


@record(eq=True)
class Or:
    items: Tuple["Cond", ...]


@record(eq=True)
class Not:
    item: "Cond"


# The key of the truth of a parameter's value (``if shortcut:``): one spelling
# for the interpreter that makes it and the queries that read it back.
TRUTHY = " is truthy"


@record(eq=True)
class Truth:
    """An opaque boolean with a stable key (``self.training``, ``downsample is None``).

    Two tests of the same key on one path agree, which is what keeps
    ``if self.skip is not None`` in ``forward`` consistent with ``__init__``.
    """

    key: str


Cond = Union[bool, Cmp, And, Or, Not, Truth, None]  # None: unknown (see fresh_truth)


def negate(cond: Cond) -> Cond:
    if cond is None:
        return None
    if isinstance(cond, bool):
        return not cond
    if isinstance(cond, Not):
        return cond.item
    if isinstance(cond, Cmp) and cond.op in _NEGATED_OPS:
        return Cmp(_NEGATED_OPS[cond.op], cond.left, cond.right)
    return Not(cond)


_NEGATED_OPS = {"==": "!=", "!=": "==", "<": ">=", ">=": "<", ">": "<=", "<=": ">"}


_fresh_counter = itertools.count()


def fresh_truth(label: str = "") -> Truth:
    """An unknown condition with a key of its own: it can be assumed either way
    but never agrees with any other test."""
    return Truth(f"<unknown {next(_fresh_counter)}{': ' + label if label else ''}>")


def conjoin(items: Iterable[Cond]) -> Cond:
    flat = []
    for item in items:
        if item is True:
            continue
        if item is False:
            return False
        if item is None:
            item = fresh_truth()
        flat.extend(item.items if isinstance(item, And) else [item])
    if not flat:
        return True
    return flat[0] if len(flat) == 1 else And(tuple(flat))


def disjoin(items: Iterable[Cond]) -> Cond:
    flat = []
    for item in items:
        if item is False:
            continue
        if item is True:
            return True
        if item is None:
            item = fresh_truth()
        flat.extend(item.items if isinstance(item, Or) else [item])
    if not flat:
        return False
    return flat[0] if len(flat) == 1 else Or(tuple(flat))


def mentions(cond: Cond, atoms) -> bool:
    """Whether a condition refers to any of the named parameters (so that,
    say, a test chooses by the stride).  Unknown conditions count as
    mentioning them: the answer is used to stay silent."""
    if isinstance(cond, Cmp):
        return bool((cond.left.atoms() | cond.right.atoms()) & set(atoms))
    if isinstance(cond, (And, Or)):
        return any(mentions(c, atoms) for c in cond.items)
    if isinstance(cond, Not):
        return mentions(cond.item, atoms)
    if isinstance(cond, Truth):
        return any(a in cond.key for a in atoms)
    return True


class Contradiction(Exception):
    """Raised internally when an assumption contradicts the known facts."""


class Facts:
    """What is known on one path: equalities (as a substitution), disequalities
    and the truth of opaque keys.  Immutable: ``assume`` returns a new object,
    or ``None`` when the assumption is impossible (the branch is dead)."""

    __slots__ = ("eq", "ne", "truth", "known", "_evaluated", "_extends")

    def __init__(
        self,
        eq: Optional[Dict[Atom, Num]] = None,
        ne: FrozenSet[Tuple[Num, Num]] = frozenset(),
        truth: Optional[Dict[str, bool]] = None,
        known: Optional[Dict[Cond, bool]] = None,
    ):
        self.eq: Dict[Atom, Num] = eq or {}
        self.ne = ne
        self.truth: Dict[str, bool] = truth or {}
        # Whole conditions assumed on this path, for what the parts cannot
        # express (``a or b`` is true, ``stride > 1`` is false): testing the
        # same condition again gives the same answer.
        self.known: Dict[Cond, bool] = known or {}
        # Facts never change, so what a condition evaluates to under them is
        # kept: the same alternatives' conditions are asked again for every
        # call of a layer an attribute may be (half the time of a run on
        # timm's stages went into evaluating them again).
        self._evaluated: Dict[Cond, Optional[bool]] = {}
        # The same for ``extends``: the dataflow asks it for every pair of a
        # dead value's path and its consumers' (keyed by identity; the other
        # facts are kept with the answer so that identity is never reused).
        self._extends: Dict[int, Tuple["Facts", bool]] = {}

    def norm(self, num: Num) -> Num:
        return num.substitute(self.eq)

    def extends(self, earlier: "Facts") -> bool:
        """Whether these facts contain everything ``earlier`` knew: true for a
        later point on the same path, false across the two sides of a fork."""
        if earlier is self:
            return True
        found = self._extends.get(id(earlier))
        if found is None:
            found = self._extends[id(earlier)] = (earlier, self._contains(earlier))
        return found[1]

    def _contains(self, earlier: "Facts") -> bool:
        if any(self.truth.get(k) != v for k, v in earlier.truth.items()):
            return False
        if any(self.known.get(k) != v for k, v in earlier.known.items()):
            return False
        if any(self.norm(Num.atom(k)) != self.norm(v) for k, v in earlier.eq.items()):
            return False
        normalized = {_pair(self.norm(a), self.norm(b)) for a, b in self.ne}
        return all(_pair(self.norm(a), self.norm(b)) in normalized for a, b in earlier.ne)

    def equal(self, a: Optional[Num], b: Optional[Num]) -> Optional[bool]:
        """True/False when decidable under these facts, else None."""
        if a is None or b is None:
            return None
        a, b = self.norm(a), self.norm(b)
        if a == b:
            return True
        ca, cb = a.const_value(), b.const_value()
        if ca is not None and cb is not None:
            return False
        if _pair(a, b) in self.ne or (a - b).is_const():
            return False
        return None

    def evaluate(self, cond: Cond) -> Optional[bool]:
        if cond is None or isinstance(cond, bool):
            return cond
        if cond in self.known:
            return self.known[cond]
        try:
            return self._evaluated[cond]
        except KeyError:
            pass
        value = self._evaluate(cond)
        self._evaluated[cond] = value
        return value

    def _evaluate(self, cond: Cond) -> Optional[bool]:
        if isinstance(cond, Cmp):
            return self._evaluate_cmp(cond)
        if isinstance(cond, Not):
            inner = self.evaluate(cond.item)
            return None if inner is None else not inner
        if isinstance(cond, And):
            values = [self.evaluate(i) for i in cond.items]
            if any(v is False for v in values):
                return False
            return True if all(v is True for v in values) else None
        if isinstance(cond, Or):
            values = [self.evaluate(i) for i in cond.items]
            if any(v is True for v in values):
                return True
            return False if all(v is False for v in values) else None
        if isinstance(cond, Truth):
            return self.truth.get(cond.key)
        return None

    def _evaluate_cmp(self, cond: Cmp) -> Optional[bool]:
        if cond.op in ("==", "!="):
            same = self.equal(cond.left, cond.right)
            if same is None:
                return None
            return same if cond.op == "==" else not same
        a = self.norm(cond.left).const_value()
        b = self.norm(cond.right).const_value()
        if a is None or b is None:
            return None
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[cond.op]

    def assume(self, cond: Cond, value: bool = True) -> Optional["Facts"]:
        """These facts plus ``cond == value``; None if that is impossible."""
        known = self.evaluate(cond)
        if known is not None:
            return self if known == value else None
        try:
            facts = self._assume(cond, value)
        except Contradiction:
            return None
        known = dict(facts.known)
        _remember(cond, value, known)
        return Facts(facts.eq, facts.ne, facts.truth, known)

    def _assume(self, cond: Cond, value: bool) -> "Facts":
        if cond is None or isinstance(cond, bool):
            if isinstance(cond, bool) and cond != value:
                raise Contradiction
            return self
        if isinstance(cond, Not):
            return self._assume(cond.item, not value)
        if isinstance(cond, And):
            if not value:
                return self  # one of them is false: nothing definite
            facts = self
            for item in cond.items:
                facts = facts._assume(item, True)
            return facts
        if isinstance(cond, Or):
            if value:
                return self
            facts = self
            for item in cond.items:
                facts = facts._assume(item, False)
            return facts
        if isinstance(cond, Truth):
            if self.truth.get(cond.key, value) != value:
                raise Contradiction
            return Facts(self.eq, self.ne, {**self.truth, cond.key: value}, self.known)
        if isinstance(cond, Cmp):
            op = cond.op if value else _NEGATED_OPS[cond.op]
            if op == "==":
                return self._with_equal(cond.left, cond.right)
            if op == "!=":
                return self._with_unequal(cond.left, cond.right)
            return self._with_bound(op, self.norm(cond.left), self.norm(cond.right))
        return self

    def _with_bound(self, op: str, left: Num, right: Num) -> "Facts":
        """``stride <= 1`` (the false side of ``if stride > 1``) means
        ``stride == 1``: the atoms compared this way are strides, widths and
        ratios, which are at least 1.  Such facts only ever silence a rule."""
        if right.single_atom() and left.is_const():
            left, right = right, left
            op = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}[op]
        bound = right.const_value()
        if left.single_atom() is None or bound is None:
            return self
        if (op == "<=" and bound == 1) or (op == "<" and bound == 2):
            return self._with_equal(left, Num.const(1))
        return self

    def _with_equal(self, a: Num, b: Num) -> "Facts":
        a, b = self.norm(a), self.norm(b)
        if a == b:
            return self
        if self.equal(a, b) is False:
            raise Contradiction
        atom_a, atom_b = a.single_atom(), b.single_atom()
        if atom_a and atom_b:
            # Bind the later name to the earlier one so the choice is stable.
            target, repl = (atom_b, a) if atom_a < atom_b else (atom_a, b)
        elif atom_a and atom_a not in b.atoms():
            target, repl = atom_a, b
        elif atom_b and atom_b not in a.atoms():
            target, repl = atom_b, a
        else:
            return self  # a relation we cannot use as a substitution
        eq = {k: v.substitute({target: repl}) for k, v in self.eq.items()}
        eq[target] = repl
        ne = set()
        for x, y in self.ne:
            x, y = x.substitute({target: repl}), y.substitute({target: repl})
            if x == y:
                raise Contradiction
            ne.add(_pair(x, y))
        return Facts(eq, frozenset(ne), self.truth, self.known)

    def _with_unequal(self, a: Num, b: Num) -> "Facts":
        a, b = self.norm(a), self.norm(b)
        if a == b:
            raise Contradiction
        return Facts(self.eq, self.ne | {_pair(a, b)}, self.truth, self.known)


def _remember(cond: Cond, value: bool, known: Dict[Cond, bool]) -> None:
    """Record a condition and every part whose truth follows from it."""
    if cond is None or isinstance(cond, bool):
        return
    known[cond] = value
    negated = negate(cond)
    if negated is not None and not isinstance(negated, bool):
        known[negated] = not value
    if isinstance(cond, Not):
        _remember(cond.item, not value, known)
    elif isinstance(cond, And) and value:
        for item in cond.items:
            _remember(item, True, known)
    elif isinstance(cond, Or) and not value:
        for item in cond.items:
            _remember(item, False, known)


def _pair(a: Num, b: Num) -> Tuple[Num, Num]:
    return (a, b) if a.terms <= b.terms else (b, a)


EMPTY_FACTS = Facts()
