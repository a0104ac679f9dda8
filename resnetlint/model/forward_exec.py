"""The dataflow of ``forward``: which value each layer call consumes and
produces, on every path.

``forward`` is executed once per ``__init__`` world, symbolically, over
:class:`FVal` nodes (the block input, layer outputs, functional results,
sums...).  Each ``if`` the facts cannot decide forks the path; conditions on
``self`` attributes are decided by the world (``self.skip is None`` in the
world where ``__init__`` set it to ``None``).  Loops run their body twice,
which is what exposes a value overwritten by the next iteration.

A value is *live* if it reaches a sink (the return value, a store into
``self`` or a container, a call we cannot see into, a tested condition) on
some path; every other value is *dead*.  Dead layer outputs are the common
ground of RL101, RL102 and RL104.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Dict, Iterable, Iterator, List, Optional, Set, Tuple

import libcst as cst

from .context import ModuleContext
from .control import ControlFlow
from .layers import role_module
from .lite import make
from .records import record
from .syntax import walk
from .init_exec import Frame, Interpreter, World, _is_self, _target_names
from .symbolic import Cond, Facts, Num, Truth, fresh_truth, negate
from .torch_api import (
    ELEMENTWISE_FUNCTIONS,
    ELEMENTWISE_METHODS,
    INPLACE_FUNCTIONS,
    NON_TENSOR_ATTRIBUTES,
    NON_TENSOR_METHODS,
    is_inplace_method,
)
from .values import (
    AltV,
    BoolV,
    LayerSpec,
    LayerV,
    ListV,
    Loc,
    MethodV,
    NoneV,
    NumV,
    OpaqueV,
    ParamV,
    QualV,
    StrV,
    Summary,
    TupleV,
    UnknownV,
    Value,
    plain_key,
)

# Paths through one forward.  The statement budget below bounds the work; this
# bound only stops a path explosion early.  At 64 a timm ResNet block (a
# caller's downsample and drop_path, an optional attention and anti-aliasing
# layer, each a choice of forward) was given up: 80 paths in each world.
MAX_PATHS = 256
MAX_INLINE_DEPTH = 3
# Statements executed per class, all worlds and paths together.  Of the 2,083
# classes of timm, torchvision, pytorchcv, smp and mmpretrain, 24 need more
# than 2,000: whole networks and attention blocks with up to 32 worlds, and 22
# of them were given up under the old limit (6,000) anyway (out of budget or
# paths), after spending ~17% of the run's time.  Same findings on the
# fixtures and the corpus.
FORWARD_BUDGET = 2000


class Budget:
    """Work allowed for one class: a block whose forward takes more than this
    to explore is given up (and its rules stay silent) rather than slowing the
    whole run down; typical blocks use a few hundred."""

    __slots__ = ("left",)

    def __init__(self, limit: int = FORWARD_BUDGET):
        self.left = limit


class FlowTooComplex(Exception):
    pass


_order = itertools.count()


class FVal:
    """A value in ``forward``.

    kind: ``input`` | ``layer`` | ``func`` | ``method`` | ``binop`` | ``static``
    | ``item`` | ``container`` | ``helper`` (a function the model does not
    follow) | ``unknown``
    """

    __slots__ = ("kind", "node", "inputs", "name", "spec", "attr", "static", "order", "inplace", "elementwise",
                 "tensor", "facts", "iteration")

    def __init__(self, kind: str, node: Optional[cst.CSTNode], inputs: Tuple["FVal", ...] = (),
                 name: str = "", spec: Optional[LayerSpec] = None, attr: Optional[str] = None,
                 static: Optional[Loc] = None, inplace: bool = False, elementwise: bool = False,
                 tensor: bool = True, iteration: Tuple[int, ...] = ()):
        self.kind = kind
        self.node = node
        self.inputs = inputs
        self.name = name
        self.spec = spec
        self.attr = attr  # for layer calls: "conv1", "layers[0]", "<element of blocks>"
        self.static = static
        self.order = next(_order)
        self.inplace = inplace
        self.elementwise = elementwise
        self.tensor = tensor
        self.facts: Optional[Facts] = None  # facts of the path that computed it
        self.iteration = iteration  # which unrolled loop iteration created it

    def __repr__(self) -> str:
        label = self.attr or self.name or self.kind
        return f"<{self.kind} {label} #{self.order}>"

    @property
    def is_layer(self) -> bool:
        """A call of a module (``self.conv(x)``)."""
        return self.kind == "layer"

    @property
    def is_call(self) -> bool:
        """A call of a function or a tensor method (``F.relu(x)``, ``x.mean()``)."""
        return self.kind in ("func", "method")

    @property
    def is_computed(self) -> bool:
        """Produced by an operation: a layer, a function or method, an operator."""
        return self.kind in ("layer", "func", "method", "binop", "helper")

    @property
    def is_input(self) -> bool:
        return self.kind == "input"

    @property
    def is_element(self) -> bool:
        """Taken from another value: ``x[0]``, ``a`` in ``a, b = f(x)``."""
        return self.kind == "item"


@record
class AssignEvent:
    var: str
    old: Optional[FVal]
    new: FVal
    stmt: cst.CSTNode  # the statement (Assign/AugAssign)
    target: cst.CSTNode  # the target Name node
    facts: Facts


@record
class AddEvent:
    node: cst.CSTNode  # BinaryOperation, AugAssign or Call
    left: FVal
    right: FVal
    left_node: Optional[cst.CSTNode]
    right_node: Optional[cst.CSTNode]
    result: FVal
    inplace: bool
    facts: Facts


@record
class InplaceEvent:
    node: cst.CSTNode  # the call or augmented assignment that mutates
    target: FVal  # the value mutated
    target_node: Optional[cst.CSTNode]
    kind: str  # "augassign", "layer", "function", "method"
    result: FVal
    facts: Facts


@dataclass
class Flow:
    """The forward dataflow of one world."""

    world: World
    complete: bool = True
    reason: str = ""
    inputs: List[FVal] = field(default_factory=list)
    values: List[FVal] = field(default_factory=list)
    sinks: Set[int] = field(default_factory=set)
    sink_paths: Dict[int, List[Optional[Facts]]] = field(default_factory=dict)  # where each sink happened
    assignments: List[AssignEvent] = field(default_factory=list)
    adds: List[AddEvent] = field(default_factory=list)
    inplace: List[InplaceEvent] = field(default_factory=list)
    attr_reads: Set[str] = field(default_factory=set)
    attr_escapes: Set[str] = field(default_factory=set)  # self.X used other than by calling it
    attr_read_nodes: Dict[str, Set[int]] = field(default_factory=dict)  # X -> ids of `self.X` nodes read
    attr_called_nodes: Dict[str, Set[int]] = field(default_factory=dict)  # X -> ids of `self.X` nodes called
    # X -> ids of `self.X` nodes only tested: `self.X is not None`, `if self.X:`
    attr_tested_nodes: Dict[str, Set[int]] = field(default_factory=dict)
    methods_inlined: Set[str] = field(default_factory=set)
    # Attributes holding the projection a caller passes in (``downsample``),
    # filled in once the block's worlds are known (see residual.caller_projections).
    caller_projections: Set[str] = field(default_factory=set)
    returns: List[FVal] = field(default_factory=list)
    paths: int = 0
    falls_off_end: bool = False  # some path ends without `return` (forward returns None there)
    _live: Optional[Set[int]] = None
    _consumers: Optional[Dict[int, List[FVal]]] = None
    _ancestors: Dict[int, Set[int]] = field(default_factory=dict)
    queries: Dict[str, object] = field(default_factory=dict)  # memo for block-level queries

    def memo(self, key: str, compute):
        if key not in self.queries:
            self.queries[key] = compute(self)
        return self.queries[key]

    def ancestors(self, value: FVal) -> Set[int]:
        found = self._ancestors.get(id(value))
        if found is None:
            found = ancestors(value)
            self._ancestors[id(value)] = found
        return found

    @property
    def input(self) -> Optional[FVal]:
        return self.inputs[0] if self.inputs else None

    @property
    def live(self) -> Set[int]:
        if self._live is None:
            live: Set[int] = set()
            by_id = {id(v): v for v in self.values}
            stack = [by_id[i] for i in self.sinks if i in by_id]
            while stack:
                value = stack.pop()
                if id(value) in live:
                    continue
                live.add(id(value))
                stack.extend(value.inputs)
            self._live = live
        return self._live

    def is_dead(self, value: FVal) -> bool:
        """Dead on every path (live = reaches a sink on some path)."""
        return id(value) not in self.live

    def dead_on_path(self, value: FVal, facts: Facts) -> bool:
        """Dead on the path described by ``facts`` (a later point of it): no
        sink and no live consumer of ``value`` on that path.  Conservative:
        a consumer live on some other path still counts."""
        def on_path(other: Optional[Facts]) -> bool:
            return other is None or facts.extends(other) or other.extends(facts)

        if any(on_path(f) for f in self.sink_paths.get(id(value), ())):
            return False
        return not any(id(c) in self.live and on_path(c.facts) for c in self.consumers(value))

    def consumers(self, value: FVal) -> List[FVal]:
        if self._consumers is None:
            table: Dict[int, List[FVal]] = {}
            for v in self.values:
                for i in v.inputs:
                    table.setdefault(id(i), []).append(v)
            self._consumers = table
        return self._consumers.get(id(value), [])

    def layer_calls(self) -> Iterator[FVal]:
        return (v for v in self.values if v.kind == "layer")


def ancestors(value: FVal) -> Set[int]:
    """Ids of every value ``value`` was computed from (itself excluded)."""
    seen: Set[int] = set()
    stack = list(value.inputs)
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        stack.extend(current.inputs)
    return seen


def tensor_ancestors(value: FVal) -> Set[int]:
    """Ids of the tensors whose values reach ``value`` through tensors only:
    ``n = k.shape[-2] + cache.get_seq_length()`` is computed from ``k``'s
    shape, not from its values, so ``k`` is not among them."""
    seen: Set[int] = set()
    stack = [i for i in value.inputs if i.tensor]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        stack.extend(i for i in current.inputs if i.tensor)
    return seen


def _is_sequence(value: FVal) -> bool:
    """A tuple or list being built (``()``, ``(a, b)``, ``dims + (d,)``)."""
    if value.kind == "container":
        return value.name != "dict"
    return value.kind == "static" and value.static is not None and isinstance(value.static.value, (TupleV, ListV))


class State:
    __slots__ = ("facts", "env", "returned", "jump", "funcs", "retval")

    def __init__(self, facts: Facts):
        self.facts = facts
        self.env: Dict[str, FVal] = {}
        self.returned = False
        self.jump: Optional[str] = None  # "break" / "continue" inside a loop body
        self.funcs: Dict[str, cst.FunctionDef] = {}
        self.retval: Optional[FVal] = None

    @property
    def stopped(self) -> bool:
        return self.returned or self.jump is not None

    def fork(self) -> "State":
        other = State(self.facts)
        other.env = dict(self.env)
        other.returned = self.returned
        other.jump = self.jump
        other.funcs = dict(self.funcs)
        other.retval = self.retval
        return other


Results = List[Tuple[State, FVal]]


class ForwardExecutor(ControlFlow[State]):
    """Runs one class's ``forward`` in one world: the shared control-flow
    engine, with forward's hooks (a tested tensor is used; a loop runs its
    body twice; a ``try`` handler starts from the state before the ``try``)."""

    max_states = MAX_PATHS
    too_complex = FlowTooComplex
    states_noun = "paths through forward"

    def __init__(self, ctx: ModuleContext, interp: Interpreter, cls: cst.ClassDef, world: World,
                 budget: Optional[Budget] = None):
        self.budget = budget or Budget()
        self.ctx = ctx
        self.interp = interp
        self.cls = cls
        self.world = world
        self.flow = Flow(world)
        # One frame for every call into the interpreter: it restores what it
        # changes on a frame (site, segment) before returning.
        self.frame = Frame(cls=cls, local=True, ctx=ctx)
        self._statements = 0
        self._depth = 0
        self._iteration: Tuple[int, ...] = ()
        self._stack: Tuple[str, ...] = ()

    # -- entry -------------------------------------------------------------
    def run(self, forward: cst.FunctionDef, method: bool = True) -> Flow:
        """Run ``forward`` (or, ``method`` False, a module-level function,
        whose first parameter is the input)."""
        state = State(self.world.facts)
        params = list(forward.params.posonly_params) + list(forward.params.params)
        for param in params[1:] if method else params:
            value = self.new("input", param.name, name=param.name.value)
            self.flow.inputs.append(value)
            state.env[param.name.value] = value
        for param in forward.params.kwonly_params:
            state.env[param.name.value] = self.new("input", param.name, name=param.name.value)
        if isinstance(forward.params.star_arg, cst.Param):
            state.env[forward.params.star_arg.name.value] = self.new("unknown", forward.params.star_arg.name)
        if forward.params.star_kwarg is not None:
            state.env[forward.params.star_kwarg.name.value] = self.new("unknown", forward.params.star_kwarg.name)
        self._stack = ("forward",)
        try:
            states = self.exec_block(forward.body, [state])
        except FlowTooComplex as exc:
            self.flow.complete = False
            self.flow.reason = str(exc)
            return self.flow
        self.flow.paths = len(states)
        self.flow.falls_off_end = any(not state.returned for state in states)
        return self.flow

    # -- helpers -----------------------------------------------------------
    def new(self, kind: str, node, inputs: Iterable[FVal] = (), *, name: str = "", spec: Optional[LayerSpec] = None,
            attr: Optional[str] = None, static: Optional[Loc] = None, inplace: bool = False,
            elementwise: bool = False, tensor: bool = True) -> FVal:
        # Spelled out rather than **kw and positional below: the most frequent
        # call of the model (a dictionary per value made it 3% of a run).
        value = FVal(kind, node, inputs if type(inputs) is tuple else tuple(inputs), name, spec, attr, static, inplace,
                     elementwise, tensor, self._iteration)
        self.flow.values.append(value)
        return value

    def sink(self, value: Optional[FVal], facts: Optional[Facts] = None) -> None:
        """``value`` is used for good (returned, stored, tested, handed to code
        we cannot see); ``facts`` says on which path, None meaning any."""
        if value is not None:
            self.flow.sinks.add(id(value))
            self.flow.sink_paths.setdefault(id(value), []).append(facts if facts is not None else value.facts)

    def static(self, loc: Loc, node) -> FVal:
        return self.new("static", node, static=loc, tensor=False)

    def _count(self) -> None:
        self.budget.left -= 1
        if self.budget.left < 0:
            raise FlowTooComplex("forward is too long to explore")

    # -- the shared engine's hooks ---------------------------------------------
    def tick(self) -> None:
        self._count()

    def enter_with(self, stmt: cst.With, state: State) -> List[State]:
        states = [state]
        for item in stmt.items:
            evaluated = []
            for s in states:
                for s2, manager in self.ev(item.item, s):
                    self.sink(manager)
                    evaluated.append(s2)
            states = evaluated
        return states

    def define(self, stmt, state: State) -> List[State]:
        if isinstance(stmt, cst.FunctionDef):
            state.funcs[stmt.name.value] = stmt  # inlined where it is called
            state.env.pop(stmt.name.value, None)
        else:
            state.env[stmt.name.value] = self.new("unknown", stmt.name, tensor=False)
        return [state]

    def unmodelled(self, stmt, state: State) -> List[State]:
        raise FlowTooComplex(f"{type(stmt).__name__} in forward is not modelled")

    def note_tested(self, test: cst.BaseExpression) -> None:
        """``self.X`` read only to test it (``if self.X:``, ``not self.X``,
        ``self.X is None``): a module tested and never called is not used."""
        while isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
            test = test.expression
        if isinstance(test, cst.Comparison) and len(test.comparisons) == 1 and \
                isinstance(test.comparisons[0].operator, (cst.Is, cst.IsNot)):
            other = test.comparisons[0].comparator
            if isinstance(other, cst.Name) and other.value == "None":
                test = test.left
        if isinstance(test, cst.Attribute) and _is_self(test.value):
            self.flow.attr_tested_nodes.setdefault(test.attr.value, set()).add(id(test))

    def branch_tests(self, test, state: State) -> List[Tuple[State, Cond]]:
        self.note_tested(test)
        out = []
        for s, value in self.ev(test, state):
            if value.tensor or value.kind not in ("static",):
                self.sink(value)  # a tested tensor is used
            out.append((s, self.cond_of(value)))
        return out

    def handle_exceptions(self, stmt, before: State, states: List[State]) -> List[State]:
        # A handler runs from the state before the try (its body may have
        # failed anywhere: the conservative choice is before it started).
        for handler in stmt.handlers:
            states.extend(self.exec_block(handler.body, [before.fork()]))
        return states

    def exec_small(self, small, state: State) -> List[State]:
        if isinstance(small, cst.Assign):
            out = []
            for s, value in self.ev(small.value, state):
                for target in small.targets:
                    self.assign(target.target, value, s, small)
                out.append(s)
            return out
        if isinstance(small, cst.AnnAssign):
            if small.value is None:
                return [state]
            out = []
            for s, value in self.ev(small.value, state):
                self.assign(small.target, value, s, small)
                out.append(s)
            return out
        if isinstance(small, cst.AugAssign):
            return self.exec_augassign(small, state)
        if isinstance(small, cst.Expr):
            out = []
            for s, value in self.ev(small.value, state):
                if not self._is_pure_statement(small.value, value):
                    self.sink(value, s.facts)
                out.append(s)
            return out
        if isinstance(small, cst.Return):
            if small.value is None:
                results = [(state, self.static(Loc(NoneV()), small))]
            else:
                results = self.ev(small.value, state)
            for s, value in results:
                if self._depth == 0:
                    # Returned from forward itself (not from an inlined call).
                    self.sink(value, s.facts)
                    self.flow.returns.append(value)
                s.retval = value
                s.returned = True
            return [s for s, _ in results]
        if isinstance(small, cst.Raise):
            return []
        if isinstance(small, cst.Assert):
            out = []
            for s, value in self.ev(small.test, state):
                self.sink(value)
                cond = self.cond_of(value)
                facts = s.facts.assume(cond, True)
                if facts is not None:
                    s.facts = facts
                    out.append(s)
            return out
        if isinstance(small, cst.Del):
            for name in _target_names(small.target):
                state.env.pop(name, None)
            return [state]
        if isinstance(small, (cst.Break, cst.Continue)):
            state.jump = "break" if isinstance(small, cst.Break) else "continue"
            return [state]
        return [state]  # pass, global, nonlocal, import

    def _is_pure_statement(self, expr, value: FVal) -> bool:
        """An expression statement whose only effect is its (discarded) value:
        a layer call or a known torch function.  Anything else may act."""
        if value.kind == "layer":
            return True
        if value.kind in ("func", "method") and value.elementwise and not value.inplace:
            return True
        return False

    def exec_augassign(self, node: cst.AugAssign, state: State) -> List[State]:
        op = type(node.operator).__name__.replace("Assign", "")
        out = []
        for s1, current in self.ev(node.target, state):
            for s2, operand in self.ev(node.value, s1):
                if op == "Add" and (_is_sequence(current) or _is_sequence(operand)):
                    # ``dims += (d,)``: a longer tuple, neither an add nor an in-place op
                    self.assign(node.target, self.new("container", node, (current, operand), name="concat",
                                                      tensor=current.tensor or operand.tensor), s2, node)
                    out.append(s2)
                    continue
                result = self.new("binop", node, (current, operand), name=op, inplace=True,
                                  elementwise=True, tensor=current.tensor or operand.tensor)
                if op == "Add":
                    self.flow.adds.append(AddEvent(node, current, operand, node.target, node.value, result, True, s2.facts))
                if current.tensor:
                    self.flow.inplace.append(InplaceEvent(node, current, node.target, "augassign", result, s2.facts))
                self.assign(node.target, result, s2, node)
                out.append(s2)
        return out

    def exec_loop(self, stmt, state: State) -> List[State]:
        """Run the body twice: enough to see a value that the next iteration
        overwrites before anything reads it (``for layer in self.layers:
        out = layer(x)``).  A loop that runs once or never is not modelled,
        so conclusions are "when the loop runs at least twice"."""
        if isinstance(stmt, cst.For):
            current = self.ev(stmt.iter, state)
        else:
            current = [(state, None)]
        leaving: List[State] = []
        outer_iteration = self._iteration
        for iteration in range(2):
            self._iteration = outer_iteration + (iteration,)
            nxt: List[Tuple[State, Optional[FVal]]] = []
            for s, iterable in current:
                starts = [s]
                if isinstance(stmt, cst.For):
                    self.bind_loop_target(stmt.target, iterable, s, stmt, iteration)
                else:
                    starts = []
                    for s2, test in self.ev(stmt.test, s):
                        self.sink(test)
                        starts.append(s2)
                for st in self.exec_block(stmt.body, starts):
                    if st.returned or st.jump == "break":
                        st.jump = None
                        leaving.append(st)
                    else:
                        st.jump = None
                        nxt.append((st, iterable))
            current = nxt
        self._iteration = outer_iteration
        finished = [s for s, _ in current]
        if stmt.orelse is not None:
            finished = self.exec_block(stmt.orelse.body, finished)
        return finished + leaving

    def bind_loop_target(self, target, iterable: Optional[FVal], state: State, stmt, iteration: int) -> None:
        element = self.element_of(iterable, stmt.target, iteration)
        self.assign(target, element, state, stmt, record=False)

    def element_of(self, iterable: Optional[FVal], node, iteration: int = -1) -> FVal:
        """The loop variable in the ``iteration``-th unrolled pass: for
        ``range(n)`` and an ``enumerate`` index, that very number (the loop is
        modelled as running at least twice, so ``if i == 0`` is decided in
        each pass instead of forking both)."""
        if iterable is None:
            return self.new("unknown", node, tensor=False)
        if iteration >= 0 and _counts_from_zero(iterable):
            return self.static(Loc(NumV(Num.const(iteration))), node)
        if iterable.kind == "static" and iterable.static is not None:
            value = iterable.static.value
            if isinstance(value, LayerV) and value.spec.family == "container":
                element = self.static(Loc(self._representative(value.spec)), node)
                element.attr = f"<element of {iterable.attr or 'container'}>"
                return element
            if isinstance(value, ListV):
                return self.static(Loc(UnknownV("list element")), node)
        if iterable.kind == "func" and iterable.name in ("enumerate", "zip"):
            parts = [self.element_of(i, node, iteration) for i in iterable.inputs]
            if iterable.name == "enumerate":
                index = self.static(Loc(NumV(Num.const(iteration))), node) if iteration >= 0 and \
                    len(iterable.inputs) == 1 else self.new("unknown", node, tensor=False)
                parts = [index] + parts[:1]
            return self.new("container", node, parts, name="tuple", tensor=False)
        return self.new("item", node, (iterable,), tensor=iterable.tensor)

    @staticmethod
    def _representative(spec: LayerSpec) -> Value:
        """What an element of a container looks like to a loop that runs twice:
        a known layer only when every element keeps the shape the same way
        (``[Block(dim) for _ in range(depth)]``); otherwise an unknown module,
        since successive iterations call different elements."""
        children = spec.children
        if not spec.children_complete or not children:
            return UnknownV("element of a container")
        summaries = []
        for child in children:
            if not isinstance(child.loc.value, LayerV):
                return UnknownV("element of a container")
            summaries.append(child.loc.value.spec.summary)
        first = summaries[0]
        if all(s == first for s in summaries) and first.keeps_channels and first.stride is not None \
                and first.stride.const_value() == 1:
            return children[0].loc.value
        return UnknownV("element of a container")

    # -- assignment ----------------------------------------------------------
    def assign(self, target, value: FVal, state: State, stmt, record: bool = True) -> None:
        if isinstance(target, cst.Name):
            old = state.env.get(target.value)
            state.env[target.value] = value
            if record:
                self.flow.assignments.append(AssignEvent(target.value, old, value, stmt, target, state.facts))
        elif isinstance(target, (cst.Tuple, cst.List)):
            elements = target.elements
            items = value.inputs if value.kind == "container" and len(value.inputs) == len(elements) else None
            for index, element in enumerate(elements):
                if items is not None and not isinstance(element, cst.StarredElement):
                    part = items[index]
                else:
                    part = self.new("item", element.value, (value,), name=str(index), tensor=value.tensor)
                    part.facts = state.facts  # computed on this path (see ev)
                self.assign(element.value if not isinstance(element, cst.StarredElement) else element.value.value
                            if isinstance(element.value, cst.StarredElement) else element.value, part, state, stmt, record)
        elif isinstance(target, cst.Attribute):
            self.sink(value, state.facts)  # stored on self or on another object
            for _ in self.ev(target.value, state):
                pass
        elif isinstance(target, cst.Subscript):
            self.sink(value, state.facts)
            if isinstance(target.value, cst.Name) and target.value.value in state.env:
                container = state.env[target.value.value]
                state.env[target.value.value] = self.new("container", target, (container, value), name="store",
                                                         tensor=container.tensor)
        elif isinstance(target, cst.StarredElement):
            self.assign(target.value, value, state, stmt, record)

    # -- expressions -----------------------------------------------------------
    def ev(self, expr, state: State) -> Results:
        method = _EVALUATORS.get(type(expr).__name__)
        results = method(self, expr, state) if method is not None else self._generic(expr, state)
        for s, value in results:
            if value.facts is None:
                # The path a value was computed on: a later value on the same
                # path has facts that extend these; a value on a sibling path
                # (the other side of a fork) does not.
                value.facts = s.facts
        return results

    def _generic(self, expr, state: State) -> Results:
        """Any other expression: a value depending on every name it reads."""
        names, self_attrs = self.interp.syntax("names", expr, _names_and_self_attrs)
        inputs = []
        for name in names:
            if name in state.env:
                inputs.append(state.env[name])
        for attr in self_attrs:
            self.flow.attr_reads.add(attr)
            self.flow.attr_escapes.add(attr)
        return [(state, self.new("unknown", expr, inputs, tensor=any(i.tensor for i in inputs)))]

    def ev_Name(self, expr: cst.Name, state: State) -> Results:
        name = expr.value
        if name in state.env:
            return [(state, state.env[name])]
        if name in ("True", "False", "None"):
            return [(state, self.static(self.interp.ev_Name(expr, self.world, self.frame), expr))]
        if name in state.funcs:
            return [(state, self.new("static", expr, static=Loc(QualV("<nested>." + name)), tensor=False))]
        return [(state, self.static(Loc(self.interp.lookup_global(name, self.frame.ctx), expr, True), expr))]

    def ev_Integer(self, expr, state):
        return [(state, self.static(self.interp.ev_Integer(expr, self.world, self.frame), expr))]

    def ev_Float(self, expr, state):
        return [(state, self.static(self.interp.ev_Float(expr, self.world, self.frame), expr))]

    def ev_SimpleString(self, expr, state):
        return [(state, self.static(self.interp.ev_SimpleString(expr, self.world, self.frame), expr))]

    def ev_Attribute(self, expr: cst.Attribute, state: State) -> Results:
        if _is_self(expr.value):
            attr = expr.attr.value
            self.flow.attr_reads.add(attr)
            self.flow.attr_read_nodes.setdefault(attr, set()).add(id(expr))
            loc = Loc(self.interp.self_attribute(attr, self.world, self.frame), expr, True)
            value = self.static(loc, expr)
            value.attr = attr
            return [(state, value)]
        out = []
        for s, base in self.ev(expr.value, state):
            attr = expr.attr.value
            if base.kind == "static" and base.static is not None and not _holds_tensor(base.static.value):
                loc = Loc(self.interp.attribute_of(base.static, attr, self.world, self.frame), expr, True)
                value = self.static(loc, expr)
                value.attr = f"{base.attr}.{attr}" if base.attr else None
                out.append((s, value))
            elif attr in NON_TENSOR_ATTRIBUTES:
                out.append((s, self.new("func", expr, (base,), name=attr, tensor=False)))
            else:
                out.append((s, self.new("method", expr, (base,), name=attr, tensor=base.tensor)))
        return out

    def ev_Subscript(self, expr: cst.Subscript, state: State) -> Results:
        out = []
        for s, base in self.ev(expr.value, state):
            if base.kind == "static" and base.static is not None:
                loc = self.interp.ev_Subscript(expr, self.world, self.frame) if _is_self_rooted(expr.value) else Loc(UnknownV("subscript"))
                value = self.static(loc, expr)
                value.attr = f"{base.attr}[...]" if base.attr else None
                out.append((s, value))
                continue
            index_inputs = []
            for element in expr.slice:
                for sub in _slice_expressions(element.slice):
                    for _, v in self.ev(sub, s):
                        index_inputs.append(v)
            out.append((s, self.new("item", expr, (base, *index_inputs), name="[]", tensor=base.tensor, elementwise=False)))
        return out

    def ev_Tuple(self, expr: cst.Tuple, state: State) -> Results:
        return self._sequence(expr, state)

    def ev_List(self, expr: cst.List, state: State) -> Results:
        return self._sequence(expr, state)

    def _sequence(self, expr, state: State) -> Results:
        results: List[Tuple[State, List[FVal]]] = [(state, [])]
        for element in expr.elements:
            nxt = []
            for s, items in results:
                for s2, value in self.ev(element.value, s):
                    nxt.append((s2, items + [value]))
            results = nxt
        return [(s, self.new("container", expr, items, name=type(expr).__name__.lower(),
                             tensor=any(i.tensor for i in items))) for s, items in results]

    def ev_BinaryOperation(self, expr: cst.BinaryOperation, state: State) -> Results:
        out = []
        op = type(expr.operator).__name__
        for s1, left in self.ev(expr.left, state):
            for s2, right in self.ev(expr.right, s1):
                if left.kind == "static" and right.kind == "static":
                    loc = self.interp._binary(op, left.static, right.static, expr)
                    out.append((s2, self.static(loc, expr)))
                    continue
                if op == "Add" and (_is_sequence(left) or _is_sequence(right)):
                    # concatenation of sequences: no tensor arithmetic, no residual add
                    out.append((s2, self.new("container", expr, (left, right), name="concat",
                                             tensor=left.tensor or right.tensor)))
                    continue
                result = self.new("binop", expr, (left, right), name=op, elementwise=True,
                                  tensor=left.tensor or right.tensor)
                if op == "Add" and left.tensor and right.tensor:
                    self.flow.adds.append(AddEvent(expr, left, right, expr.left, expr.right, result, False, s2.facts))
                out.append((s2, result))
        return out

    def ev_UnaryOperation(self, expr: cst.UnaryOperation, state: State) -> Results:
        out = []
        for s, operand in self.ev(expr.expression, state):
            if operand.kind == "static":
                out.append((s, self.static(self._static_unary(expr, operand), expr)))
            else:
                out.append((s, self.new("func", expr, (operand,), name=type(expr.operator).__name__,
                                        elementwise=True, tensor=operand.tensor)))
        return out

    def _static_unary(self, expr, operand: FVal) -> Loc:
        op = type(expr.operator).__name__
        if op == "Not":
            return Loc(BoolV(negate(self.interp.as_cond(operand.static))), expr, True)
        return Loc(UnknownV(op), expr, True)

    def ev_BooleanOperation(self, expr: cst.BooleanOperation, state: State) -> Results:
        out = []
        for s1, left in self.ev(expr.left, state):
            for s2, right in self.ev(expr.right, s1):
                if left.kind == "static" and right.kind == "static":
                    conds = (self.interp.as_cond(left.static), self.interp.as_cond(right.static))
                    from .symbolic import conjoin, disjoin
                    cond = conjoin(conds) if isinstance(expr.operator, cst.And) else disjoin(conds)
                    out.append((s2, self.static(Loc(BoolV(cond), expr, True), expr)))
                else:
                    out.append((s2, self.new("unknown", expr, (left, right), tensor=False)))
        return out

    def ev_Comparison(self, expr: cst.Comparison, state: State) -> Results:
        out: Results = []
        for s, left in self.ev(expr.left, state):
            results = [(s, left, [])]
            for comparison in expr.comparisons:
                nxt = []
                for s1, lhs, conds in results:
                    for s2, rhs in self.ev(comparison.comparator, s1):
                        op = type(comparison.operator).__name__
                        if lhs.kind == "static" and rhs.kind == "static":
                            cond = self.interp._compare(op, lhs.static, rhs.static)
                        else:
                            cond = _input_is_none(op, lhs, rhs)
                        nxt.append((s2, rhs, conds + [(cond, lhs, rhs)]))
                results = nxt
            for s2, _, conds in results:
                if all(c is not None for c, _, _ in conds):
                    from .symbolic import conjoin
                    out.append((s2, self.static(Loc(BoolV(conjoin(c for c, _, _ in conds)), expr, True), expr)))
                else:
                    inputs = [v for _, l, r in conds for v in (l, r)]
                    out.append((s2, self.new("unknown", expr, inputs, tensor=False)))
        return out

    def ev_IfExp(self, expr: cst.IfExp, state: State) -> Results:
        self.note_tested(expr.test)
        out: Results = []
        for s, test in self.ev(expr.test, state):
            cond = self.cond_of(test)
            if test.kind != "static":
                self.sink(test)
            known = s.facts.evaluate(cond)
            for taken, branch_expr in ((True, expr.body), (False, expr.orelse)):
                if known is not None and known != taken:
                    continue
                branch = s if known is not None else s.fork()
                if known is None:
                    facts = s.facts.assume(cond, taken)
                    if facts is None:
                        continue
                    branch.facts = facts
                out.extend(self.ev(branch_expr, branch))
        return out

    def ev_Call(self, expr: cst.Call, state: State) -> Results:
        func = expr.func
        out: Results = []
        for s, callee in self.ev(func, state):
            out.extend(self.call(expr, callee, s))
        return out

    def eval_call_args(self, expr: cst.Call, state: State) -> List[Tuple[State, List[FVal], Dict[str, FVal]]]:
        results: List[Tuple[State, List[FVal], Dict[str, FVal]]] = [(state, [], {})]
        for arg in expr.args:
            nxt = []
            for s, args, kwargs in results:
                for s2, value in self.ev(arg.value, s):
                    if arg.keyword is not None:
                        nxt.append((s2, args, {**kwargs, arg.keyword.value: value}))
                    elif arg.star:
                        nxt.append((s2, args + [self.new("item", arg.value, (value,), name="*", tensor=value.tensor)], kwargs))
                    else:
                        nxt.append((s2, args + [value], kwargs))
            results = nxt
        return results

    def call(self, expr: cst.Call, callee: FVal, state: State) -> Results:
        if callee.kind == "static" and callee.static is not None:
            return self.call_static(expr, callee, state)
        if callee.kind == "method":
            return self.call_tensor_method(expr, callee, state)
        out = []
        for s, args, kwargs in self.eval_call_args(expr, state):
            inputs = [callee, *args, *kwargs.values()]
            value = self.new("unknown", expr, inputs, tensor=True)
            self.sink(value)
            out.append((s, value))
        return out

    def call_static(self, expr: cst.Call, callee: FVal, state: State) -> Results:
        value = callee.static.value
        if isinstance(value, AltV):
            return self.call_alternatives(expr, callee, value, state)
        if isinstance(value, NoneV):
            return []  # calling None: this path cannot run
        if isinstance(value, MethodV):
            return self.call_self_method(expr, value.name, state)
        if isinstance(value, QualV):
            return self.call_qualified(expr, value.qualname, state, origin=value)
        if isinstance(value, LayerV) and value.spec.family in ("parameter", "buffer", "float_functional"):
            return self.opaque_call(expr, callee, state)
        spec = value.spec if isinstance(value, LayerV) else None
        if isinstance(value, ParamV):
            spec = role_module(value.name, expr)
        elif isinstance(value, (UnknownV, OpaqueV)) and callee.attr and callee.attr.isidentifier():
            # ``self.activation = ACT2FN[name]``: a module we cannot tell, kept
            # under a name that gives its role, as a module parameter's does
            spec = role_module(callee.attr, expr)
        return self.layer_call(expr, callee, spec, state)

    def layer_call(self, expr: cst.Call, callee: FVal, spec: Optional[LayerSpec], state: State) -> Results:
        if callee.attr and callee.node is not None:
            self.flow.attr_called_nodes.setdefault(callee.attr, set()).add(id(callee.node))
        out = []
        for s, args, kwargs in self.eval_call_args(expr, state):
            value = self.new("layer", expr, (*args, *kwargs.values()), spec=spec, attr=callee.attr or "<module>",
                             elementwise=bool(spec and (spec.summary.keeps_channels and spec.summary.stride is not None
                                                        and spec.family in ("act", "dropout", "identity"))))
            value.facts = s.facts
            if spec is not None and spec.inplace_first and args:
                self.flow.inplace.append(InplaceEvent(expr, args[0], expr.args[0].value if expr.args else None,
                                                      "layer", value, s.facts))
            out.append((s, value))
        return out

    def call_alternatives(self, expr: cst.Call, callee: FVal, alt: AltV, state: State) -> Results:
        """Call each alternative a module may be, on its own path.  Each path
        also records which alternative it took: the alternatives exclude each
        other even when their conditions, as written, do not show it."""
        out: Results = []
        viable = _merge_equivalent([(cond, option) for cond, option in _distinct_calls(alt)
                                    if state.facts.evaluate(cond) is not False])
        for index, (cond, option) in enumerate(viable):
            facts = state.facts.assume(cond, True)
            if facts is not None and len(viable) > 1:
                facts = facts.assume(Truth(f"<alternative {index} of {id(alt)}>"), True)
            if facts is None:
                continue
            branch = state.fork()
            branch.facts = facts
            if len(out) > MAX_PATHS:
                raise FlowTooComplex("too many alternatives")
            option_callee = self.static(option, callee.node)
            option_callee.attr = callee.attr
            out.extend(self.call_static(expr, option_callee, branch))
        return out

    def opaque_call(self, expr, callee: FVal, state: State) -> Results:
        out = []
        for s, args, kwargs in self.eval_call_args(expr, state):
            value = self.new("unknown", expr, (callee, *args, *kwargs.values()), tensor=True)
            self.sink(value)
            out.append((s, value))
        return out

    def call_qualified(self, expr: cst.Call, qualname: str, state: State,
                       origin: Optional[QualV] = None) -> Results:
        short = qualname.rsplit(".", 1)[-1]
        if qualname.startswith("<nested>."):
            return self.call_nested(expr, state.funcs.get(short), state)
        if short in ("checkpoint",) and expr.args:
            return self.call_checkpoint(expr, state)
        if qualname in ("builtins.hasattr", "builtins.getattr"):
            looked_up = self.self_lookup(expr, short, state)
            if looked_up is not None:
                return looked_up
        torch_function = qualname.startswith("torch.")
        builtin = qualname.startswith("builtins.")
        out = []
        for s, args, kwargs in self.eval_call_args(expr, state):
            inputs = [*args, *kwargs.values()]
            if torch_function:
                inplace = short in INPLACE_FUNCTIONS or _is_true_static(kwargs.get("inplace"))
                elementwise = short in ELEMENTWISE_FUNCTIONS
                value = self.new("func", expr, inputs, name=short, inplace=inplace, elementwise=elementwise,
                                 tensor=any(i.tensor for i in inputs))
                if inplace and args:
                    self.flow.inplace.append(InplaceEvent(expr, args[0], expr.args[0].value, "function", value, s.facts))
                if short == "add" and len(args) >= 2 and qualname in ("torch.add",):
                    self.flow.adds.append(AddEvent(expr, args[0], args[1], expr.args[0].value, expr.args[1].value,
                                                   value, False, s.facts))
            elif builtin:
                value = self.new("func", expr, inputs, name=short, tensor=any(i.tensor for i in inputs) and short in ("sum", "max", "min"),
                                 elementwise=short in ("len", "int", "float", "isinstance", "range", "enumerate", "zip", "list", "tuple", "print"))
                if short == "print":
                    self.sink(value)
            else:
                # A helper we do not follow: it may do anything with its
                # arguments (they are used for good), but what it returns is
                # a value like any other, dead when nothing reads it
                # (``out = nlc_to_nchw(x, hw)`` then ``out = self.layers(x)``).
                value = self.new("helper", expr, inputs, name=short, tensor=True,
                                 spec=self.helper_spec(expr, origin, short))
                for argument in inputs:
                    self.sink(argument, s.facts)
            out.append((s, value))
        return out

    def helper_spec(self, expr: cst.Call, callee: Optional[QualV], short: str) -> Optional[LayerSpec]:
        """A function of the project called on a tensor (``drop_path(x, p,
        self.training)``, ``channel_shuffle(x, groups)``): what it does to its
        first argument, from its summary (see :func:`function_summary`), as a
        spec whose summary the shape queries read; None when the function
        cannot be read or its summary says nothing."""
        if callee is None or not expr.args or expr.args[0].keyword is not None or expr.args[0].star:
            return None
        from .project import Definition

        resolved = self.interp.resolve(callee)
        if not isinstance(resolved, Definition) or resolved.kind != "function":
            return None
        summary = function_summary(self.interp, resolved.ctx, resolved.name)
        if summary is None:
            return None
        return LayerSpec(family="function", label=f"{short}(...)", call=expr, site=expr, summary=summary)

    def self_lookup(self, expr: cst.Call, builtin: str, state: State) -> Optional[Results]:
        """``hasattr(self, "shortcut")`` and ``getattr(self, "shortcut", None)``
        with a literal name: decided by the world (``__init__`` built the
        attribute or did not), like ``self.shortcut is not None``.  None when
        the call is not of that form or the world cannot tell."""
        args = [a for a in expr.args if a.keyword is None and not a.star]
        if len(args) < 2 or not _is_self(args[0].value) or not isinstance(args[1].value, cst.SimpleString):
            return None
        if self.world.dynamic:
            return None
        name = self.interp.ev_SimpleString(args[1].value, self.world, self.frame).value
        if not isinstance(name, StrV):
            return None
        attr = name.text
        present = attr in self.world.attrs or self.interp.find_method(self.cls, attr)[0] is not None \
            or self.interp.class_attribute(self.cls, attr) is not None
        if builtin == "hasattr":
            return [(state, self.static(Loc(BoolV(present), expr, True), expr))]
        if present:
            fake = make(cst.Attribute, value=args[0].value, attr=make(cst.Name, value=attr))
            results = self.ev_Attribute(fake, state)
            for _, value in results:
                value.node = expr  # positions come from the call the user wrote
            return results
        if len(args) >= 3:
            return self.ev(args[2].value, state)
        return []  # getattr without a default raises: this path does not run

    def call_tensor_method(self, expr: cst.Call, method: FVal, state: State) -> Results:
        receiver = method.inputs[0]
        name = method.name
        out = []
        for s, args, kwargs in self.eval_call_args(expr, state):
            # the attribute node itself is not a use; the call is
            inputs = [receiver, *args, *kwargs.values()]
            if receiver.kind == "static" and receiver.static is not None:
                spec_value = receiver.static.value
                if isinstance(spec_value, LayerV) and spec_value.spec.family == "float_functional" and name in ("add", "add_relu") and len(args) >= 2:
                    value = self.new("binop", expr, tuple(args), name="Add", elementwise=True)
                    self.flow.adds.append(AddEvent(expr, args[0], args[1], expr.args[0].value, expr.args[1].value, value, False, s.facts))
                    out.append((s, value))
                    continue
                if isinstance(spec_value, (ListV,)) and name in ("append", "extend"):
                    value = self.new("unknown", expr, inputs, tensor=False)
                    self.sink(value)
                    out.append((s, value))
                    continue
            if name in NON_TENSOR_METHODS:
                out.append((s, self.new("func", expr, inputs, name=name, tensor=False, elementwise=True)))
                continue
            if receiver.kind == "container" and name in ("append", "extend", "insert"):
                updated = self.new("container", expr, inputs, name=name, tensor=receiver.tensor or any(a.tensor for a in args))
                self._rebind_receiver(expr, receiver, updated, s)
                out.append((s, self.new("static", expr, static=Loc(NoneV()), tensor=False)))
                continue
            inplace = is_inplace_method(name)
            value = self.new("method", expr, inputs, name=name, inplace=inplace,
                             elementwise=name in ELEMENTWISE_METHODS, tensor=receiver.tensor)
            if name in ("add", "add_") and args:
                self.flow.adds.append(AddEvent(expr, receiver, args[0], _receiver_node(expr), expr.args[0].value, value, inplace, s.facts))
            if inplace:
                self.flow.inplace.append(InplaceEvent(expr, receiver, _receiver_node(expr), "method", value, s.facts))
                self._rebind_receiver(expr, receiver, value, s)
            out.append((s, value))
        return out

    def _rebind_receiver(self, expr: cst.Call, old: FVal, new: FVal, state: State) -> None:
        """The variable an in-place method updated now holds its result; for a
        chain (``y.mul_(a).add_(b)``, each step returns ``y`` itself) the
        variable at the start of the chain."""
        node = _receiver_node(expr)
        while isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and \
                is_inplace_method(node.func.attr.value):
            node = node.func.value
        if isinstance(node, cst.Name) and state.env.get(node.value) is old:
            state.env[node.value] = new
            self.flow.assignments.append(AssignEvent(node.value, old, new, expr, node, state.facts))

    def call_self_method(self, expr: cst.Call, name: str, state: State) -> Results:
        method, owner = self.interp.find_method(self.cls, name)
        if method is None or self._depth >= MAX_INLINE_DEPTH or name in self._stack:
            return self.opaque_call(expr, self.new("unknown", expr, tensor=False), state)
        self.flow.methods_inlined.add(name)
        outer_ctx, self.frame.ctx = self.frame.ctx, self.interp.class_ctx(owner)
        try:
            return self.inline(expr, method, state, skip_self=True, label=name)
        finally:
            self.frame.ctx = outer_ctx

    def call_nested(self, expr: cst.Call, func: Optional[cst.FunctionDef], state: State) -> Results:
        if func is None or self._depth >= MAX_INLINE_DEPTH or func.name.value in self._stack:
            return self.opaque_call(expr, self.new("unknown", expr, tensor=False), state)
        return self.inline(expr, func, state, skip_self=False, label=func.name.value, closure=True)

    def call_checkpoint(self, expr: cst.Call, state: State) -> Results:
        """``checkpoint(fn, *args)`` computes ``fn(*args)``."""
        first = expr.args[0].value
        rest = make(cst.Call, func=first, args=expr.args[1:])  # never printed: positions come from `expr`
        created_before = len(self.flow.values)
        out: Results = []
        for s, fn in self.ev(first, state):
            out.extend(self.call(rest, fn, s))
        for value in self.flow.values[created_before:]:
            if value.node is rest:
                value.node = expr  # report positions on the code the user wrote
        return out

    def inline(self, expr: cst.Call, func: cst.FunctionDef, state: State, skip_self: bool, label: str,
               closure: bool = False) -> Results:
        out: Results = []
        for s, args, kwargs in self.eval_call_args(expr, state):
            params = list(func.params.posonly_params) + list(func.params.params)
            if skip_self:
                params = params[1:]
            env: Dict[str, FVal] = dict(s.env) if closure else {}
            positional = list(args)
            bindable = True
            for param in params:
                pname = param.name.value
                if positional:
                    env[pname] = positional.pop(0)
                elif pname in kwargs:
                    env[pname] = kwargs.pop(pname)
                elif param.default is not None:
                    env[pname] = self.static(Loc(UnknownV("default")), param.default)
                else:
                    bindable = False
            for param in func.params.kwonly_params:
                env[param.name.value] = kwargs.pop(param.name.value, None) or self.static(Loc(UnknownV("default")), param.name)
            if isinstance(func.params.star_arg, cst.Param):
                env[func.params.star_arg.name.value] = self.new("container", func.params.star_arg, positional, name="tuple")
                positional = []
            if func.params.star_kwarg is not None:
                env[func.params.star_kwarg.name.value] = self.new("container", func.params.star_kwarg, list(kwargs.values()), name="dict")
                kwargs = {}
            if not bindable or positional or kwargs:
                value = self.new("unknown", expr, args, tensor=True)
                self.sink(value)
                out.append((s, value))
                continue
            caller_env = s.env
            s.env = env
            s.retval = None
            self._depth += 1
            self._stack = self._stack + (label,)
            try:
                states = self.exec_block(func.body, [s])
            finally:
                self._depth -= 1
                self._stack = self._stack[:-1]
            for st in states:
                value = st.retval if st.retval is not None else self.static(Loc(NoneV()), expr)
                st.env = dict(caller_env)
                st.returned = False
                st.retval = None
                out.append((st, value))
        return out

    # -- conditions ----------------------------------------------------------
    def cond_of(self, value: FVal) -> Cond:
        if value.kind == "static" and value.static is not None:
            cond = self.interp.as_cond(value.static)
            if cond is None:
                return fresh_truth("condition")
            return cond
        return fresh_truth("tensor condition")


# Statements run to summarise one module-level function called in forward.
FUNCTION_BUDGET = 400


def function_summary(interp: Interpreter, ctx: ModuleContext, name: str) -> Optional[Summary]:
    """What a module-level function does to the tensor it is given first, run
    once per module content like a module class's forward, with its other
    parameters unknown: timm's ``drop_path(x, p, training)`` returns ``x``
    or ``x`` times a mask made from it, so it keeps the width and resolution.
    Only what holds without the caller's values is kept (the width kept, a
    constant stride); None when that is nothing, when the function cannot be
    run (too long, a construct not modelled), or while it is being summarised
    (recursion)."""
    def compute() -> Optional[Summary]:
        from .block import flow_summary

        func = ctx.functions.get(name)
        key = (ctx.path, name)
        if func is None or key in interp.functions_summarising:
            return None
        params = list(func.params.posonly_params) + list(func.params.params)
        if not params or params[0].name.value in ("self", "cls"):
            return None  # a method written at module level: its `self` is no module the model knows
        interp.functions_summarising.add(key)
        try:
            world = World()
            flow = ForwardExecutor(ctx, interp, None, world, Budget(FUNCTION_BUDGET)).run(func, method=False)
        finally:
            interp.functions_summarising.discard(key)
        if not flow.complete or not flow.returns:
            return None
        summary = flow_summary(flow, world.facts)
        stride = summary.stride if summary.stride is not None and summary.stride.const_value() is not None else None
        if not summary.keeps_channels and stride is None:
            return None
        return Summary(keeps_channels=summary.keeps_channels, stride=stride, axis=summary.axis if summary.keeps_channels else None)

    return interp._memo(ctx, ("function-summary", name), compute)


def _distinct_calls(alt: AltV) -> List[Tuple[Cond, Loc]]:
    """The alternatives a module may be, as far as calling it can tell them
    apart: nested alternatives flattened (each under both conditions), and
    every module we cannot see into merged into one (under the disjunction
    of their conditions).  A helper that returns one of a dozen attention
    classes (or ``None``) would otherwise multiply the paths through forward
    by a dozen for each such layer, all identical."""
    from .symbolic import conjoin, disjoin

    flat: List[Tuple[Cond, Loc]] = []
    pending = [(True, option, cond) for cond, option in alt.options]
    while pending:
        outer, option, cond = pending.pop(0)
        cond = conjoin((outer, cond)) if outer is not True else cond
        if isinstance(option.value, AltV):
            pending[:0] = [(cond, inner, inner_cond) for inner_cond, inner in option.value.options]
        else:
            flat.append((cond, option))
    groups: Dict[object, List[Tuple[Cond, Loc]]] = {}
    for cond, option in flat:
        groups.setdefault(_call_key(option), []).append((cond, option))
    if len(groups) == len(flat):
        return flat
    return [(disjoin(cond for cond, _ in group), group[0][1]) if len(group) > 1 else group[0]
            for group in groups.values()]


def _call_key(option: Loc) -> object:
    """What calling this alternative would show the rules: every module we
    cannot see into is the same, and so are two layers built alike (the same
    class with the same arguments, reached through different branches of a
    helper)."""
    value = option.value
    if isinstance(value, UnknownV):
        return "unknown"
    if not isinstance(value, LayerV):
        return id(value)
    spec = value.spec
    if spec.children:
        return id(spec)
    args = []
    for name in sorted(spec.args):
        arg = spec.args[name].value
        key = plain_key(arg)
        if key is None:
            return id(spec)
        args.append((name, key))
    summary = spec.summary
    render = lambda num: num.render() if num is not None else None  # noqa: E731
    return (spec.family, spec.label, spec.ltype.name if spec.ltype is not None else None, spec.class_name,
            render(summary.in_channels), render(summary.out_channels), summary.keeps_channels,
            render(summary.stride), summary.axis, summary.has_weights, spec.transparent, spec.inplace_first,
            spec.from_parameter, tuple(args))


def _counts_from_zero(iterable: FVal) -> bool:
    """``range(n)`` or ``range(0, n)``: the k-th pass binds k."""
    if iterable.kind != "func" or iterable.name != "range" or not iterable.inputs or len(iterable.inputs) > 2:
        return False
    if len(iterable.inputs) == 1:
        return True
    start = iterable.inputs[0]
    return start.kind == "static" and start.static is not None and isinstance(start.static.value, NumV) and \
        start.static.value.num.const_value() == 0


def _merge_equivalent(options: List[Tuple[Cond, Loc]]) -> List[Tuple[Cond, Loc]]:
    """Alternatives that transform a tensor the same way, as far as the model
    knows (the same family and :class:`Summary`), taken as one path: the
    first of them (usually the default) stands for the rest, under the
    disjunction of their conditions.  A builder with a config (mmcv's
    ``build_conv_layer``/``build_norm_layer``: Conv1d/2d/3d, BN/GN/IN...)
    would otherwise fork forward once per option at every call, and a
    block with four such layers has hundreds of paths.  An option whose
    channel axis is unknown (the builder's catch-all) joins the first
    option that is otherwise the same.  The options of one module class
    (one per way its ``__init__`` runs) merge the same way."""
    groups: List[Tuple[Optional[tuple], List[Cond], Loc]] = []
    for cond, option in options:
        key = _dataflow_key(option.value)
        target = None
        if key is not None:
            target = next((g for g in groups if g[0] is not None and _same_dataflow(g[0], key)), None)
        if target is None:
            groups.append((key, [cond], option))
        else:
            target[1].append(cond)
    from .symbolic import disjoin

    return [(conds[0] if len(conds) == 1 else disjoin(conds), option) for _, conds, option in groups]


def _dataflow_key(value: Value) -> Optional[tuple]:
    if isinstance(value, UnknownV):
        return ("unknown",)
    if not isinstance(value, LayerV):
        return None
    spec, summary = value.spec, value.spec.summary
    if spec.family in ("container", "caller", "unknown", "parameter", "float_functional"):
        return None  # their children make the difference
    # A module class's options (one per way its __init__ runs) act alike
    # when their summaries agree.
    return (spec.family, spec.class_name, spec.inplace_first, spec.transparent, summary.in_channels,
            summary.out_channels, summary.keeps_channels, summary.stride, summary.has_weights, summary.axis)


def _same_dataflow(a: tuple, b: tuple) -> bool:
    if a[:-1] != b[:-1]:
        return False
    return a[-1] == b[-1] or a[-1] is None or b[-1] is None or a[0] == "unknown"


def _input_is_none(op: str, left: FVal, right: FVal) -> Cond:
    """``x2 is None`` for an argument of forward: the same condition every
    time it is tested (``x_in = cat(x1, x2) if x2 is not None else x1`` and a
    later ``assert x2 is not None`` agree); False for a layer's output or a
    sum (``if identity is None`` after ``identity = self.proj(x)``), for a
    tensor's method or a torch function of tensors (``gate = self.gate(x).sigmoid()``,
    then ``if gate is not None``: deciding it here keeps a world from forking
    on a test its own layers settle); None (unknown) for anything else."""
    if op not in ("Is", "IsNot"):
        return None
    for value, other in ((left, right), (right, left)):
        if other.kind != "static" or other.static is None or not isinstance(other.static.value, NoneV):
            continue
        if value.kind == "input":
            cond = Truth(f"forward argument {value.name} is None")
            return cond if op == "Is" else negate(cond)
        if value.kind in ("layer", "binop", "method", "func") and value.tensor:
            return op == "IsNot"  # a module's output or a sum is a tensor, never None
    return None


def _holds_tensor(value) -> bool:
    """A parameter or buffer: its attributes are a tensor's (``self.running.mul_``)."""
    return isinstance(value, LayerV) and value.spec.family in ("parameter", "buffer")


def _is_true_static(value: Optional[FVal]) -> bool:
    return bool(value is not None and value.kind == "static" and value.static is not None
                and isinstance(value.static.value, BoolV) and value.static.value.cond is True)


def _receiver_node(expr: cst.Call) -> Optional[cst.CSTNode]:
    return expr.func.value if isinstance(expr.func, cst.Attribute) else None


def _is_self_rooted(expr) -> bool:
    while isinstance(expr, (cst.Attribute, cst.Subscript)):
        expr = expr.value
    return _is_self(expr)


def _slice_expressions(slice_node) -> List[cst.BaseExpression]:
    if isinstance(slice_node, cst.Index):
        return [slice_node.value]
    if isinstance(slice_node, cst.Slice):
        return [p for p in (slice_node.lower, slice_node.upper, slice_node.step) if p is not None]
    return []


def _names_and_self_attrs(expr) -> Tuple[List[str], List[str]]:
    """Names an expression reads, and the ``self.X`` attributes it mentions."""
    names: List[str] = []
    self_attrs: List[str] = []
    for node in walk(expr):
        if isinstance(node, cst.Name):
            names.append(node.value)
        elif isinstance(node, cst.Attribute) and _is_self(node.value):
            self_attrs.append(node.attr.value)
    return names, self_attrs


# ``ev`` dispatches on the node's class name through this table: a string
# concatenation and a bound-method lookup per expression were 3% of a run.
_EVALUATORS = {name[len("ev_"):]: function for name, function in vars(ForwardExecutor).items()
               if name.startswith("ev_")}
