"""The block model rules query: one :class:`BlockModel` per ``nn.Module`` class.

A block model is the list of ways ``__init__`` can run (worlds), each with the
dataflow of ``forward`` in that world.  :class:`FileAnalysis` builds the models
of every module class in a file, lazily, and lets a class used as a layer by
another (``BasicConv`` inside a block) be summarised through its own model.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, FrozenSet, Iterator, List, Optional, Set, Tuple

import libcst as cst

from .context import ClassFacts, FileFacts, ModuleContext
from .project import Project
from .forward_exec import Budget, Flow, ForwardExecutor, FVal, tensor_ancestors
from .init_exec import InitResult, Interpreter, World
from .symbolic import Cond, Facts, Num, provably_different
from .layers import iter_layers, iter_layers_under, role_module
from .values import AltV, Item, LayerSpec, LayerV, ParamV, Summary, TupleV, as_num, possible_values

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

    def attribute_read_elsewhere(self, name: str) -> bool:
        """Another module of the package that names this class reads
        ``.<name>`` (see Project)."""
        project = self.ctx.project
        return project is not None and project.attribute_read_elsewhere(self.ctx, name, self.cls.name.value)

    def parameter_names(self) -> Set[str]:
        """The names of ``__init__``'s parameters (keyword-only ones too)."""
        init = self.init.init
        return {p.name.value for p in list(init.params.params) + list(init.params.kwonly_params)} if init else set()

    def numeric_defaults(self) -> Dict[str, int]:
        """Constructor parameters whose default is a number (or a bool)."""
        init = self.init.init
        if init is None or self.interp is None:
            return {}
        out: Dict[str, int] = {}
        _, owner = self.interp.find_method(self.cls, "__init__")
        ctx = self.interp.class_ctx(owner)  # defaults are written in the module of the __init__
        for param in list(init.params.params) + list(init.params.kwonly_params):
            if param.default is None:
                continue
            value = as_num(self.interp.eval_module_expr(param.default, ctx))
            number = value.const_value() if value is not None else None
            if number is not None:
                # a fraction (``e=0.5``, ``mlp_ratio=4.0`` stays an int) is a ratio: kept as is
                out[param.name.value] = int(number) if number == int(number) else number
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
    def own_init(self) -> bool:
        """The class defines ``__init__`` itself (an inherited one is its base's)."""
        return any(isinstance(stmt, cst.FunctionDef) and stmt.name.value == "__init__" for stmt in self.cls.body.body)

    @property
    def has_subclass(self) -> bool:
        """A class of the same file derives from this one (and may use what
        it builds)."""
        return any(self.name in bases for bases in self.ctx.facts.subclass_bases.values())

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

    def conditioned_layers(self, world: World) -> Iterator[Tuple[LayerSpec, Facts]]:
        """Every layer built in this world with the facts under which it is
        built (the world's, plus an alternative's own condition)."""
        for assigned in world.attrs.values():
            yield from iter_layers_under(assigned.loc, world.facts)
        if world.seq_children is not None:
            for item in world.seq_children[0]:
                yield from iter_layers_under(item.loc, world.facts)

    def sequential_bodies(self, world: World) -> Iterator[Tuple[str, List[Item]]]:
        """The children of every nn.Sequential built in this world, in order,
        with its module path (``block``, ``body.2``; ``""`` for the class's
        own body when it subclasses nn.Sequential)."""
        for name, assigned in world.attrs.items():
            yield from _sequentials_in(name, assigned.loc)
        if world.seq_children is not None:
            children, complete = world.sequential_modules()
            if complete:
                yield "", list(children)
                for index, child in enumerate(world.seq_children[0]):  # the attributes were walked above
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
    children = list(spec.children) if _is_chain(spec) else []
    if children and spec.children_complete and spec.site is not None:
        yield path, children
        for index, child in enumerate(children):
            if child.segment is None:
                yield from _sequentials_in(f"{path}.{index}", child.loc)


def caller_projection_contract(block: BlockModel, attr: str, param: str) -> LayerSpec:
    """What a projection the caller passes in does, by the contract every
    ``_make_layer`` follows: it takes the block input to the main path's
    shape, at the block's own ``stride`` (the widths it is built with are
    the caller's; the stride is the one the block was asked for)."""
    stride = Num.atom("stride") if "stride" in block.parameter_names() else None
    spec = LayerSpec(family="caller", label=f"self.{attr}", summary=Summary(stride=stride, has_weights=True))
    spec.assumption = (f"the caller's `{param}` downsamples by `stride`, as the code that builds the block's "
                       "projection does" if stride is not None else f"the caller's `{param}`")
    spec.from_parameter = param
    return spec


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
        self.queries: Dict[str, object] = {}  # answers computed once per file (idioms.projection_idioms)

    def blocks(self) -> List[BlockModel]:
        return [self.block(cls) for cls in self.ctx.iter_module_classes()]

    def block_in(self, cls: cst.ClassDef, ctx: ModuleContext) -> BlockModel:
        """The model of a class of another module the project read (a sibling
        block a fix imitates), resolved against that module's imports."""
        self.interp.register_class(cls, ctx)
        return self.block(cls)

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
        from .residual import caller_projections

        callers = caller_projections(model)
        contracts = {attr: caller_projection_contract(model, attr, param) for attr, param in callers.items()}
        for wf in model.worlds:
            if wf.flow is not None:
                wf.flow.caller_projections = set(callers)
                for value in wf.flow.values:
                    if value.kind == "layer" and value.spec is None and value.attr in contracts:
                        value.spec = contracts[value.attr]
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


def _reads_parameter(value: FVal) -> bool:
    """``self.gamma`` read in forward: an ``nn.Parameter`` (a LayerScale's only weight)."""
    static = value.static
    return _is_parameter(value) or value.kind == "static" and static is not None and \
        isinstance(static.value, LayerV) and static.value.spec.family == "parameter"


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
    has_weights = any(v.kind == "layer" or _reads_parameter(v) for v in flow.values)
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


def _helper_summary(value: FVal) -> Optional[Summary]:
    """A project function's summary (see ``forward_exec.function_summary``),
    for its first argument, which is its first input."""
    if value.spec is None or not value.inputs or not value.inputs[0].tensor:
        return None
    return value.spec.summary


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
    if value.kind == "helper":
        summary = _helper_summary(value)
        return channels_of(flow, value.inputs[0], facts, _depth + 1) if summary and summary.keeps_channels else None
    if value.kind == "binop" and value.name in ("Add", "Subtract", "Multiply", "Divide"):
        sides = [channels_of(flow, i, facts, _depth + 1) for i in value.inputs if i.tensor]
        # a one-channel side (a spatial gate) broadcasts over the other: the
        # result has the other side's width, known or not
        wide = [s for s in sides if not (isinstance(s, Num) and s.const_value() == 1)]
        if len(wide) < len(sides):
            sides = wide or sides[:1]
        known = [s for s in sides if s is not None]
        if known and all(_key(k) == _key(known[0]) for k in known):
            return known[0]
        if value.name in ("Multiply", "Divide") and len(known) == len(sides) == 2 and SAME_AS_INPUT in known:
            # a gate computed from the input (squeeze-and-excitation: `x * self.attention(pool(x))`) scales
            # it: broadcasting makes the gate's width the input's, and the product keeps it
            return SAME_AS_INPUT
        if value.name in ("Multiply", "Divide"):
            return _gated_channels(flow, value, facts, _depth)
        return None
    return None


def _gated_channels(flow: Flow, product: FVal, facts: Facts, _depth: int):
    """``x * mask`` where the mask is made from ``x`` and its width is not
    known (stochastic depth's ``x.new_empty(shape).bernoulli_(p)``, a gate
    the model cannot size): the product has ``x``'s width, as in
    :func:`_gated_stride`; a mask of known width is compared above."""
    for scaled, gate in _gates(product):
        if channels_of(flow, gate, facts, _depth + 1) is None:
            return channels_of(flow, scaled, facts, _depth + 1)
    return None


def _gates(product: FVal) -> Iterator[Tuple[FVal, FVal]]:
    """The ways to read a product of two tensors as ``scaled * gate`` with
    the gate computed from the tensor it scales."""
    tensors = [i for i in product.inputs if i.tensor]
    if len(tensors) == 2:
        for scaled, gate in (tensors, tensors[::-1]):
            if id(scaled) in tensor_ancestors(gate):
                yield scaled, gate


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
    if value.kind == "helper":
        summary = _helper_summary(value)
        before = stride_of(flow, value.inputs[0], _depth + 1) if summary and summary.stride is not None else None
        if before is None or before == GLOBAL:
            return before
        return before * summary.stride
    if value.kind in ("func", "method") and value.inputs:
        if value.name in ("mean", "amax", "adaptive_avg_pool2d", "adaptive_max_pool2d") and _keeps_dims(value):
            return GLOBAL
        if value.elementwise or value.name in SIZE_KEEPING:
            # a permuted tensor keeps its sizes: ConvNeXt's channels-last
            # norm and MLP (`x.permute(0, 2, 3, 1)`, then back) resize nothing
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
        if value.name in ("Multiply", "Divide"):
            return _gated_stride(flow, value, _depth)
        return None
    return None


def _gated_stride(flow: Flow, product: FVal, _depth: int) -> Optional[Num]:
    """``x * gate(x)``: a gate computed from the tensor it scales (CBAM's
    spatial and channel gates, an attention map) cannot be larger than it,
    and broadcasting allows only its size or 1, so the product has the
    scaled tensor's resolution, whatever the gate's path is."""
    for scaled, _ in _gates(product):
        return stride_of(flow, scaled, _depth + 1)
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


@dataclass(frozen=True)
class ChainStep:
    """One step of the path a tensor took (see :func:`forward_chain`): a
    layer, or an explicit padding (a pad layer or ``F.pad``) with what it
    adds on each spatial dimension (innermost last; None when unknown)."""

    spec: Optional[LayerSpec] = None
    padding: Optional[Tuple[Num, ...]] = None
    is_pad: bool = False
    # the tensor's sizes were changed in a way we do not follow (a view or
    # reshape, slicing, a pooling function, code we cannot see), or the chain
    # starts at such a value: sizes before and after cannot be compared
    reshapes: bool = False


# Tensor methods and functions that keep the sizes of every dimension, only
# ordering them differently (a Conv1d between two transposes is common).
SIZE_KEEPING = frozenset({"transpose", "permute", "movedim", "swapaxes", "contiguous", "clone", "to", "type_as",
                          "float", "half", "double", "bfloat16", "detach", "cuda", "cpu"})


def forward_chain(value: FVal) -> List[ChainStep]:
    """The layers a value went through, in forward order, following first
    inputs back to where its chain started: containers are expanded into
    their children, and ``F.pad`` calls and pad layers are steps that add a
    known (or unknown) padding."""
    steps: List[ChainStep] = []
    current: Optional[FVal] = value
    seen: Set[int] = set()
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if current.kind == "layer" and current.spec is not None:
            steps.extend(reversed(_expanded(current.spec)))
        elif current.kind == "func" and current.name == "pad":
            steps.append(ChainStep(padding=_functional_padding(current), is_pad=True))
        elif current.kind in ("func", "method", "item") and not (current.elementwise or current.name in SIZE_KEEPING):
            steps.append(ChainStep(reshapes=True))
        if current.kind in ("layer", "func", "method", "binop", "item") and current.inputs:
            current = current.inputs[0]
        else:
            if current.kind != "input":
                steps.append(ChainStep(reshapes=True))  # it started at something we cannot follow
            current = None
    steps.reverse()
    return steps


# Operations whose result has the spatial size of their tensor operands
# (which must agree): a size change before them reaches the result.
SIZE_JOINING_FUNCTIONS = frozenset({"cat", "concat", "concatenate", "stack", "add", "mul", "sub", "div", "where"})
MAX_CHAINS = 32


def forward_chains(value: FVal) -> List[List[ChainStep]]:
    """Every chain of layers whose output size reaches ``value``, in forward
    order: like :func:`forward_chain`, but through every tensor operand of
    an elementwise operation and every part of a concatenation (a dense
    block's ``conv(torch.cat((x, x1, x2), 1))``, a ConvNeXt branch scaled
    by a parameter).  A chain goes back to the block input, or to the last
    operation whose effect on sizes we do not follow, which starts it with a
    ``reshapes`` step.  At most MAX_CHAINS."""
    chains: List[List[ChainStep]] = []

    def walk(current: FVal, tail: List[ChainStep], seen: FrozenSet[int]) -> None:
        while len(chains) < MAX_CHAINS:
            if id(current) in seen:
                break
            seen = seen | {id(current)}
            operands = _size_operands(current)
            if len(operands) > 1:
                for operand in operands:
                    walk(operand, tail, seen)
                return
            if current.kind == "layer" and current.spec is not None:
                tail = _expanded(current.spec) + tail
            elif current.kind == "func" and current.name == "pad":
                tail = [ChainStep(padding=_functional_padding(current), is_pad=True)] + tail
            elif current.kind in ("func", "method", "item") and not operands and \
                    not (current.elementwise or current.name in SIZE_KEEPING):
                tail = [ChainStep(reshapes=True)] + tail
                break
            following = operands[0] if operands else current.inputs[0] if current.inputs and \
                current.kind in ("layer", "func", "method", "binop", "item") else None
            if following is None:
                if current.kind != "input":
                    tail = [ChainStep(reshapes=True)] + tail  # it started at something we cannot follow
                break
            current = following
        if len(chains) < MAX_CHAINS:
            chains.append(tail)

    walk(value, [], frozenset())
    return chains


def _size_operands(value: FVal) -> List[FVal]:
    """The tensors whose spatial size an operation's result takes: the
    tensor operands of an elementwise operation (``layer_scale * x``: only
    ``x``), the parts of a concatenation; [] when it is not one of those."""
    if value.kind == "func" and value.name in ("cat", "concat", "concatenate", "stack") and value.inputs:
        parts = value.inputs[0]
        return [p for p in parts.inputs if p.tensor] if parts.kind == "container" else []
    if value.kind == "binop" or (value.kind in ("func", "method") and value.elementwise) or \
            (value.kind == "func" and value.name in SIZE_JOINING_FUNCTIONS):
        return [i for i in value.inputs if i.tensor and i.kind != "static" and not _is_parameter(i)]
    return []


def _is_parameter(value: FVal) -> bool:
    return value.spec is not None and value.spec.family == "parameter"


# Layers that never change a tensor's spatial size.
SIZE_KEEPING_FAMILIES = frozenset({"act", "norm", "identity", "dropout"})


def _expanded(spec: LayerSpec) -> List[ChainStep]:
    if _is_chain(spec):
        out: List[ChainStep] = []
        for child in spec.children:
            value = child.loc.value
            if isinstance(value, LayerV) and child.segment is None:
                out.extend(_expanded(value.spec))
            elif child.segment is None and (standing := _size_keeping_alternatives(value)) is not None:
                # one of several activations (`create_activation_layer(activation)`):
                # whichever it is, the size is kept
                out.append(ChainStep(standing))
            else:
                out.append(ChainStep())  # something we cannot follow
        return out
    if spec.family == "pad":
        return [ChainStep(spec, _layer_padding(spec), is_pad=True)]
    return [ChainStep(spec)]


def _size_keeping_alternatives(value) -> Optional[LayerSpec]:
    """For alternatives that all keep the spatial size (activations, norms,
    a module class that keeps the shape, a norm or activation module passed
    in through a parameter), one of them standing for all; else None."""
    options = possible_values(value) if isinstance(value, AltV) else []
    standing = None
    for option in options:
        if isinstance(option, ParamV):
            spec = role_module(option.name, None)
        elif isinstance(option, LayerV):
            spec = option.spec
        else:
            return None
        summary = spec.summary if spec is not None else None
        keeps = spec is not None and (spec.family in SIZE_KEEPING_FAMILIES or
                                      summary.keeps_channels and summary.stride is not None and
                                      summary.stride.const_value() == 1)
        if not keeps:
            return None
        if standing is None and spec.family in SIZE_KEEPING_FAMILIES:
            standing = spec
    return standing


def _is_chain(spec: LayerSpec) -> bool:
    """A layer that runs its children one after the other: an nn.Sequential,
    or a module class whose forward is a plain chain of its layers."""
    if spec.family == "container":
        return spec.ltype is not None and spec.ltype.name == "Sequential"
    return spec.family == "composite" and bool(spec.children)


def _pad_totals(amounts: List[Optional[Num]], dims: int) -> Optional[Tuple[Num, ...]]:
    """Per-dimension totals (outermost first) of a torch-style pad list,
    which names the last dimension first: ``(left, right, top, bottom)``."""
    if any(a is None for a in amounts) or len(amounts) % 2 or len(amounts) > 2 * dims:
        return None
    totals = [Num.const(0)] * dims
    for index in range(len(amounts) // 2):
        totals[dims - 1 - index] = amounts[2 * index] + amounts[2 * index + 1]
    return tuple(totals)


def _layer_padding(spec: LayerSpec) -> Optional[Tuple[Num, ...]]:
    dims = spec.ltype.dims if spec.ltype is not None else 0
    loc = spec.arg("padding")
    if loc is None or not dims:
        return None
    if isinstance(loc.value, TupleV):
        return _pad_totals([as_num(item) for item in loc.value.items], dims)
    single = as_num(loc)
    return tuple(single + single for _ in range(dims)) if single is not None else None


def _functional_padding(value: FVal) -> Optional[Tuple[Num, ...]]:
    """``F.pad(x, (1, 1, 1, 1))``: the amounts, when written as numbers."""
    if len(value.inputs) < 2 or value.inputs[1].kind != "container":
        return None
    amounts = []
    for item in value.inputs[1].inputs:
        amounts.append(as_num(item.static) if item.kind == "static" and item.static is not None else None)
    if any(a is None for a in amounts):
        return None
    return _pad_totals(amounts, len(amounts) // 2)


@dataclass(frozen=True)
class Difference:
    """Two widths (or strides) that differ: ``condition`` says when, as a
    Python condition on the block's parameters ("" when always), and
    ``configuration`` is one configuration where they do when the symbolic
    comparison could not say it for every value (``c // 2`` against ``c``)."""

    condition: str
    configuration: Optional[Dict[str, int]] = None

    @property
    def when(self) -> str:
        """For messages: " whenever in_ch != out_ch", " (e.g. with c=16)", ""."""
        if self.configuration is not None:
            from .concrete import describe

            return f" (e.g. with {describe(self.configuration)})"
        return f" whenever {self.condition}" if self.condition else ""

    def expect(self) -> Dict[str, object]:
        """What the trace should know: the conditions, and a configuration to try."""
        out: Dict[str, object] = {"conditions": [self.condition] if self.condition else []}
        if self.configuration is not None:
            out["config"] = dict(self.configuration)
        return out


def differ(a: Optional[Num], b: Optional[Num], facts: Facts, defaults: Optional[Dict[str, int]] = None) -> Optional[Difference]:
    """Whether two expressions of the block's parameters differ in a
    configuration the code allows: one of the sample configurations (the
    defaults, strides of 1 and 2, a few widths; see
    :mod:`resnetlint.model.concrete`) consistent with ``facts`` must show
    it.  The difference is described by a condition when the two differ as
    polynomials, else by that configuration (``c // 2`` against ``c``)."""
    if a is None or b is None:
        return None
    a, b = facts.norm(a), facts.norm(b)
    if a == b:
        return None
    from .concrete import witness

    configuration = witness(a, b, facts, defaults or {})
    if configuration is None:
        # No configuration the parameters' roles allow (strides of 1 and 2,
        # widths, the defaults) shows it under what the path assumes: a
        # stride that is 1 unless it is 2 never differs from 1 "in practice".
        return None
    if provably_different(a, b) or not configuration:
        from .symbolic import unless

        return Difference(unless(a, b))
    return Difference(f"{a.render()} != {b.render()}", configuration)


def layers_reading_input(flow: Flow) -> List[LayerSpec]:
    """The layers forward applies to the block input directly (through
    elementwise functions and shape-keeping layers only)."""
    return [value.spec for value in flow.values
            if value.kind == "layer" and value.spec is not None and flow.input is not None
            and consumes_directly(value, flow.input)]


def consumes_directly(value: FVal, source: FVal) -> bool:
    """``value`` takes ``source`` as its first input, possibly through
    elementwise functions and layers that keep the channels without stating
    a width (a pad, an activation, dropout)."""
    current = value.inputs[0] if value.inputs else None
    while current is not None:
        if current is source:
            return True
        if current.kind in ("func", "method") and current.elementwise and current.inputs:
            current = current.inputs[0]
        elif current.kind == "layer" and current.inputs and current.spec is not None and \
                current.spec.summary.keeps_channels and current.spec.summary.in_channels is None:
            current = current.inputs[0]
        else:
            return False
    return False


# Tensor methods and functions that move the channel axis (tokens transposed
# into a Conv1d and back: ``self.conv(x.transpose(1, 2)).transpose(1, 2)``).
AXIS_MOVES = frozenset({"transpose", "permute", "movedim", "swapaxes", "swapdims", "mT"})


def channels_moved_into(value: FVal, source: FVal) -> bool:
    """``value`` (a layer call) reads ``source`` with its axes moved first
    (``self.conv(x.transpose(1, 2))``): the block takes its channels last."""
    current = value.inputs[0] if value.inputs else None
    moved = False
    while current is not None:
        if current is source:
            return moved
        if current.kind in ("func", "method") and current.inputs and (current.elementwise or
                                                                     current.name in AXIS_MOVES):
            moved = moved or current.name in AXIS_MOVES
            current = current.inputs[0]
        else:
            return False
    return False


def first_input_width(flow: Flow) -> Optional[Num]:
    """The width the first layer (in forward order) that reads the block
    input states for it: what the block takes (a later layer reading the
    input with another width is the mistake, not the input)."""
    for value in flow.values:
        if value.kind == "layer" and flow.input is not None and consumes_directly(value, flow.input) \
                and value.spec is not None and value.spec.summary.in_channels is not None:
            return value.spec.summary.in_channels
    return None


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
