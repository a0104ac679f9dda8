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
from .symbolic import TRUTHY, Facts, Num
from .values import AltV, LayerSpec, LayerV, NoneV, ParamV, Value, as_int_pair, possible_values

if TYPE_CHECKING:  # pragma: no cover
    from .block import BlockModel
    from .init_exec import World

# Families that change a tensor's shape without computing features.
_ADAPTING_FAMILIES = frozenset({"linear", "pool", "norm", "act", "dropout", "identity", "pad"})

# Constructor parameters through which callers hand a block its shortcut
# projection (torchvision's ``downsample=None``), by the name such parameters
# have in practice: only for a stored module forward never calls (what forward
# does with one it calls decides); see caller_projections.
# Attributes named for a shortcut's projection (`proj` alone is also an
# attention's output layer: not here).
SHORTCUT_ATTRIBUTE = re.compile(r"(downsample|down_sample|shortcut|skip|identity|residual)", re.IGNORECASE)
PROJECTION_PARAMETER = re.compile(r"^(downsample|down_sample|shortcut|skip|proj|projection|identity|residual)(_\w+)?$")


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


_POINTWISE_FAMILIES = ("act", "norm")


def pointwise_from(value: FVal, root: FVal) -> bool:
    """``value`` is ``root`` through steps that keep its shape and mix no
    channels: elementwise functions, a scalar factor, an activation or a
    norm (a pre-activation block's shortcut starts from ``act(x) * beta``)."""
    current = value
    while current is not root:
        if current.kind in ("func", "method") and current.elementwise and current.inputs:
            current = current.inputs[0]
        elif current.kind == "binop" and current.elementwise and \
                len([i for i in current.inputs if i.tensor]) == 1 and current.name in ("Multiply", "Divide"):
            current = next(i for i in current.inputs if i.tensor)
        elif current.kind == "layer" and current.spec is not None and current.spec.family in _POINTWISE_FAMILIES \
                and len(current.inputs) == 1:
            current = current.inputs[0]
        else:
            return False
    return True


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
    where the chain started (nearest first).  A tuple or list of tensors
    (``torch.cat((x0, x1), 1)``) is followed through its first element, an
    element (``x, _ = self.attn(x)``, ``self.ma(q, k, v)[0]``) through what
    it was taken from, an
    operator through its first tensor operand that is not a constant or a
    parameter (``self.gamma * self.block(x)`` through the block, ``float(b) /
    p * x`` through ``x``)."""
    out = []
    current: Optional[FVal] = value
    seen: Set[int] = set()
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if current.kind == "layer":
            out.append(current)
        if current.kind in ("layer", "func", "method", "container", "item") and current.inputs:
            current = current.inputs[0]
        elif current.kind == "binop" and current.inputs:
            # the tensor operand: `float(b) / self.life_prob * x` (stochastic depth) scales the block's output
            current = next((i for i in current.inputs if i.kind != "static" and i.tensor),
                           next((i for i in current.inputs if i.kind != "static"), current.inputs[0]))
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
    if sum(_mixing_layers(layer.spec) if layer.spec is not None else 1 for layer in chain) > 1:
        return None  # two convs or linear maps in a row (an MLP): a main path fed a stale tensor
    if all(_keeps_shape(layer.spec) and layer.attr not in flow.caller_projections for layer in chain):
        # ``x = self.dropout(input)`` where ``self.dropout(x)`` was meant: an
        # activation, dropout or norm applied to the input adapts nothing, it
        # is a main-path layer fed a stale tensor (stale-input).
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


_SHAPE_KEEPING_FAMILIES = frozenset({"act", "dropout", "identity", "norm"})


def _keeps_shape(spec: Optional[LayerSpec]) -> bool:
    """A layer that only ever keeps the shape (activation, dropout, norm,
    identity, drop path), or a Sequential of such layers."""
    if spec is None:
        return False
    if spec.family in _SHAPE_KEEPING_FAMILIES or spec.transparent:
        return True
    if spec.family in ("container", "composite") and spec.children and spec.children_complete:
        return all(isinstance(child.loc.value, LayerV) and _keeps_shape(child.loc.value.spec)
                   for child in spec.children)
    return False


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
        if root_width is None and _added_raw(flow, root):
            # ``x + out``: the input has the main path's width, so a layer
            # that reads it with another width cannot stand in for the
            # main path (HGNet's excitation conv fed ``x``).
            root_width = channels_of(flow, main, facts)
    if first is not None and first.in_channels is not None and isinstance(root_width, Num):
        if facts.equal(first.in_channels, root_width) is not True:
            return False
    out_width, main_width = channels_of(flow, chain[0], facts), channels_of(flow, main, facts)
    if isinstance(out_width, Num) and isinstance(main_width, Num) and facts.equal(out_width, main_width) is not True:
        return False
    return True


def _added_raw(flow: Flow, value: FVal) -> bool:
    """``value`` itself is an operand of an add (an identity shortcut)."""
    return any(strip_elementwise(operand) is value for add in flow.adds for operand in (add.left, add.right))


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
        # cheapest test first: most assignments leave nothing dead behind
        if dead is None or not flow.dead_on_path(dead, event.facts) or not is_main_path(dead, flow):
            continue
        if shortcut_kind(event.new, dead, flow) is None or not _add_follows(flow, event.new):
            continue
        out.append(event)
    return out


def _add_follows(flow: Flow, value: FVal) -> bool:
    """``value`` (the shortcut that overwrote the main path) is an operand
    of a later add, directly or through projections and elementwise
    functions.  A value that goes on through main-path layers first
    (``out = self.relu(x)`` then ``out = self.conv2(out)``) restarted the
    chain from a stale tensor: that is a stale input, not a lost branch."""
    return any(projection_chain(flow, operand, value) is not None
               for add in flow.adds for operand in (add.left, add.right) if operand.order >= value.order)


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
    projection (``self.downsample = downsample``, or one built from a class
    the caller passes: ``proj_layer(in_chs, out_chs, stride=stride)``):
    attribute -> parameter.  Such a module is recognised by what forward
    does with it: it takes the tensor where the block's two branches part
    to the add on its own branch, through projections only (a caller's
    ``drop_path`` applied to the main path's output is not one).  A stored
    module whose result reaches no add (forward never calls it, or drops
    what it computes) is one when the parameter's name gives it that role
    (``downsample``, ``shortcut``...): the block then ignores the projection
    its caller builds for it."""
    found = getattr(block, "_caller_projections", None)
    if found is None:
        found = _caller_projections(block)
        block._caller_projections = found
    return found


def _caller_projections(block: "BlockModel") -> Dict[str, str]:
    if block.init.init is None:
        return {}
    params = _constructor_parameters(block)
    out: Dict[str, str] = {}
    for attr, name in _caller_modules(block, params).items():
        applied = [_applied_as_shortcut(wf.flow, attr) for wf in block.worlds if wf.flow is not None]
        if any(applied) or (False not in applied and _projection_parameter(params[name])):
            out[attr] = name
    return out


def _caller_modules(block: "BlockModel", params: Dict[str, cst.Param]) -> Dict[str, str]:
    """Attributes holding a module the caller passes in, or one built by
    calling a class the caller passes: attribute -> parameter."""
    out: Dict[str, str] = {}
    for wf in block.worlds:
        for attr, assigned in wf.world.attrs.items():
            for option in possible_values(assigned.loc.value):
                name = option.name if isinstance(option, ParamV) else \
                    option.spec.from_parameter if isinstance(option, LayerV) else None
                if name in params:
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


def _applied_as_shortcut(flow: Flow, attr: str) -> Optional[bool]:
    """Whether forward applies ``self.<attr>`` on a shortcut: to a tensor
    the other operand of an add is also computed from, with only
    projections and elementwise functions between it and that add.  None
    when forward never calls it or its result reaches no add."""
    calls = [v for v in flow.values if v.kind == "layer" and v.attr == attr and v.inputs]
    if not any(id(call) in flow.ancestors(add.result) for call in calls for add in flow.adds):
        return None
    for add in flow.adds:
        for this, other in ((add.left, add.right), (add.right, add.left)):
            other_sources = flow.ancestors(other) | {id(other)}
            for call in calls:
                if id(call) in other_sources or id(call.inputs[0]) not in other_sources:
                    continue  # it feeds both operands, or only this one's branch
                if _reaches_through_projections(this, call):
                    return True
    return False


def _reaches_through_projections(value: FVal, call: FVal) -> bool:
    current: Optional[FVal] = value
    while current is not None and current is not call:
        if current.kind == "layer" and is_projection(current.spec):
            current = current.inputs[0] if current.inputs else None
        elif current.kind in ("func", "method") and current.elementwise and current.inputs:
            current = current.inputs[0]
        else:
            return False
    return current is call


def _projection_parameter(param: cst.Param) -> bool:
    """The parameter's name gives it the role of the shortcut's projection,
    and nothing says it is a switch instead (``shortcut: bool``,
    ``residual=False``: pytorchcv's and timm's flags for the add itself)."""
    return bool(PROJECTION_PARAMETER.match(param.name.value)) and not _boolean_parameter(param)


def _boolean_parameter(param: cst.Param) -> bool:
    annotation = param.annotation.annotation if param.annotation is not None else None
    if isinstance(annotation, cst.Name) and annotation.value == "bool":
        return True
    return isinstance(param.default, cst.Name) and param.default.value in ("True", "False")


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


def _flag_name(key: str) -> Optional[str]:
    """The parameter a truth key tests (``shortcut is truthy``), or None."""
    return key[:-len(TRUTHY)] if key.endswith(TRUTHY) else None


def projection_switched_off(block: "BlockModel", world: "World") -> Optional[str]:
    """The constructor flag whose setting in ``world`` builds no projection
    while its other setting builds one the add uses (mmpretrain's
    ``with_residual_conv=False``): the caller who turns the projection off
    promises shapes that match, as one who passes ``downsample=None`` does.
    A projection built under a test of the widths or the stride is no such
    switch (``if stride != 1:`` forgetting the widths is the bug RL202 is
    for).  Returns the flag's name, or None."""
    params = _constructor_parameters(block)
    for key, value in world.facts.truth.items():
        flag = _flag_name(key)
        if flag not in params:
            continue
        for other in block.worlds:
            if other.world is world or other.flow is None:
                continue
            if other.world.facts.truth.get(key) is (not value) and _skip_projected(other.flow):
                return flag
    return None


def caller_flag(block: "BlockModel", cond) -> Optional[str]:
    """The constructor flag a condition tests, bare or negated (``if
    shortcut:``, ``nn.Identity() if should_apply_shortcut else ...``): a
    ``bool`` parameter (annotated so, or with a ``True``/``False``
    default), which the caller sets together with the stride and the
    widths it passes.  None for any other condition."""
    from .symbolic import Not, Truth

    while isinstance(cond, Not):
        cond = cond.item
    name = _flag_name(cond.key) if isinstance(cond, Truth) else None
    param = _constructor_parameters(block).get(name) if name is not None else None
    return name if param is not None and _boolean_parameter(param) else None


def _forward_reads_flag(block: "BlockModel", world: "World", flag: Optional[str]) -> bool:
    """``forward`` (or a method it calls) reads an attribute that holds the
    constructor parameter ``flag`` as it was passed."""
    if flag is None:
        return False
    run = _run_by_forward(block.facts)
    for attr, assigned in world.attrs.items():
        value = assigned.loc.value
        if isinstance(value, ParamV) and value.name == flag and block.facts.load_methods.get(attr, frozenset()) & run:
            return True
    return False


def add_chosen_by_caller(block: "BlockModel", world: "World", facts: Facts) -> Optional[str]:
    """The constructor flag that ``forward`` tests on the way to an add (the
    path's ``facts``), set away from its default or without a default:
    pytorchcv's ``ShuffleUnit(..., downsample)`` adds the input only when
    the caller says ``downsample=False``, a ``shortcut: bool`` decides
    whether the add happens at all.  The caller who makes that choice
    promises shapes that match.  A flag left at its default promises
    nothing (the block's defaults must work), and one only ``__init__``
    tests (``always_project``) chooses a layer, not the add.  Returns the
    flag's name, or None."""
    params = _constructor_parameters(block)
    for key, value in facts.truth.items():
        flag = _flag_name(key)
        if not _forward_reads_flag(block, world, flag):
            continue  # decided in __init__ only: see projection_switched_off
        param = params.get(flag)
        if param is None or param.star:
            continue
        default = param.default
        if default is None and _boolean_parameter(param):
            return flag  # ``shortcut: bool``: every caller decides
        # set away from a True/False default (``out_channels=None`` is an
        # optional width, not a switch)
        if isinstance(default, cst.Name) and default.value in ("True", "False") and \
                value != (default.value == "True"):
            return flag
    return None


def _skip_projected(flow: Flow) -> bool:
    """An add of this path takes its shortcut through a projection (an
    ``nn.Identity`` in the projection's place is none)."""
    for residual in residual_adds(flow):
        if residual.skip_node is None or flow.input is None:
            continue
        chain = projection_chain(flow, residual.skip, flow.input)
        if chain and any(projects(call.spec) for call in chain):
            return True
    return False


def present_module(world: "World", attr: str, facts: Facts) -> Optional[bool]:
    """Whether ``self.<attr>`` holds a module on a path with these facts:
    True, False (None, or no such attribute), or None (cannot tell)."""
    assigned = world.attrs.get(attr)
    if assigned is None:
        return False
    answers = set()
    for option in options_under(assigned.loc.value, facts):
        if isinstance(option, NoneV):
            answers.add(False)
        elif isinstance(option, LayerV):
            answers.add(True)
        elif isinstance(option, ParamV):
            answers.add(facts.evaluate(_not_none(option.name)))
        else:
            answers.add(None)
    return answers.pop() if len(answers) == 1 else None


def options_under(value: Value, facts: Facts) -> List[Value]:
    """The values ``value`` may be on a path with these facts: the
    alternatives (nested ones too: a helper that returns one of several
    layers, or None) whose conditions the facts do not rule out."""
    if not isinstance(value, AltV):
        return [value]
    return [inner for cond, option in value.options if facts.evaluate(cond) is not False
            for inner in options_under(option.value, facts)]


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
        layers = [o.spec for o in options_under(assigned.loc.value, facts) if isinstance(o, LayerV)]
        if name in caller:
            if not flow_calls(flow, name, facts) and present_module(world, name, facts) is not True \
                    and not ignored_by_forward(block, name):
                continue  # the caller may pass None here: it exists only if forward uses it
        elif not any(projects(spec) for spec in layers) or present_module(world, name, facts) is not True:
            continue
        else:
            # where it is built as a projection (a helper returns one when the shapes change, else
            # nn.Identity()), the raw input bypasses it
            layers = [spec for spec in layers if projects(spec)]
        calls = [v for v in flow.values if v.kind == "layer" and (v.attr == name or
                                                                 any(v.spec is spec for spec in layers))]
        if any(id(v) in main_ancestors and not _is_operand(v, event) for v in calls):
            continue  # it feeds the main path (a downsample at the start of it)
        replaced_main = {id(e.new) for e in overwritten_main_paths(flow)}
        if any(not flow.is_dead(v) and id(v) not in replaced_main and not _replaced_through(v, replaced_main, event)
               for v in calls):
            continue  # its output is used (here or by another add): not bypassed
        if layers and not _widths_fit(layers, flow, residual, channels_of, SHORTCUT_ATTRIBUTE.search(name) is not None):
            continue
        if not calls and layers and not any(_changes_shape(spec, facts) for spec in layers):
            continue  # never run, and the add works without it: just unused (unused-submodule)
        return name
    return None


def ignored_by_forward(block: "BlockModel", attr: str) -> bool:
    """``self.<attr>`` is stored but forward never calls it, on any path of
    any world, and no other method that could run it reads it (nor a
    subclass or another module): whatever the caller passes is ignored."""
    if not block.complete or block.has_subclass or block.attribute_read_elsewhere(attr):
        return False
    if any(flow_calls_anywhere(wf.flow, attr) for wf in block.worlds if wf.flow is not None):
        return False
    facts = block.facts
    readers = facts.load_methods.get(attr, frozenset()) - {"__init__"}
    return not facts.reflective and readers <= _run_by_forward(facts)


def _run_by_forward(facts) -> Set[str]:
    """``forward`` and the methods it reaches through ``self.<method>``."""
    reached, stack = set(), ["forward"]
    while stack:
        method = stack.pop()
        if method in reached:
            continue
        reached.add(method)
        stack.extend(name for name in facts.mentions.get(method, ()) if name in facts.methods)
    return reached


def flow_calls_anywhere(flow: Flow, attr: str) -> bool:
    return any(v.kind == "layer" and v.attr == attr for v in flow.values)


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


def _widths_fit(layers: List[LayerSpec], flow: Flow, residual: Residual, channels_of, named_shortcut: bool) -> bool:
    """Each projection takes the block input's width to the main path's
    (both known): a head, an attention's projection or a main-path layer
    fed the wrong tensor is not a shortcut.  An attribute named for a
    shortcut (``identity_conv``, ``downsample``) that takes the input's
    width needs no known main-path width (a Sequential built in a loop)."""
    facts = residual.facts
    from .block import first_input_width

    main_width = channels_of(flow, residual.main, facts)
    input_width = first_input_width(flow)
    if not isinstance(main_width, Num) and not named_shortcut:
        return False
    for spec in layers:
        summary = spec.summary
        if isinstance(main_width, Num) and (summary.out_channels is None or
                                            facts.equal(summary.out_channels, main_width) is not True):
            return False
        if summary.in_channels is None or input_width is None or \
                facts.equal(summary.in_channels, input_width) is not True:
            return False
    return True
