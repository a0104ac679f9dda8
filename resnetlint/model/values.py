"""Abstract values of the ``__init__`` interpreter and the layers they build.

The interpreter (:mod:`resnetlint.model.init_exec`) evaluates constructor code
symbolically: ``in_channels`` is an atom, ``nn.Conv2d(in_channels, 64, 3)`` is
a :class:`LayerV` holding a :class:`LayerSpec`, ``[] + [conv]`` is a
:class:`ListV`.  Every evaluated value travels in a :class:`Loc` that remembers
the expression that wrote it, so a rule can point at ``in_channels=in_channels``
in the user's source (or at the helper call when the value was computed inside
a helper).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, FrozenSet, List, Optional, Tuple, Union

import libcst as cst

from .records import record
from .symbolic import Cond, Num
from .torch_api import LayerType


class Value:
    """Base of all abstract values; immutable."""

    __slots__ = ()

    def describe(self) -> str:
        return type(self).__name__


@record
class Loc:
    """A value and where it was written.

    ``node`` is the expression that produced the value; ``local`` says whether
    that node belongs to the class under analysis (False inside a helper
    function or helper class, or for a default filled in by the model).
    """

    value: Value
    node: Optional[cst.CSTNode] = None
    local: bool = False

    def with_value(self, value: Value) -> "Loc":
        return Loc(value, self.node, self.local)


@record
class NumV(Value):
    num: Num

    def describe(self) -> str:
        return self.num.render()


@record
class BoolV(Value):
    cond: Cond


@record
class NoneV(Value):
    def describe(self) -> str:
        return "None"


NONE = NoneV()


@record
class StrV(Value):
    text: str


@record
class TupleV(Value):
    items: Tuple[Loc, ...]


@record
class Item:
    """One element of a list being built; ``segment`` groups the items a loop
    appended in one iteration (chains are only compared inside a segment)."""

    loc: Loc
    segment: Optional[int] = None


@record
class ListV(Value):
    items: Tuple[Item, ...] = ()
    complete: bool = True  # False once something unknown was added or removed

    def append(self, loc: Loc, segment: Optional[int]) -> "ListV":
        return ListV(self.items + (Item(loc, segment),), self.complete)

    def extend(self, other: Value, segment: Optional[int]) -> "ListV":
        if isinstance(other, (ListV, TupleV)):
            items = other.items if isinstance(other, ListV) else tuple(Item(i) for i in other.items)
            if segment is not None:
                items = tuple(Item(i.loc, segment) for i in items)
            complete = self.complete and (other.complete if isinstance(other, ListV) else True)
            return ListV(self.items + items, complete)
        return ListV(self.items, False)


@record
class DictV(Value):
    items: Tuple[Tuple[str, Loc], ...] = ()
    complete: bool = True


@record
class AltV(Value):
    """``A if cond else B`` with an undecided ``cond``: alternatives, each with
    the condition under which it is the value.  Never merged: rules and the
    forward dataflow look at each alternative under its own condition."""

    options: Tuple[Tuple[Cond, Loc], ...]
    test: Optional[cst.CSTNode] = None  # the condition as written, when there is one


def possible_values(value: "Value") -> List["Value"]:
    """The values ``value`` may be: each alternative's, or itself."""
    return [option.value for _, option in value.options] if isinstance(value, AltV) else [value]


@record
class ParamV(Value):
    """A constructor (or helper) parameter that is not used as a number, or an
    attribute of one (``block.expansion``)."""

    name: str
    default: Optional[Loc] = None

    def describe(self) -> str:
        return self.name


@record
class SelfV(Value):
    pass


SELF = SelfV()


@record
class SuperV(Value):
    pass


@record
class QualV(Value):
    """A dotted name we can resolve (``torch.nn``, ``torch.nn.Conv2d``,
    ``functools.partial``, ``<local>.conv3x3``, ``.common.conv3x3_block``).

    ``origin`` is the module whose imports the name is written against (None:
    the checked file): ``<local>.X`` and relative names mean different things
    in different modules, and a value can travel from a helper module into
    the block that called it."""

    qualname: str
    origin: Optional[object] = None  # a ModuleContext


@record
class MethodV(Value):
    """A bound method of ``self`` defined in the class (or a same-file base)."""

    name: str


@record
class BoundMethodV(Value):
    """``value.method`` for a non-self receiver (``layers.append``)."""

    receiver: Loc
    name: str


@record
class PartialV(Value):
    func: Loc
    args: Tuple[Loc, ...]
    kwargs: Tuple[Tuple[str, Loc], ...]


@record
class LambdaV(Value):
    """A ``lambda`` (or a nested function returning one), with the names it
    closes over: calling it evaluates its body with the arguments bound
    (pytorchcv's ``lambda num_features: nn.BatchNorm2d(num_features)``)."""

    params: object  # cst.Parameters
    body: object  # cst expression
    env: Tuple[Tuple[str, "Loc"], ...]
    ctx: Optional[object] = None  # the ModuleContext its names are read in


@record
class OpaqueV(Value):
    """The result of a call we cannot interpret.  Used as a number it becomes
    an opaque atom (``make_divisible(c * 4, 8)``), so two identical calls
    still compare equal; called from ``forward`` it is an unknown module."""

    text: str
    args: Tuple[Loc, ...] = ()


@record
class InstanceV(Value):
    """An instance of a plain (not ``nn.Module``) class without an
    ``__init__`` of its own: a dataclass of layer factories built with its
    defaults (timm's ``LayerFn()``).  Its attributes are the values the call
    gave (``fields``), else the class-level ones."""

    cls: cst.ClassDef
    fields: Tuple[Tuple[str, Loc], ...] = ()


@record
class UnknownV(Value):
    reason: str = ""


UNKNOWN = UnknownV()


@record
class LayerV(Value):
    spec: "LayerSpec"

    def describe(self) -> str:
        return self.spec.label


@record(eq=True)
class Summary:
    """How a layer transforms a tensor, as far as we know.

    ``in_channels``/``out_channels`` are None when unknown; a layer that keeps
    channels has ``keeps_channels`` and no numbers.  ``axis`` is "c" for
    layers acting on dim 1 (convs, BatchNorm) and "last" for Linear/LayerNorm.
    ``stride`` is the spatial reduction factor (None when unknown).
    """

    in_channels: Optional[Num] = None
    out_channels: Optional[Num] = None
    keeps_channels: bool = False
    stride: Optional[Num] = None
    axis: Optional[str] = None
    has_weights: bool = False

    @property
    def known(self) -> bool:
        return self.keeps_channels or self.out_channels is not None


UNKNOWN_SUMMARY = Summary()


@dataclass(eq=False)
class LayerSpec:
    """A module built in ``__init__`` (directly, through a helper, or inside a
    container)."""

    family: str  # a torch_api family, "composite" (same-file class), "unknown"
    label: str  # for messages: "nn.Conv2d", "conv3x3 -> nn.Conv2d", "ConvBNReLU"
    ltype: Optional[LayerType] = None
    args: Dict[str, Loc] = field(default_factory=dict)
    explicit: FrozenSet[str] = frozenset()
    call: Optional[cst.Call] = None  # the constructor call, maybe inside a helper
    site: Optional[cst.CSTNode] = None  # the expression in the analysed class that built it
    children: Tuple[Item, ...] = ()  # containers, in order
    children_complete: bool = True
    class_name: Optional[str] = None  # composite: the same-file class
    summary: Summary = UNKNOWN_SUMMARY
    transparent: bool = False  # external module known to keep the shape (DropPath)
    inplace_first: bool = False  # mutates its input (inplace activation, or a
    # container whose first layer does)
    subclass_forward: bool = False  # a subclass of a torch layer with its own forward
    # What the model assumed to know this layer (a parameter's default, a
    # role's contract), for messages; None when it is built as written.
    assumption: Optional[str] = None
    from_parameter: Optional[str] = None  # built by calling this constructor parameter (``proj_layer(...)``)

    def arg(self, name: str) -> Optional[Loc]:
        return self.args.get(name)

    @property
    def is_norm(self) -> bool:
        return self.family == "norm"

    @property
    def norm_kind(self) -> Optional[str]:
        return self.ltype.norm_kind if self.ltype is not None else None


def as_num(loc: Optional[Union[Loc, Value]]) -> Optional[Num]:
    """The symbolic integer a value stands for, or None."""
    value = loc.value if isinstance(loc, Loc) else loc
    if isinstance(value, NumV):
        return value.num
    if isinstance(value, ParamV):
        return Num.atom(value.name)
    if isinstance(value, OpaqueV):
        args = [as_num(a) for a in value.args]
        if all(a is not None for a in args):
            return Num.opaque(value.text, args)  # type: ignore[arg-type]
        return None
    if isinstance(value, BoolV) and isinstance(value.cond, bool):
        return Num.const(int(value.cond))
    return None


def as_int(loc: Optional[Union[Loc, Value]]) -> Optional[int]:
    num = as_num(loc)
    return num.int_value() if num is not None else None


def as_int_pair(loc: Optional[Loc]) -> Optional[Num]:
    """A stride/kernel/padding that is a number or a tuple of equal numbers."""
    if loc is None:
        return None
    value = loc.value
    if isinstance(value, TupleV) and value.items:
        nums = [as_num(i) for i in value.items]
        if all(n is not None for n in nums) and all(n == nums[0] for n in nums):
            return nums[0]
        return None
    return as_num(loc)


def plain_key(value: Value) -> object:
    """A constructor argument as a comparable key, or None when it is not a
    plain value (a number, a string, a flag, None, a parameter, a tuple)."""
    if isinstance(value, NumV):
        return ("num", value.num.render())
    if isinstance(value, StrV):
        return ("str", value.text)
    if isinstance(value, BoolV) and isinstance(value.cond, bool):
        return ("bool", value.cond)
    if isinstance(value, NoneV):
        return ("none",)
    if isinstance(value, ParamV):
        return ("parameter", value.name)
    if isinstance(value, TupleV):
        items = tuple(plain_key(item.value) for item in value.items)
        return None if any(item is None for item in items) else ("tuple", items)
    return None
