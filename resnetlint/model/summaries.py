"""Summaries of helper calls: run a helper once per kind of call, reuse it.

A model zoo calls the same helpers thousands of times (``conv3x3(inplanes,
planes, stride)``, ``create_conv2d(...)``, ``ConvNormAct(...)``), from every
block of every file.  Running each call's body again costs more than the
rest of the analysis.  A call is summarised instead: its arguments are
abstracted (:func:`abstract_arguments`): symbolic widths and strides become
placeholders ``§0``, ``§1``..., while constants, strings, layer classes,
flags and the caller's own parameters (by name) stay as they are, since
they decide which branch the helper takes.
The helper runs once per abstraction, in a world that knows nothing, and
every call with that abstraction gets the result with its own arguments put
back in (:func:`instantiate`): numbers substituted, alternatives the caller's
facts rule out dropped, and the layers pointed at the caller's expression.

A call whose arguments cannot be abstracted (a list being built, a module,
``self``) runs as before.
"""
from __future__ import annotations

from dataclasses import replace as _replace
from typing import Dict, List, Optional, Tuple

from .symbolic import OPAQUE_DEFINITIONS, OPAQUE_PREFIX, And, Cmp, Cond, Facts, Not, Num, Or
from .values import (
    AltV,
    BoolV,
    DictV,
    Item,
    LayerSpec,
    LayerV,
    ListV,
    Loc,
    NoneV,
    NumV,
    OpaqueV,
    ParamV,
    PartialV,
    QualV,
    StrV,
    Summary,
    TupleV,
    UNKNOWN,
    UnknownV,
    Value,
)

PLACEHOLDER = "§"


def abstract_arguments(args, kwargs) -> Optional[Tuple[tuple, List[Loc], Dict[str, Loc], Dict[str, Loc]]]:
    """(key, placeholder args, placeholder kwargs, placeholder -> the
    caller's argument) for a call whose arguments can be abstracted, else
    None."""
    mapping: Dict[str, Loc] = {}
    key_parts = []

    def abstract(loc: Loc):
        value = loc.value
        if isinstance(value, NumV):
            constant = value.num.const_value()
            if constant is not None:
                return ("num", constant), loc
            return _placeholder(loc)
        if isinstance(value, ParamV):
            # Kept as itself (it may be a layer class, a flag, a width): the
            # key names it, and the caller's expression comes back in place
            # of the template's (see _Substitution.loc).
            default = value.default.value if value.default is not None else None
            mapping[f"param:{value.name}"] = loc
            return ("param", value.name, _identity(default)), Loc(value)
        if isinstance(value, (StrV, NoneV)):
            return ("const", type(value).__name__, getattr(value, "text", None)), loc
        if isinstance(value, BoolV) and isinstance(value.cond, bool):
            return ("bool", value.cond), loc
        if isinstance(value, QualV):
            return ("qual", value.qualname, getattr(value.origin, "path", None)), loc
        if isinstance(value, UnknownV):
            # Unknown in the caller is unknown in the summary: one summary
            # serves every call that passes something we cannot read.
            return ("unknown",), Loc(UNKNOWN)
        if isinstance(value, OpaqueV):
            return ("opaque", value.text), loc  # equal texts compare equal anyway
        if isinstance(value, TupleV):
            parts = [abstract(item) for item in value.items]
            if any(part is None for part in parts):
                return None
            return ("tuple",) + tuple(key for key, _ in parts), Loc(TupleV(tuple(item for _, item in parts)),
                                                                       loc.node, loc.local)
        return None

    def _placeholder(loc: Loc):
        name = f"{PLACEHOLDER}{len(mapping)}"
        mapping[name] = loc
        return ("sym",), Loc(NumV(Num.atom(name)))

    new_args = []
    for loc in args:
        found = abstract(loc)
        if found is None:
            return None
        key_parts.append(found[0])
        new_args.append(found[1])
    new_kwargs = {}
    for name in sorted(kwargs):
        found = abstract(kwargs[name])
        if found is None:
            return None
        key_parts.append((name, found[0]))
        new_kwargs[name] = found[1]
    return tuple(key_parts), new_args, new_kwargs, mapping


def _identity(value: Optional[Value]):
    if value is None:
        return None
    if isinstance(value, QualV):
        return ("qual", value.qualname, getattr(value.origin, "path", None))
    if isinstance(value, (NumV, StrV, BoolV, NoneV)):
        return repr(value)
    return ("object", id(value))


def instantiate(template: Loc, mapping: Dict[str, Loc], facts: Facts, site, node, local: bool) -> Loc:
    """The summarised result for one call: placeholders replaced by the
    caller's arguments, alternatives its facts rule out dropped, layers
    pointed at the caller's expression."""
    numbers = {name: loc.value.num for name, loc in mapping.items() if not name.startswith("param:")}
    result = _Substitution(mapping, numbers, facts, site).loc(template)
    if result.node is None:
        return Loc(result.value, node, local)
    return result


class _Substitution:
    def __init__(self, mapping: Dict[str, Loc], numbers: Dict[str, Num], facts: Facts, site):
        self.mapping = mapping
        self.numbers = numbers
        self.facts = facts
        self.site = site
        self.specs: Dict[int, LayerSpec] = {}  # one copy per layer, shared where the template shares it

    def num(self, num: Optional[Num]) -> Optional[Num]:
        return substitute_num(num, self.numbers) if num is not None else None

    def loc(self, loc: Loc) -> Loc:
        value = loc.value
        if isinstance(value, NumV):
            atom = value.num.single_atom()
            if atom is not None and atom in self.mapping:
                return self.mapping[atom]  # the caller's own argument, where it was written
        if isinstance(value, ParamV) and loc.node is None:
            caller = self.mapping.get(f"param:{value.name}")
            if caller is not None and isinstance(caller.value, ParamV) and caller.value.name == value.name:
                return caller
        new = self.value(value)
        return loc if new is value else Loc(new, loc.node, loc.local)

    def value(self, value: Value) -> Value:
        if isinstance(value, NumV):
            num = self.num(value.num)
            return value if num is value.num else NumV(num)
        if isinstance(value, BoolV):
            return BoolV(self.cond(value.cond))
        if isinstance(value, TupleV):
            return TupleV(tuple(self.loc(i) for i in value.items))
        if isinstance(value, ListV):
            return ListV(tuple(Item(self.loc(i.loc), i.segment) for i in value.items), value.complete)
        if isinstance(value, DictV):
            return DictV(tuple((k, self.loc(v)) for k, v in value.items), value.complete)
        if isinstance(value, AltV):
            options = []
            for cond, option in value.options:
                cond = self.cond(cond)
                if self.facts.evaluate(cond) is False:
                    continue
                options.append((cond, self.loc(option)))
            if len(options) == 1:
                return options[0][1].value
            return AltV(tuple(options), value.test) if options else value
        if isinstance(value, LayerV):
            return LayerV(self.spec(value.spec))
        if isinstance(value, PartialV):
            return PartialV(self.loc(value.func), tuple(self.loc(a) for a in value.args),
                            tuple((k, self.loc(v)) for k, v in value.kwargs))
        if isinstance(value, OpaqueV):
            return OpaqueV(value.text, tuple(self.loc(a) for a in value.args))
        return value

    def spec(self, spec: LayerSpec) -> LayerSpec:
        found = self.specs.get(id(spec))
        if found is not None:
            return found
        summary = spec.summary
        copy = _replace(
            spec,
            args={name: self.loc(loc) for name, loc in spec.args.items()},
            children=tuple(Item(self.loc(child.loc), child.segment) for child in spec.children),
            site=self.site,
            summary=Summary(in_channels=self.num(summary.in_channels), out_channels=self.num(summary.out_channels),
                            keeps_channels=summary.keeps_channels, stride=self.num(summary.stride),
                            axis=summary.axis, has_weights=summary.has_weights),
        )
        self.specs[id(spec)] = copy
        return copy

    def cond(self, cond: Cond) -> Cond:
        if cond is None or isinstance(cond, bool):
            return cond
        if isinstance(cond, Cmp):
            return Cmp(cond.op, self.num(cond.left), self.num(cond.right))
        if isinstance(cond, Not):
            inner = self.cond(cond.item)
            return Not(inner) if inner is not None else None
        if isinstance(cond, And):
            return And(tuple(self.cond(c) for c in cond.items))
        if isinstance(cond, Or):
            return Or(tuple(self.cond(c) for c in cond.items))
        return cond


def substitute_num(num: Num, numbers: Dict[str, Num]) -> Num:
    """``num`` with placeholder atoms replaced, inside opaque terms too
    (``int(§0 * 3 / 2)`` becomes ``int(planes * 3 / 2)``)."""
    atoms = num.atoms()
    if not atoms:
        return num
    mapping: Dict[str, Num] = {}
    for atom in atoms:
        if atom in numbers:
            mapping[atom] = numbers[atom]
        elif atom.startswith(OPAQUE_PREFIX) and PLACEHOLDER in atom:
            definition = OPAQUE_DEFINITIONS.get(atom)
            if definition is not None:
                func, args = definition
                mapping[atom] = Num.opaque(func, [substitute_num(a, numbers) for a in args])
    return num.substitute(mapping) if mapping else num
