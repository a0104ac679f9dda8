"""Symbolic execution of ``__init__``: which layers a block builds, and when.

Statements run in *worlds*.  An ``if`` whose test the facts cannot decide
forks the world: each side continues with the test assumed true or false, so
``self.skip = None`` in an ``else`` is never merged with the projection built
in the ``if`` (seed 003).  Conditional *expressions* do not fork; they become
:class:`AltV` alternatives that the forward dataflow splits only where it calls
them.  Loops run their body once with everything the loop changes made
unknown, which is conservative: a value we cannot pin down is never used to
report anything.

Helpers defined in the same file are executed with their parameters bound to
the caller's values: ``conv3x3(inplanes, planes, stride)`` yields the
``nn.Conv2d`` it returns, and ``class ConvBNReLU(nn.Sequential)`` yields a
Sequential of its three layers.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, replace as replace_fields
from fractions import Fraction
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple

import libcst as cst

from . import layers as L
from . import summaries
from .context import LOCAL_PREFIX, ModuleContext
from .control import ControlFlow
from .records import record
from .syntax import iter_children, walk
from .symbolic import (
    TRUTHY,
    EMPTY_FACTS,
    And,
    Cmp,
    Cond,
    Facts,
    Not,
    Num,
    Or,
    Truth,
    conjoin,
    disjoin,
    fresh_truth,
    negate,
)
from .torch_api import FLOAT_FUNCTIONAL, layer_type
from .values import (
    possible_values,
    NONE,
    SELF,
    UNKNOWN,
    AltV,
    BoolV,
    BoundMethodV,
    DictV,
    InstanceV,
    Item,
    LayerSpec,
    LayerV,
    LambdaV,
    ListV,
    Loc,
    MethodV,
    NoneV,
    NumV,
    OpaqueV,
    ParamV,
    PartialV,
    QualV,
    SelfV,
    StrV,
    Summary,
    SuperV,
    TupleV,
    UnknownV,
    Value,
    as_num,
    plain_key,
)

MAX_WORLDS = 32
# What the library contracts in resnetlint/stubs import to say "a layer of
# this role whose class is unknown": ``contract.norm(C)``, ``contract.act()``.
CONTRACT_MODULE = "__resnetlint__"
INSTANCE_FORWARD_BUDGET = 400  # statements of a helper class's forward run for one kind of call
MAX_CALL_DEPTH = 5
NOT_MODULES = ("parameter", "buffer")  # LayerV families nn.Module does not register as submodules
DICT_METHODS = ("get", "copy")
DICT_MUTATORS = ("pop", "setdefault", "update")
STRING_METHODS = {"lower": str.lower, "upper": str.upper, "strip": str.strip, "replace": str.replace}
INIT_BUDGET = 20000  # statements executed while running one class's __init__ (helpers included)
BUILTINS = {
    "int", "float", "round", "max", "min", "len", "range", "list", "tuple", "dict", "isinstance",
    "getattr", "setattr", "hasattr", "super", "print", "abs", "sum", "enumerate", "zip", "str",
    "bool", "type", "callable", "any", "all", "sorted", "reversed", "map", "filter", "divmod",
}


class TooComplex(Exception):
    """The class has more alternative constructions than we explore."""


class Raises(Exception):
    """This way of running ``__init__`` raises (arithmetic on None, a layer
    given None for a width): it builds no block, like a ``raise``."""


@record(eq=True)
class Decision:
    cond: Cond
    taken: bool
    node: cst.CSTNode


@record
class AttrAssign:
    """One assignment of ``self.<name>``."""

    loc: Loc
    stmt: Optional[cst.CSTNode]
    decisions: Tuple[Decision, ...]
    in_loop: bool = False


class World:
    """One way ``__init__`` can run: facts, locals, and ``self``'s attributes."""

    __slots__ = ("facts", "env", "attrs", "decisions", "dynamic", "returned", "retval", "base_layer", "seq_children",
                 "assumed")

    def __init__(self, facts: Facts = EMPTY_FACTS):
        self.facts = facts
        self.env: Dict[str, Loc] = {}
        self.attrs: Dict[str, AttrAssign] = {}
        self.decisions: Tuple[Decision, ...] = ()
        self.dynamic = False  # attributes set under names we cannot read
        self.returned = False
        self.retval: Optional[Loc] = None
        self.base_layer: Optional[LayerSpec] = None  # subclass of a torch layer
        self.seq_children: Optional[Tuple[Tuple[Item, ...], bool]] = None  # Sequential subclass
        # What this world took for granted to get this far (a parameter's
        # default configuration read), said on the layers it builds next.
        self.assumed: Tuple[str, ...] = ()

    def fork(self) -> "World":
        other = World(self.facts)
        other.env = dict(self.env)
        other.attrs = dict(self.attrs)
        other.decisions = self.decisions
        other.dynamic = self.dynamic
        other.returned = self.returned
        other.retval = self.retval
        other.base_layer = self.base_layer
        other.seq_children = self.seq_children
        other.assumed = self.assumed
        return other

    @property
    def stopped(self) -> bool:
        return self.returned

    def attr(self, name: str) -> Optional[Loc]:
        assigned = self.attrs.get(name)
        return assigned.loc if assigned is not None else None

    def condition(self) -> Cond:
        return conjoin(d.cond if d.taken else negate(d.cond) for d in self.decisions)

    def sequential_modules(self) -> Optional[Tuple[Tuple[Item, ...], bool]]:
        """The layers an ``nn.Sequential`` subclass runs, in order, and
        whether the list is complete (None: not a Sequential subclass).

        ``nn.Sequential.forward`` runs every registered submodule: those
        passed to ``super().__init__(...)``, then those assigned to ``self``
        afterwards (``self.conv = ...; self.bn = ...``), in the order they
        were first registered (re-assigning a name keeps its place).  An
        attribute that may or may not be a module makes the list incomplete.
        """
        if self.seq_children is None:
            return None
        items, complete = self.seq_children
        added = []
        numbers = _numeric_parameters(items)
        for assigned in self.attrs.values():
            value = assigned.loc.value
            if isinstance(value, LayerV) and value.spec.family not in NOT_MODULES or \
                    isinstance(value, AltV) and all(isinstance(o.value, LayerV) for _, o in value.options):
                added.append(Item(assigned.loc))
                complete = complete and not assigned.in_loop
            elif not _never_a_module(value) and not (isinstance(value, ParamV) and value.name in numbers):
                complete = False
        if self.dynamic:
            complete = False
        return tuple(items) + tuple(added), complete


@dataclass
class Frame:
    """The function being interpreted."""

    cls: Optional[cst.ClassDef]  # whose ``self`` this is (None in a helper function)
    local: bool  # nodes belong to the class under analysis
    depth: int = 0
    loop_depth: int = 0
    segment: Optional[int] = None
    site: Optional[cst.CSTNode] = None  # outermost local expression being evaluated
    stack: Tuple[str, ...] = ()
    ctx: Optional[ModuleContext] = None  # the module whose names the code reads (None: the checked file)


@dataclass
class InitResult:
    worlds: List[World]
    complete: bool = True
    reason: str = ""
    init: Optional[cst.FunctionDef] = None


# A callback the block analysis provides so that a helper Module class used as
# a layer gets a summary: per world of the class, the world's condition and the
# summary in terms of the class's own parameters.
ClassSummaries = Callable[[cst.ClassDef], Optional[List[Tuple[Cond, Summary]]]]


class Interpreter:
    def __init__(self, ctx: ModuleContext, class_summaries: Optional[ClassSummaries] = None):
        self.ctx = ctx
        self.project = ctx.project
        self.class_summaries = class_summaries
        # The module of every class met (the checked file's, bases and
        # helper classes from other modules), to read its code's names there.
        self._class_ctx: Dict[int, Tuple[cst.ClassDef, ModuleContext]] = {}
        for cls in ctx.classes.values():
            self._class_ctx[id(cls)] = (cls, ctx)
        self._segments = itertools.count(1)
        self._constants: Dict[Tuple[str, str], Loc] = {}
        self._constant_stack: Set[Tuple[str, str]] = set()
        self._composites: Dict[Tuple, Loc] = {}
        self._budget = INIT_BUDGET
        self._integers: Dict[str, NumV] = {}
        self._syntax: Dict[Tuple[str, int], object] = {}
        self._memo_table: Dict[Tuple[str, object], object] = {}
        # module-level functions whose summary is being computed (forward_exec.function_summary)
        self.functions_summarising: Set[Tuple[str, str]] = set()

    def syntax(self, kind: str, node, compute):
        """A fact about a syntax node (names it reads, names it assigns),
        computed once per file: worlds and paths ask for the same nodes."""
        key = (kind, id(node))
        if key not in self._syntax:
            self._syntax[key] = (node, compute(node))  # keep the node alive: ids are reused
        return self._syntax[key][1]

    # ------------------------------------------------------------------
    # Entry points
    # ------------------------------------------------------------------
    def run_class(self, cls: cst.ClassDef) -> InitResult:
        """Run the class's ``__init__`` with symbolic parameters."""
        init, owner = self.find_method(cls, "__init__")
        world = World()
        ctx = self.class_ctx(cls)
        if init is None:
            return InitResult([world], complete=not ctx.external_bases(cls) or self._only_torch_bases(cls))
        frame = Frame(cls=cls, local=owner is cls and not ctx.foreign, stack=(cls.name.value,), ctx=self.class_ctx(owner))
        for name, loc in self._symbolic_params(init, frame):
            world.env[name] = loc
        world.facts = self._call_site_facts(cls, init, world.facts)
        outer_budget, self._budget = self._budget, INIT_BUDGET  # a helper class analysed on the way
        try:
            worlds = self.exec_block(init.body, [world], frame)
        except TooComplex as exc:
            return InitResult([], complete=False, reason=str(exc), init=init)
        finally:
            self._budget = outer_budget
        return InitResult(worlds, init=init)

    def _call_site_facts(self, cls: cst.ClassDef, init: cst.FunctionDef, facts: Facts) -> Facts:
        """Parameters that every call in the file passes the same expression
        for are equal by contract (``PosConv(dims[i], dims[i])``)."""
        sites = self.class_ctx(cls).facts.call_sites.get(cls.name.value)
        if not sites:
            return facts
        names = [p.name.value for p in list(init.params.posonly_params) + list(init.params.params)][1:]
        bound_sites = []
        for positional, keywords in sites:
            if len(positional) > len(names):
                return facts
            bound = dict(zip(names, positional))
            bound.update(keywords)
            bound_sites.append(bound)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                if all(a in site and b in site and site[a] == site[b] for site in bound_sites):
                    facts = facts.assume(Cmp("==", Num.atom(a), Num.atom(b)), True) or facts
        return facts

    def _only_torch_bases(self, cls: cst.ClassDef) -> bool:
        return all(b.startswith("torch.") for b in self.class_ctx(cls).external_bases(cls))

    def _symbolic_params(self, func: cst.FunctionDef, frame: Frame) -> Iterable[Tuple[str, Loc]]:
        params = func.params
        ordered = list(params.posonly_params) + list(params.params)
        for index, param in enumerate(ordered):
            if index == 0:
                yield param.name.value, Loc(SELF, param.name, frame.local)
                continue
            default = self.eval_module_expr(param.default, frame.ctx) if param.default is not None else None
            yield param.name.value, Loc(ParamV(param.name.value, default), param.name, frame.local)
        for param in params.kwonly_params:
            default = self.eval_module_expr(param.default, frame.ctx) if param.default is not None else None
            yield param.name.value, Loc(ParamV(param.name.value, default), param.name, frame.local)
        star = params.star_arg
        if isinstance(star, cst.Param):
            yield star.name.value, Loc(UnknownV("*args"), star.name, frame.local)
        if params.star_kwarg is not None:
            yield params.star_kwarg.name.value, Loc(UnknownV("**kwargs"), params.star_kwarg.name, frame.local)

    def find_method(self, cls: cst.ClassDef, name: str, _seen=None) -> Tuple[Optional[cst.FunctionDef], Optional[cst.ClassDef]]:
        """A method of the class or of its same-file bases (nearest first)."""
        seen = _seen or set()
        if id(cls) in seen:
            return None, None
        seen.add(id(cls))
        for stmt in cls.body.body:
            if isinstance(stmt, cst.FunctionDef) and stmt.name.value == name:
                return stmt, cls
        for base in self.bases_of(cls):
            found, owner = self.find_method(base, name, seen)
            if found is not None:
                return found, owner
        return None, None

    def register_class(self, cls: cst.ClassDef, ctx: ModuleContext) -> None:
        """``cls`` is defined in ``ctx`` (a module the project read)."""
        self._class_ctx[id(cls)] = (cls, ctx)

    def class_ctx(self, cls: Optional[cst.ClassDef]) -> ModuleContext:
        """The module a class (met on the way) is defined in."""
        if cls is None:
            return self.ctx
        entry = self._class_ctx.get(id(cls))
        return entry[1] if entry is not None and entry[0] is cls else self.ctx

    def bases_of(self, cls: cst.ClassDef) -> List[cst.ClassDef]:
        """Base classes we read the source of, nearest first (in this file or,
        through the project, in another module)."""
        out = []
        for ctx, parent in self.class_ctx(cls).class_bases(cls):
            self._class_ctx[id(parent)] = (parent, ctx)
            out.append(parent)
        return out

    def ctx_of(self, frame: Frame) -> ModuleContext:
        return frame.ctx or self.ctx

    def class_attribute(self, cls: cst.ClassDef, name: str, _seen=None) -> Optional[Tuple[cst.BaseExpression, cst.ClassDef]]:
        seen = _seen or set()
        if id(cls) in seen:
            return None
        seen.add(id(cls))
        found = None
        for stmt in cls.body.body:
            if isinstance(stmt, cst.SimpleStatementLine):
                for small in stmt.body:
                    if isinstance(small, cst.Assign):
                        for target in small.targets:
                            if isinstance(target.target, cst.Name) and target.target.value == name:
                                found = (small.value, cls)
                    elif isinstance(small, cst.AnnAssign) and small.value is not None:
                        if isinstance(small.target, cst.Name) and small.target.value == name:
                            found = (small.value, cls)
        if found is not None:
            return found
        for base in self.bases_of(cls):
            found = self.class_attribute(base, name, seen)
            if found is not None:
                return found
        return None

    # ------------------------------------------------------------------
    # Statements
    # ------------------------------------------------------------------
    def exec_block(self, block, worlds: List[World], frame: Frame) -> List[World]:
        """Run a body in ``frame``: the shared engine with ``__init__``'s hooks."""
        return InitControl(self, frame).exec_block(block, worlds)

    def tick(self) -> None:
        self._budget -= 1
        if self._budget < 0:
            raise TooComplex("__init__ is too long to explore")

    def exec_small(self, small: cst.BaseSmallStatement, world: World, frame: Frame) -> List[World]:
        if isinstance(small, cst.Assign):
            split = self._split_on_argument_choice(small, world, frame)
            if split is not None:
                return [w for branch in split for w in self.exec_small(small, branch, frame)]
            forked = self._exec_call_statement(small.value, world, frame)
            results = forked if forked is not None else self._choose(self.ev(small.value, world, frame), world, frame)
            for w, value in results:
                for target in small.targets:
                    self.assign(target.target, value, w, frame, small)
            return [w for w, _ in results]
        if isinstance(small, cst.AnnAssign):
            if small.value is None:
                return [world]
            results = self._choose(self.ev(small.value, world, frame), world, frame)
            for w, value in results:
                self.assign(small.target, value, w, frame, small)
            return [w for w, _ in results]
        if isinstance(small, cst.AugAssign):
            self.exec_augassign(small, world, frame)
            return [world]
        if isinstance(small, cst.Expr):
            forked = self._exec_call_statement(small.value, world, frame, discarded=True)
            if forked is not None:
                return [w for w, _ in forked]
            self.ev(small.value, world, frame)
            return [world]
        if isinstance(small, cst.Return):
            world.retval = self.ev(small.value, world, frame) if small.value is not None else Loc(NONE)
            world.returned = True
            return [world]
        if isinstance(small, cst.Raise):
            return []  # this way of running __init__ does not build a block
        if isinstance(small, cst.Assert):
            facts = world.facts.assume(self.as_cond(self.ev(small.test, world, frame)), True)
            if facts is None:
                return []
            world.facts = facts
            return [world]
        if isinstance(small, cst.Del):
            self._delete(small.target, world)
            return [world]
        if isinstance(small, (cst.Import, cst.ImportFrom)):
            self._local_import(small, world, frame)
            return [world]
        return [world]  # pass, break, continue, global, nonlocal

    def _split_on_argument_choice(self, small: cst.Assign, world: World, frame: Frame) -> Optional[List[World]]:
        """A layer the block builds with an argument chosen by a condition on
        its parameters (``ResNetConvLayer(c, m, 1, stride=stride if
        downsample_in_bottleneck else 1)``): the world forks on the condition,
        as for ``if downsample_in_bottleneck:``, so that the layer's stride
        (or width) is a number in each world and agrees with the other layers
        the same flag places (the next conv's ``stride if not
        downsample_in_bottleneck else 1``).  Only for the class under
        analysis, a ``self.<attr> = <call>`` statement, plain values on both
        sides; None when there is nothing to split on.  The decision recorded
        is the conditional expression itself (messages quote its test)."""
        if not frame.local or len(small.targets) != 1 or not isinstance(small.targets[0].target, cst.Attribute) \
                or not _is_self(small.targets[0].target.value) or not isinstance(small.value, cst.Call):
            return None
        for node in walk(small.value):
            if not isinstance(node, cst.Arg) or not isinstance(node.value, cst.IfExp):
                continue
            choice = node.value
            cond = self.as_cond(self.ev(choice.test, world, frame))
            if cond is None or isinstance(cond, bool) or world.facts.evaluate(cond) is not None:
                continue
            sides = [self.ev(side, world, frame).value for side in (choice.body, choice.orelse)]
            if not all(isinstance(side, (NumV, ParamV, BoolV, NoneV)) for side in sides) or \
                    plain_key(sides[0]) == plain_key(sides[1]):
                continue
            control = InitControl(self, frame)
            worlds = [branch for taken in (True, False)
                      for branch in [control.assume(world, cond, taken, choice, fork=True)] if branch is not None]
            # only a test each branch then decides (a comparison of values the
            # model cannot name is a new unknown each time it is read)
            if worlds and all(branch.facts.evaluate(self.as_cond(self.ev(choice.test, branch, frame))) is not None
                              for branch in worlds):
                return worlds
        return None

    def _choose(self, value: Loc, world: World, frame: Frame) -> List[Tuple[World, Loc]]:
        """An assigned value that is one of several plain values
        (``out_channels or in_channels``, ``dim if dim_out is None else
        dim_out``) forks the world, one alternative each, so that widths stay
        numbers and later tests agree with the choice.  Alternatives of layers
        stay a value: the forward dataflow splits where they are called."""
        alternatives = value.value
        if not isinstance(alternatives, AltV) or not all(
                isinstance(option.value, (NumV, ParamV, NoneV, BoolV, StrV)) for _, option in alternatives.options):
            return [(world, value)]
        control = InitControl(self, frame)
        out = []
        for cond, option in alternatives.options:
            last = len(out) == len(alternatives.options) - 1
            branch = control.assume(world, cond, True, alternatives.test or value.node, fork=not last)
            if branch is not None:
                out.append((branch, option))
        return out or [(world, value)]

    def _exec_call_statement(self, expr: cst.BaseExpression, world: World, frame: Frame, discarded: bool = False):
        """Calls that may fork worlds: ``super().__init__(...)`` and
        ``self.method(...)`` (they assign attributes); with ``discarded`` (an
        expression statement) also helper calls that cannot change ``self``,
        which are skipped.  None if not one of those."""
        if not isinstance(expr, cst.Call):
            return None
        callee = self.ev(expr.func, world, frame)
        value = callee.value
        if isinstance(value, BoundMethodV) and isinstance(value.receiver.value, SuperV) and value.name == "__init__":
            args, kwargs, _ = self.eval_args(expr, world, frame)
            return self.call_super_init(args, kwargs, world, frame, expr)
        if isinstance(value, QualV) and value.qualname.endswith(".__init__") and expr.args:
            # nn.Module.__init__(self) / Base.__init__(self, ...)
            first = self.ev(expr.args[0].value, world, frame)
            if isinstance(first.value, SelfV):
                args, kwargs, _ = self.eval_args(expr, world, frame)
                base = QualV(value.qualname[: -len(".__init__")], value.origin)
                return self.call_super_init(args[1:], kwargs, world, frame, expr, explicit=base)
        if isinstance(value, MethodV):
            return self.call_method(value.name, expr, world, frame)
        if discarded and isinstance(value, QualV) and self._discardable(value, expr, world, frame):
            return [(world, Loc(NONE))]
        return None

    def _discardable(self, callee: QualV, expr: cst.Call, world: World, frame: Frame) -> bool:
        """A helper function called for its effect (``trunc_normal_(self.pos_embed)``,
        ``init_weights(self.head)``) whose result is thrown away: without
        ``self`` among its arguments it cannot build or change an attribute,
        so it is not run (weight initialisation is most of these)."""
        from .project import Definition

        if callee.qualname.startswith(("torch.", "builtins.")):
            return False
        resolved = self.resolve(callee)
        if not (isinstance(resolved, Definition) and resolved.kind == "function"):
            return False
        args, kwargs, _ = self.eval_args(expr, world, frame)
        return not any(isinstance(a.value, SelfV) for a in list(args) + list(kwargs.values()))

    def exec_augassign(self, node: cst.AugAssign, world: World, frame: Frame) -> None:
        target = node.target
        current = self.ev(target, world, frame)
        operand = self.ev(node.value, world, frame)
        op = type(node.operator).__name__.replace("Assign", "")
        if op == "Add" and isinstance(current.value, ListV):
            value = Loc(current.value.extend(operand.value, frame.segment), target, frame.local)
        else:
            value = self._binary(op, current, operand, node)
        self.assign(target, value, world, frame, node)

    def _forget_assigned(self, node, world: World, frame: Frame) -> None:
        names, attrs = self.syntax("assigned", node, _assigned_in)
        for name in names:
            world.env[name] = Loc(UnknownV("assigned in a block we do not model"), None, frame.local)
        for attr in attrs:
            self._set_attr(world, attr, Loc(UnknownV("assigned in a block we do not model")), None, frame)

    def _delete(self, target: cst.BaseExpression, world: World) -> None:
        if isinstance(target, cst.Name):
            world.env.pop(target.value, None)
        elif isinstance(target, cst.Attribute) and _is_self(target.value):
            world.attrs.pop(target.attr.value, None)
        elif isinstance(target, cst.Tuple):
            for element in target.elements:
                self._delete(element.value, world)

    def _local_import(self, node, world: World, frame: Frame) -> None:
        if isinstance(node, cst.Import):
            for alias in node.names:
                if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                    world.env[alias.asname.name.value] = Loc(QualV(_code(alias.name)), None, frame.local)
        elif not isinstance(node.names, cst.ImportStar) and node.module is not None and not node.relative:
            for alias in node.names:
                local = alias.asname.name.value if alias.asname and isinstance(alias.asname.name, cst.Name) else _code(alias.name)
                world.env[local] = Loc(QualV(f"{_code(node.module)}.{_code(alias.name)}"), None, frame.local)

    # ------------------------------------------------------------------
    # Assignment
    # ------------------------------------------------------------------
    def assign(self, target: cst.BaseExpression, value: Loc, world: World, frame: Frame, stmt: cst.CSTNode) -> None:
        if isinstance(target, cst.Name):
            world.env[target.value] = value
        elif isinstance(target, cst.Attribute):
            if _is_self(target.value):
                self._set_attr(world, target.attr.value, value, stmt, frame, in_loop=frame.loop_depth > 0)
        elif isinstance(target, (cst.Tuple, cst.List)):
            elements = target.elements
            items = value.value.items if isinstance(value.value, TupleV) else None
            if isinstance(value.value, ListV) and value.value.complete:
                items = tuple(i.loc for i in value.value.items)
            if isinstance(value.value, AltV):
                items = _unpacked_alternatives(value.value, len(elements))
            for index, element in enumerate(elements):
                if isinstance(element, cst.StarredElement) or items is None or len(items) != len(elements):
                    self.assign(_unstar(element.value), Loc(UnknownV("unpacking"), element.value, frame.local), world, frame, stmt)
                else:
                    self.assign(element.value, items[index], world, frame, stmt)
        elif isinstance(target, cst.Subscript):
            base = self.ev(target.value, world, frame)
            if isinstance(base.value, (ListV, DictV)) and isinstance(target.value, cst.Name):
                world.env[target.value.value] = Loc(self._store_item(base.value, target, value, world, frame),
                                                    target.value, frame.local)

    def _store_item(self, container, target: cst.Subscript, value: Loc, world: World, frame: Frame):
        """``layers[0] = nn.ReLU(inplace=False)``: replace a known element;
        anything else makes the container incomplete."""
        if isinstance(container, ListV) and container.complete and len(target.slice) == 1 \
                and isinstance(target.slice[0].slice, cst.Index):
            index = as_num(self.ev(target.slice[0].slice.value, world, frame))
            position = index.int_value() if index is not None else None
            items = list(container.items)
            if position is not None and -len(items) <= position < len(items) and items[position].segment is None:
                items[position] = Item(value, items[position].segment)
                return ListV(tuple(items), True)
        if isinstance(container, DictV) and frame.loop_depth == 0 and len(target.slice) == 1 \
                and isinstance(target.slice[0].slice, cst.Index):
            key = self.ev(target.slice[0].slice.value, world, frame).value
            if isinstance(key, StrV):
                # torchvision's ``layers["conv_a"] = ...`` into an OrderedDict: a
                # new key goes last, a known one keeps its place
                items = [(k, v) for k, v in container.items if k != key.text]
                if len(items) < len(container.items):
                    items = [(k, value if k == key.text else v) for k, v in container.items]
                else:
                    items.append((key.text, value))
                return DictV(tuple(items), container.complete)  # other keys stay as unknown as they were
        return type(container)(container.items, False)

    def _set_attr(self, world: World, name: str, value: Loc, stmt, frame: Frame, in_loop: bool = False) -> None:
        world.attrs[name] = AttrAssign(value, stmt, world.decisions, in_loop or frame.loop_depth > 0)

    # ------------------------------------------------------------------
    # Expressions
    # ------------------------------------------------------------------
    def ev(self, expr: Optional[cst.BaseExpression], world: World, frame: Frame) -> Loc:
        if expr is None:
            return Loc(NONE)
        method = _EVALUATORS.get(type(expr).__name__)
        if method is None:
            return Loc(UnknownV(type(expr).__name__), expr, frame.local)
        return method(self, expr, world, frame)

    def here(self, value: Value, expr: cst.CSTNode, frame: Frame) -> Loc:
        return Loc(value, expr, frame.local)

    def ev_Name(self, expr: cst.Name, world: World, frame: Frame) -> Loc:
        name = expr.value
        if name == "None":
            return self.here(NONE, expr, frame)
        if name in ("True", "False"):
            return self.here(BoolV(name == "True"), expr, frame)
        if name in world.env:
            bound = world.env[name]
            # Inside the analysed class a name points at itself (the argument
            # as the user wrote it); inside a helper, a parameter keeps
            # pointing at the caller's argument.
            return bound.with_value(bound.value) if not frame.local else Loc(bound.value, expr, True)
        return self.here(self.lookup_global(name, frame.ctx), expr, frame)

    def lookup_global(self, name: str, ctx: Optional[ModuleContext] = None) -> Value:
        """A module-level name as the code of ``ctx`` (default: the checked
        file) sees it."""
        ctx = ctx or self.ctx
        if ctx.is_ambiguous(name):
            return UnknownV(f"{name} is defined more than once")
        if name in ctx.functions or name in ctx.classes:
            return QualV(LOCAL_PREFIX + name, ctx)
        if name in ctx.imports:
            return QualV(ctx.imports[name], ctx)
        if name in ctx.constants:
            return self._constant(ctx, name).value
        if name in BUILTINS:
            return QualV("builtins." + name)
        qual = ctx.qualify_name(name)
        return QualV(qual, ctx) if qual else UnknownV(name)

    def _constant(self, ctx: ModuleContext, name: str) -> Loc:
        key = (ctx.path, name)
        if key in self._constants:
            return self._constants[key]
        if key in self._constant_stack:
            return Loc(UNKNOWN)
        self._constant_stack.add(key)
        try:
            loc = self.eval_module_expr(ctx.constants[name], ctx)
        finally:
            self._constant_stack.discard(key)
        self._constants[key] = loc
        return loc

    def eval_module_expr(self, expr: cst.BaseExpression, ctx: Optional[ModuleContext] = None) -> Loc:
        return self.ev(expr, World(), Frame(cls=None, local=False, ctx=ctx))

    def resolve(self, value: QualV):
        """What a qualified name denotes (see :mod:`resnetlint.model.project`):
        a Definition in some module, an External absolute name, or None."""
        from .project import External, lookup_local

        origin = value.origin or self.ctx
        qualname = value.qualname
        if qualname.startswith(("torch.", "builtins.", "<nested>.")) or qualname == "torch":
            return External(qualname)
        if self.project is None:
            return lookup_local(origin, qualname)
        return self.project.resolve(origin, qualname)

    def ev_Integer(self, expr: cst.Integer, world, frame) -> Loc:
        value = self._integers.get(expr.value)
        if value is None:  # values are immutable: one per literal text and file
            # int(..., 0) reads 0x/0o/0b literals; much cheaper than evaluated_value.
            text = expr.value.replace("_", "")
            number = int(text, 0) if not (len(text) > 1 and text[0] == "0" and text.isdigit()) else int(text)
            value = self._integers[expr.value] = NumV(Num.const(number))
        return Loc(value, expr, frame.local)

    def ev_Float(self, expr: cst.Float, world, frame) -> Loc:
        try:
            return self.here(NumV(Num.const(Fraction(expr.value.replace("_", "")))), expr, frame)
        except (ValueError, ZeroDivisionError):
            return self.here(UNKNOWN, expr, frame)

    def ev_SimpleString(self, expr: cst.SimpleString, world, frame) -> Loc:
        raw = expr.value
        if raw[:1] in ("'", '"') and "\\" not in raw and raw[:3] not in ('"""', "'''"):
            return self.here(StrV(raw[1:-1]), expr, frame)
        try:
            value = expr.evaluated_value
        except Exception:  # noqa: BLE001 - malformed escapes: just unknown
            return self.here(UNKNOWN, expr, frame)
        return self.here(StrV(value) if isinstance(value, str) else UNKNOWN, expr, frame)

    def ev_ConcatenatedString(self, expr: cst.ConcatenatedString, world, frame) -> Loc:
        try:
            value = expr.evaluated_value
        except Exception:  # noqa: BLE001
            value = None
        return self.here(StrV(value) if isinstance(value, str) else UNKNOWN, expr, frame)

    def ev_Tuple(self, expr: cst.Tuple, world, frame) -> Loc:
        items, complete = self._elements(expr.elements, world, frame)
        if not complete:
            return self.here(UnknownV("starred tuple"), expr, frame)
        return self.here(TupleV(tuple(items)), expr, frame)

    def ev_Set(self, expr: cst.Set, world, frame) -> Loc:
        """A set display, kept as a tuple: only membership is asked of it
        (``norm_layer in _NORM_ACT_TYPES``)."""
        return self.ev_Tuple(expr, world, frame)

    def ev_List(self, expr: cst.List, world, frame) -> Loc:
        items, complete = self._elements(expr.elements, world, frame)
        return self.here(ListV(tuple(Item(i, frame.segment) for i in items), complete), expr, frame)

    def _elements(self, elements, world, frame) -> Tuple[List[Loc], bool]:
        items: List[Loc] = []
        complete = True
        for element in elements:
            value = self.ev(element.value, world, frame)
            if isinstance(element, cst.StarredElement):
                if isinstance(value.value, ListV):
                    items.extend(i.loc for i in value.value.items)
                    complete = complete and value.value.complete
                elif isinstance(value.value, TupleV):
                    items.extend(value.value.items)
                else:
                    complete = False
            else:
                items.append(value)
        return items, complete

    def ev_Dict(self, expr: cst.Dict, world, frame) -> Loc:
        items = []
        complete = True
        for element in expr.elements:
            if isinstance(element, cst.DictElement):
                key = self.ev(element.key, world, frame)
                if isinstance(key.value, StrV):
                    items = _dict_set(items, key.value.text, self.ev(element.value, world, frame))
                    continue
            elif isinstance(element, cst.StarredDictElement):
                spread = self.ev(element.value, world, frame).value
                if isinstance(spread, DictV):  # ``{**dd, **(conv_kwargs or {})}``
                    for key, item in spread.items:
                        items = _dict_set(items, key, item)
                    complete = complete and spread.complete
                    continue
            complete = False
        return self.here(DictV(tuple(items), complete), expr, frame)

    def ev_ListComp(self, expr, world, frame) -> Loc:
        return self._comprehension(expr, world, frame)

    ev_GeneratorExp = ev_ListComp

    def _comprehension(self, expr, world: World, frame: Frame) -> Loc:
        inner = world.fork()
        comp = expr.for_in
        while comp is not None:
            for name in _target_names(comp.target):
                inner.env[name] = Loc(UnknownV("comprehension variable"), None, frame.local)
            comp = comp.inner_for_in
        outer_segment = frame.segment
        frame.segment = next(self._segments)
        try:
            element = self.ev(expr.elt, inner, frame)
            item = Item(element, frame.segment)
        finally:
            frame.segment = outer_segment
        return self.here(ListV((item,), True), expr, frame)

    def ev_Attribute(self, expr: cst.Attribute, world: World, frame: Frame) -> Loc:
        base = self.ev(expr.value, world, frame)
        return self.here(self.attribute_of(base, expr.attr.value, world, frame), expr, frame)

    def attribute_of(self, base: Loc, attr: str, world: World, frame: Frame) -> Value:
        value = base.value
        if isinstance(value, SelfV):
            return self.self_attribute(attr, world, frame)
        if isinstance(value, QualV):
            if attr == "__name__" and self._definition_key(value) is not None:
                return StrV(value.qualname.rsplit(".", 1)[-1] if value.qualname.startswith("torch.") else
                            self.resolve(value).name)
            cls = self.class_of(value)
            found = self.class_attribute(cls, attr) if cls is not None else None
            if found is not None:
                expr, owner = found
                return self.ev(expr, World(), Frame(cls=owner, local=False, ctx=self.class_ctx(owner))).value
            return QualV(f"{value.qualname}.{attr}", value.origin)
        if isinstance(value, ParamV):
            default = self._default_config(value, world)
            if default is not None and attr in DICT_METHODS:
                return BoundMethodV(default, attr)
            return ParamV(f"{value.name}.{attr}")
        if isinstance(value, SuperV):
            return BoundMethodV(base, attr)
        if isinstance(value, InstanceV):
            return self._instance_attribute(value, attr)
        if isinstance(value, AltV) and all(isinstance(option.value, (ParamV, InstanceV)) for _, option in value.options):
            # ``(layers or LayerFn()).conv_norm_act``: the attribute of each alternative (only for such holders
            # of layer classes: a method of alternative strings or lists would multiply the paths for nothing)
            return AltV(tuple((cond, option.with_value(self.attribute_of(option, attr, world, frame)))
                              for cond, option in value.options), test=value.test)
        if isinstance(value, LayerV):
            arg = value.spec.arg(attr)
            if arg is not None:
                return arg.value
            if value.spec.family == "container" and attr in ("append", "extend", "insert", "add_module"):
                return BoundMethodV(base, attr)
            return UnknownV(f"attribute {attr} of a layer")
        if isinstance(value, (ListV, DictV, TupleV, StrV)):
            return BoundMethodV(base, attr)
        return UnknownV(f"attribute {attr}")

    @staticmethod
    def _default_config(param: ParamV, world: World) -> Optional[Loc]:
        """The dict a config parameter defaults to (``norm_cfg=dict(type="BN")``),
        read as the configuration the block is built with unless told
        otherwise; the world notes it assumed so, for the messages."""
        default = param.default
        if default is None or not isinstance(default.value, DictV):
            return None
        note = f"the default of `{param.name}`"
        if note not in world.assumed:
            world.assumed += (note,)
        return default

    def class_of(self, value: QualV) -> Optional[cst.ClassDef]:
        """The class a qualified name denotes, when we read its source."""
        from .project import Definition

        if value.qualname.startswith(("torch.", "builtins.")):
            return None
        resolved = self.resolve(value)
        if isinstance(resolved, Definition) and resolved.kind == "class":
            cls = resolved.ctx.classes[resolved.name]
            self._class_ctx[id(cls)] = (cls, resolved.ctx)
            return cls
        return None

    def self_attribute(self, attr: str, world: World, frame: Frame) -> Value:
        assigned = world.attrs.get(attr)
        if assigned is not None:
            return assigned.loc.value
        cls = frame.cls
        if cls is None:
            return UNKNOWN
        method, owner = self.find_method(cls, attr)
        if method is not None:
            if any(_decorator_name(d) == "property" for d in method.decorators):
                return self.property_value(method, owner, world, frame)
            return MethodV(attr)
        found = self.class_attribute(cls, attr)
        if found is not None:
            expr, owner = found
            return self.ev(expr, World(), Frame(cls=owner, local=False, ctx=self.class_ctx(owner))).value
        if attr == "training":
            return BoolV(Truth("self.training"))
        if attr in ("add_module", "register_module", "register_parameter", "register_buffer", "__setattr__"):
            return BoundMethodV(Loc(SELF), attr)  # nn.Module's own: see _self_builtin
        return UnknownV(f"self.{attr} is not assigned here")

    def property_value(self, method: cst.FunctionDef, owner: cst.ClassDef, world: World, frame: Frame) -> Value:
        """What a ``@property`` returns (mmcv's ``norm1`` returns
        ``getattr(self, self.norm1_name)``), computed on a copy of the world so
        that reading it changes nothing; unknown when it can return several
        things or does more than compute a value."""
        name = method.name.value
        if frame.depth >= MAX_CALL_DEPTH or name in frame.stack:
            return UnknownV(f"property {name}")
        reader = world.fork()
        reader.env = {method.params.params[0].name.value: Loc(SELF)} if method.params.params else {}
        sub = Frame(cls=frame.cls, local=False, depth=frame.depth + 1, stack=frame.stack + (name,),
                    ctx=self.class_ctx(owner))
        try:
            worlds = self.exec_block(method.body, [reader], sub)
        except TooComplex:
            return UnknownV(f"property {name}")
        values = [w.retval.value for w in worlds if w.returned and w.retval is not None]
        if len(worlds) != 1 or len(values) != 1:
            return UnknownV(f"property {name}")
        return values[0]

    def ev_Subscript(self, expr: cst.Subscript, world: World, frame: Frame) -> Loc:
        base = self.ev(expr.value, world, frame)
        if len(expr.slice) != 1 or not isinstance(expr.slice[0].slice, cst.Index):
            return self.here(UnknownV("slice"), expr, frame)
        index = self.ev(expr.slice[0].slice.value, world, frame)
        value = base.value
        if isinstance(value, (TupleV, ListV)):
            items = value.items if isinstance(value, TupleV) else tuple(i.loc for i in value.items)
            complete = True if isinstance(value, TupleV) else value.complete
            position = as_num(index)
            position_value = position.int_value() if position is not None else None
            if complete and position_value is not None and -len(items) <= position_value < len(items):
                return items[position_value]
        if isinstance(value, ParamV) and isinstance(index.value, StrV):
            default = self._default_config(value, world)
            if default is None:
                return self.here(OpaqueV(f"{value.name}[{index.value.text!r}]"), expr, frame)
            value = default.value
        if isinstance(value, DictV) and isinstance(index.value, StrV):
            for key, item in value.items:
                if key == index.value.text:
                    return item
        if isinstance(value, LayerV) and value.spec.family == "container":
            position = as_num(index)
            position_value = position.int_value() if position is not None else None
            children = value.spec.children
            if value.spec.children_complete and position_value is not None and -len(children) <= position_value < len(children):
                if all(c.segment is None for c in children):
                    return children[position_value].loc
        return self.here(UnknownV("subscript"), expr, frame)

    def ev_BinaryOperation(self, expr: cst.BinaryOperation, world, frame) -> Loc:
        left = self.ev(expr.left, world, frame)
        right = self.ev(expr.right, world, frame)
        if type(expr.operator).__name__ in _ARITHMETIC:
            self._check_not_none(type(expr.operator).__name__, (left, right), world)
        return self._binary(type(expr.operator).__name__, left, right, expr, frame)

    @staticmethod
    def _check_not_none(op: str, operands, world: World) -> None:
        """Arithmetic on None (or on a parameter this path knows is None)
        raises TypeError: this way of running ``__init__`` builds nothing."""
        for operand in operands:
            value = operand.value
            if isinstance(value, NoneV) or (isinstance(value, ParamV) and
                                           world.facts.evaluate(Truth(f"{value.name} is None")) is True):
                raise Raises(f"{op} with None")

    def _binary(self, op: str, left: Loc, right: Loc, expr: cst.CSTNode, frame: Optional[Frame] = None) -> Loc:
        local = frame.local if frame is not None else left.local
        lv, rv = left.value, right.value
        if isinstance(lv, ListV) and isinstance(rv, ListV) and op == "Add":
            return Loc(ListV(lv.items + rv.items, lv.complete and rv.complete), expr, local)
        if isinstance(lv, TupleV) and isinstance(rv, TupleV) and op == "Add":
            return Loc(TupleV(lv.items + rv.items), expr, local)
        if isinstance(lv, AltV) != isinstance(rv, AltV):
            # ``(dim if use_dwconv else 1) + 1``: the operation on each alternative
            alternatives = lv if isinstance(lv, AltV) else rv
            options = tuple((cond, self._binary(op, option, right, expr, frame) if alternatives is lv
                             else self._binary(op, left, option, expr, frame))
                            for cond, option in alternatives.options)
            return Loc(AltV(options, alternatives.test), expr, local)
        a, b = as_num(left), as_num(right)
        if a is None or b is None:
            return Loc(UnknownV(f"{op} of non-numbers"), expr, local)
        result = {
            "Add": lambda: a + b,
            "Subtract": lambda: a - b,
            "Multiply": lambda: a * b,
            "Divide": lambda: a.truediv(b),
            "FloorDivide": lambda: a.floordiv(b),
            "Modulo": lambda: a.mod(b),
            "Power": lambda: a.power(b),
        }.get(op)
        if result is None:
            return Loc(UnknownV(op), expr, local)
        return Loc(NumV(result()), expr, local)

    def ev_UnaryOperation(self, expr: cst.UnaryOperation, world, frame) -> Loc:
        operand = self.ev(expr.expression, world, frame)
        op = type(expr.operator).__name__
        if op == "Not":
            return self.here(BoolV(negate(self.as_cond(operand))), expr, frame)
        num = as_num(operand)
        if num is None:
            return self.here(UNKNOWN, expr, frame)
        if op == "Minus":
            return self.here(NumV(-num), expr, frame)
        if op == "Plus":
            return self.here(NumV(num), expr, frame)
        return self.here(UNKNOWN, expr, frame)

    def ev_BooleanOperation(self, expr: cst.BooleanOperation, world, frame) -> Loc:
        left = self.ev(expr.left, world, frame)
        right = self.ev(expr.right, world, frame)
        is_and = isinstance(expr.operator, cst.And)
        if _is_boolean(left.value) and _is_boolean(right.value) or _is_flag_test(left.value, right.value):
            conds = (self.as_cond(left), self.as_cond(right))
            return self.here(BoolV(conjoin(conds) if is_and else disjoin(conds)), expr, frame)
        # Value-level ``a or default`` (``norm_layer or nn.BatchNorm2d``).
        truth = self.as_cond(left)
        known = world.facts.evaluate(truth)
        if known is not None:
            chosen = (right if known else left) if is_and else (left if known else right)
            return chosen
        first, second = (right, left) if is_and else (left, right)
        return self.here(AltV(((truth, first), (negate(truth), second))), expr, frame)

    def ev_Comparison(self, expr: cst.Comparison, world, frame) -> Loc:
        conds = []
        left = self.ev(expr.left, world, frame)
        for target in expr.comparisons:
            right = self.ev(target.comparator, world, frame)
            conds.append(self._compare(type(target.operator).__name__, left, right))
            left = right
        return self.here(BoolV(conjoin(conds)), expr, frame)

    def _compare(self, op: str, left: Loc, right: Loc) -> Cond:
        if op in ("Is", "IsNot"):
            if isinstance(right.value, NoneV):
                cond = self.is_none(left.value)
            elif isinstance(left.value, NoneV):
                cond = self.is_none(right.value)
            else:
                return None
            return cond if op == "Is" else negate(cond)
        if op in ("In", "NotIn"):
            found = _contains(right.value, left.value)
            if found is None and isinstance(left.value, QualV):
                found = self._class_among(left.value, right.value)
            if found is None and isinstance(left.value, OpaqueV):
                found = _lookup_among(left.value, right.value)
            return found if found is None or op == "In" else negate(found)
        symbol = {"Equal": "==", "NotEqual": "!=", "LessThan": "<", "LessThanEqual": "<=",
                  "GreaterThan": ">", "GreaterThanEqual": ">="}.get(op)
        if symbol is None:
            return None
        if isinstance(left.value, StrV) and isinstance(right.value, StrV) and symbol in ("==", "!="):
            same = left.value.text == right.value.text
            return same if symbol == "==" else not same
        if symbol in ("==", "!=") and {type(left.value), type(right.value)} == {OpaqueV, StrV}:
            lookup, text = (left.value, right.value) if isinstance(left.value, OpaqueV) else (right.value, left.value)
            same = _looked_up_as(lookup, text.text)
            return same if symbol == "==" else negate(same)
        kinds = {_constant_kind(left.value), _constant_kind(right.value)}
        if symbol in ("==", "!=") and None not in kinds and len(kinds) == 2:
            return symbol == "!="  # a string never equals a number or None (mmcv's ``bias == "auto"``)
        a, b = as_num(left), as_num(right)
        if a is None or b is None:
            return None
        return Cmp(symbol, a, b)

    def _class_among(self, value: QualV, container: Value) -> Optional[bool]:
        """``cls in (A, B)`` for classes and functions we can name."""
        if not isinstance(container, TupleV) or not all(isinstance(i.value, QualV) for i in container.items):
            return None
        wanted = self._definition_key(value)
        keys = [self._definition_key(i.value) for i in container.items]
        if wanted is None or any(k is None for k in keys):
            return None
        return wanted in keys

    def _names_class(self, value: QualV) -> Optional[bool]:
        from .project import Definition

        resolved = self.resolve(value)
        if isinstance(resolved, Definition):
            return resolved.kind == "class" if resolved.kind in ("class", "function") else None
        if value.qualname.startswith("torch.nn.") and layer_type(value.qualname) is not None:
            return True
        return None

    def _definition_key(self, value: QualV):
        from .project import Definition, External

        resolved = self.resolve(value)
        if isinstance(resolved, Definition):
            return ("definition", resolved.ctx.path, resolved.name)
        if isinstance(resolved, External) and resolved.qualname.startswith("torch."):
            return ("external", resolved.qualname)
        return None

    def is_none(self, value: Value) -> Cond:
        if isinstance(value, NoneV):
            return True
        if isinstance(value, (LayerV, NumV, StrV, TupleV, ListV, DictV, QualV, BoolV, LambdaV, PartialV)):
            return False
        if isinstance(value, ParamV):
            return Truth(f"{value.name} is None")
        if isinstance(value, AltV):
            return disjoin(conjoin((c, self.is_none(o.value))) for c, o in value.options)
        return None

    def as_cond(self, loc: Loc) -> Cond:
        value = loc.value
        if isinstance(value, BoolV):
            return value.cond
        if isinstance(value, NoneV):
            return False
        if isinstance(value, (LayerV, QualV, MethodV)):
            return True
        if isinstance(value, NumV):
            const = value.num.const_value()
            if const is not None:
                return const != 0
            return Cmp("!=", value.num, Num.const(0))
        if isinstance(value, ParamV):
            return Truth(f"{value.name}{TRUTHY}")
        if isinstance(value, StrV):
            return bool(value.text)
        if isinstance(value, (ListV, TupleV, DictV)) and (isinstance(value, TupleV) or value.complete):
            return bool(value.items)
        if isinstance(value, AltV):
            return disjoin(conjoin((c, self.as_cond(o))) for c, o in value.options)
        return None

    def ev_IfExp(self, expr: cst.IfExp, world: World, frame: Frame) -> Loc:
        cond = self.as_cond(self.ev(expr.test, world, frame))
        known = world.facts.evaluate(cond)
        if known is True:
            return self.ev(expr.body, world, frame)
        if known is False:
            return self.ev(expr.orelse, world, frame)
        if cond is None:
            cond = fresh_truth("conditional expression")
        body_facts = world.facts.assume(cond, True)
        else_facts = world.facts.assume(cond, False)
        options = []
        for facts, branch, branch_cond in ((body_facts, expr.body, cond), (else_facts, expr.orelse, negate(cond))):
            if facts is None:
                continue
            saved = world.facts
            world.facts = facts
            try:
                options.append((branch_cond, self.ev(branch, world, frame)))
            finally:
                world.facts = saved
        if len(options) == 1:
            return options[0][1]
        return self.here(AltV(tuple(options), test=expr.test), expr, frame)

    def ev_Lambda(self, expr: cst.Lambda, world: World, frame: Frame) -> Loc:
        return self.here(LambdaV(expr.params, expr.body, tuple(world.env.items()), frame.ctx), expr, frame)

    def ev_NamedExpr(self, expr: cst.NamedExpr, world, frame) -> Loc:
        value = self.ev(expr.value, world, frame)
        self.assign(expr.target, value, world, frame, expr)
        return value

    # ------------------------------------------------------------------
    # Calls
    # ------------------------------------------------------------------
    def eval_args(self, call: cst.Call, world: World, frame: Frame):
        args: List[Loc] = []
        kwargs: Dict[str, Loc] = {}
        complete = True
        for arg in call.args:
            value = self.ev(arg.value, world, frame)
            if arg.star == "*":
                if isinstance(value.value, ListV):
                    args.extend(i.loc for i in value.value.items)
                    complete = complete and value.value.complete
                elif isinstance(value.value, TupleV):
                    args.extend(value.value.items)
                else:
                    complete = False
            elif arg.star == "**":
                if isinstance(value.value, ParamV):  # ``**dw_conv_cfg`` with ``dw_conv_cfg=dict(kernel_size=7)``
                    value = self._default_config(value.value, world) or value
                if isinstance(value.value, DictV):
                    kwargs.update(dict(value.value.items))  # the keys we know, even if there may be more
                    complete = complete and value.value.complete
                else:
                    complete = False
            elif arg.keyword is not None:
                kwargs[arg.keyword.value] = value
            else:
                args.append(value)
        return args, kwargs, complete

    def eval_args_items(self, call: cst.Call, world: World, frame: Frame):
        """Positional arguments as list items, keeping loop segments (for
        ``nn.Sequential(*layers)``)."""
        items: List[Item] = []
        complete = True
        for arg in call.args:
            if arg.keyword is not None or arg.star == "**":
                continue
            value = self.ev(arg.value, world, frame)
            if arg.star == "*":
                if isinstance(value.value, ListV):
                    items.extend(value.value.items)
                    complete = complete and value.value.complete
                elif isinstance(value.value, TupleV):
                    items.extend(Item(i) for i in value.value.items)
                else:
                    complete = False
            else:
                items.append(Item(value, frame.segment))
        return items, complete

    def ev_Call(self, expr: cst.Call, world: World, frame: Frame) -> Loc:
        site = frame.site
        if frame.local:
            frame.site = expr
        try:
            return self._call(expr, world, frame)
        finally:
            frame.site = site

    def _call(self, expr: cst.Call, world: World, frame: Frame) -> Loc:
        callee = self.ev(expr.func, world, frame)
        value = callee.value
        if isinstance(value, QualV):
            return self.call_qualified(value, expr, world, frame)
        if isinstance(value, BoundMethodV):
            return self.call_bound_method(value, expr, world, frame)
        if isinstance(value, MethodV):
            results = self.call_method(value.name, expr, world, frame)
            return self._merge_results(results, expr, frame)
        args, kwargs, complete = self.eval_args(expr, world, frame)  # also for side effects (list appends)
        return self.call_value(callee, args, kwargs, complete, expr, world, frame)

    def call_value(self, func: Loc, args, kwargs, complete, expr, world, frame, _depth: int = 0) -> Loc:
        """Call a value with evaluated arguments: a qualified name, a
        ``partial``, a layer-class parameter (``norm_layer(planes)``) or
        alternatives of those (``(norm_layer or nn.BatchNorm2d)(planes)``)."""
        value = func.value
        if _depth > MAX_CALL_DEPTH:
            return self.here(UnknownV("call"), expr, frame)
        if isinstance(value, QualV):
            return self._call_qualified_with(value, args, kwargs, complete, expr, world, frame)
        if isinstance(value, PartialV):
            merged_kwargs = dict(value.kwargs)
            merged_kwargs.update(kwargs)
            return self.call_value(value.func, list(value.args) + list(args), merged_kwargs, complete, expr, world,
                                   frame, _depth + 1)
        if isinstance(value, ParamV):
            if "." in value.name:
                if L.layer_role(value.name.rsplit(".", 1)[-1]) is not None:
                    # ``layers.conv_norm_act(i, o, 3)`` on a parameter holding layer factories: its role's contract
                    return self.call_layer_parameter(value, args, kwargs, complete, expr, world, frame, _depth)
                return self.here(_config_lookup(value.name, args, kwargs), expr, frame)
            return self.call_layer_parameter(value, args, kwargs, complete, expr, world, frame, _depth)
        if isinstance(value, LambdaV):
            return self.call_lambda(value, args, kwargs, complete, expr, world, frame)
        if isinstance(value, AltV):
            options = []
            for cond, option in value.options:
                if world.facts.evaluate(cond) is False:
                    continue
                options.append((cond, self.call_value(option, args, kwargs, complete, expr, world, frame, _depth + 1)))
            if len(options) == 1:
                return options[0][1]
            return self.here(AltV(tuple(options), test=value.test), expr, frame) if options else \
                self.here(UnknownV("call of alternatives"), expr, frame)
        if isinstance(value, (UnknownV, OpaqueV)) and isinstance(getattr(expr, "func", None), cst.Name):
            # A local holding a class we cannot tell (monai's ``conv_type =
            # Conv[Conv.CONV, spatial_dims]``): the contract its role has,
            # as for a layer-class parameter of that name (a conv's
            # arguments must all be known, a norm's width need not be).
            name = expr.func.value
            role = L.layer_role(name)
            spec = L.role_layer(role, name, args, kwargs, expr, frame.site) if complete or role in ("norm", "act") \
                else None
            if spec is not None:
                return self.here(LayerV(spec), expr, frame)
        return self.here(UnknownV("call"), expr, frame)

    def call_lambda(self, fn: LambdaV, args, kwargs, complete, expr, world: World, frame: Frame) -> Loc:
        """Evaluate a lambda's body with its arguments bound, in the scope it
        was written in."""
        if frame.depth >= MAX_CALL_DEPTH:
            return self.here(UnknownV("lambda: too deep"), expr, frame)
        holder = cst.FunctionDef(name=cst.Name("lambda"), params=fn.params, body=cst.SimpleStatementSuite(body=[]))
        env = self._bind(holder, args, dict(kwargs), complete, skip_self=False, frame=frame, ctx=fn.ctx)
        if env is None:
            return self.here(UnknownV("lambda: arguments do not fit"), expr, frame)
        inner = World(world.facts)
        inner.env = {**dict(fn.env), **env}
        sub = Frame(cls=None, local=False, depth=frame.depth + 1, site=frame.site, stack=frame.stack, ctx=fn.ctx)
        return _relabel(self.ev(fn.body, inner, sub), frame)

    def call_layer_parameter(self, param: ParamV, args, kwargs, complete, expr, world, frame, depth: int) -> Loc:
        """``norm_layer(planes)`` with ``norm_layer`` a constructor parameter.

        A known default (``norm_layer=nn.BatchNorm2d``) is built as written,
        noting that a caller may pass another class; otherwise the contract
        every such parameter has in practice, by its role: ``norm_layer(C)``
        keeps C channels, ``act_layer()`` keeps the shape, ``conv_layer(i, o,
        k, stride=s)`` is a convolution with ``nn.Conv2d``'s signature."""
        default = param.default
        if default is not None and isinstance(default.value, (QualV, PartialV)):
            built = self.call_value(default, args, kwargs, complete, expr, world, frame, depth + 1)
            for spec in L.iter_layers(built):
                spec.assumption = f"the default of `{param.name}`"
                spec.from_parameter = param.name
            return built
        role = L.layer_role(param.name.rsplit(".", 1)[-1])
        spec = L.role_layer(role, param.name, args, kwargs, expr, frame.site) if complete else None
        if spec is None:
            spec = L.unknown_layer(f"{param.name}(...)", expr, frame.site)
            spec.args = {"0": args[0]} if args else {}
        spec.from_parameter = param.name
        return self.here(LayerV(spec), expr, frame)

    def call_qualified(self, callee: QualV, expr: cst.Call, world: World, frame: Frame) -> Loc:
        ltype = layer_type(callee.qualname)
        if ltype is not None and ltype.family == "container":
            return self._container(ltype, expr, world, frame)
        args, kwargs, complete = self.eval_args(expr, world, frame)
        return self._call_qualified_with(callee, args, kwargs, complete, expr, world, frame)

    def _call_qualified_with(self, callee: QualV, args, kwargs, complete, expr, world, frame) -> Loc:
        qualname = callee.qualname
        short = qualname.rsplit(".", 1)[-1]
        ltype = layer_type(qualname)
        if ltype is not None:
            if ltype.family == "container":
                return self.here(UnknownV("container built indirectly"), expr, frame)
            bound = L.bind_arguments(ltype.params, args, kwargs) if complete else None
            if bound is None:
                spec = L.unknown_layer(f"nn.{ltype.name}", expr, frame.site)
                spec.ltype = ltype
                spec.family = "unknown"
                return self.here(LayerV(spec), expr, frame)
            if any(isinstance(loc.value, NoneV) for name, loc in bound.items() if name not in ltype.defaults):
                # nn.Conv2d(c, None): torch raises, so this way of running
                # __init__ builds no block (an optional width left unset)
                raise Raises(f"nn.{ltype.name} given None")
            label = f"nn.{ltype.name}"
            spec = L.torch_layer(ltype, bound, expr, frame.site, label)
            if world.assumed:
                spec.assumption = ", ".join(world.assumed)
            return self.here(LayerV(spec), expr, frame)
        if qualname in ("torch.nn.Parameter", "torch.nn.parameter.Parameter"):
            spec = LayerSpec(family="parameter", label="nn.Parameter", call=expr, site=frame.site)
            return self.here(LayerV(spec), expr, frame)
        if short in FLOAT_FUNCTIONAL:
            spec = LayerSpec(family="float_functional", label=short, call=expr, site=frame.site)
            return self.here(LayerV(spec), expr, frame)
        if qualname.startswith("builtins."):
            return self.call_builtin(short, args, kwargs, expr, world, frame)
        if qualname in ("functools.partial",) and args:
            return self.here(PartialV(args[0], tuple(args[1:]), tuple(kwargs.items())), expr, frame)
        if qualname in ("collections.OrderedDict",) and not args and not kwargs:
            return self.here(DictV(), expr, frame)
        if qualname in ("collections.OrderedDict",) and args and isinstance(args[0].value, (ListV, TupleV)):
            return self._ordered_dict(args[0], expr, frame)
        if qualname.startswith(CONTRACT_MODULE + "."):
            # a stub's "a layer of this role, class unknown" (resnetlint/stubs)
            role = short
            spec = L.role_layer(role, role, args, kwargs, expr, frame.site, label=f"{role} layer") if complete else None
            if spec is not None:
                spec.assumption = f"the library's {role} layer keeps the contract of its role"
                return self.here(LayerV(spec), expr, frame)
            return self.here(LayerV(L.unknown_layer(short, expr, frame.site)), expr, frame)
        if qualname in ("inspect.isfunction", "types.FunctionType") and args:
            return self.here(BoolV(_is_function(self, args[0].value)), expr, frame)
        if qualname in ("math.ceil", "math.floor", "math.sqrt", "math.log2"):
            num = as_num(args[0]) if args else None
            if num is not None and num.int_value() is not None and short in ("ceil", "floor"):
                return self.here(NumV(num), expr, frame)
            if num is not None and short in ("ceil", "floor"):
                return self.here(NumV(Num.opaque(short, [num])), expr, frame)
        defined = self._call_definition(callee, args, kwargs, complete, expr, world, frame)
        if defined is not None:
            return defined
        if short[:1].isupper():
            # An external class: almost always a module when built here.
            return self.here(LayerV(L.unknown_layer(short, expr, frame.site)), expr, frame)
        return self.here(OpaqueV(short, tuple(args)), expr, frame)

    def _call_definition(self, callee: QualV, args, kwargs, complete, expr, world, frame) -> Optional[Loc]:
        """A call of a function, class or alias we can read the source of
        (in this file or, through the project, in another module); None when
        the name is not one."""
        from .project import Definition, External

        resolved = self.resolve(callee)
        if isinstance(resolved, External):
            if resolved.qualname != callee.qualname and not resolved.qualname.startswith("."):
                return self._call_qualified_with(QualV(resolved.qualname), args, kwargs, complete, expr, world, frame)
            return None
        if not isinstance(resolved, Definition):
            return None
        ctx, name = resolved.ctx, resolved.name
        if ctx.foreign and resolved.kind in ("function", "class"):
            args, kwargs = _default_classes(args), dict(zip(kwargs, _default_classes(list(kwargs.values()))))
        if resolved.kind == "function":
            return self.call_helper_function(ctx, name, args, kwargs, complete, expr, world, frame)
        if resolved.kind == "class":
            if ctx.is_module_class(name):
                return self.instantiate(ctx, name, args, kwargs, complete, expr, world, frame)
            instance = self._plain_instance(ctx, name, args, kwargs, complete)
            return self.here(instance or OpaqueV(name, tuple(args)), expr, frame)
        alias = self._constant(ctx, name)
        if isinstance(alias.value, (QualV, PartialV)):
            return self.call_value(alias, args, kwargs, complete, expr, world, frame, 1)
        return None

    def _plain_instance(self, ctx, name: str, args, kwargs, complete: bool) -> Optional[InstanceV]:
        """``LayerFn()``: an instance whose attributes we can read, when the
        class has no ``__init__`` of its own and no base we cannot read (the
        attributes are then the class body's, or a dataclass field's
        argument); None otherwise."""
        cls = ctx.classes[name]
        if not complete or _defines_method(cls, "__init__") or not self._bases_known(cls):
            return None
        self._class_ctx[id(cls)] = (cls, ctx)
        is_dataclass = any(_decorator_name(d) == "dataclass" or isinstance(d.decorator, cst.Call) and
                           _decorator_name(cst.Decorator(decorator=d.decorator.func)) == "dataclass"
                           for d in cls.decorators)  # `@dataclass`, `@dataclasses.dataclass(frozen=True)`
        if not is_dataclass:
            return InstanceV(cls) if not args and not kwargs else None
        fields = _dataclass_fields(cls)
        if len(args) > len(fields) or any(k not in fields for k in kwargs):
            return None
        given = dict(zip(fields, args))
        given.update(kwargs)
        return InstanceV(cls, tuple(given.items()))

    def _bases_known(self, cls: cst.ClassDef) -> bool:
        written = [b for b in cls.bases if not (isinstance(b.value, cst.Name) and b.value.value == "object")]
        return len(self.bases_of(cls)) == len(written)

    def _instance_attribute(self, instance: InstanceV, attr: str) -> Value:
        given = dict(instance.fields)
        if attr in given:
            return given[attr].value
        found = self.class_attribute(instance.cls, attr)
        if found is None:
            return UnknownV(f"attribute {attr}")
        expr, owner = found
        return self.ev(expr, World(), Frame(cls=owner, local=False, ctx=self.class_ctx(owner))).value

    def _ordered_dict(self, pairs: Loc, expr, frame) -> Loc:
        value = pairs.value
        items = value.items if isinstance(value, TupleV) else tuple(i.loc for i in value.items)
        out = []
        for item in items:
            if isinstance(item.value, TupleV) and len(item.value.items) == 2 and isinstance(item.value.items[0].value, StrV):
                out.append((item.value.items[0].value.text, item.value.items[1]))
            else:
                return self.here(DictV((), False), expr, frame)
        complete = value.complete if isinstance(value, ListV) else True
        return self.here(DictV(tuple(out), complete), expr, frame)

    def _container(self, ltype, expr: cst.Call, world: World, frame: Frame) -> Loc:
        label = f"nn.{ltype.name}"
        if ltype.name == "Sequential":
            items, complete = self.eval_args_items(expr, world, frame)
            if len(items) == 1 and isinstance(items[0].loc.value, DictV):
                ordered = items[0].loc.value
                items = [Item(loc) for _, loc in ordered.items]
                complete = ordered.complete
            return self.here(LayerV(L.container(ltype, tuple(items), complete, expr, frame.site, label)), expr, frame)
        args, kwargs, complete = self.eval_args(expr, world, frame)
        source = args[0] if args else kwargs.get("modules")
        items: Tuple[Item, ...] = ()
        if source is None:
            complete = True
        elif isinstance(source.value, ListV):
            items, complete = source.value.items, complete and source.value.complete
        elif isinstance(source.value, TupleV):
            items = tuple(Item(i) for i in source.value.items)
        elif isinstance(source.value, DictV):
            items, complete = tuple(Item(loc) for _, loc in source.value.items), source.value.complete
        else:
            complete = False
        return self.here(LayerV(L.container(ltype, tuple(items), complete, expr, frame.site, label)), expr, frame)

    def call_builtin(self, name: str, args, kwargs, expr, world: World, frame: Frame) -> Loc:
        if name in ("int", "round") and args:
            num = as_num(args[0])
            if num is not None and (num.is_integral() or num.const_value() is not None):
                if num.const_value() is not None:
                    const = num.const_value()
                    return self.here(NumV(Num.const(int(const) if name == "int" else round(const))), expr, frame)
                return self.here(NumV(num), expr, frame)
            if num is not None:
                return self.here(NumV(Num.opaque(name, [num])), expr, frame)
        if name == "float" and args:
            return args[0]
        if name in ("max", "min") and len(args) == 2:
            a, b = as_num(args[0]), as_num(args[1])
            if a is not None and a == b:
                return args[0]
            if a is not None and b is not None:
                ca, cb = a.const_value(), b.const_value()
                if ca is not None and cb is not None:
                    return self.here(NumV(Num.const(max(ca, cb) if name == "max" else min(ca, cb))), expr, frame)
                return self.here(NumV(Num.opaque(name, sorted([a, b]))), expr, frame)
        if name == "len" and args and isinstance(args[0].value, (ListV, TupleV)):
            value = args[0].value
            if not isinstance(value, ListV) or (value.complete and all(i.segment is None for i in value.items)):
                return self.here(NumV(Num.const(len(value.items))), expr, frame)
        if name in ("list", "tuple") and args and isinstance(args[0].value, (ListV, TupleV)):
            value = args[0].value
            if name == "list":
                items = value.items if isinstance(value, ListV) else tuple(Item(i) for i in value.items)
                return self.here(ListV(items, value.complete if isinstance(value, ListV) else True), expr, frame)
            if isinstance(value, ListV) and value.complete and all(i.segment is None for i in value.items):
                return self.here(TupleV(tuple(i.loc for i in value.items)), expr, frame)
        if name == "list" and not args:
            return self.here(ListV(), expr, frame)
        if name == "getattr" and len(args) >= 2 and _attribute_key(args[1]) is not None:
            return self.here(self.attribute_of(args[0], _attribute_key(args[1]), world, frame), expr, frame)
        if name == "setattr" and len(args) == 3 and isinstance(args[0].value, SelfV):
            if isinstance(args[1].value, StrV):
                self._set_attr(world, args[1].value.text, args[2], expr, frame)
            else:
                world.dynamic = True
            return self.here(NONE, expr, frame)
        if name == "super":
            return self.here(SuperV(), expr, frame)
        if name == "dict" and not args:
            return self.here(DictV(tuple(kwargs.items())), expr, frame)
        if name == "dict" and len(args) == 1:
            base = args[0].value
            items = list(base.items) if isinstance(base, DictV) else []
            for key, item in kwargs.items():
                items = _dict_set(items, key, item)
            return self.here(DictV(tuple(items), isinstance(base, DictV) and base.complete), expr, frame)
        if name == "isinstance" and len(args) == 2:
            return self.here(BoolV(self._isinstance(args[0].value, args[1].value)), expr, frame)
        if name == "callable" and args:
            return self.here(BoolV(_is_function(self, args[0].value, classes_too=True)), expr, frame)
        return self.here(UnknownV(name), expr, frame)

    def _isinstance(self, value: Value, classinfo: Value) -> Cond:
        """``isinstance`` for the values the model knows the type of; None
        (unknown) for parameters and anything else."""
        if isinstance(classinfo, TupleV):
            answers = [self._isinstance(value, item.value) for item in classinfo.items]
            if any(a is True for a in answers):
                return True
            return False if all(a is False for a in answers) else None
        if not isinstance(classinfo, QualV):
            return None
        kind = classinfo.qualname
        if kind == "builtins.type":  # is it a class
            if isinstance(value, QualV):
                return self._names_class(value)
            return False if isinstance(value, (PartialV, LayerV, NumV, StrV, NoneV, BoolV, ListV, TupleV, DictV,
                                               LambdaV)) else None
        if kind in ("types.FunctionType", "inspect.isfunction"):
            return _is_function(self, value)
        if kind == "functools.partial":
            if isinstance(value, PartialV):
                return True
            return False if isinstance(value, (QualV, LayerV, NumV, StrV, NoneV, BoolV, ListV, TupleV, DictV,
                                               LambdaV)) else None
        if isinstance(value, (ParamV, UnknownV, OpaqueV, AltV)):
            return None
        if kind in ("torch.nn.Module", "torch.nn.modules.module.Module"):
            return isinstance(value, LayerV)
        if kind.startswith("torch.nn."):
            if not isinstance(value, LayerV):
                return False
            return value.spec.ltype.qualname == kind if value.spec.ltype is not None else None
        python_types = {"builtins.str": StrV, "builtins.list": ListV, "builtins.tuple": TupleV, "builtins.dict": DictV,
                        "builtins.bool": BoolV}
        if kind in python_types:
            return isinstance(value, python_types[kind])
        if kind in ("builtins.int", "builtins.float"):
            if isinstance(value, NumV):
                constant = value.num.const_value()
                return None if constant is None else (constant.denominator == 1) == (kind == "builtins.int") or None
            return False if isinstance(value, (StrV, ListV, TupleV, DictV, NoneV, LayerV, LambdaV)) else None
        return None

    def call_bound_method(self, method: BoundMethodV, expr: cst.Call, world: World, frame: Frame) -> Loc:
        receiver = method.receiver
        name = method.name
        if isinstance(receiver.value, SuperV):
            if name == "__init__":
                args, kwargs, _ = self.eval_args(expr, world, frame)
                results = self.call_super_init(args, kwargs, world, frame, expr)
                if len(results) == 1:
                    chosen = results[0][0]
                    _adopt(world, chosen)
                else:
                    world.dynamic = True
            return self.here(NONE, expr, frame)
        value = receiver.value
        if isinstance(value, DictV) and name in DICT_METHODS:
            args, _, _ = self.eval_args(expr, world, frame)
            return self._dict_method(value, name, args, expr, frame)
        if isinstance(value, DictV) and name in DICT_MUTATORS:
            args, kwargs, _ = self.eval_args(expr, world, frame)
            result, updated = _dict_mutation(value, name, args, kwargs)
            self._rebind(expr.func, Loc(updated, None, frame.local), world, frame)
            return self.here(result, expr, frame) if isinstance(result, Value) else result
        if isinstance(value, StrV) and name in STRING_METHODS:
            args, _, _ = self.eval_args(expr, world, frame)
            texts = [a.value.text if isinstance(a.value, StrV) else None for a in args]
            if None not in texts:
                return self.here(StrV(STRING_METHODS[name](value.text, *texts)), expr, frame)
        if isinstance(value, (ListV, LayerV)) and name in ("append", "extend", "insert"):
            args, _, _ = self.eval_args(expr, world, frame)
            self._mutate_list(expr.func, value, name, args, world, frame)
            return self.here(NONE, expr, frame)
        if isinstance(value, (LayerV,)) and name == "add_module":
            args, _, _ = self.eval_args(expr, world, frame)
            self._mutate_list(expr.func, value, "append", args[1:2], world, frame)
            return self.here(NONE, expr, frame)
        if isinstance(value, SelfV):
            args, kwargs, _ = self.eval_args(expr, world, frame)
            return self._self_builtin(name, args, expr, world, frame)
        self.eval_args(expr, world, frame)
        return self.here(UnknownV(f".{name}()"), expr, frame)

    def _dict_method(self, value: DictV, name: str, args, expr, frame) -> Loc:
        """``cfg.get("type", "BN")``, ``cfg.copy()`` on a dict written out
        (configs passed to builders); unknown when the key is not a string."""
        if name == "copy":
            return self.here(value, expr, frame)
        if not args or not isinstance(args[0].value, StrV):
            return self.here(UnknownV(f"dict.{name}"), expr, frame)
        for key, item in value.items:
            if key == args[0].value.text:
                return item
        if not value.complete:
            return self.here(UnknownV(f"dict.{name}"), expr, frame)
        return args[1] if len(args) > 1 else self.here(NONE, expr, frame)

    def _self_builtin(self, name, args, expr, world, frame) -> Loc:
        if name in ("add_module", "register_module", "__setattr__") and len(args) >= 2:
            key = _attribute_key(args[0])
            if key is not None:
                self._set_attr(world, key, args[1], expr, frame)
            else:
                world.dynamic = True
        elif name == "register_parameter" and len(args) >= 2:
            if isinstance(args[0].value, StrV):
                spec = LayerSpec(family="parameter", label="parameter", call=expr, site=frame.site)
                self._set_attr(world, args[0].value.text, Loc(LayerV(spec), expr, frame.local), expr, frame)
            else:
                world.dynamic = True
        elif name == "register_buffer" and len(args) >= 1:
            if isinstance(args[0].value, StrV):
                spec = LayerSpec(family="buffer", label="buffer", call=expr, site=frame.site)
                self._set_attr(world, args[0].value.text, Loc(LayerV(spec), expr, frame.local), expr, frame)
        return self.here(UnknownV(f"self.{name}()"), expr, frame)

    def _mutate_list(self, func: cst.BaseExpression, value: Value, name: str, args: List[Loc], world: World, frame: Frame) -> None:
        receiver_expr = func.value if isinstance(func, cst.Attribute) else None
        if isinstance(value, ListV):
            if name == "append" and args:
                updated = value.append(args[0], frame.segment)
            elif name == "extend" and args:
                updated = value.extend(args[0].value, frame.segment)
            else:
                updated = ListV(value.items, False)
            new = Loc(updated, receiver_expr, frame.local)
        else:
            spec = value.spec
            children = spec.children
            complete = spec.children_complete
            if name == "append" and args:
                children = children + (Item(args[0], frame.segment),)
            elif name == "extend" and args and isinstance(args[0].value, ListV):
                children = children + args[0].value.items
                complete = complete and args[0].value.complete
            else:
                complete = False
            assert spec.ltype is not None
            new = Loc(LayerV(L.container(spec.ltype, children, complete, spec.call, spec.site, spec.label)), receiver_expr, frame.local)
        self._rebind(func, new, world, frame)

    def _rebind(self, func: cst.BaseExpression, new: Loc, world: World, frame: Frame) -> None:
        """After ``receiver.method(...)`` changed the receiver, the name (or
        ``self.<attr>``) it was read from holds the changed value."""
        receiver_expr = func.value if isinstance(func, cst.Attribute) else None
        if isinstance(receiver_expr, cst.Name):
            world.env[receiver_expr.value] = new
        elif isinstance(receiver_expr, cst.Attribute) and _is_self(receiver_expr.value):
            previous = world.attrs.get(receiver_expr.attr.value)
            stmt = previous.stmt if previous is not None else None
            self._set_attr(world, receiver_expr.attr.value, new, stmt, frame)

    def _merge_results(self, results, expr, frame) -> Loc:
        if not results:
            return self.here(UnknownV("no result"), expr, frame)
        values = [loc for _, loc in results]
        return values[0] if len(values) == 1 else self.here(UnknownV("several results"), expr, frame)

    # -- helper functions and classes ------------------------------------
    def _open_keywords(self, expr, world: World, frame: Frame) -> bool:
        """The call passes on keyword arguments we cannot read
        (``super().__init__(inplanes, planes, **kwargs)``)."""
        if not isinstance(expr, cst.Call):
            return False
        for arg in expr.args:
            if arg.star == "**":
                value = self.ev(arg.value, world, frame).value
                if not (isinstance(value, DictV) and value.complete):
                    return True
        return False

    def _bind(self, func: cst.FunctionDef, args, kwargs, complete, skip_self: bool, frame: Frame,
              ctx: Optional[ModuleContext] = None, open_keywords: bool = False) -> Optional[Dict[str, Loc]]:
        """The callee's parameters bound to the arguments (defaults evaluated
        in ``ctx``, the callee's module); None when the call does not fit.
        With ``open_keywords`` (keyword arguments passed on unread), a
        parameter not bound explicitly is the caller's to choose: its default
        or anything else, like a parameter of the class itself (a
        ``downsample`` handed to the base block through ``**kwargs``)."""

        def unbound(param) -> Loc:
            default = self.eval_module_expr(param.default, ctx) if param.default is not None else None
            if open_keywords:
                return Loc(ParamV(param.name.value, default))
            if default is not None:
                return default
            return Loc(UnknownV("argument not known"))

        params = func.params
        ordered = list(params.posonly_params) + list(params.params)
        env: Dict[str, Loc] = {}
        if skip_self and ordered:
            env[ordered[0].name.value] = Loc(SELF)
            ordered = ordered[1:]
        positional = list(args)
        for param in ordered:
            name = param.name.value
            if positional:
                env[name] = positional.pop(0)
            elif name in kwargs:
                env[name] = kwargs.pop(name)
            elif param.default is not None or not complete or open_keywords:
                env[name] = unbound(param)
            else:
                return None
        if isinstance(params.star_arg, cst.Param):
            env[params.star_arg.name.value] = Loc(TupleV(tuple(positional)) if complete else UNKNOWN)
            positional = []
        if positional:
            return None
        for param in params.kwonly_params:
            name = param.name.value
            if name in kwargs:
                env[name] = kwargs.pop(name)
            else:
                env[name] = unbound(param)
        if params.star_kwarg is not None:
            env[params.star_kwarg.name.value] = Loc(DictV(tuple(kwargs.items()), complete))
            kwargs = {}
        if kwargs and complete:
            return None
        return env

    def call_helper_function(self, ctx: ModuleContext, name: str, args, kwargs, complete, expr, world: World,
                             frame: Frame) -> Loc:
        """A helper function (of this file or another module) run with the
        caller's values bound to its parameters."""
        if frame.depth >= MAX_CALL_DEPTH or name in frame.stack:
            return self.here(UnknownV(f"{name}: too deep"), expr, frame)
        abstracted = summaries.abstract_arguments(args, kwargs) if complete else None
        if abstracted is None:
            return _named_by(self._run_helper(ctx, name, args, kwargs, complete, expr, world, frame), name)
        key, template_args, template_kwargs, mapping = abstracted
        depth, stack = frame.depth, frame.stack

        def summarise() -> Loc:
            blank = Frame(cls=None, local=False, depth=depth, stack=stack, ctx=frame.ctx)
            return self._run_helper(ctx, name, template_args, template_kwargs, True, None, World(), blank)

        template = self._memoised_template(ctx, ("helper", name, depth, key), summarise)
        return _named_by(summaries.instantiate(template, mapping, world.facts, frame.site, expr, frame.local), name)

    def _memoised_template(self, ctx: ModuleContext, key, build: Callable[[], Loc]) -> Loc:
        """A summary's template, built once with a budget of its own and
        charged to the class being built at every use, hit or miss: what a
        class may explore never depends on which file or class met the
        helper first."""
        def measured() -> Tuple[Loc, int]:
            outer, self._budget = self._budget, INIT_BUDGET
            try:
                template = build()
                return template, INIT_BUDGET - self._budget
            finally:
                self._budget = outer

        template, cost = self._memo(ctx, key, measured)
        self._budget -= cost
        return template

    def _memo(self, ctx: ModuleContext, key, compute):
        """A value computed once per module content and key: in the project
        for a module read from disk (shared by every file checked in this
        process), here for the checked file (its text may be a fix's)."""
        if self.project is not None and ctx.foreign:
            return self.project.memo(ctx, repr(key), compute)
        memo_key = (ctx.path, key)
        if memo_key not in self._memo_table:
            self._memo_table[memo_key] = compute()
        return self._memo_table[memo_key]

    def _run_helper(self, ctx: ModuleContext, name: str, args, kwargs, complete, expr, world: World,
                    frame: Frame) -> Loc:
        func = ctx.functions[name]
        env = self._bind(func, args, dict(kwargs), complete, skip_self=False, frame=frame, ctx=ctx)
        if env is None:
            return self.here(UnknownV(f"{name}: arguments do not fit"), expr, frame)
        inner = World(world.facts)
        inner.env = env
        sub = Frame(cls=None, local=False, depth=frame.depth + 1, site=frame.site, stack=frame.stack + (name,), ctx=ctx)
        try:
            worlds = self.exec_block(func.body, [inner], sub)
        except TooComplex:
            return self.here(UnknownV(f"{name}: too complex"), expr, frame)
        returns = [(w.condition(), w.retval if w.returned and w.retval is not None else Loc(NONE)) for w in worlds]
        return self._alternatives(returns, expr, frame, name)

    def _alternatives(self, returns, expr, frame, label) -> Loc:
        if not returns:
            return self.here(UnknownV(f"{label} always raises"), expr, frame)
        returns = _merge_equal_returns(returns)
        if len(returns) == 1:
            return _relabel(returns[0][1], frame)
        return self.here(AltV(tuple((cond, loc) for cond, loc in returns)), expr, frame)

    def call_method(self, name: str, expr: cst.Call, world: World, frame: Frame):
        """``self.method(...)`` inside ``__init__``: run it on the same self."""
        cls = frame.cls
        method, owner = self.find_method(cls, name) if cls is not None else (None, None)
        args, kwargs, complete = self.eval_args(expr, world, frame)
        if method is None or frame.depth >= MAX_CALL_DEPTH or name in frame.stack:
            return [(world, self.here(UnknownV(f"self.{name}()"), expr, frame))]
        owner_ctx = self.class_ctx(owner)
        env = self._bind(method, args, dict(kwargs), complete, skip_self=True, frame=frame, ctx=owner_ctx)
        if env is None:
            return [(world, self.here(UnknownV(f"self.{name}(): arguments do not fit"), expr, frame))]
        saved_env = world.env
        world.env = env
        sub = Frame(cls=cls, local=frame.local and owner is cls, depth=frame.depth + 1, loop_depth=frame.loop_depth,
                    segment=frame.segment, site=frame.site, stack=frame.stack + (name,), ctx=owner_ctx)
        try:
            worlds = self.exec_block(method.body, [world], sub)
        finally:
            world.env = saved_env
        results = []
        for w in worlds:
            value = w.retval if w.returned and w.retval is not None else Loc(NONE)
            w.env = saved_env if w is world else dict(saved_env)
            w.returned, w.retval = False, None
            results.append((w, _relabel(value, frame)))
        return results

    def call_super_init(self, args, kwargs, world: World, frame: Frame, expr, explicit: Optional[QualV] = None):
        """``super().__init__(...)`` (or ``Base.__init__(self, ...)``): run the
        base's ``__init__`` on the same ``self`` when we read its source (in
        this file or another module); a torch layer base becomes the class's
        own layer, an ``nn.Sequential`` base its children."""
        cls = frame.cls
        if cls is None:
            return [(world, Loc(NONE))]
        if explicit is None:
            parents = self.bases_of(cls)
            parent = parents[0] if parents else None
        else:
            parent = self.class_of(explicit)
        if parent is not None:
            init, owner = self.find_method(parent, "__init__")
            if init is None:
                up = Frame(cls=parent, local=False, depth=frame.depth + 1, stack=frame.stack, ctx=self.class_ctx(parent))
                return self.call_super_init(args, kwargs, world, up, expr)
            owner_ctx = self.class_ctx(owner)
            env = self._bind(init, args, dict(kwargs), True, skip_self=True, frame=frame, ctx=owner_ctx,
                             open_keywords=self._open_keywords(expr, world, frame))
            if env is None or frame.depth >= MAX_CALL_DEPTH:
                world.dynamic = True
                return [(world, Loc(NONE))]
            saved_env = world.env
            world.env = env
            sub = Frame(cls=owner, local=False, depth=frame.depth + 1, site=frame.site, stack=frame.stack + ("__init__",),
                        ctx=owner_ctx)
            worlds = self.exec_block(init.body, [world], sub)
            for w in worlds:
                w.env = saved_env if w is world else dict(saved_env)
                w.returned, w.retval = False, None
            return [(w, Loc(NONE)) for w in worlds]
        if explicit is None:
            bases = self.class_ctx(cls).external_bases(cls)
        else:
            from .project import External

            resolved = self.resolve(explicit)
            bases = [resolved.qualname if isinstance(resolved, External) else explicit.qualname]
        for qual in bases:
            ltype = layer_type(qual)
            if ltype is None:
                continue
            if ltype.name == "Sequential":
                items = []
                complete = True
                for loc in args:
                    items.append(Item(loc, frame.segment))
                if kwargs:
                    complete = False
                world.seq_children = (tuple(items), complete)
            elif ltype.family != "container":
                bound = L.bind_arguments(ltype.params, args, kwargs)
                if bound is not None:
                    world.base_layer = L.torch_layer(ltype, bound, expr, frame.site, f"nn.{ltype.name}")
        return [(world, Loc(NONE))]

    def instantiate(self, ctx: ModuleContext, name: str, args, kwargs, complete, expr, world: World,
                    frame: Frame) -> Loc:
        """A Module class (of this file or another module) used as a layer.

        Its ``__init__`` runs with the caller's arguments (summarised once
        per kind of call, see :mod:`resnetlint.model.summaries`), so the
        layers it builds are known, as its children in the order its
        ``forward`` calls them (a pad, a conv with its padding and bias, its
        norm).  A class with a ``forward`` also gets its summary (widths in
        and out, stride) from its own model, analysed once with its
        parameters symbolic and specialised to the caller's arguments."""
        cls = ctx.classes[name]
        self._class_ctx[id(cls)] = (cls, ctx)
        if frame.depth >= MAX_CALL_DEPTH or name in frame.stack:
            return self.here(LayerV(L.unknown_layer(name, expr, frame.site)), expr, frame)
        init, init_owner = self.find_method(cls, "__init__")
        env = self._bind(init, args, dict(kwargs), complete, skip_self=True, frame=frame,
                         ctx=self.class_ctx(init_owner)) if init is not None else {}
        if env is None:
            return self.here(LayerV(L.unknown_layer(name, expr, frame.site)), expr, frame)
        abstracted = summaries.abstract_arguments(args, kwargs) if complete else None
        if abstracted is None:
            built = self._build_instance(ctx, name, args, kwargs, complete, expr, world, frame)
        else:
            key, template_args, template_kwargs, mapping = abstracted
            depth, stack = frame.depth, frame.stack

            def summarise() -> Loc:
                blank = Frame(cls=None, local=False, depth=depth, stack=stack, ctx=frame.ctx)
                return self._build_instance(ctx, name, template_args, template_kwargs, True, None, World(), blank)

            template = self._memoised_template(ctx, ("class", name, depth, key), summarise)
            built = summaries.instantiate(template, mapping, world.facts, frame.site, expr, frame.local)
        if self.find_method(cls, "forward")[0] is not None and self.class_summaries is not None:
            options = self.class_summaries(cls)
            summary = specialize(options, env, world.facts) if options is not None else Summary()
            for spec in L.iter_layers(built):
                if spec.family == "composite" and spec.class_name == name and \
                        (summary.known or not spec.summary.known):
                    # with the caller's facts, not the summary's blank ones; but the
                    # forward run with this call's arguments knows more than a class
                    # too general to summarise (timm's ConvNormAct), and its stride
                    # when the class's depends on a flag the caller sets
                    # (`stride if conv1_stride else 1` on one conv, the reverse on the next)
                    if summary.stride is None and spec.summary.stride is not None:
                        summary = replace_fields(summary, stride=spec.summary.stride)
                    spec.summary = summary
        return built

    def _build_instance(self, ctx: ModuleContext, name: str, args, kwargs, complete, expr, world: World,
                        frame: Frame) -> Loc:
        """Run the class's ``__init__`` with these arguments: a composite
        layer whose children are the layers it built (a Sequential or layer
        subclass becomes that container or layer)."""
        cls = ctx.classes[name]
        init, init_owner = self.find_method(cls, "__init__")
        env = self._bind(init, args, dict(kwargs), complete, skip_self=True, frame=frame,
                         ctx=self.class_ctx(init_owner)) if init is not None else {}
        if env is None:
            return self.here(LayerV(L.unknown_layer(name, expr, frame.site)), expr, frame)
        inner = World(world.facts)
        sub = Frame(cls=cls, local=False, depth=frame.depth + 1, site=frame.site, stack=frame.stack + (name,),
                    ctx=self.class_ctx(init_owner) if init is not None else ctx)
        if init is not None:
            inner.env = env
            try:
                worlds = self.exec_block(init.body, [inner], sub)
            except TooComplex:
                worlds = []
        else:
            worlds = [w for w, _ in self.call_super_init(args, kwargs, inner, sub, expr)]
        return self._composite_from_worlds(cls, worlds, expr, frame)

    def _run_instance_forward(self, cls: cst.ClassDef, world: World, spec: LayerSpec) -> None:
        """Run the forward of a module class built with the caller's
        arguments, in that world: what it does to a tensor (its summary) and,
        when every path runs the same chain of its layers, those layers in
        order (a pad, the conv, its norm): the composite's children."""
        from .block import flow_summary
        from .forward_exec import Budget, ForwardExecutor
        from .residual import main_chain

        forward, owner = self.find_method(cls, "forward")
        if forward is None:
            return
        budget = Budget(min(INSTANCE_FORWARD_BUDGET, max(self._budget, 0)))
        flow = ForwardExecutor(self.class_ctx(owner), self, cls, world, budget).run(forward)
        # Part of building the class that holds this instance: a network that
        # builds thousands of blocks runs out of its budget like a long __init__.
        self._budget -= INSTANCE_FORWARD_BUDGET - budget.left if budget.left >= 0 else INSTANCE_FORWARD_BUDGET
        if not flow.complete or not flow.returns:
            return
        spec.summary = flow_summary(flow, world.facts)
        if flow.input is None or not _only_chain(flow) or \
                not all(id(flow.input) in flow.ancestors(r) for r in flow.returns):
            return
        chains = {tuple(id(v.spec) for v in reversed(main_chain(r))) for r in flow.returns}
        if len(chains) == 1:
            chain = [v.spec for v in reversed(main_chain(flow.returns[0]))]
            if chain and all(s is not None for s in chain):
                spec.children = tuple(Item(Loc(LayerV(s))) for s in chain)
            return
        # The paths differ only in which alternative an attribute holds
        # (``self.act = nn.SiLU() if act is True else nn.Identity()``): the
        # children are those attributes, alternatives and all.
        orders = {tuple(v.attr for v in reversed(main_chain(r))) for r in flow.returns}
        order = orders.pop() if len(orders) == 1 else ()
        if order and all(attr in world.attrs for attr in order):
            spec.children = tuple(Item(world.attrs[attr].loc) for attr in order)
            return
        # Read through a property or a computed name (mmcv's ``self.norm``):
        # position by position, the layer, or the layers it may be, when the
        # paths differ at one position only (else which layers go together
        # would be lost).
        chains = [[v.spec for v in reversed(main_chain(r))] for r in flow.returns]
        if not order or not all(len(c) == len(order) and all(s is not None for s in c) for c in chains):
            return
        differing = [i for i in range(len(order)) if len({id(c[i]) for c in chains}) > 1]
        if len(differing) <= 1:
            spec.children = tuple(Item(_one_of([c[i] for c in chains])) for i in range(len(order)))

    def _composite_from_worlds(self, cls: cst.ClassDef, worlds: List[World], expr, frame) -> Loc:
        """Layers of a forward-less helper class, one option per world."""
        name = cls.name.value
        options = []
        own_forward = self.find_method(cls, "forward")[0] is not None
        for w in worlds:
            if w.seq_children is not None and own_forward:
                # an nn.Sequential subclass with a forward of its own (a
                # concatenation of its children, say): not a chain
                spec = LayerSpec(family="composite", label=name, class_name=name, call=expr, site=frame.site)
            elif w.seq_children is not None:
                children, complete = w.sequential_modules()
                seq = layer_type("torch.nn.Sequential")
                assert seq is not None
                spec = L.container(seq, children, complete, expr, frame.site, name)
                spec.class_name = name
            elif w.base_layer is not None:
                base = w.base_layer
                spec = LayerSpec(family=base.family, label=f"{name} ({base.label})", ltype=base.ltype, args=base.args,
                                 explicit=base.explicit, call=base.call, site=frame.site, summary=base.summary,
                                 class_name=name, inplace_first=base.inplace_first,
                                 subclass_forward=own_forward)
            else:
                spec = LayerSpec(family="composite", label=name, class_name=name, call=expr, site=frame.site)
                if own_forward:
                    self._run_instance_forward(cls, w, spec)
            options.append((w.condition(), Loc(LayerV(spec), expr, frame.local)))
        if not options:
            return self.here(LayerV(L.unknown_layer(name, expr, frame.site)), expr, frame)
        if len(options) == 1:
            return options[0][1]
        return self.here(AltV(tuple(options)), expr, frame)


class InitControl(ControlFlow[World]):
    """``__init__``'s use of the shared control-flow engine, for one frame:
    an ``if`` it cannot decide forks the world and records the decision
    (findings name the configuration); a loop runs its body once with what
    it changes made unknown (it may run any number of times); an exception
    handler makes unknown what it assigns; a ``raise``, or arithmetic on
    None, ends the world (that way of calling the constructor builds no
    block)."""

    max_states = MAX_WORLDS
    too_complex = TooComplex
    states_noun = "ways to construct"

    def __init__(self, interp: "Interpreter", frame: Frame):
        self.interp = interp
        self.frame = frame

    def tick(self) -> None:
        self.interp.tick()

    def exec_stmt(self, stmt, state: World) -> List[World]:
        try:
            return super().exec_stmt(stmt, state)
        except Raises:
            return []

    def exec_small(self, small, state: World) -> List[World]:
        return self.interp.exec_small(small, state, self.frame)

    def branch_tests(self, test, state: World) -> List[Tuple[World, Cond]]:
        return [(state, self.interp.as_cond(self.interp.ev(test, state, self.frame)))]

    def decided(self, state: World, cond: Cond, taken: bool, node) -> None:
        state.decisions = state.decisions + (Decision(cond, taken, node),)
        for name in _names_assumed_none(cond, taken):
            # `if width is None:` taken: below, `width` is None, not a number
            # (nn.Conv2d(c, width) there raises; `width or c` is c)
            current = state.env.get(name)
            if current is not None and _is_parameter(current.value, name):
                state.env[name] = Loc(NONE, current.node, current.local)

    def define(self, stmt, state: World) -> List[World]:
        state.env[stmt.name.value] = Loc(UnknownV("local definition"), stmt.name, self.frame.local)
        return [state]

    def unmodelled(self, stmt, state: World) -> List[World]:
        # match statements and anything newer: whatever they assign is unknown
        self.interp._forget_assigned(stmt, state, self.frame)
        return [state]

    def handle_exceptions(self, stmt, before: World, states: List[World]) -> List[World]:
        for handler in stmt.handlers:
            for world in states:
                self.interp._forget_assigned(handler.body, world, self.frame)
        return states

    def exec_loop(self, stmt, world: World) -> List[World]:
        interp, frame = self.interp, self.frame
        names, attrs = interp.syntax("assigned", stmt.body, _assigned_in)
        if isinstance(stmt, cst.For):
            names |= _target_names(stmt.target)
        inner = world.fork()
        self._forget_changed(inner, names, attrs, keep_stmt=False)
        outer_segment = frame.segment
        frame.loop_depth += 1
        frame.segment = next(interp._segments)
        try:
            worlds = self.exec_block(stmt.body, [inner])
        finally:
            frame.loop_depth -= 1
            frame.segment = outer_segment
        # The loop may run any number of times, zero included.
        for w in worlds:
            w.returned = False
            self._forget_changed(w, names, attrs, keep_stmt=True)
        if stmt.orelse is not None:
            worlds = self.exec_block(stmt.orelse.body, worlds)
        return worlds

    def _forget_changed(self, world: World, names: Set[str], attrs: Set[str], keep_stmt: bool) -> None:
        """What a loop body assigns is unknown after it (lists and dicts it
        fills stay: their elements are what ``append`` recorded)."""
        for name in names:
            if not isinstance(world.env.get(name, Loc(UNKNOWN)).value, (ListV, DictV)):
                world.env[name] = Loc(UnknownV("changed by a loop"), None, self.frame.local)
        for attr in attrs:
            assigned = world.attrs.get(attr) if keep_stmt else None
            stmt_node = assigned.stmt if assigned is not None else None
            self.interp._set_attr(world, attr, Loc(UnknownV("changed by a loop")), stmt_node, self.frame, in_loop=True)


def _names_assumed_none(cond: Cond, taken: bool) -> List[str]:
    """Parameters that ``cond`` being ``taken`` says are None."""
    if isinstance(cond, Not):
        return _names_assumed_none(cond.item, not taken)
    if isinstance(cond, And) and taken:
        return [name for item in cond.items for name in _names_assumed_none(item, True)]
    if isinstance(cond, Truth) and taken and cond.key.endswith(" is None"):
        return [cond.key[: -len(" is None")]]
    return []


def _is_parameter(value: Value, name: str) -> bool:
    """``value`` is still the parameter ``name`` itself (not reassigned)."""
    if isinstance(value, ParamV):
        return value.name == name
    return isinstance(value, NumV) and value.num.single_atom() == name


def specialize(options: Sequence[Tuple[Cond, Summary]], env: Dict[str, Loc], facts: Facts) -> Summary:
    """A helper class's symbolic summary with the caller's arguments put in."""
    mapping = {}
    for name, loc in env.items():
        num = as_num(loc)
        if num is not None:
            mapping[name] = num
    # Worlds mostly agree on the summary: substitute each distinct one once.
    distinct: Dict[Summary, Summary] = {}
    substituted = [distinct.get(summary) or distinct.setdefault(summary, substitute_summary(summary, mapping))
                   for _, summary in options]
    if substituted and all(s == substituted[0] for s in substituted):
        # Every world says the same: it holds unless the caller's facts rule
        # out every world, and the first world they allow settles that (a
        # class with many worlds is specialised at every call, and its
        # conditions are the costly part).
        possible = any(facts.evaluate(substitute_cond(cond, mapping, env)) is not False for cond, _ in options)
        return substituted[0] if possible else Summary()
    kept = [summary for (cond, _), summary in zip(options, substituted)
            if facts.evaluate(substitute_cond(cond, mapping, env)) is not False]
    if kept and all(k == kept[0] for k in kept):
        return kept[0]
    return Summary()


def _substitute_num(num: Optional[Num], mapping: Dict[str, Num]) -> Optional[Num]:
    if num is None or not num.atoms() <= mapping.keys():
        return None if num is None or num.atoms() else num
    return num.substitute(mapping)


def substitute_summary(summary: Summary, mapping: Dict[str, Num]) -> Summary:
    return Summary(
        in_channels=_substitute_num(summary.in_channels, mapping),
        out_channels=_substitute_num(summary.out_channels, mapping),
        keeps_channels=summary.keeps_channels,
        stride=_substitute_num(summary.stride, mapping),
        axis=summary.axis,
        has_weights=summary.has_weights,
    )


def substitute_cond(cond: Cond, mapping: Dict[str, Num], env: Dict[str, Loc]) -> Cond:
    if cond is None or isinstance(cond, bool):
        return cond
    if isinstance(cond, Cmp):
        left, right = _substitute_num(cond.left, mapping), _substitute_num(cond.right, mapping)
        return Cmp(cond.op, left, right) if left is not None and right is not None else None
    if isinstance(cond, Not):
        inner = substitute_cond(cond.item, mapping, env)
        return None if inner is None else negate(inner)
    if isinstance(cond, (And, Or)):
        items = [substitute_cond(i, mapping, env) for i in cond.items]
        return conjoin(items) if isinstance(cond, And) else disjoin(items)
    if isinstance(cond, Truth):
        for suffix in (" is None", TRUTHY):
            if cond.key.endswith(suffix):
                bound = env.get(cond.key[: -len(suffix)])
                if bound is None:
                    return None
                value = bound.value
                if suffix == " is None":
                    return True if isinstance(value, NoneV) else (False if isinstance(value, (LayerV, NumV, QualV)) else None)
                if isinstance(value, BoolV):
                    return value.cond
                return None
        return None
    return None


def _adopt(world: World, other: World) -> None:
    if other is world:
        return
    world.facts = other.facts
    world.attrs = other.attrs
    world.decisions = other.decisions
    world.dynamic = other.dynamic
    world.base_layer = other.base_layer
    world.seq_children = other.seq_children
    world.assumed = other.assumed


def _relabel(loc: Loc, frame: Frame) -> Loc:
    """A helper's return value, seen from the caller: keep where it was written
    (inside the helper) but note it is not local to the caller unless it was."""
    return loc


def _render(loc: Loc) -> str:
    value = loc.value
    num = as_num(loc)
    if num is not None:
        return num.render()
    if isinstance(value, QualV):
        return value.qualname
    if isinstance(value, NoneV):
        return "None"
    if isinstance(value, StrV):
        return repr(value.text)
    if isinstance(value, BoolV):
        return repr(value.cond)
    return f"<{type(value).__name__}:{id(value)}>"


def _default_classes(args: Sequence[Loc]) -> List[Loc]:
    """Arguments for a library helper: a layer-class parameter with a
    default (``norm_layer=nn.BatchNorm2d``) is passed as that default.  A
    library factory inspects the class it is given (``isinstance(norm_layer,
    partial)``, ``norm_layer.__name__``), which a parameter of unknown value
    turns into a fork at every test; the block is checked as its defaults
    build it, as when it calls ``norm_layer(C)`` itself."""
    out = []
    for loc in args:
        value = loc.value
        default = value.default if isinstance(value, ParamV) else None
        out.append(default if default is not None and isinstance(default.value, (QualV, PartialV)) else loc)
    return out


def _dict_set(items, key: str, value: Loc):
    """Items of a dict after ``d[key] = value``: a known key keeps its place."""
    items = list(items)
    for index, (existing, _) in enumerate(items):
        if existing == key:
            items[index] = (key, value)
            return items
    return items + [(key, value)]


def _dict_mutation(value: DictV, name: str, args, kwargs):
    """``d.pop(k[, default])``, ``d.setdefault(k, v)``, ``d.update(...)`` on a
    dict written out: (what the call returns, the dict afterwards).  A key
    that is not a string, or missing from an incomplete dict, leaves both
    unknown (the dict incomplete)."""
    unknown = (UnknownV(f"dict.{name}"), DictV(value.items, False))
    if name == "update":
        items = list(value.items)
        sources = [a.value for a in args] + [DictV(tuple(kwargs.items()))]
        for source in sources:
            if not isinstance(source, DictV):
                return unknown
            for key, item in source.items:
                items = _dict_set(items, key, item)
        return NONE, DictV(tuple(items), value.complete and all(s.complete for s in sources))
    if not args or not isinstance(args[0].value, StrV):
        return unknown
    key = args[0].value.text
    found = next((item for k, item in value.items if k == key), None)
    if name == "pop":
        rest = tuple((k, item) for k, item in value.items if k != key)
        if found is not None:
            return found, DictV(rest, value.complete)
        if value.complete and len(args) > 1:
            return args[1], value
        return unknown
    # setdefault
    if found is not None:
        return found, value
    if value.complete:
        default = args[1] if len(args) > 1 else Loc(NONE)
        return default, DictV(value.items + ((key, default),), True)
    return unknown


def _config_lookup(method: str, args, kwargs) -> Value:
    """``cfg.get("type", "BN")`` on a parameter we know nothing of: one
    unknown value per lookup, named by it, so that every test of the same
    lookup agrees (the conv type a ``conv_cfg`` names is the same for every
    conv built with it); unknown for other methods or arguments."""
    name = method.rsplit(".", 1)[-1]
    constants = [_constant_text(a.value) for a in args]
    if name not in ("get", "pop") or kwargs or not args or any(c is None for c in constants):
        return UnknownV(f"{method}()")
    return OpaqueV(f"{method.rsplit('.', 1)[0]}[{constants[0]}]")


def _constant_text(value: Value) -> Optional[str]:
    if isinstance(value, StrV):
        return repr(value.text)
    if isinstance(value, NoneV):
        return "None"
    if isinstance(value, NumV) and value.num.const_value() is not None:
        return value.num.render()
    if isinstance(value, BoolV) and isinstance(value.cond, bool):
        return repr(value.cond)
    return None


def _looked_up_as(lookup: OpaqueV, text: str) -> Cond:
    return Truth(f"{lookup.text} == {text!r}")


def _lookup_among(lookup: OpaqueV, container: Value) -> Cond:
    """``cfg["type"] in ("BN", "SyncBN")``: one of the equalities."""
    if not isinstance(container, (TupleV, ListV)) or (isinstance(container, ListV) and not container.complete):
        return None
    items = container.items if isinstance(container, TupleV) else tuple(i.loc for i in container.items)
    if not items or not all(isinstance(i.value, StrV) for i in items):
        return None
    return disjoin(_looked_up_as(lookup, i.value.text) for i in items)


def _constant_kind(value: Value) -> Optional[str]:
    """What ``==`` compares a known constant as (bools and ints are both
    numbers), None when the value is not a known constant."""
    if isinstance(value, StrV):
        return "str"
    if isinstance(value, NoneV):
        return "none"
    if isinstance(value, BoolV) and isinstance(value.cond, bool):
        return "number"
    if isinstance(value, NumV) and value.num.const_value() is not None:
        return "number"
    return None


def _merge_equal_returns(returns):
    """A helper's returns with the ones that built the same layer by the
    same call (``return norm_type(**kw_args)`` reached on several paths)
    merged, their conditions joined: telling them apart only multiplies the
    paths ``forward`` has to explore."""
    merged: List[Tuple[Cond, Loc]] = []
    keys: List[object] = []
    for cond, loc in returns:
        key = _layer_key(loc.value)
        if key is not None and key in keys:
            index = keys.index(key)
            merged[index] = (disjoin((merged[index][0], cond)), merged[index][1])
            continue
        keys.append(key if key is not None else object())
        merged.append((cond, loc))
    return merged


def _layer_key(value: Value):
    """What makes two built layers the same layer: the call that built it,
    its kind and its arguments; None for anything but a plain layer."""
    from .summaries import _identity, _unkeyable

    if not isinstance(value, LayerV) or value.spec.children:
        return None
    spec = value.spec
    arguments = tuple(sorted((name, _identity(loc.value)) for name, loc in spec.args.items()))
    if _unkeyable(arguments):
        return None
    return (id(spec.call), spec.family, spec.label, spec.ltype.qualname if spec.ltype else None, arguments)


def _one_of(specs: List[LayerSpec]) -> Loc:
    """The layer a position of a chain holds on every path, or the ones it
    may hold (which one is not known here)."""
    distinct = list({id(s): s for s in specs}.values())
    if len(distinct) == 1:
        return Loc(LayerV(distinct[0]))
    return Loc(AltV(tuple((fresh_truth("which layer"), Loc(LayerV(s))) for s in distinct)))


NUMERIC_ARGUMENTS = frozenset({"in_channels", "out_channels", "num_features", "num_channels", "in_features",
                               "out_features", "kernel_size", "stride", "padding", "dilation", "groups"})


def _numeric_parameters(items) -> Set[str]:
    """Parameters the children take as a number (a width, a stride): kept on
    ``self`` as well (torchvision's ``self.out_channels = out_channels``),
    such a parameter is no submodule."""
    names: Set[str] = set()
    for item in items:
        for option in possible_values(item.loc.value):
            if isinstance(option, LayerV):
                for arg, loc in option.spec.args.items():
                    if arg in NUMERIC_ARGUMENTS and isinstance(loc.value, ParamV):
                        names.add(loc.value.name)
    return names


def _never_a_module(value: Value) -> bool:
    """A value ``nn.Module.__setattr__`` does not register as a submodule:
    numbers, flags, strings, plain Python containers, classes and functions,
    parameters and buffers."""
    if isinstance(value, AltV):
        return all(_never_a_module(option.value) for _, option in value.options)
    if isinstance(value, LayerV):
        return value.spec.family in NOT_MODULES
    return isinstance(value, (NumV, BoolV, StrV, NoneV, TupleV, ListV, DictV, QualV, MethodV, LambdaV, PartialV))


def _is_self(expr: cst.BaseExpression) -> bool:
    return isinstance(expr, cst.Name) and expr.value == "self"


def _unstar(expr):
    return expr


def _code(node: cst.CSTNode) -> str:
    """A dotted name (``torch.nn``) as text."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return f"{_code(node.value)}.{node.attr.value}"
    return "?"


def _defines_method(cls: cst.ClassDef, name: str) -> bool:
    return any(isinstance(stmt, cst.FunctionDef) and stmt.name.value == name for stmt in cls.body.body)


def _dataclass_fields(cls: cst.ClassDef) -> List[str]:
    """The fields of a dataclass, in order: its annotated class attributes."""
    fields = []
    for stmt in cls.body.body:
        if isinstance(stmt, cst.SimpleStatementLine):
            fields.extend(small.target.value for small in stmt.body
                          if isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name))
    return fields


def _decorator_name(decorator: cst.Decorator) -> str:
    expr = decorator.decorator
    if isinstance(expr, cst.Name):
        return expr.value
    if isinstance(expr, cst.Attribute):
        return expr.attr.value
    return ""


def _is_function(interp: "Interpreter", value: Value, classes_too: bool = False) -> Cond:
    """``inspect.isfunction`` (``callable`` with ``classes_too``) for values
    whose nature the model knows."""
    from .project import Definition

    if isinstance(value, LambdaV):
        return True
    if isinstance(value, (LayerV, NumV, StrV, NoneV, BoolV, ListV, TupleV, DictV)):
        return isinstance(value, LayerV) and classes_too
    if isinstance(value, QualV):
        resolved = interp.resolve(value)
        if isinstance(resolved, Definition):
            return resolved.kind == "function" or (classes_too and resolved.kind == "class")
        if value.qualname.startswith("torch.nn.") and layer_type(value.qualname) is not None:
            return classes_too
    return None


def _contains(container: Value, item: Value) -> Optional[bool]:
    """``item in container`` for constant strings and numbers in a tuple,
    list or dict written out (None when it cannot be told)."""
    def constant(value: Value):
        if isinstance(value, StrV):
            return ("str", value.text)
        if isinstance(value, NumV) and value.num.const_value() is not None:
            return ("num", value.num.const_value())
        return None

    wanted = constant(item)
    if wanted is None:
        return None
    if isinstance(container, DictV) and container.complete:
        return any(("str", key) == wanted for key, _ in container.items)
    if isinstance(container, (TupleV, ListV)):
        items = container.items if isinstance(container, TupleV) else tuple(i.loc for i in container.items)
        if isinstance(container, ListV) and not container.complete:
            return None
        values = [constant(i.value) for i in items]
        if wanted in values:
            return True
        return False if all(v is not None for v in values) else None
    return None


def _attribute_key(name: Loc) -> Optional[str]:
    """The attribute name given to ``add_module``/``getattr``: a string, or
    (mmcv's ``self.add_module(self.norm1_name, norm1)``, read back with
    ``getattr(self, self.norm1_name)``) a name computed once and kept in
    ``self.<x>``, keyed by that attribute: ``<self.norm1_name>``."""
    if isinstance(name.value, StrV):
        return name.value.text
    node = name.node
    if isinstance(node, cst.Attribute) and _is_self(node.value):
        return f"<self.{node.attr.value}>"
    return None


def _is_boolean(value: Value) -> bool:
    return isinstance(value, BoolV)


def _is_flag_test(left: Value, right: Value) -> bool:
    """``with_idt and cin == cout``, ``args.id_skip and stride == 1``: a
    parameter combined with a comparison is a flag, not a value to choose."""
    values = (left, right)
    return any(isinstance(v, BoolV) for v in values) and all(isinstance(v, (BoolV, ParamV)) for v in values)


def _named_by(result: Loc, helper: str) -> Loc:
    """A layer a helper function returns is named after the helper in
    messages (``conv_bn_act``, not ``nn.Sequential``), when the helper built it."""
    value = result.value
    if isinstance(value, LayerV) and value.spec.call is not None and value.spec.class_name is None \
            and not value.spec.label.startswith(helper):
        value.spec.label = f"{helper}(...)"
    return result


def _unpacked_alternatives(alternatives: AltV, count: int) -> Optional[Tuple[Loc, ...]]:
    """``name, layer = build_norm_layer(cfg, c)`` where the helper returns one
    of several tuples: each element becomes the alternatives of that element."""
    columns: List[List[Tuple[Cond, Loc]]] = [[] for _ in range(count)]
    for cond, option in alternatives.options:
        value = option.value
        items = value.items if isinstance(value, TupleV) else None
        if items is None or len(items) != count:
            return None
        for index, item in enumerate(items):
            columns[index].append((cond, item))
    return tuple(Loc(AltV(tuple(column), alternatives.test)) for column in columns)


def _only_chain(flow) -> bool:
    """Every layer call of the flow lies on the chain to what it returns,
    and nothing but layers and elementwise functions lies on that chain (no
    branch, no add, no gate, no reshape or split): its layers run one after
    the other on the same tensor."""

    if flow.adds:
        return False
    on_chain = set()
    for returned in flow.returns:
        current = returned
        while current is not None and current is not flow.input:
            if current.kind == "layer" or (current.kind in ("func", "method") and current.elementwise):
                on_chain.add(id(current))
                current = current.inputs[0] if current.inputs else None
            else:
                return False
        if current is None:
            return False
    return all(id(v) in on_chain for v in flow.values if v.kind == "layer")


def _target_names(target: cst.BaseExpression) -> Set[str]:
    out: Set[str] = set()
    if isinstance(target, cst.Name):
        out.add(target.value)
    elif isinstance(target, (cst.Tuple, cst.List)):
        for element in target.elements:
            out |= _target_names(element.value)
    elif isinstance(target, cst.StarredElement):
        out |= _target_names(target.value)
    return out


def _assigned_in(node) -> Tuple[Set[str], Set[str]]:
    """Local names and ``self`` attributes a block of code assigns
    (``setattr(self, "x", ...)`` and ``self.add_module("x", ...)`` included),
    not looking into nested functions or classes."""
    names: Set[str] = set()
    attrs: Set[str] = set()

    def target(expr) -> None:
        if isinstance(expr, cst.Attribute) and _is_self(expr.value):
            attrs.add(expr.attr.value)
        else:
            names.update(_target_names(expr))

    roots = list(node) if isinstance(node, (list, tuple)) else [node]
    stack = roots[::-1]
    while stack:
        current = stack.pop()
        if isinstance(current, (cst.FunctionDef, cst.ClassDef)) and current not in roots:
            continue
        if isinstance(current, cst.AssignTarget):
            target(current.target)
        elif isinstance(current, (cst.AnnAssign, cst.AugAssign, cst.NamedExpr)):
            target(current.target)
        elif isinstance(current, (cst.For, cst.CompFor)):
            target(current.target)
        elif isinstance(current, cst.Call):
            func = current.func
            name = func.value if isinstance(func, cst.Name) else func.attr.value if isinstance(func, cst.Attribute) else ""
            if name in ("setattr", "add_module", "register_module", "register_parameter"):
                for arg in current.args:
                    if isinstance(arg.value, cst.SimpleString):
                        text = arg.value.value
                        if text[:1] in "'\"" and text[-1:] == text[:1]:
                            attrs.add(text[1:-1])
                        break
        children = list(iter_children(current))
        stack.extend(reversed(children))
    return names, attrs


_ARITHMETIC = {"Add", "Subtract", "Multiply", "Divide", "FloorDivide", "Modulo", "Power"}

# ``ev`` dispatches on the node's class name through this table (cheaper than
# building the method name and looking it up on the instance every time).
_EVALUATORS = {name[len("ev_"):]: function for name, function in vars(Interpreter).items()
               if name.startswith("ev_")}
