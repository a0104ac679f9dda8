"""Concrete configurations of a block's constructor parameters.

Most comparisons the rules make are settled symbolically: ``planes * 4``
against ``inplanes`` differ as polynomials, so some arguments make them
differ.  A width that goes through ``int(...)``, ``//``, ``max`` or
``math.ceil`` is an opaque term, and ``c // 2`` against ``c`` cannot be
settled that way.  It can be settled for a configuration: this module looks
for values of the parameters (their defaults, then a few values each
parameter's role allows: strides 1 and 2, widths 16 to 64) under which the
two sides differ, consistent with what the path already assumes.  A rule
that reports such a difference names the configuration, so that the user
(and the trace) can check exactly that one.
"""
from __future__ import annotations

import itertools
import math
import re
from fractions import Fraction
from typing import Dict, Iterator, Mapping, Optional, Set

from .symbolic import OPAQUE_DEFINITIONS, OPAQUE_PREFIX, And, Cmp, Facts, Not, Num, Or, Truth

SAMPLE_WIDTHS = (16, 32, 24, 64)
_ROLE_SAMPLES = (
    (re.compile(r"stride|step", re.IGNORECASE), (1, 2)),
    (re.compile(r"dilation|dilate", re.IGNORECASE), (1, 2)),
    (re.compile(r"group", re.IGNORECASE), (1,)),
    (re.compile(r"kernel|ksize|^k$", re.IGNORECASE), (3,)),
    (re.compile(r"ratio|expan|factor|mult", re.IGNORECASE), (4, 2)),
    (re.compile(r"head", re.IGNORECASE), (4,)),
)
MAX_CONFIGURATIONS = 40


def _floor(value: Fraction) -> Fraction:
    return Fraction(math.floor(value))


def _apply(func: str, args) -> Optional[Fraction]:
    if func in ("floordiv", "truediv", "mod") and args[1] == 0:
        return None
    if func == "floordiv":
        return _floor(args[0] / args[1])
    if func == "truediv":
        return args[0] / args[1]
    if func == "mod":
        return args[0] - args[1] * _floor(args[0] / args[1])
    if func == "pow":
        return args[0] ** int(args[1]) if args[1].denominator == 1 and 0 <= args[1] <= 8 else None
    if func == "int":
        return Fraction(int(args[0]))
    if func == "round":
        return Fraction(round(args[0]))
    if func == "ceil":
        return Fraction(math.ceil(args[0]))
    if func == "floor":
        return _floor(args[0])
    if func == "max":
        return max(args)
    if func == "min":
        return min(args)
    return None  # a helper we do not know how to compute


def evaluate(num: Num, values: Mapping[str, Fraction]) -> Optional[Fraction]:
    """The value of ``num`` when its parameters take ``values`` (None when
    it involves something we cannot compute)."""
    total = Fraction(0)
    for monomial, coefficient in num.terms:
        term = coefficient
        for atom, power in monomial:
            value = _atom_value(atom, values)
            if value is None:
                return None
            term *= value ** power
        total += term
    return total


def _atom_value(atom: str, values: Mapping[str, Fraction]) -> Optional[Fraction]:
    if atom in values:
        return values[atom]
    definition = OPAQUE_DEFINITIONS.get(atom) if atom.startswith(OPAQUE_PREFIX) else None
    if definition is None:
        return None
    func, args = definition
    evaluated = [evaluate(arg, values) for arg in args]
    if any(a is None for a in evaluated):
        return None
    return _apply(func, evaluated)


def parameters_of(num: Num) -> Set[str]:
    """The plain parameters an expression depends on, through opaque terms."""
    out: Set[str] = set()
    stack = list(num.atoms())
    while stack:
        atom = stack.pop()
        definition = OPAQUE_DEFINITIONS.get(atom) if atom.startswith(OPAQUE_PREFIX) else None
        if definition is not None:
            for arg in definition[1]:
                stack.extend(arg.atoms())
        elif not atom.startswith(OPAQUE_PREFIX):
            out.add(atom)
    return out


def samples_for(name: str) -> tuple:
    base = name.rsplit(".", 1)[-1]
    for pattern, samples in _ROLE_SAMPLES:
        if pattern.search(base):
            return samples
    return SAMPLE_WIDTHS


def configurations(parameters: Set[str], defaults: Mapping[str, int]) -> Iterator[Dict[str, Fraction]]:
    """Configurations to try, most ordinary first: every parameter at its
    default (or its role's first sample), then one parameter changed at a
    time, then the widths all different."""
    names = sorted(parameters)
    choices = {n: ([defaults[n]] if n in defaults else []) + [v for v in samples_for(n) if v != defaults.get(n)]
               for n in names}
    for n in names:
        if n in defaults and Fraction(defaults[n]).denominator != 1:
            choices[n] = [defaults[n]]  # a fractional ratio (``e=0.5``): never a width sample
    base = {n: Fraction(choices[n][0]) for n in names}
    yield dict(base)
    produced = 1
    for name in names:
        for value in choices[name][1:]:
            if produced >= MAX_CONFIGURATIONS:
                return
            changed = dict(base)
            changed[name] = Fraction(value)
            produced += 1
            yield changed
    widths = itertools.cycle(SAMPLE_WIDTHS)
    yield {n: (base[n] if samples_for(n) is not SAMPLE_WIDTHS or n in defaults else Fraction(next(widths)))
           for n in names}


MAX_OPEN_TRUTHS = 8  # opaque flags tried both ways when checking a configuration


def consistent(facts: Facts, values: Mapping[str, Fraction]) -> bool:
    """The configuration satisfies what the path assumed (equalities are
    already substituted away by ``Facts.norm``): every condition assumed on
    the way, its comparisons evaluated, under some choice of the opaque
    flags (``Truth``) it also depends on."""
    for a, b in facts.ne:
        va, vb = evaluate(a, values), evaluate(b, values)
        if va is not None and vb is not None and va == vb:
            return False
    conditions = [(cond, truth) for cond, truth in facts.known.items() if not isinstance(cond, Truth)]
    keys = sorted({key for cond, _ in conditions for key in _truth_keys(cond)} - set(facts.truth))
    if len(keys) > MAX_OPEN_TRUTHS:
        keys = []  # too many to try: judge the comparisons alone
    for choice in itertools.product((True, False), repeat=len(keys)):
        flags = {**facts.truth, **dict(zip(keys, choice))}
        if all(_holds(cond, flags, facts, values) in (truth, None) for cond, truth in conditions):
            return True
    return False


def _truth_keys(cond) -> Set[str]:
    if isinstance(cond, Truth):
        return {cond.key}
    if isinstance(cond, (And, Or)):
        return set().union(*(_truth_keys(c) for c in cond.items))
    if isinstance(cond, Not):
        return _truth_keys(cond.item)
    return set()


def _holds(cond, flags: Mapping[str, bool], facts: Facts, values: Mapping[str, Fraction]) -> Optional[bool]:
    """A condition's value in a configuration (None: cannot be told)."""
    if isinstance(cond, bool):
        return cond
    if isinstance(cond, Cmp):
        va, vb = evaluate(facts.norm(cond.left), values), evaluate(facts.norm(cond.right), values)
        if va is None or vb is None:
            return None
        return {"==": va == vb, "!=": va != vb, "<": va < vb, "<=": va <= vb, ">": va > vb, ">=": va >= vb}[cond.op]
    if isinstance(cond, Truth):
        return flags.get(cond.key)
    if isinstance(cond, Not):
        inner = _holds(cond.item, flags, facts, values)
        return None if inner is None else not inner
    if isinstance(cond, (And, Or)):
        parts = [_holds(c, flags, facts, values) for c in cond.items]
        if isinstance(cond, And):
            return False if False in parts else (None if None in parts else True)
        return True if True in parts else (None if None in parts else False)
    return None


def witness(a: Num, b: Num, facts: Facts, defaults: Mapping[str, int]) -> Optional[Dict[str, int]]:
    """A configuration consistent with ``facts`` under which ``a`` and ``b``
    (already normalised by the facts) take different values, or None
    (``{}`` when they are constants that differ)."""
    return find_configuration([a, b], lambda va, vb: va != vb and va > 0 and vb > 0, facts, defaults)


def find_configuration(expressions, predicate, facts: Facts,
                       defaults: Mapping[str, int]) -> Optional[Dict[str, int]]:
    """The first sample configuration consistent with ``facts`` under which
    ``predicate`` holds of the expressions' values (``{}`` when they involve
    no parameter and it holds), or None."""
    parameters: Set[str] = set()
    for expression in expressions:
        parameters |= parameters_of(expression)
    candidates = configurations(parameters, defaults) if parameters else iter([{}])
    for values in candidates:
        if parameters and not consistent(facts, values):
            continue
        evaluated = [evaluate(e, values) for e in expressions]
        if all(v is not None for v in evaluated) and predicate(*evaluated):
            return {name: int(value) if value.denominator == 1 else float(value) for name, value in sorted(values.items())}
    return None


def describe(configuration: Mapping[str, int]) -> str:
    return ", ".join(f"{name}={value}" for name, value in configuration.items())
