"""Residual adds and their shortcuts, found by structure.

A residual add sums two tensors computed from a common one (``x + f(x)``,
``skip(x) + block(x)``).  Which operand is the *shortcut* is read off the
dataflow, never off attribute names (a projection called ``res1``,
``branch1`` or ``proj`` is still one, and an attention block's ``proj`` is
not): the shortcut is the operand that is the common tensor itself, or that
reaches the add from it through *projections* only, layers that adapt a
tensor's shape without computing features: 1x1 convolutions, linear maps,
pooling, norms, activations, dropout, identity, padding, and a module the
caller supplies for that purpose (``downsample``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Dict, List, Optional, Set

import libcst as cst

from .forward_exec import AddEvent, AssignEvent, Flow, FVal
from .symbolic import Facts, Num
from .values import AltV, LayerSpec, LayerV, NoneV, ParamV, as_int_pair

if TYPE_CHECKING:  # pragma: no cover
    from .block import BlockModel
    from .init_exec import World

# Families that change a tensor's shape without computing features.
_ADAPTING_FAMILIES = frozenset({"linear", "pool", "norm", "act", "dropout", "identity", "pad"})

# Constructor parameters through which callers hand a block its shortcut
# projection (torchvision's ``downsample=None``), by the name such parameters
# have in practice or by a module annotation; see caller_projections.
PROJECTION_PARAMETER = re.compile(r"^(downsample|down_sample|shortcut|skip|proj|projection|identity|residual)(_\w+)?$")
_MODULE_ANNOTATION = re.compile(r"\b(nn\.)?Module\b|Callable\[.*Module")


def is_projection(spec: Optional[LayerSpec]) -> bool:
    """A layer that adapts a tensor's shape without computing features: a
    1x1 convolution (any stride, any groups), a linear map, pooling, a
    norm, an activation, dropout, identity, padding, or a Sequential of
    those with at most one convolution or linear map (two with an
    activation between them are an MLP: a main path)."""
    if spec is None:
        return False
    return _adapts(spec) and _mixing_layers(spec) <= 1


def _mixing_layers(spec: LayerSpec) -> int:
    if spec.family in ("conv", "linear", "caller"):
        return 1
    if spec.family in ("container", "composite"):
        return sum(_mixing_layers(child.loc.value.spec) for child in spec.children
                   if isinstance(child.loc.value, LayerV))
    return 0


def _adapts(spec: LayerSpec) -> bool:
    family = spec.family
    if family == "caller":
        return True  # a projection the caller passes in (see block.caller_projection_contract)
    if family == "conv":
        kernel = as_int_pair(spec.arg("kernel_size"))
        return kernel is not None and kernel.const_value() == 1
    if family in _ADAPTING_FAMILIES:
        return True
    if (family == "container" and spec.ltype is not None and spec.ltype.name == "Sequential") or \
            (family == "composite" and spec.children):
        return spec.children_complete and all(
            isinstance(child.loc.value, LayerV) and _adapts(child.loc.value.spec) for child in spec.children)
    return False


def projects(spec: Optional[LayerSpec]) -> bool:
    """A projection a shortcut is built from: it contains a convolution or
    a linear map (a norm, an activation or a pooling alone is not one)."""
    return spec is not None and is_projection(spec) and _mixing_layers(spec) == 1


def strip_elementwise(value: FVal) -> FVal:
    while value.kind in ("func", "method") and value.elementwise and value.inputs:
        value = value.inputs[0]
    return value


def projection_chain(flow: Flow, value: FVal, root: FVal) -> Optional[List[FVal]]:
    """The layer calls that took ``root`` to ``value`` (nearest first) when
    every one is a projection (or a module the caller supplies as one, see
    :func:`caller_projections`); None when ``value`` is not computed from
    ``root`` that way.  ``[]`` for ``root`` itself (through elementwise
    functions)."""
    caller = flow.caller_projections
    layers: List[FVal] = []
    current: Optional[FVal] = value
    while current is not None and current is not root:
        if current.kind == "layer" and (is_projection(current.spec) or current.attr in caller):
            layers.append(current)
        elif not (current.kind in ("func", "method") and current.elementwise):
            return None
        current = current.inputs[0] if current.inputs else None
    return layers if current is root else None


def main_chain(value: FVal) -> List[FVal]:
    """The layer calls a value went through, following first inputs back to
    where the chain started (nearest first)."""
    out = []
    current: Optional[FVal] = value
    seen: Set[int] = set()
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if current.kind == "layer":
            out.append(current)
        if current.kind in ("layer", "func", "method", "binop") and current.inputs:
            current = current.inputs[0]
        else:
            current = None
    return out


@dataclass
class Residual:
    """A residual add: ``main`` is the value computed through the block's
    layers, ``skip`` the value added back (often the block input)."""

    event: Optional[AddEvent]
    skip: FVal
    main: FVal
    skip_node: Optional[cst.CSTNode]
    main_node: Optional[cst.CSTNode]
    facts: Facts = None  # type: ignore[assignment]
    overwrite: Optional[AssignEvent] = None  # set for an add reconstructed from an overwrite

    def __post_init__(self):
        if self.facts is None and self.event is not None:
            self.facts = self.event.facts


def residual_adds(flow: Flow) -> List[Residual]:
    """Adds whose operands come from a common tensor: ``x + f(x)``,
    ``skip(x) + block(x)``.  ``x + self.pos_embed`` is not one."""
    return flow.memo("residual_adds", _residual_adds)


def _residual_adds(flow: Flow) -> List[Residual]:
    out = []
    by_id = {id(v): v for v in flow.values}
    for event in flow.adds:
        left, right = event.left, event.right
        if not (left.tensor and right.tensor):
            continue
        anc_left = flow.ancestors(left) | {id(left)}
        anc_right = flow.ancestors(right) | {id(right)}
        common = [by_id[i] for i in anc_left & anc_right if i in by_id and by_id[i].kind != "static"]
        if not common:
            continue
        if id(left) in anc_right:
            out.append(Residual(event, left, right, event.left_node, event.right_node))
        elif id(right) in anc_left:
            out.append(Residual(event, right, left, event.right_node, event.left_node))
        else:
            root = max(common, key=lambda v: v.order)  # where the two branches part
            skip_side = _shortcut_side(flow, left, right, root)
            if skip_side == "left":
                out.append(Residual(event, left, right, event.left_node, event.right_node))
            elif skip_side == "right":
                out.append(Residual(event, right, left, event.right_node, event.left_node))
    return out


def _shortcut_side(flow: Flow, left: FVal, right: FVal, root: FVal) -> Optional[str]:
    """Which operand of ``left + right`` (two branches from ``root``) is the
    shortcut: the one made of projections only, else the shorter one."""
    left_projects = projection_chain(flow, left, root) is not None
    right_projects = projection_chain(flow, right, root) is not None
    if left_projects != right_projects:
        return "left" if left_projects else "right"
    left_len, right_len = len(main_chain(left)), len(main_chain(right))
    if left_len < right_len:
        return "left"
    if right_len < left_len:
        return "right"
    return None


def shortcut_kind(value: FVal, dead: FVal, flow: Flow) -> Optional[str]:
    """How ``value`` is a shortcut of the (dead) main path ``dead``: the block
    input, or projections of it (or of a tensor ``dead`` was computed from)
    whose output width is the main path's; None otherwise."""
    core = strip_elementwise(value)
    if flow.input is not None and core is flow.input:
        return f"the block input `{flow.input.name}`"
    if core.kind != "layer":
        return None
    root, chain = _projection_root(flow, core)
    if not chain or root is None or not (root is flow.input or id(root) in flow.ancestors(dead)):
        return None
    if not _fits(chain, root, dead, flow):
        return None
    name = f"self.{core.attr}" if core.attr and not core.attr.startswith("<") else "the shortcut"
    return f"the shortcut `{name}`"


def _projection_root(flow: Flow, value: FVal):
    """Walk back from ``value`` through projections and elementwise
    functions: the tensor where that walk stops, and the projections passed
    (nearest first)."""
    caller = flow.caller_projections
    layers: List[FVal] = []
    current = value
    while True:
        if current.kind == "layer" and current.inputs and (is_projection(current.spec) or current.attr in caller):
            layers.append(current)
        elif not (current.kind in ("func", "method") and current.elementwise and current.inputs):
            return current, layers
        current = current.inputs[0]


def _fits(chain: List[FVal], root: FVal, main: FVal, flow: Flow) -> bool:
    """A projection chain could stand in for ``main``: it reads the width
    ``root`` has and produces the width ``main`` has, where both are known
    (a layer that states another width for its input is not a shortcut of
    this block but a main-path layer fed the wrong tensor)."""
    from .block import channels_of, first_input_width

    facts = main.facts or flow.world.facts
    first = chain[-1].spec.summary if chain[-1].spec is not None else None
    root_width = channels_of(flow, root, facts)
    if root is flow.input:
        root_width = first_input_width(flow)
    if first is not None and first.in_channels is not None and isinstance(root_width, Num):
        if facts.equal(first.in_channels, root_width) is not True:
            return False
    out_width, main_width = channels_of(flow, chain[0], facts), channels_of(flow, main, facts)
    if isinstance(out_width, Num) and isinstance(main_width, Num) and facts.equal(out_width, main_width) is not True:
        return False
    return True


def is_main_path(value: FVal, flow: Flow) -> bool:
    """Computed from the block input through at least one layer that is not
    a projection (so not itself a shortcut)."""
    if flow.input is None or not main_chain(value):
        return False
    if projection_chain(flow, strip_elementwise(value), flow.input) is not None:
        return False
    return id(flow.input) in flow.ancestors(value)


def overwritten_main_paths(flow: Flow) -> List[AssignEvent]:
    """Assignments that replace a dead main-path result with the shortcut
    before a residual add (``out = self.skip(x)`` after ``out = self.block(x)``)."""
    return flow.memo("overwritten_main_paths", _overwritten_main_paths)


def _overwritten_main_paths(flow: Flow) -> List[AssignEvent]:
    out = []
    for event in flow.assignments:
        dead = event.old
        # Judged on the path of the overwrite: ``if self.downsample is not
        # None: out = self.downsample(x)`` loses the main path exactly there.
        if dead is None or shortcut_kind(event.new, dead, flow) is None or not is_main_path(dead, flow):
            continue
        if not flow.dead_on_path(dead, event.facts) or not _add_follows(flow, event.new):
            continue
        out.append(event)
    return out


def _add_follows(flow: Flow, value: FVal) -> bool:
    return any(add.left is value or add.right is value or id(value) in flow.ancestors(add.result)
               for add in flow.adds if add.result.order > value.order or add.left is value or add.right is value)


def intended_residuals(flow: Flow) -> List[Residual]:
    """The residual adds as written, minus those whose main operand is a
    shortcut that overwrote the main path (the shortcut added to the input),
    plus the add the author meant in that case: the overwritten main path
    against the shortcut that replaced it."""
    return flow.memo("intended_residuals", _intended_residuals)


def _intended_residuals(flow: Flow) -> List[Residual]:
    overwrites = overwritten_main_paths(flow)
    replaced = {id(event.new) for event in overwrites}
    out = [r for r in residual_adds(flow)
           if id(r.main) not in replaced and id(strip_elementwise(r.main)) not in replaced]
    for event in overwrites:
        out.append(Residual(None, event.new, event.old, event.target, None, facts=event.facts, overwrite=event))
    return out


def caller_projections(block: "BlockModel") -> Dict[str, str]:
    """Attributes holding a module the caller passes in as the shortcut's
    projection (``self.downsample = downsample``): attribute -> parameter.
    Such a parameter is recognised by the role its name gives it in
    practice (``downsample``, ``shortcut``, ``proj``...) or by a module
    annotation, and by being stored on ``self``."""
    init = block.init.init
    if init is None:
        return {}
    params = _constructor_parameters(block)
    out: Dict[str, str] = {}
    for wf in block.worlds:
        for attr, assigned in wf.world.attrs.items():
            value = assigned.loc.value
            options = [o.value for _, o in value.options] if isinstance(value, AltV) else [value]
            for option in options:
                # the module itself (``downsample``), or built from a class the
                # caller passes (``proj_layer(in_chs, out_chs, stride=stride)``)
                name = option.name if isinstance(option, ParamV) else \
                    option.spec.from_parameter if isinstance(option, LayerV) else None
                if name in params and _projection_parameter(params[name]):
                    out[attr] = name
    return out


def _constructor_parameters(block: "BlockModel") -> Dict[str, cst.Param]:
    """The parameters of the class's ``__init__`` and of its bases' (nearest
    first): a base's parameter reaches it from the caller through
    ``**kwargs``."""
    params: Dict[str, cst.Param] = {}
    for cls, _ in block.lineage():
        init, _owner = block.interp.find_method(cls, "__init__")
        if init is None:
            continue
        for param in list(init.params.params) + list(init.params.kwonly_params):
            params.setdefault(param.name.value, param)
    return params


def _projection_parameter(param: cst.Param) -> bool:
    if PROJECTION_PARAMETER.match(param.name.value):
        return True
    annotation = getattr(param, "annotation", None)
    text = _annotation_text(annotation.annotation) if annotation is not None else ""
    return bool(text and _MODULE_ANNOTATION.search(text) and isinstance(param.default, cst.Name)
                and param.default.value == "None")


def _annotation_text(node) -> str:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return f"{_annotation_text(node.value)}.{node.attr.value}"
    if isinstance(node, cst.Subscript):
        inner = ", ".join(_annotation_text(e.slice.value) for e in node.slice if isinstance(e.slice, cst.Index))
        return f"{_annotation_text(node.value)}[{inner}]"
    return ""


def caller_provides_projection(block: "BlockModel") -> bool:
    """The caller passes the projection in (``downsample=None``) or the
    identity itself (``forward(x, identity)``): matching shapes is then the
    caller's contract, as in torchvision's BasicBlock."""
    if caller_projections(block):
        return True
    forward = block.forward
    if forward is not None:
        params = list(forward.params.params)[2:] + list(forward.params.kwonly_params)
        if any(PROJECTION_PARAMETER.match(p.name.value) for p in params):
            return True
    return False


def present_module(world: "World", attr: str, facts: Facts) -> Optional[bool]:
    """Whether ``self.<attr>`` holds a module on a path with these facts:
    True, False (None, or no such attribute), or None (cannot tell)."""
    assigned = world.attrs.get(attr)
    if assigned is None:
        return False
    value = assigned.loc.value
    options = [(cond, o.value) for cond, o in value.options] if isinstance(value, AltV) else [(True, value)]
    answers = set()
    for cond, option in options:
        if facts.evaluate(cond) is False:
            continue
        if isinstance(option, NoneV):
            answers.add(False)
        elif isinstance(option, LayerV):
            answers.add(True)
        elif isinstance(option, ParamV):
            answers.add(facts.evaluate(_not_none(option.name)))
        else:
            answers.add(None)
    return answers.pop() if len(answers) == 1 else None


def _not_none(name: str):
    from .symbolic import Truth, negate

    return negate(Truth(f"{name} is None"))


def existing_projection(block: "BlockModel", world: "World", flow: Flow, residual: Residual) -> Optional[str]:
    """The attribute of a shortcut projection that exists on the add's path
    but is not what the add uses: a module that projects (see
    :func:`projects`) or one the caller passes in for that (see
    :func:`caller_projections`), that does not feed the main path, and whose
    widths, where known, take the block input to the main path's width.
    None when there is none (or the add uses it)."""
    from .block import channels_of

    event = residual.event
    if event is None:
        return None
    facts = residual.facts
    main_ancestors = flow.ancestors(event.result)
    caller = caller_projections(block)
    for name, assigned in world.attrs.items():
        value = assigned.loc.value
        options = [o.value for _, o in value.options] if isinstance(value, AltV) else [value]
        layers = [o.spec for o in options if isinstance(o, LayerV)]
        if name in caller:
            if not flow_calls(flow, name, facts) and present_module(world, name, facts) is not True:
                continue  # the caller may pass None here: it exists only if forward uses it
        elif not layers or not all(projects(spec) for spec in layers):
            continue
        elif present_module(world, name, facts) is not True:
            continue
        calls = [v for v in flow.values if v.kind == "layer" and (v.attr == name or
                                                                 any(v.spec is spec for spec in layers))]
        if any(id(v) in main_ancestors and not _is_operand(v, event) for v in calls):
            continue  # it feeds the main path (a downsample at the start of it)
        replaced_main = {id(e.new) for e in overwritten_main_paths(flow)}
        if any(not flow.is_dead(v) and id(v) not in replaced_main and not _replaced_through(v, replaced_main, event)
               for v in calls):
            continue  # its output is used (here or by another add): not bypassed
        if layers and not _widths_fit(layers, flow, residual, channels_of):
            continue
        if not calls and layers and not any(_changes_shape(spec, facts) for spec in layers):
            continue  # never run, and the add works without it: just unused (unused-submodule)
        return name
    return None


def _changes_shape(spec: LayerSpec, facts: Facts) -> bool:
    """The projection changes the width or the resolution (as far as known)."""
    summary = spec.summary
    if summary.in_channels is not None and summary.out_channels is not None and \
            facts.equal(summary.in_channels, summary.out_channels) is not True:
        return True
    return summary.stride is not None and facts.equal(summary.stride, Num.const(1)) is not True


def flow_calls(flow: Flow, attr: str, facts: Facts) -> bool:
    """Forward calls ``self.<attr>`` on the path these facts describe."""
    return any(v.kind == "layer" and v.attr == attr and v.facts is not None and
               (facts.extends(v.facts) or v.facts.extends(facts)) for v in flow.values)


def _replaced_through(value: FVal, replaced: Set[int], add: AddEvent) -> bool:
    """``value`` reaches ``add`` only as the operand that overwrote the main path."""
    return any(strip_elementwise(operand) is value and id(operand) in replaced for operand in (add.left, add.right))


def _is_operand(value: FVal, add: AddEvent) -> bool:
    return any(strip_elementwise(operand) is value for operand in (add.left, add.right))


def _widths_fit(layers: List[LayerSpec], flow: Flow, residual: Residual, channels_of) -> bool:
    """Each projection takes the block input's width to the main path's
    (both known): a head, an attention's projection or a main-path layer
    fed the wrong tensor is not a shortcut."""
    facts = residual.facts
    from .block import first_input_width

    main_width = channels_of(flow, residual.main, facts)
    input_width = first_input_width(flow)
    if not isinstance(main_width, Num):
        return False
    for spec in layers:
        summary = spec.summary
        if summary.out_channels is None or facts.equal(summary.out_channels, main_width) is not True:
            return False
        if summary.in_channels is None or input_width is None or \
                facts.equal(summary.in_channels, input_width) is not True:
            return False
    return True
