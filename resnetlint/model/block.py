"""The block model rules query: one :class:`BlockModel` per ``nn.Module`` class.

A block model is the list of ways ``__init__`` can run (worlds), each with the
dataflow of ``forward`` in that world.  :class:`FileAnalysis` builds the models
of every module class in a file, lazily, and lets a class used as a layer by
another (``BasicConv`` inside a block) be summarised through its own model.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Set, Tuple

import libcst as cst

from .context import ClassFacts, FileFacts, ModuleContext
from .project import Project
from .forward_exec import AddEvent, AssignEvent, Budget, Flow, ForwardExecutor, FVal, ancestors
from .init_exec import InitResult, Interpreter, World
from .symbolic import Cond, Facts, Num
from .layers import iter_layers, sequential_children
from .values import AltV, Item, LayerSpec, LayerV, Summary

# Attribute names people give a shortcut branch.  ``proj`` alone is left out on
# purpose: in attention and MLP blocks it names the main path's last layer.
SHORTCUT_NAME = re.compile(
    r"""^_?(
        skip|shortcut|short_cut|sc|downsample|down_sample|down|residual|res|identity
        |conv_?shortcut|shortcut_?conv|shortcut_?layer|skip_?conv|conv_?skip|skip_?layer
        |res_?conv|conv_?res|proj_?shortcut|shortcut_?proj|match_?channels|channel_?match
        |identity_?conv|residual_?conv|skip_?connection|shortcut_?connection
    )(_?\d+)?$""",
    re.VERBOSE | re.IGNORECASE,
)


def is_shortcut_name(name: str) -> bool:
    return bool(SHORTCUT_NAME.match(name))


@dataclass
class WorldFlow:
    world: World
    flow: Optional[Flow]


@dataclass
class BlockModel:
    cls: cst.ClassDef
    ctx: ModuleContext
    init: InitResult
    forward: Optional[cst.FunctionDef]
    forward_owner: Optional[cst.ClassDef]
    worlds: List[WorldFlow] = field(default_factory=list)
    interp: Optional[Interpreter] = None

    @property
    def name(self) -> str:
        return self.cls.name.value

    @property
    def facts(self) -> ClassFacts:
        return self.ctx.class_facts(self.name)

    @property
    def complete(self) -> bool:
        """Every way of constructing and running it was explored."""
        return self.init.complete and all(w.flow is None or w.flow.complete for w in self.worlds)

    def interp_method(self, name: str):
        """A method of the class (or a same-file base) by name, or None."""
        for stmt in self.cls.body.body:
            if isinstance(stmt, cst.FunctionDef) and stmt.name.value == name:
                return stmt
        return None

    def lineage(self) -> List[Tuple[cst.ClassDef, ClassFacts]]:
        """The class and every base we read the source of (this file or
        another module), each with its facts: a method reading an attribute
        may be inherited."""
        interp = self.interp
        out: List[Tuple[cst.ClassDef, ClassFacts]] = []
        queue = [self.cls]
        while queue:
            cls = queue.pop()
            if any(c is cls for c, _ in out):
                continue
            out.append((cls, interp.class_ctx(cls).class_facts(cls.name.value)))
            queue.extend(interp.bases_of(cls))
        return out

    @property
    def has_unknown_base(self) -> bool:
        """A base class (other than torch's and mmengine's) whose source we
        cannot read: it may build or use attributes we never see."""
        from .torch_api import is_module_base

        for cls, _ in self.lineage():
            for qual in self.interp.class_ctx(cls).external_bases(cls):
                if not is_module_base(qual) and not qual.startswith(("torch.", "typing.", "abc.")):
                    return True
        return False

    @property
    def own_forward(self) -> bool:
        return self.forward is not None and self.forward_owner is self.cls

    def flows(self) -> Iterator[Tuple[World, Flow]]:
        for wf in self.worlds:
            if wf.flow is not None and wf.flow.complete:
                yield wf.world, wf.flow

    def layer_specs(self, world: World) -> Iterator[LayerSpec]:
        """Every layer built in this world: attributes, their alternatives and
        container children, and the class's own body if it is a Sequential."""
        for assigned in world.attrs.values():
            yield from iter_layers(assigned.loc)
        if world.seq_children is not None:
            for item in world.seq_children[0]:
                yield from iter_layers(item.loc)

    def sequential_bodies(self, world: World) -> Iterator[Tuple[str, List[Item]]]:
        """The children of every nn.Sequential built in this world, in order,
        with its module path (``block``, ``body.2``; ``""`` for the class's
        own body when it subclasses nn.Sequential)."""
        for name, assigned in world.attrs.items():
            yield from _sequentials_in(name, assigned.loc)
        if world.seq_children is not None:
            children, complete = world.seq_children
            if complete:
                yield "", list(children)
                for index, child in enumerate(children):
                    yield from _sequentials_in(str(index), child.loc)


def _sequentials_in(path: str, loc) -> Iterator[Tuple[str, List[Item]]]:
    value = loc.value
    if isinstance(value, AltV):
        for _, option in value.options:
            yield from _sequentials_in(path, option)
        return
    if not isinstance(value, LayerV):
        return
    spec = value.spec
    children = sequential_children(spec)
    if children and spec.children_complete and spec.site is not None:
        yield path, children
        for index, child in enumerate(children):
            if child.segment is None:
                yield from _sequentials_in(f"{path}.{index}", child.loc)


class FileAnalysis:
    """All module classes of one file, analysed on demand."""

    def __init__(self, module: cst.Module, facts: Optional[FileFacts] = None, path: str = "<string>",
                 project: Optional[Project] = None):
        self.project = project
        self.ctx = ModuleContext(module, facts, path, project=project)
        self.interp = Interpreter(self.ctx, class_summaries=self.class_summaries)
        self._models: Dict[Tuple[str, str], BlockModel] = {}
        self._summaries: Dict[Tuple[str, str], Optional[List[Tuple[Cond, Summary]]]] = {}
        self._building: Set[Tuple[str, str]] = set()

    def blocks(self) -> List[BlockModel]:
        return [self.block(cls) for cls in self.ctx.iter_module_classes()]

    def release(self) -> None:
        """Break the analysis's reference cycles (the interpreter calls back
        into ``class_summaries``) so that reference counting frees the whole
        file at once: left to the cyclic collector, a batch of files' models
        costs a full collection scanning hundreds of thousands of objects."""
        self.interp.class_summaries = None
        self._models.clear()
        self._summaries.clear()

    def block(self, cls: cst.ClassDef) -> BlockModel:
        key = (self.interp.class_ctx(cls).path, cls.name.value)
        model = self._models.get(key)
        if model is None or model.cls is not cls:
            model = self._build(cls)
            self._models[key] = model
        return model

    def _build(self, cls: cst.ClassDef) -> BlockModel:
        init = self.interp.run_class(cls)
        forward, owner = self.interp.find_method(cls, "forward")
        model = BlockModel(cls, self.interp.class_ctx(cls), init, forward, owner, interp=self.interp)
        budget = Budget()
        forward_ctx = self.interp.class_ctx(owner)
        for world in init.worlds:
            flow = None
            if forward is not None:
                if budget.left < 0:
                    flow = Flow(world, complete=False, reason="forward is too long to explore")
                else:
                    flow = ForwardExecutor(forward_ctx, self.interp, cls, world, budget).run(forward)
            model.worlds.append(WorldFlow(world, flow))
        return model

    def class_summaries(self, cls: cst.ClassDef) -> Optional[List[Tuple[Cond, Summary]]]:
        """How a module class transforms a tensor, per world, in terms of its
        own constructor parameters (None when it cannot be analysed)."""
        ctx = self.interp.class_ctx(cls)
        if ctx.foreign and self.project is not None:
            # The same helper class serves every file that imports it.
            return self.project.memo(ctx, f"class-summary:{cls.name.value}", lambda: self._summarise(cls))
        return self._summarise(cls)

    def _summarise(self, cls: cst.ClassDef) -> Optional[List[Tuple[Cond, Summary]]]:
        name = cls.name.value
        key = (self.interp.class_ctx(cls).path, name)
        if key in self._summaries:
            return self._summaries[key]
        if key in self._building:
            return None
        self._building.add(key)
        try:
            model = self.block(cls)
        finally:
            self._building.discard(key)
        out: Optional[List[Tuple[Cond, Summary]]] = []
        if not model.init.complete:
            out = None
        else:
            for wf in model.worlds:
                world = wf.world
                if world.base_layer is not None and model.own_forward:
                    base = world.base_layer.summary
                    # Its own forward may pad or resample: keep only the widths.
                    summary = Summary(in_channels=base.in_channels, out_channels=base.out_channels,
                                      keeps_channels=base.keeps_channels, axis=base.axis, has_weights=True)
                elif wf.flow is None or not wf.flow.complete or not wf.flow.returns:
                    summary = Summary()
                else:
                    summary = flow_summary(wf.flow, world.facts)
                out.append((world.condition(), summary))
        self._summaries[key] = out
        return out


# ----------------------------------------------------------------------------
# Queries over a flow
# ----------------------------------------------------------------------------

SAME_AS_INPUT = "same-as-input"


def flow_summary(flow: Flow, facts: Facts) -> Summary:
    outputs = flow.returns
    if not outputs:
        return Summary()
    channel_results = {_key(channels_of(flow, out, facts)) for out in outputs}
    strides = {stride_of(flow, out) for out in outputs}
    if len(channel_results) != 1 or len(strides) != 1:
        return Summary()
    channels = channels_of(flow, outputs[0], facts)
    stride = strides.pop()
    in_channels = input_channels(flow, facts)
    has_weights = any(v.kind == "layer" for v in flow.values)
    if channels == SAME_AS_INPUT:
        return Summary(in_channels=in_channels, keeps_channels=True, stride=stride, axis="c", has_weights=has_weights)
    if channels is None:
        return Summary(in_channels=in_channels, stride=stride, has_weights=has_weights)
    return Summary(in_channels=in_channels, out_channels=channels, stride=stride, axis="c", has_weights=has_weights)


def _key(result):
    return result.terms if isinstance(result, Num) else result


def _layer_summary(value: FVal) -> Optional[Summary]:
    if value.kind != "layer" or value.spec is None:
        return None
    return value.spec.summary


def passes_channels(value: FVal) -> bool:
    """Values whose channel count is their first input's."""
    if value.kind in ("func", "method") and value.elementwise:
        return True
    if value.kind == "layer":
        summary = _layer_summary(value)
        return bool(summary and summary.keeps_channels)
    return False


def channels_of(flow: Flow, value: FVal, facts: Facts, _depth: int = 0):
    """Channels of a tensor value: a Num, SAME_AS_INPUT (the block input's, not
    known here) or None (unknown)."""
    if _depth > 200:
        return None
    if value.kind == "input":
        return SAME_AS_INPUT if value is flow.input else None
    if value.kind == "layer":
        summary = _layer_summary(value)
        if summary is None or not summary.known:
            return None
        if summary.keeps_channels:
            return channels_of(flow, value.inputs[0], facts, _depth + 1) if value.inputs else None
        return facts.norm(summary.out_channels) if summary.out_channels is not None else None
    if value.kind in ("func", "method") and value.elementwise and value.inputs:
        return channels_of(flow, value.inputs[0], facts, _depth + 1)
    if value.kind == "binop" and value.name in ("Add", "Subtract", "Multiply", "Divide"):
        sides = [channels_of(flow, i, facts, _depth + 1) for i in value.inputs if i.tensor]
        known = [s for s in sides if s is not None]
        if known and all(_key(k) == _key(known[0]) for k in known):
            return known[0]
        return None
    return None


GLOBAL = Num.atom("<global pooling>")  # a 1x1 map that broadcasts against any size


def stride_of(flow: Flow, value: FVal, _depth: int = 0) -> Optional[Num]:
    """Spatial reduction factor of a value relative to the block input
    (``GLOBAL`` after global pooling, None when unknown)."""
    one = Num.const(1)
    if _depth > 200:
        return None
    if value.kind == "input":
        return one if value is flow.input else None
    if value.kind == "layer":
        if value.spec is not None and value.spec.family == "adaptive_pool" and _is_global(value.spec):
            return GLOBAL
        summary = _layer_summary(value)
        if summary is None or summary.stride is None or not value.inputs:
            return None
        before = stride_of(flow, value.inputs[0], _depth + 1)
        if before == GLOBAL:
            return GLOBAL
        return before * summary.stride if before is not None else None
    if value.kind in ("func", "method") and value.inputs:
        if value.name in ("mean", "amax", "adaptive_avg_pool2d", "adaptive_max_pool2d") and _keeps_dims(value):
            return GLOBAL
        if value.elementwise:
            return stride_of(flow, value.inputs[0], _depth + 1)
        return None
    if value.kind == "binop":
        sides = [stride_of(flow, i, _depth + 1) for i in value.inputs if i.tensor]
        if value.name in ("Multiply", "Divide", "Add", "Subtract"):
            # A globally pooled gate (squeeze-excitation) broadcasts.
            sides = [s for s in sides if s != GLOBAL] or sides
        known = [s for s in sides if s is not None]
        if len(known) == len(sides) and known and all(k == known[0] for k in known):
            return known[0]
        return None
    return None


def _is_global(spec: LayerSpec) -> bool:
    from .values import as_int_pair

    size = as_int_pair(spec.arg("output_size"))
    return size is not None and size.const_value() == 1


def _keeps_dims(value: FVal) -> bool:
    node = value.node
    if not isinstance(node, cst.Call):
        return False
    for arg in node.args:
        if arg.keyword is not None and arg.keyword.value == "keepdim":
            return isinstance(arg.value, cst.Name) and arg.value.value == "True"
    return value.name.startswith("adaptive")


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
        if current.kind in ("layer", "func", "method") and current.inputs:
            current = current.inputs[0]
        elif current.kind == "binop" and current.inputs:
            current = current.inputs[0]
        else:
            current = None
    return out


def consumes_directly(value: FVal, source: FVal) -> bool:
    """``value`` takes ``source`` as its first input, possibly through
    elementwise functions."""
    current = value.inputs[0] if value.inputs else None
    while current is not None:
        if current is source:
            return True
        if current.kind in ("func", "method") and current.elementwise and current.inputs:
            current = current.inputs[0]
        else:
            return False
    return False


def input_channels(flow: Flow, facts: Facts) -> Optional[Num]:
    """The block input's channels, read off the layers that consume it: known
    only when every such layer that states a width agrees."""
    source = flow.input
    if source is None:
        return None
    widths = []
    for value in flow.values:
        if value.kind == "layer" and consumes_directly(value, source):
            summary = _layer_summary(value)
            if summary is not None and summary.in_channels is not None:
                widths.append(facts.norm(summary.in_channels))
    if widths and all(w == widths[0] for w in widths):
        return widths[0]
    return None


def is_tensor_ancestor(a: FVal, b: FVal) -> bool:
    return id(a) in ancestors(b)


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
            skip_side = _shortcut_side(left, right)
            if skip_side == "left":
                out.append(Residual(event, left, right, event.left_node, event.right_node))
            elif skip_side == "right":
                out.append(Residual(event, right, left, event.right_node, event.left_node))
    return out


def intended_residuals(flow: Flow) -> List[Residual]:
    """The residual adds as written, minus those without a main path (the
    shortcut added to the input after the main path was overwritten), plus
    the add the author meant in that case: the overwritten main path against
    the shortcut that replaced it."""
    return flow.memo("intended_residuals", _intended_residuals)


def _intended_residuals(flow: Flow) -> List[Residual]:
    out = [r for r in residual_adds(flow) if not all(_is_shortcut_layer(v) for v in main_chain(r.main))]
    for event in overwritten_main_paths(flow):
        out.append(Residual(None, event.new, event.old, event.target, None, facts=event.facts, overwrite=event))
    return out


def _is_shortcut_layer(value: FVal) -> bool:
    return bool(value.attr) and is_shortcut_name(value.attr.split("[")[0])


def is_main_path(value: FVal, flow: Flow) -> bool:
    """Computed from the block input through layers none of which is a shortcut."""
    chain = main_chain(value)
    if not chain or flow.input is None:
        return False
    if any(_is_shortcut_layer(layer) for layer in chain):
        return False
    return id(flow.input) in flow.ancestors(value)


def shortcut_kind(value: FVal, dead: FVal, flow: Flow) -> Optional[str]:
    """How ``value`` is a shortcut of the (dead) main path: the block input or
    a shortcut module applied to it; None otherwise."""
    core = strip_elementwise(value)
    if flow.input is not None and core is flow.input:
        return f"the block input `{flow.input.name}`"
    if core.kind == "layer" and _is_shortcut_layer(core):
        if core.inputs and (core.inputs[0] is flow.input or id(core.inputs[0]) in flow.ancestors(dead)):
            name = f"self.{core.attr}" if core.attr and not core.attr.startswith("<") else "the shortcut"
            return f"the shortcut `{name}`"
    return None


def overwritten_main_paths(flow: Flow) -> List[AssignEvent]:
    """Assignments that replace a dead main-path result with the shortcut
    before a residual add (``out = self.skip(x)`` after ``out = self.block(x)``)."""
    return flow.memo("overwritten_main_paths", _overwritten_main_paths)


def _overwritten_main_paths(flow: Flow) -> List[AssignEvent]:
    out = []
    for event in flow.assignments:
        dead = event.old
        if dead is None or shortcut_kind(event.new, dead, flow) is None or not is_main_path(dead, flow):
            continue
        # Judged on the path of the overwrite: ``if self.downsample is not
        # None: out = self.downsample(x)`` loses the main path exactly there.
        if not flow.dead_on_path(dead, event.facts) or not _add_follows(flow, event.new):
            continue
        out.append(event)
    return out


def _add_follows(flow: Flow, value: FVal) -> bool:
    return any(add.left is value or add.right is value or id(value) in flow.ancestors(add.result)
               for add in flow.adds if add.result.order > value.order or add.left is value or add.right is value)


PROJECTION_PARAMETER = re.compile(r"^(downsample|down_sample|shortcut|skip|proj|projection|identity|residual)(_\w+)?$")


def caller_provides_projection(block: "BlockModel") -> bool:
    """The caller passes the projection in (``downsample=None``) or the
    identity itself (``forward(x, identity)``): matching shapes is then the
    caller's contract, as in torchvision's BasicBlock."""
    init = block.init.init
    if init is not None:
        params = list(init.params.params) + list(init.params.kwonly_params)
        if any(PROJECTION_PARAMETER.match(p.name.value) for p in params):
            return True
    forward = block.forward
    if forward is not None:
        params = list(forward.params.params)[2:] + list(forward.params.kwonly_params)
        if any(PROJECTION_PARAMETER.match(p.name.value) for p in params):
            return True
    return False


def _shortcut_side(left: FVal, right: FVal) -> Optional[str]:
    def through_shortcut(value: FVal) -> bool:
        return any(layer.attr and is_shortcut_name(layer.attr.split("[")[0]) for layer in main_chain(value))

    left_sc, right_sc = through_shortcut(left), through_shortcut(right)
    if left_sc and not right_sc:
        return "left"
    if right_sc and not left_sc:
        return "right"
    left_len, right_len = len(main_chain(left)), len(main_chain(right))
    if left_len < right_len:
        return "left"
    if right_len < left_len:
        return "right"
    return None


def strip_elementwise(value: FVal) -> FVal:
    while value.kind in ("func", "method") and value.elementwise and value.inputs:
        value = value.inputs[0]
    return value


def spec_of(value: FVal) -> Optional[LayerSpec]:
    return value.spec if value.kind == "layer" else None
