"""Finding residual blocks in a package's source, with libcst and the
small dataflow of :mod:`flow` (never resnetlint's model).

A *residual block* is a class that is an ``nn.Module`` (directly or through
bases found in the package; a class defining ``forward`` counts when a
base is unknown) and whose ``forward`` -- or a function ``forward``
delegates to: a nested ``_inner_forward``, ``self._forward_impl`` -- adds
an earlier value to something computed from it through submodules:
``x + self.f(x)``, ``out += identity`` with ``identity = x`` or
``identity = self.downsample(x)``, ``torch.add(x, y)``, ``out.add_(x)``.

For each block the finder records what the operators need: the residual
adds (shortcut operand, its base value and projections, the main operand and
the submodule calls on the main path), and an index of ``__init__`` (and the
methods it calls): the layer constructions, which attribute each is stored
in, the constructor parameters, and a :class:`symbolic.Scope` to decide
whether two width expressions can differ.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Dict, FrozenSet, Iterator, List, Optional, Sequence, Set, Tuple

import libcst as cst

from .cstutil import children, code, dotted, last_name, self_attr, statements, walk
from .flow import AddSite, Env, Flow
from .symbolic import Scope

SHORTCUT_NAME = re.compile(r"short|skip|down|proj|ident|resid|^res|_res|^sc$|^ds$|match|bypass|idt|side|nin_",
                           re.IGNORECASE)
WIDTH_NAME = re.compile(
    r"(^|_)(in|out|mid|hidden|inner|inter|num|base|reduced?|squeeze|expand(ed)?|middle|bottleneck|red|exp)?_?"
    r"(channels?|chs|chans?|planes|features|dims?|width|filters|feats)(_|$)"
    r"|^(inp|oup|c1|c2|c_|cin|cout|c_in|c_out|ch_in|ch_out|nin|nout|in_c|out_c|inplanes|outplanes|midplanes|"
    r"hidden|hid|mid|dim|width|planes|channels|chs|nf|ni|no|in_ch|out_ch|mid_ch|ch|in_chs|out_chs|mid_chs|"
    r"hidden_dim|embed_dim|in_size|out_size|in_feat|out_feat)$",
    re.IGNORECASE)
MODULE_BASES = {"Module", "BaseModule", "Sequential", "ModuleList", "ModuleDict", "BaseBackbone", "PreTrainedModel",
                "GradientCheckpointingLayer", "ScriptModule", "LightningModule"}
PARAM_FREE = re.compile(
    r"(ReLU|GELU|SiLU|Swish|Mish|Sigmoid|Tanh|Softmax|Hardswish|Hardsigmoid|Hswish|HSigmoid|ELU|Identity|Dropout|"
    r"DropPath|DropBlock|drop_path|Pool|pool|Upsample|Flatten|Unflatten|PixelShuffle|PixelUnshuffle|act_layer|"
    r"activation|Activation|act$|^act|get_act|create_act|build_activation|lambda_relu|Interpolate|Pad2d|Pad1d|"
    r"Pad3d|ZeroPad|ReflectionPad|ReplicationPad|ConstantPad|Shuffle|Rearrange|Permute|Squeeze|Noop|NoOp|GlobalPool)")


# --------------------------------------------------------------------------
# The module index


@dataclass
class ModuleIndex:
    """What a module's top level defines and imports."""

    package: str  # the top-level package name (timm, mmseg, ...)
    dotted_name: str  # timm.models.resnet
    imports: Dict[str, Tuple[str, Optional[str]]] = field(default_factory=dict)  # local -> (module, name)
    functions: Set[str] = field(default_factory=set)
    classes: Dict[str, cst.ClassDef] = field(default_factory=dict)
    assignments: Dict[str, cst.BaseExpression] = field(default_factory=dict)

    def origin(self, name: str) -> str:
        """Where a top-level name comes from: ``same-file``, ``other-module``
        (imported from this package), ``torch``, ``external`` or ``unknown``."""
        if name in self.functions or name in self.classes:
            return "same-file"
        if name in self.assignments:
            value = self.assignments[name]
            if isinstance(value, cst.Call) and last_name(value.func) == "partial":
                return "partial"
            return "same-file"
        if name in self.imports:
            module, _ = self.imports[name]
            if module.startswith(".") or module.split(".")[0] == self.package:
                return "other-module"
            if module.split(".")[0] == "torch":
                return "torch"
            return "external"
        if name in ("nn", "torch", "F"):
            return "torch"
        return "unknown"


def index_module(module: cst.Module, package: str, dotted_name: str) -> ModuleIndex:
    index = ModuleIndex(package, dotted_name)
    for stmt in _top_level(module.body):
        if isinstance(stmt, cst.FunctionDef):
            index.functions.add(stmt.name.value)
        elif isinstance(stmt, cst.ClassDef):
            index.classes[stmt.name.value] = stmt
        elif isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                if isinstance(small, cst.Import):
                    for alias in small.names:
                        full = dotted(alias.name) or ""
                        local = alias.asname.name.value if alias.asname else full.split(".")[0]
                        index.imports[local] = (full if alias.asname else full.split(".")[0], None)
                elif isinstance(small, cst.ImportFrom):
                    module_name = "." * len(small.relative) + (dotted(small.module) or "")
                    if isinstance(small.names, cst.ImportStar):
                        continue
                    for alias in small.names:
                        name = dotted(alias.name) or ""
                        local = alias.asname.name.value if alias.asname else name
                        index.imports[local] = (module_name, name)
                elif isinstance(small, cst.Assign) and len(small.targets) == 1 and isinstance(
                        small.targets[0].target, cst.Name):
                    index.assignments[small.targets[0].target.value] = small.value
    return index


def _top_level(body: Sequence[cst.CSTNode]) -> Iterator[cst.CSTNode]:
    """Module-level statements, looking into ``if``/``try`` blocks."""
    for stmt in body:
        if isinstance(stmt, (cst.If, cst.Try)):
            yield from _top_level(statements(stmt.body))
            others = []
            if isinstance(stmt, cst.If) and stmt.orelse is not None:
                others = [stmt.orelse] if isinstance(stmt.orelse, cst.If) else statements(stmt.orelse.body)
            elif isinstance(stmt, cst.Try):
                for handler in stmt.handlers:
                    others.extend(statements(handler.body))
            yield from _top_level(others)
        else:
            yield stmt


# --------------------------------------------------------------------------
# __init__


@dataclass
class CallSite:
    """A call in ``__init__`` (or a method it calls) that may build a layer."""

    call: cst.Call
    attr: Optional[str]  # the self attribute it ends up in (self.conv1 = ..., nn.Sequential(...) included)
    local: Optional[str]  # the local it is assigned to
    conditional: bool  # under an if / in an IfExp
    order: int
    sequential: Optional[Tuple[cst.Call, int]] = None  # (the nn.Sequential call, position) when an element
    function: Optional[cst.FunctionDef] = None
    tuple_names: Tuple[str, ...] = ()  # targets of `self.norm1_name, norm1 = build_norm_layer(...)`
    stmt_order: int = 0  # position of its statement in the walk of __init__


@dataclass
class InitInfo:
    functions: List[cst.FunctionDef]
    params: Dict[str, Optional[cst.BaseExpression]]  # __init__ parameters (without self) -> default
    has_kwargs: bool
    calls: List[CallSite]
    attr_values: Dict[str, List[Tuple[cst.BaseExpression, cst.CSTNode, List[cst.If]]]]  # attr -> (value, stmt, ifs)
    statements_by_attr: Dict[str, List[cst.SimpleStatementLine]]
    local_values: Dict[str, List[cst.BaseExpression]]
    scope: Scope
    order_of: Dict[int, int]  # id(statement line) -> position in the walk
    defined_at: Dict[str, int] = field(default_factory=dict)  # local or "self.x" -> first assignment's position


def _init_functions(cls: cst.ClassDef) -> List[cst.FunctionDef]:
    methods = {s.name.value: s for s in statements(cls.body) if isinstance(s, cst.FunctionDef)}
    init = methods.get("__init__")
    if init is None:
        return []
    out = [init]
    for node in walk(init.body):
        if isinstance(node, cst.Call):
            name = self_attr(node.func)
            if name and name in methods and methods[name] not in out and name != "forward":
                out.append(methods[name])
    return out


def analyse_init(cls: cst.ClassDef, class_constants: Dict[str, object]) -> Optional[InitInfo]:
    functions = _init_functions(cls)
    if not functions:
        return None
    init = functions[0]
    params: Dict[str, Optional[cst.BaseExpression]] = {}
    all_params = list(init.params.posonly_params) + list(init.params.params)
    for param in all_params[1:] + list(init.params.kwonly_params):
        params[param.name.value] = param.default
    info = InitInfo(functions, params, isinstance(init.params.star_kwarg, cst.Param), [], {}, {}, {},
                    Scope(), {})
    equal_pairs: List[Tuple[str, str]] = []
    constants: Dict[str, object] = {f"self.{k}": v for k, v in class_constants.items()}

    def visit_block(stmts, ifs: List[cst.If], function):
        for stmt in stmts:
            if isinstance(stmt, cst.SimpleStatementLine):
                info.order_of[id(stmt)] = len(info.order_of)
                for small in stmt.body:
                    visit_small(small, stmt, ifs, function)
            elif isinstance(stmt, cst.If):
                _raise_guard_equality(stmt, equal_pairs)
                visit_block(statements(stmt.body), ifs + [stmt], function)
                orelse = stmt.orelse
                while orelse is not None:
                    if isinstance(orelse, cst.If):
                        visit_block(statements(orelse.body), ifs + [stmt], function)
                        orelse = orelse.orelse
                    else:
                        visit_block(statements(orelse.body), ifs + [stmt], function)
                        orelse = None
            elif isinstance(stmt, (cst.For, cst.While, cst.With, cst.Try)):
                visit_block(statements(stmt.body), ifs + [stmt], function)
                if isinstance(stmt, cst.Try):
                    for handler in stmt.handlers:
                        visit_block(statements(handler.body), ifs + [stmt], function)

    def visit_small(small, line, ifs, function):
        if isinstance(small, cst.Assert):
            pair = _equality(small.test)
            if pair:
                equal_pairs.append(pair)
            return
        value, targets = None, []
        if isinstance(small, cst.Assign):
            value, targets = small.value, [t.target for t in small.targets]
        elif isinstance(small, cst.AnnAssign) and small.value is not None:
            value, targets = small.value, [small.target]
        elif isinstance(small, cst.Expr) and isinstance(small.value, cst.Call):
            value = small.value
            call = small.value
            if last_name(call.func) in ("add_module", "register_module") and len(call.args) >= 2:
                record_calls(call.args[1].value, "<add_module>", None, ifs, function)
                return
            if last_name(call.func) in ("append", "extend", "add_module", "insert"):
                owner = call.func.value if isinstance(call.func, cst.Attribute) else None
                record_calls(call, self_attr(owner), dotted(owner) if isinstance(owner, cst.Name) else None,
                             ifs, function)
                return
        if value is None:
            return
        attr = local = None
        tuple_names: Tuple[str, ...] = ()
        position = len(info.order_of) - 1
        for target in targets:
            for element in (target.elements if isinstance(target, (cst.Tuple, cst.List)) else [target]):
                inner = element.value if isinstance(element, cst.Element) else element
                key = dotted(inner)
                if key is not None:
                    info.defined_at.setdefault(key, position)
        if len(targets) == 1 and isinstance(targets[0], cst.Tuple):
            tuple_names = tuple(code(e.value) for e in targets[0].elements)
        if len(targets) == 1:
            target = targets[0]
            attr = self_attr(target)
            if isinstance(target, cst.Name):
                local = target.value
                info.local_values.setdefault(local, []).append(value)
            if isinstance(target, cst.Subscript):
                attr = self_attr(target.value)
        for target in targets:
            name = self_attr(target)
            if name:
                info.attr_values.setdefault(name, []).append((value, small, list(ifs)))
                info.statements_by_attr.setdefault(name, []).append(line)
        record_calls(value, attr, local, ifs, function, tuple_names)

    def record_calls(value, attr, local, ifs, function, tuple_names=()):
        conditional_nodes: Set[int] = set()
        for node in walk(value):
            if isinstance(node, cst.IfExp):
                for part in (node.body, node.orelse):
                    conditional_nodes.update(id(n) for n in walk(part))
            if isinstance(node, cst.Call):
                site = CallSite(node, attr, local, bool(ifs) or id(node) in conditional_nodes, len(info.calls),
                                function=function, tuple_names=tuple_names,
                                stmt_order=len(info.order_of) - 1)
                info.calls.append(site)
        # elements of nn.Sequential(...)
        by_id = {id(site.call): site for site in info.calls}
        for node in walk(value):
            if isinstance(node, cst.Call) and last_name(node.func) == "Sequential":
                position = 0
                for arg in node.args:
                    if arg.star:
                        break
                    if isinstance(arg.value, cst.Call) and id(arg.value) in by_id:
                        by_id[id(arg.value)].sequential = (node, position)
                    position += 1

    for function in functions:
        visit_block(statements(function.body), [], function)

    assignments: Dict[str, str] = {}
    for name, values in info.local_values.items():
        if len(values) == 1:
            assignments[name] = code(values[0])
    for name, values in info.attr_values.items():
        if len(values) == 1:
            assignments[f"self.{name}"] = code(values[0][0])
            if isinstance(values[0][0], cst.Name) and values[0][0].value in params:
                equal_pairs.append((f"self.{name}", values[0][0].value))  # self.expansion = expansion
    for left, right in list(equal_pairs):
        if isinstance(right, (int, float)) and not isinstance(right, bool):
            constants[left] = right
    defaults: Dict[str, object] = {}
    for name, default in params.items():
        if default is not None:
            try:
                defaults[name] = ast.literal_eval(code(default).strip())
            except (ValueError, SyntaxError):
                pass
    info.scope = Scope(assignments, constants,
                       [(a, b) for a, b in equal_pairs if isinstance(b, str)], defaults)
    return info


def _operand_key(node: cst.BaseExpression):
    if isinstance(node, cst.Integer):
        return int(node.value)
    name = dotted(node)
    return name


def _equality(test: cst.BaseExpression) -> Optional[Tuple[str, object]]:
    if (isinstance(test, cst.Comparison) and len(test.comparisons) == 1
            and isinstance(test.comparisons[0].operator, cst.Equal)):
        left, right = _operand_key(test.left), _operand_key(test.comparisons[0].comparator)
        if isinstance(left, str) and right is not None:
            return (left, right)
        if isinstance(right, str) and left is not None:
            return (right, left)
    return None


def _raise_guard_equality(stmt: cst.If, pairs: List[Tuple[str, object]]) -> None:
    """``if a != b: raise ...`` means a == b afterwards."""
    test = stmt.test
    body = statements(stmt.body)
    if not (len(body) == 1 and isinstance(body[0], cst.SimpleStatementLine)
            and isinstance(body[0].body[0], cst.Raise)):
        return
    if (isinstance(test, cst.Comparison) and len(test.comparisons) == 1
            and isinstance(test.comparisons[0].operator, cst.NotEqual)):
        left, right = _operand_key(test.left), _operand_key(test.comparisons[0].comparator)
        if isinstance(left, str) and right is not None:
            pairs.append((left, right))


def class_constants(cls: cst.ClassDef) -> Dict[str, object]:
    out: Dict[str, object] = {}
    for stmt in statements(cls.body):
        if isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                target = value = None
                if isinstance(small, cst.Assign) and len(small.targets) == 1:
                    target, value = small.targets[0].target, small.value
                elif isinstance(small, cst.AnnAssign):
                    target, value = small.target, small.value
                if isinstance(target, cst.Name) and value is not None:
                    try:
                        literal = ast.literal_eval(code(value).strip())
                    except (ValueError, SyntaxError):
                        continue
                    if isinstance(literal, (int, float)) and not isinstance(literal, bool):
                        out[target.value] = literal
    return out


# --------------------------------------------------------------------------
# Residual adds


@dataclass
class Residual:
    site: AddSite
    flow: Flow
    shortcut: cst.BaseExpression
    main: cst.BaseExpression
    bases: FrozenSet[int]  # the earlier value(s) the shortcut carries
    projections: List[Tuple[str, cst.Call]]  # self.P(...) applied on the shortcut
    main_defs: FrozenSet[int]
    chain: List[int]  # definitions on the main path after the base, in program order
    main_attrs: List[str]  # self attributes called on the main path, in order
    base_is_input: bool


def _calls_post_order(expr: cst.CSTNode) -> List[cst.Call]:
    out: List[cst.Call] = []

    def visit(node):
        for child in children(node):
            if isinstance(child, (cst.Lambda, cst.FunctionDef)):
                continue
            visit(child)
        if isinstance(node, cst.Call):
            out.append(node)
    visit(expr)
    return out


def _root(node: cst.CSTNode) -> cst.CSTNode:
    while True:
        if isinstance(node, (cst.Attribute, cst.Subscript)):
            node = node.value
        elif isinstance(node, cst.Call):
            node = node.func
        else:
            return node


def _module_call_attr(call: cst.Call, module_names: Set[str]) -> Optional[str]:
    """The submodule a call applies (``conv1`` for ``self.conv1(x)``; the
    attribute for ``self.layers[i](x)``; ``checkpoint(self.f, x)``), ``""``
    for a call of a module held in a local, or None."""
    func = call.func
    attr = self_attr(func)
    if attr:
        return attr
    root = _root(func)
    if isinstance(root, cst.Name) and root.value == "self":
        node = func
        while isinstance(node, (cst.Subscript, cst.Call, cst.Attribute)) and self_attr(node) is None:
            node = node.value if not isinstance(node, cst.Call) else node.func
        return self_attr(node) or ""
    if isinstance(root, cst.Name) and root.value in module_names:
        return ""
    if "checkpoint" in (last_name(func) or ""):  # checkpoint(self.block, x), cp.checkpoint(self._forward, x)
        for arg in call.args:
            name = self_attr(arg.value)
            if name:
                return name
    return None


class _ResidualFinder:
    def __init__(self, flow: Flow):
        self.flow = flow
        self.module_names = {d.name for d in flow.defs
                             if d.value is not None and "self." in code(d.value) and d.kind in ("loop", "assign")}

    def trace(self, expr: cst.BaseExpression, env: Env, depth: int = 0):
        """(bases, projections) for a shortcut-shaped operand, else None."""
        if isinstance(expr, cst.Name):
            defs = env.get(expr.value, frozenset())
            if not defs:
                return None
            bases: Set[int] = set()
            projections: List[Tuple[str, cst.Call]] = []
            for d in defs:
                b, p = self._trace_def(d, depth)
                bases |= b
                projections += p
            return frozenset(bases), projections
        projection = self._projection(expr)
        if projection is not None:
            attr, arg = projection
            inner = self.trace(arg, env, depth + 1)
            if inner is None:
                return None
            return inner[0], [(attr, expr)] + inner[1]
        return None

    def _projection(self, expr) -> Optional[Tuple[str, cst.Name]]:
        if not isinstance(expr, cst.Call):
            return None
        attr = self_attr(expr.func)
        args = [a for a in expr.args if a.keyword is None]
        if attr and len(args) == 1 and not args[0].star and isinstance(args[0].value, cst.Name):
            return attr, args[0].value
        return None

    def _trace_def(self, d: int, depth: int):
        definition = self.flow.defs[d]
        if depth > 8 or definition.kind == "param":
            return {d}, []
        value = definition.value
        if definition.kind == "assign" and isinstance(value, cst.Name):
            out: Set[int] = set()
            projections: List[Tuple[str, cst.Call]] = []
            for r in definition.reads:
                b, p = self._trace_def(r, depth + 1)
                out |= b
                projections += p
            return out or {d}, projections
        single_target = (isinstance(definition.stmt, cst.Assign) and len(definition.stmt.targets) == 1
                         and isinstance(definition.stmt.targets[0].target, cst.Name))
        if definition.kind == "assign" and single_target and value is not None and self._projection(value) is not None:
            attr, _ = self._projection(value)
            out = set()
            projections = [(attr, value)]
            for r in definition.reads:
                b, p = self._trace_def(r, depth + 1)
                out |= b
                projections += p
            return out or {d}, projections
        return {d}, []

    def module_calls(self, expr: Optional[cst.CSTNode]) -> List[str]:
        if expr is None:
            return []
        out = []
        for call in _calls_post_order(expr):
            attr = _module_call_attr(call, self.module_names)
            if attr is not None:
                out.append(attr)
        return out

    def classify(self, site: AddSite) -> Optional[Residual]:
        candidates = []
        for shortcut, main in ((site.right, site.left), (site.left, site.right)):
            residual = self._oriented(site, shortcut, main)
            if residual is not None:
                candidates.append(residual)
        if not candidates:
            return None
        if len(candidates) == 2:
            named = [c for c in candidates if any(SHORTCUT_NAME.search(a) for a, _ in c.projections)
                     or (isinstance(c.shortcut, cst.Name) and SHORTCUT_NAME.search(c.shortcut.value))]
            if len(named) == 1:
                return named[0]
            plain = [c for c in candidates if not c.projections]
            if len(plain) == 1:
                return plain[0]
            return None  # two symmetric branches: a sum, not a residual
        return candidates[0]

    def _oriented(self, site: AddSite, shortcut, main) -> Optional[Residual]:
        flow = self.flow
        traced = self.trace(shortcut, site.env)
        if traced is None:
            return None
        bases, projections = traced
        main_defs = flow.defs_of(main, site.env)
        if not main_defs:
            return None
        reach = flow.ancestors(main_defs)
        shortcut_value = flow.defs_of(shortcut, site.env)
        path = flow.ancestors(shortcut_value) - flow.ancestors(bases) | shortcut_value
        if projections and path & reach:
            # the "projected" value also feeds the main path (a U-Net skip, x = self.conv(x) before a
            # branch): it is the earlier value itself, not a projection of it
            bases, projections = shortcut_value, []
        if not bases & reach:
            return None
        before = flow.ancestors(bases)
        shortcut_defs = flow.defs_of(shortcut, site.env)
        if (main_defs - bases) & flow.ancestors(shortcut_defs):
            return None  # the "shortcut" is computed from the main operand
        # the main path: what after the base depends on the base (not metadata such as a resolution
        # returned next to the tokens), through at least one submodule applied to such a value
        derived = {d for d in reach - before if bases & flow.ancestors([d])}
        chain = sorted(derived)
        calls: List[str] = []
        for d in chain:
            calls += self.module_calls(flow.defs[d].value)
        if not isinstance(main, cst.Name):
            carried = derived | set(bases)
            for call in _calls_post_order(main):
                attr = _module_call_attr(call, self.module_names)
                if attr is not None and flow.defs_of(call, site.env) & carried:
                    calls.append(attr)
        if not calls:
            return None
        input_defs = flow.input_def
        base_is_input = bool(bases) and bases <= input_defs
        return Residual(site, flow, shortcut, main, bases, projections, main_defs, chain,
                        [c for c in calls if c], base_is_input)


def _residuals(flow: Flow) -> List[Residual]:
    """The residual adds of a function: those whose shortcut carries a value
    computed from the function's input (the input itself, the result of an
    earlier residual add, the output of a layer applied first)."""
    finder = _ResidualFinder(flow)
    found: List[Residual] = []
    for site in flow.adds:
        residual = finder.classify(site)
        if residual is not None and flow.input_def & flow.ancestors(residual.bases):
            found.append(residual)
    return found


# --------------------------------------------------------------------------
# Blocks


@dataclass
class Block:
    package: str
    relpath: str  # relative to the folder holding the package (timm/models/resnet.py)
    qualname: str
    cls: cst.ClassDef
    top: cst.CSTNode  # the module-level statement containing the class
    module: cst.Module
    index: ModuleIndex
    init: Optional[InitInfo]
    residuals: List[Residual]
    functions: Dict[str, cst.FunctionDef]  # the class's methods
    residual_function: str  # "forward", "forward.<nested>", or a method name
    bases: List[str]
    line: int

    @property
    def key(self) -> str:
        return f"{self.relpath}::{self.qualname}"


def _is_module_class(bases: List[str], class_bases: Dict[str, List[List[str]]],
                     seen: Optional[Set[str]] = None) -> bool:
    """An nn.Module: a known module base, directly or through the package's
    classes (``class_bases``: name -> base lists); a class with a ``forward``
    whose bases cannot be resolved counts too, except autograd Functions."""
    seen = set() if seen is None else seen
    for base in bases:
        short = base.split(".")[-1]
        if short in MODULE_BASES or base in ("nn.Module", "torch.nn.Module"):
            return True
        if short.endswith("Function"):
            return False
        if short in class_bases and short not in seen:
            seen.add(short)
            if not all(_is_module_class(b, class_bases, seen) for b in class_bases[short]):
                return False
    return True


def _residual_functions(cls: cst.ClassDef) -> List[Tuple[str, cst.FunctionDef, bool]]:
    """(label, function, is_method) for forward, the functions nested in it
    and the methods it calls (one level)."""
    methods = {s.name.value: s for s in statements(cls.body) if isinstance(s, cst.FunctionDef)}
    forward = methods.get("forward")
    if forward is None:
        return []
    out = [("forward", forward, True)]
    for stmt in walk(forward.body):
        if isinstance(stmt, cst.FunctionDef):
            out.append((f"forward.{stmt.name.value}", stmt, False))
    called = set()
    for node in walk(forward.body):
        if isinstance(node, cst.Attribute):
            name = self_attr(node)
            if name and name in methods and name != "forward":
                called.add(name)
    for name in sorted(called):
        out.append((name, methods[name], True))
        for stmt in walk(methods[name].body):
            if isinstance(stmt, cst.FunctionDef) and stmt is not methods[name]:
                out.append((f"{name}.{stmt.name.value}", stmt, False))
    return out


def find_blocks(module: cst.Module, package: str, relpath: str, class_bases: Dict[str, List[List[str]]],
                lines: Dict[str, int]) -> List[Block]:
    """Every residual block of one parsed module."""
    dotted_name = relpath[:-3].replace("/", ".")
    if dotted_name.endswith(".__init__"):
        dotted_name = dotted_name[: -len(".__init__")]
    index = index_module(module, package, dotted_name)
    blocks: List[Block] = []
    for top in module.body:
        for cls, qualname in _classes(top, ""):
            bases = [dotted(a.value) or code(a.value) for a in cls.bases if a.keyword is None]
            methods = {s.name.value: s for s in statements(cls.body) if isinstance(s, cst.FunctionDef)}
            if "forward" not in methods:
                continue
            if not _is_module_class(bases, class_bases):
                continue
            residuals: List[Residual] = []
            where = ""
            for label, function, is_method in _residual_functions(cls):
                try:
                    flow = Flow(function, skip_first=is_method)
                except RecursionError:
                    continue
                if flow.input_name is None:
                    continue
                found = _residuals(flow)
                if found and not residuals:
                    residuals, where = found, label
            if not residuals:
                continue
            constants = class_constants(cls)
            blocks.append(Block(package, relpath, qualname, cls, top, module, index,
                                analyse_init(cls, constants), residuals, methods, where, bases,
                                lines.get(qualname, 0)))
    return blocks


def _classes(node: cst.CSTNode, prefix: str) -> Iterator[Tuple[cst.ClassDef, str]]:
    if isinstance(node, cst.ClassDef):
        qualname = f"{prefix}{node.name.value}"
        yield node, qualname
        for stmt in statements(node.body):
            yield from _classes(stmt, qualname + ".")
    elif isinstance(node, (cst.If, cst.Try, cst.With)):
        for stmt in statements(node.body):
            yield from _classes(stmt, prefix)
        if isinstance(node, cst.If) and node.orelse is not None:
            inner = node.orelse
            yield from _classes(inner if isinstance(inner, cst.If) else cst.If(
                test=cst.Name("True"), body=inner.body), prefix)
        if isinstance(node, cst.Try):
            for handler in node.handlers:
                for stmt in statements(handler.body):
                    yield from _classes(stmt, prefix)


def class_lines(text: str) -> Dict[str, int]:
    """qualname -> line of each class, from the (fast) ast parser."""
    out: Dict[str, int] = {}

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                out.setdefault(prefix + child.name, child.lineno)
                visit(child, prefix + child.name + ".")
            elif isinstance(child, (ast.If, ast.Try, ast.With)):
                visit(child, prefix)
    visit(ast.parse(text), "")
    return out


def quick_candidates(text: str) -> bool:
    """Cheap text test before parsing: a ``forward`` and an addition."""
    return "def forward" in text and ("+" in text or ".add" in text)
