"""Building :class:`LayerSpec` objects and summarising what layers do to a tensor."""
from __future__ import annotations

import re
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import libcst as cst

from .symbolic import Facts, Num
from .torch_api import LayerType
from .values import (
    UNKNOWN_SUMMARY,
    AltV,
    BoolV,
    Item,
    LayerSpec,
    LayerV,
    Loc,
    NoneV,
    NumV,
    StrV,
    Summary,
    TupleV,
    as_int_pair,
    as_num,
)

# Modules from other libraries whose effect on a tensor's shape is part of
# their contract: stochastic depth, layer scale.  Matched on the class name.
TRANSPARENT_EXTERNAL = {
    "DropPath",
    "StochasticDepth",
    "DropBlock2d",
    "DropBlock",
    "LayerScale",
    "LayerScale2d",
}

ONE = Num.const(1)


def bind_arguments(
    params: Sequence[str], args: Sequence[Loc], kwargs: Dict[str, Loc]
) -> Optional[Dict[str, Loc]]:
    """Map a call's arguments onto a layer's parameter names; None if the call
    does not fit (too many positionals, a star argument we cannot expand)."""
    if len(args) > len(params):
        return None
    bound = dict(zip(params, args))
    for name, loc in kwargs.items():
        if name in bound:
            return None
        bound[name] = loc
    return bound


def torch_layer(
    ltype: LayerType,
    bound: Dict[str, Loc],
    call: Optional[cst.Call],
    site: Optional[cst.CSTNode],
    label: str,
) -> LayerSpec:
    explicit = frozenset(bound)
    args = dict(bound)
    for name, default in ltype.defaults.items():
        if name not in args:
            args[name] = Loc(_const_value(default), None, False)
    spec = LayerSpec(
        family=ltype.family,
        label=label,
        ltype=ltype,
        args=args,
        explicit=explicit,
        call=call,
        site=site,
    )
    spec.inplace_first = ltype.inplace_param and _is_true(args.get("inplace"))
    spec.summary = _torch_summary(spec)
    return spec


def container(
    ltype: LayerType,
    children: Tuple[Item, ...],
    complete: bool,
    call: Optional[cst.Call],
    site: Optional[cst.CSTNode],
    label: str,
) -> LayerSpec:
    spec = LayerSpec(
        family="container",
        label=label,
        ltype=ltype,
        call=call,
        site=site,
        children=children,
        children_complete=complete,
    )
    if ltype.name == "Sequential":
        spec.summary = compose(children, complete)
        first = first_layer(children) if complete else None
        spec.inplace_first = bool(first and first.inplace_first)
    return spec


def unknown_layer(label: str, call: Optional[cst.Call], site: Optional[cst.CSTNode]) -> LayerSpec:
    transparent = label.rsplit(".", 1)[-1] in TRANSPARENT_EXTERNAL
    spec = LayerSpec(family="unknown", label=label, call=call, site=site, transparent=transparent)
    if transparent:
        spec.summary = Summary(keeps_channels=True, stride=ONE)
    return spec


# The role of a constructor parameter holding a layer class, read off its name
# (``norm_layer``, ``act_layer``, ``conv_layer``, ``bn``, ``activation``).
_ROLES = (
    ("norm", re.compile(r"(^|_)(norm|bn|batchnorm|batch_norm|normalization)(_|$)|norm_?layer|^norm", re.IGNORECASE)),
    ("act", re.compile(r"(^|_)(act|activation|nonlinearity|nonlin|relu)(_|$)|act_?layer|^act", re.IGNORECASE)),
    ("conv", re.compile(r"(^|_)conv(_|$)|conv_?layer|^conv", re.IGNORECASE)),
    ("linear", re.compile(r"(^|_)(linear|fc)(_|$)|linear_?layer", re.IGNORECASE)),
    # a shortcut projection's class (timm's ``proj_layer``): it takes the input to the output width
    ("proj", re.compile(r"(^|_)(proj|projection|shortcut|downsample)_?(layer|fn|block)$", re.IGNORECASE)),
)
NORM_WIDTH_KEYWORDS = ("num_features", "num_channels", "normalized_shape", "channels", "dim", "in_channels")


def layer_role(name: str) -> Optional[str]:
    """``norm`` / ``act`` / ``conv`` / ``linear`` for a parameter that holds a
    layer class, judged by its name; None when the name says nothing.  In a
    compound name the first role named is the layer's: ``conv_norm_act`` is
    a convolution followed by a norm, ``norm_act`` a norm."""
    found = [(match.start(), order, role) for order, (role, pattern) in enumerate(_ROLES)
             for match in [pattern.search(name)] if match is not None]
    return min(found)[2] if found else None


def role_layer(role: Optional[str], name: str, args: Sequence[Loc], kwargs: Dict[str, Loc],
               call: Optional[cst.Call], site: Optional[cst.CSTNode], label: Optional[str] = None) -> Optional[LayerSpec]:
    """A layer built by calling a layer-class parameter whose class we do not
    know, described by the contract every such parameter has in practice."""
    label = label or f"{name}(...)"
    if role == "norm":
        width = args[0] if args else next((kwargs[k] for k in NORM_WIDTH_KEYWORDS if k in kwargs), None)
        if width is None:
            # its width is given some way we cannot read: it still keeps the channels
            spec = LayerSpec(family="norm", label=label, call=call, site=site)
            spec.summary = Summary(keeps_channels=True, stride=ONE, has_weights=True)
            spec.assumption = f"`{name}(...)` is a norm layer, which keeps the channels"
            return spec
        spec = LayerSpec(family="norm", label=label, args={"num_features": width}, explicit=frozenset({"num_features"}),
                         call=call, site=site)
        spec.summary = Summary(in_channels=as_num(width), keeps_channels=True, stride=ONE, has_weights=True)
        spec.assumption = f"`{name}(C)` is a norm layer, which keeps its C channels"
        return spec
    if role == "act":
        spec = LayerSpec(family="act", label=label, args=dict(kwargs), explicit=frozenset(kwargs), call=call, site=site)
        spec.summary = Summary(keeps_channels=True, stride=ONE)
        spec.inplace_first = _is_true(kwargs.get("inplace"))
        spec.assumption = f"`{name}()` is an activation, which keeps the shape"
        return spec
    if role == "proj":
        return _projection_contract(name, args, kwargs, call, site, label)
    if role in ("conv", "linear"):
        from .torch_api import layer_type

        ltype = layer_type("torch.nn.Conv2d" if role == "conv" else "torch.nn.Linear")
        assert ltype is not None
        bound = bind_arguments(ltype.params, args, kwargs)
        if bound is None:
            return None
        spec = torch_layer(ltype, bound, call, site, label)
        for unknown in ("padding", "bias", "padding_mode"):
            # The convention covers widths and stride, not these defaults
            # (timm's convolutions pad to "same", builders choose the bias).
            if unknown not in bound:
                spec.args.pop(unknown, None)
        spec.assumption = f"`{name}` takes the arguments of nn.{ltype.name}"
        return spec
    return None


def _projection_contract(name: str, args: Sequence[Loc], kwargs: Dict[str, Loc], call, site,
                         label: str) -> Optional[LayerSpec]:
    """``proj_layer(in_chs, out_chs, stride=stride, ...)``: a shortcut
    projection from the first width to the second, at the stride it is
    given (its other arguments are its own)."""
    widths = [as_num(loc) for loc in args[:2]]
    if len(widths) < 2 or any(w is None for w in widths):
        return None
    stride = as_num(kwargs["stride"]) if "stride" in kwargs else None
    spec = LayerSpec(family="caller", label=label, call=call, site=site)
    spec.summary = Summary(in_channels=widths[0], out_channels=widths[1], stride=stride, has_weights=True)
    spec.assumption = f"`{name}(i, o, stride=s)` projects from i to o channels at stride s"
    return spec


def role_module(name: str, call: Optional[cst.CSTNode]) -> Optional[LayerSpec]:
    """A module passed in through a parameter (``normalization`` given as
    an ``nn.Module``) and called in forward: a norm or an activation keeps
    the shape, by the same contract as the classes of those roles."""
    role = layer_role(name)
    if role not in ("norm", "act"):
        return None
    spec = LayerSpec(family=role, label=name, call=None, site=call)
    spec.summary = Summary(keeps_channels=True, stride=ONE, has_weights=role == "norm")
    spec.assumption = f"`{name}` is {'a norm layer' if role == 'norm' else 'an activation'}, which keeps the shape"
    spec.from_parameter = name
    return spec


def first_layer(children: Sequence[Item]) -> Optional[LayerSpec]:
    for item in children:
        value = item.loc.value
        if isinstance(value, LayerV):
            return value.spec
        return None
    return None


def _const_value(default: object):
    if default is None:
        return NoneV()
    if isinstance(default, bool):
        return BoolV(default)
    if isinstance(default, int):
        return NumV(Num.const(default))
    if isinstance(default, str):
        return StrV(default)
    raise TypeError(default)


def _is_true(loc: Optional[Loc]) -> bool:
    return loc is not None and isinstance(loc.value, BoolV) and loc.value.cond is True


def _torch_summary(spec: LayerSpec) -> Summary:
    ltype = spec.ltype
    assert ltype is not None
    family = ltype.family
    if family == "conv":
        return Summary(
            in_channels=as_num(spec.arg("in_channels")),
            out_channels=as_num(spec.arg("out_channels")),
            stride=as_int_pair(spec.arg("stride")),
            axis="c",
            has_weights=True,
        )
    if family == "conv_transpose":
        return Summary(
            in_channels=as_num(spec.arg("in_channels")),
            out_channels=as_num(spec.arg("out_channels")),
            stride=None,
            axis="c",
            has_weights=True,
        )
    if family == "norm":
        kind = ltype.norm_kind
        if kind in ("batch", "instance"):
            width = as_num(spec.arg("num_features"))
            axis = "c"
        elif kind == "group":
            width = as_num(spec.arg("num_channels"))
            axis = "c"
        else:
            width = as_num(spec.arg("normalized_shape"))
            axis = "last"
        return Summary(in_channels=width, keeps_channels=True, stride=ONE, axis=axis, has_weights=True)
    if family == "linear":
        return Summary(
            in_channels=as_num(spec.arg("in_features")),
            out_channels=as_num(spec.arg("out_features")),
            stride=ONE,
            axis="last",
            has_weights=True,
        )
    if family in ("act", "dropout", "identity"):
        return Summary(keeps_channels=True, stride=ONE, has_weights=ltype.has_weights)
    if family == "pool":
        stride = spec.arg("stride")
        if stride is None or isinstance(stride.value, NoneV):
            stride = spec.arg("kernel_size")
        return Summary(keeps_channels=True, stride=as_int_pair(stride))
    if family == "adaptive_pool":
        return Summary(keeps_channels=True, stride=None)
    if family == "pad":
        return Summary(keeps_channels=True, stride=ONE)
    return Summary(has_weights=ltype.has_weights)


def summary_of(loc: Optional[Loc]) -> Summary:
    """The summary of a layer value; alternatives only when they all agree."""
    if loc is None:
        return UNKNOWN_SUMMARY
    value = loc.value
    if isinstance(value, LayerV):
        return value.spec.summary
    if isinstance(value, AltV):
        summaries = [summary_of(option) for _, option in value.options]
        if summaries and all(s == summaries[0] for s in summaries):
            return summaries[0]
    return UNKNOWN_SUMMARY


def compose(children: Sequence[Item], complete: bool = True) -> Summary:
    """Chain the children of a Sequential: input width from the first layer
    that states one, output width from the last that changes it, strides
    multiplied."""
    if not complete:
        return UNKNOWN_SUMMARY
    in_channels: Optional[Num] = None
    in_known = False  # whether the input width is settled (stated or unknowable)
    out_channels: Optional[Num] = None
    keeps = True
    stride: Optional[Num] = ONE
    axis: Optional[str] = None
    weights = False
    segments_seen = set()
    for item in children:
        summary = summary_of(item.loc)
        if item.segment is not None:
            # A loop repeats this part an unknown number of times: only a
            # part that keeps the width and the resolution is predictable.
            if item.segment not in segments_seen:
                segments_seen.add(item.segment)
            same_width = summary.in_channels is not None and summary.in_channels == summary.out_channels
            if same_width and summary.stride == ONE:
                pass  # repeated any number of times, it still maps C channels to C at the same size
            elif not summary.keeps_channels or summary.stride != ONE:
                # What comes out is not predictable, but what goes in is the
                # first copy's input (``nn.Sequential(*(Conv(c1, c2) for _ in
                # range(n)))`` takes c1 channels).
                first = in_channels if in_known else summary.in_channels
                return Summary(in_channels=first, axis=summary.axis) if first is not None else UNKNOWN_SUMMARY
        if not summary.known:
            return UNKNOWN_SUMMARY
        weights = weights or summary.has_weights
        if summary.axis is not None:
            if axis is not None and axis != summary.axis:
                return UNKNOWN_SUMMARY
            axis = summary.axis
        if not in_known and summary.in_channels is not None:
            in_channels, in_known = summary.in_channels, True
        if not summary.keeps_channels:
            in_known = True
            keeps = False
            out_channels = summary.out_channels
        stride = None if stride is None or summary.stride is None else stride * summary.stride
    return Summary(
        in_channels=in_channels,
        out_channels=None if keeps else out_channels,
        keeps_channels=keeps,
        stride=stride,
        axis=axis,
        has_weights=weights,
    )


def chain_links(children: Sequence[Item]) -> Iterator[Tuple[Item, Item, Num]]:
    """Consecutive (producer, consumer, produced width) pairs in a Sequential
    where the width entering ``consumer`` is known from ``producer``'s side.

    Links never cross a loop boundary: items appended by a loop are only
    chained to items of the same iteration.
    """
    current: Optional[Num] = None
    axis: Optional[str] = None
    producer: Optional[Item] = None
    for item in children:
        summary = summary_of(item.loc)
        if producer is not None and item.segment != producer.segment:
            current, producer, axis = None, None, None
        if summary.axis is not None and axis is not None and summary.axis != axis:
            # A conv followed by a Linear works on another dimension.
            current, producer, axis = None, None, None
        if current is not None and producer is not None and summary.in_channels is not None:
            yield producer, item, current
        if not summary.known:
            current, producer, axis = None, None, None
            continue
        axis = summary.axis or axis
        if summary.keeps_channels:
            if current is None and summary.in_channels is not None:
                current, producer = summary.in_channels, item
            elif current is not None and summary.in_channels is not None:
                producer = item
        else:
            current, producer = summary.out_channels, item


def iter_layers_under(loc: Optional[Loc], facts: Facts) -> Iterator[Tuple[LayerSpec, Facts]]:
    """Every LayerSpec inside a value with the facts under which it is built:
    an alternative (``A if self.keeps_shape else B``) adds its condition, and
    one that contradicts ``facts`` is never built."""
    if loc is None:
        return
    value = loc.value
    if isinstance(value, LayerV):
        yield value.spec, facts
        for child in value.spec.children:
            yield from iter_layers_under(child.loc, facts)
    elif isinstance(value, AltV):
        for cond, option in value.options:
            narrowed = facts.assume(cond, True)
            if narrowed is not None:
                yield from iter_layers_under(option, narrowed)
    elif isinstance(value, TupleV):
        for item in value.items:
            yield from iter_layers_under(item, facts)


def iter_layers(loc: Optional[Loc]) -> Iterator[LayerSpec]:
    """Every LayerSpec inside a value: alternatives and container children,
    recursively."""
    if loc is None:
        return
    value = loc.value
    if isinstance(value, LayerV):
        yield value.spec
        for child in value.spec.children:
            yield from iter_layers(child.loc)
    elif isinstance(value, AltV):
        for _, option in value.options:
            yield from iter_layers(option)
    elif isinstance(value, TupleV):
        for item in value.items:
            yield from iter_layers(item)


def sequential_children(spec: LayerSpec) -> List[Item]:
    if spec.family == "container" and spec.ltype is not None and spec.ltype.name == "Sequential":
        return list(spec.children)
    return []
