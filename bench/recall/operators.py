"""The mutation operators: one per catalog rule, each planting one bug in
a residual block.

Every operator looks at a :class:`blocks.Block` and returns the places it
could plant its bug (:class:`Candidate`: the expected code, a description,
the edits); the runner picks some, applies them and keeps those that
compile and change the text.  Operators only propose mutants that really
change what the block computes (the filters are in each docstring), and
they never need resnetlint.

=====  ======================  ==============================================
code   operator                what it does
=====  ======================  ==============================================
RL101  stale-input             a main-path layer fed the block input (or the
                               saved identity) instead of the previous
                               layer's output, which becomes dead
RL102  residual-overwritten    the main-path result overwritten by the
                               shortcut before the add (``out =
                               self.downsample(x)``, ``out = identity``),
                               or ``x + x``
RL103  shortcut-bypassed       the projection's result unused: ``identity =
                               self.downsample(x)`` -> ``identity = x``
RL104  unused-submodule        a parametered layer's only call removed from
                               forward (``out = self.bn2(out)`` dropped)
RL201  channel-mismatch        a conv/norm input width replaced by another
                               width of the block that can differ
RL202  missing-projection      the projection removed: its construction (and
                               the guard around it) and its use in forward,
                               in a block whose width can change
RL203  stride-mismatch         the stride removed from the main path, or from
                               the shortcut, so the two paths change
                               resolution differently
RL204  padding-shape-change    ``padding=1`` (``k // 2``, ``dilation``) ->
                               ``padding=0`` on a stride-1 main-path conv
                               with a kernel > 1
RL205  groups-mismatch         a channel-valued ``groups`` replaced by a
                               width that does not divide the conv's
                               channels (another width of the block, or
                               ``groups + 1``)
RL301  bias-before-norm        ``bias=False`` -> ``bias=True`` on a torch
                               conv feeding a BatchNorm/InstanceNorm
RL302  inplace-identity        an in-place op on the saved identity or the
                               input: ``identity += out``, ``x += f(x)``,
                               ``self.conv1(x.relu_())`` with ``x`` also the
                               identity
=====  ======================  ==============================================
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple

import libcst as cst

from . import layers as L
from .blocks import WIDTH_NAME, Block, CallSite, Residual, class_constants
from .cstutil import code, last_name, self_attr, statements, walk
from .flow import Flow
from .mutate import SourceFile, expression
from .symbolic import can_differ, divides_always, is_constant


@dataclass
class Candidate:
    operator: str
    code: str
    description: str
    edits: Dict[int, object]
    layer: Optional[str] = None  # the self attribute the bug is about
    site: Optional[cst.Call] = None  # the layer construction involved (for the cause analysis)
    variant: str = ""


OPERATORS: List[Tuple[str, str]] = [
    ("RL101", "stale-input"),
    ("RL102", "residual-overwritten"),
    ("RL103", "shortcut-bypassed"),
    ("RL104", "unused-submodule"),
    ("RL201", "channel-mismatch"),
    ("RL202", "missing-projection"),
    ("RL203", "stride-mismatch"),
    ("RL204", "padding-shape-change"),
    ("RL205", "groups-mismatch"),
    ("RL301", "bias-before-norm"),
    ("RL302", "inplace-identity"),
]
NAMES = dict(OPERATORS)


# --------------------------------------------------------------------------
# Shared helpers


def _is_expr_statement_line(line: Optional[cst.SimpleStatementLine]) -> bool:
    return isinstance(line, cst.SimpleStatementLine) and len(line.body) == 1


def _main_attrs(block: Block) -> Set[str]:
    out: Set[str] = set()
    for residual in block.residuals:
        out.update(residual.main_attrs)
    return out - _projection_attrs(block)


def _projection_attrs(block: Block) -> Set[str]:
    return {attr for residual in block.residuals for attr, _ in residual.projections}


NOT_A_WIDTH = re.compile(r"^(base_width|width_per_group|width_mult\w*|\w*_ratio|\w*_factor|\w*dims?_head\w*|"
                         r"\w*_list|\w*_lists|\w*_per_\w*|\w*_tuple|num_\w*s|\w*spatial\w*|n_?dims?|"
                         r"ndims?|num_dims|conv_dims?|img_dims?|\w*_dims)$")
NUMERIC_CALL = re.compile(r"^(int|round|max|min|abs|math\.ceil|math\.floor|ceil|floor|\w*divisible\w*|"
                          r"\w*round_channels|\w*round_width\w*)$")


def _numeric(text: str) -> bool:
    """Whether an expression is arithmetic of names and numbers (calls only
    to int/round/make_divisible-like helpers): a width, not a layer."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if not NUMERIC_CALL.match(ast.unparse(node.func)):
                return False
        elif isinstance(node, (ast.List, ast.Dict, ast.Set, ast.Lambda, ast.ListComp, ast.DictComp, ast.Subscript,
                               ast.GeneratorExp, ast.JoinedStr)):
            return False
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            return False
        elif isinstance(node, (ast.Compare, ast.BoolOp)) or (isinstance(node, ast.UnaryOp)
                                                             and isinstance(node.op, ast.Not)):
            return False  # a flag (apply_residual = in_ch == out_ch), not a width
    return True


def _width_names(block: Block) -> Set[str]:
    """The width vocabulary of ``__init__``: width-named parameters, and
    locals / ``self.x`` assigned an arithmetic expression of them
    (``width = int(planes * (base_width / 64.)) * groups``)."""
    init = block.init
    if init is None:
        return set()
    names = {p for p in init.params if WIDTH_NAME.search(p) and not NOT_A_WIDTH.match(p)}
    assigned = dict((k, code(v[0])) for k, v in init.local_values.items() if len(v) == 1)
    assigned.update({f"self.{k}": code(v[0][0]) for k, v in init.attr_values.items() if len(v) == 1})
    changed = True
    while changed:
        changed = False
        for name, text in assigned.items():
            leaf = name.split(".")[-1]
            if name in names or NOT_A_WIDTH.match(leaf) or not _numeric(text):
                continue
            tokens = set(re.findall(r"(?:self\.)?[A-Za-z_]\w*", text))
            if tokens & names or (WIDTH_NAME.search(leaf) and tokens & set(init.params)):
                names.add(name)
                changed = True
    return names


def _input_width(block: Block) -> Optional[str]:
    """The first width-named constructor parameter: what the block is fed."""
    if block.init is None:
        return None
    for name in block.init.params:
        if WIDTH_NAME.search(name) and not re.search(r"out|hidden|mid", name, re.IGNORECASE):
            return name
    return None


def _width_expression(block: Block, text: str, widths: Set[str]) -> bool:
    tokens = set(re.findall(r"(?:self\.)?[A-Za-z_]\w*", text))
    return bool(tokens & widths)


def _defined_before(block: Block, text: str, order: int) -> bool:
    """Whether every name of ``text`` exists at the statement ``order`` of
    ``__init__``: a parameter, a class constant, or assigned earlier."""
    init = block.init
    constants = _class_constant_names(block)
    for token in re.findall(r"(?:self\.)?[A-Za-z_]\w*", text):
        if token in init.params or token in ("self", "int", "round", "max", "min", "math", "float", "ceil",
                                             "floor", "make_divisible", "_make_divisible"):
            continue
        if token.startswith("self.") and token[5:] in constants:
            continue
        if init.defined_at.get(token, order) < order:
            continue
        return False
    return True


def _class_constant_names(block: Block) -> Set[str]:
    return set(class_constants(block.cls))


def _replace_value(arg: cst.Arg, new_text: str) -> Dict[int, object]:
    return {id(arg.value): expression(new_text)}


def _remove_arg(call: cst.Call, arg: cst.Arg) -> Dict[int, object]:
    """Remove one argument, keeping the commas valid."""
    index = list(call.args).index(arg)

    def rewrite(updated: cst.Call) -> cst.Call:
        args = list(updated.args)
        del args[index]
        if args and index == len(args):  # removed the last one: the new last keeps its own trailing comma
            last = args[-1]
            if arg.comma is cst.MaybeSentinel.DEFAULT or not isinstance(arg.comma, cst.Comma):
                args[-1] = last.with_changes(comma=cst.MaybeSentinel.DEFAULT)
        return updated.with_changes(args=args)
    return {id(call): rewrite}


def _residual_flows(block: Block) -> List[Flow]:
    seen, out = set(), []
    for residual in block.residuals:
        if id(residual.flow) not in seen:
            seen.add(id(residual.flow))
            out.append(residual.flow)
    return out


def _module_call_attr(call: cst.Call) -> Optional[str]:
    return self_attr(call.func)


def _sites(block: Block) -> List[CallSite]:
    return block.init.calls if block.init is not None else []


def _site_on_main_path(block: Block, site: CallSite) -> bool:
    return site.attr is not None and site.attr in _main_attrs(block)


def _site_on_shortcut(block: Block, site: CallSite) -> bool:
    return site.attr is not None and site.attr in _projection_attrs(block)


MAINTENANCE = re.compile(r"init|reset|fuse|reparam|deploy|switch|extra_repr|load|state_dict|freeze|train$|"
                         r"^eval$|weight|zero|prune|convert|export", re.IGNORECASE)


def _method_references(block: Block, attr: str) -> int:
    """How often ``self.<attr>`` (or the string ``'attr'``) appears in the
    methods that may use it at run time: not ``__init__`` and what it calls,
    not weight initialisation / re-parameterisation / deploy switches."""
    init_functions = {id(f) for f in (block.init.functions if block.init else [])}
    count = 0
    for name, method in block.functions.items():
        if id(method) in init_functions or (MAINTENANCE.search(name) and name != "forward"):
            continue
        for node in walk(method):
            if self_attr(node) == attr:
                count += 1
            elif isinstance(node, cst.SimpleString) and attr in node.value:
                count += 1  # getattr(self, 'attr'), hasattr(...)
    return count


# --------------------------------------------------------------------------
# RL101 stale input


def stale_input(block: Block, source: SourceFile) -> List[Candidate]:
    """A main-path layer call whose first argument is the previous layer's
    output gets the block input (or the saved identity) instead.  Kept only
    where that previous output is used by nothing else, so it becomes dead
    (the RL101 pattern), and the stale value is still in a variable there."""
    out: List[Candidate] = []
    projections = _projection_attrs(block)
    for residual in block.residuals:
        flow = residual.flow
        chain = set(residual.chain)
        for d in residual.chain:
            definition = flow.defs[d]
            if definition.value is None or definition.stmt is None:
                continue
            env = flow.env_at.get(id(definition.stmt))
            if env is None:
                continue
            stale_names = [name for name, defs in env.items()
                           if defs and all(_alias_roots(flow, x) <= residual.bases for x in defs)]
            if not stale_names:
                continue
            for node in walk(definition.value):
                if not isinstance(node, cst.Call):
                    continue
                attr = _module_call_attr(node)
                if attr is None or attr in projections or not node.args or node.args[0].keyword or node.args[0].star:
                    continue
                first = node.args[0].value
                if not isinstance(first, cst.Name):
                    continue
                previous = env.get(first.value, frozenset())
                if not previous or not previous <= chain:
                    continue
                if any(flow.defs[p].value is None or not any(isinstance(n, cst.Call) for n in walk(
                        flow.defs[p].value)) for p in previous):
                    continue
                # the previous output must have no other reader: it becomes dead
                readers = {id(use.name) for p in previous for use in flow.defs[p].uses}
                if readers != {id(first)}:
                    continue
                choices = [n for n in stale_names if n != first.value]
                if not choices:
                    continue
                stale = flow.input_name if flow.input_name in choices else sorted(choices)[0]
                out.append(Candidate(
                    "stale-input", "RL101",
                    f"`self.{attr}({first.value})` -> `self.{attr}({stale})`: the previous output is dead",
                    {id(first): cst.Name(stale)}, layer=attr, site=_site_of(block, attr)))
    return out


def _alias_roots(flow: Flow, d: int, depth: int = 0) -> Set[int]:
    """The definitions ``d`` is a plain alias of (``identity = x``)."""
    definition = flow.defs[d]
    if depth < 8 and definition.kind == "assign" and isinstance(definition.value, cst.Name) and definition.reads:
        out: Set[int] = set()
        for r in definition.reads:
            out |= _alias_roots(flow, r, depth + 1)
        return out
    return {d}


def _site_of(block: Block, attr: Optional[str]) -> Optional[cst.Call]:
    if attr is None:
        return None
    site = L.site_for_attr(block, attr)
    return site.call if site is not None else None


# --------------------------------------------------------------------------
# RL102 residual overwritten


def residual_overwritten(block: Block, source: SourceFile) -> List[Candidate]:
    """The main-path result is lost before the add: the projection's result
    assigned to the main-path variable (``out = self.downsample(x)`` after
    the main path), ``out = identity`` inserted before ``out += identity``,
    or the main operand replaced by the shortcut (``x + x``)."""
    out: List[Candidate] = []
    for residual in block.residuals:
        flow, site = residual.flow, residual.site
        main, shortcut = residual.main, residual.shortcut
        last_main = max(residual.main_defs) if residual.main_defs else -1
        if isinstance(main, cst.Name) and isinstance(shortcut, cst.Name):
            for d in sorted(flow.defs_of(shortcut, site.env)):
                definition = flow.defs[d]
                stmt = definition.stmt
                if (d > last_main and isinstance(stmt, cst.Assign) and len(stmt.targets) == 1
                        and isinstance(stmt.targets[0].target, cst.Name)
                        and isinstance(definition.value, cst.Call) and self_attr(definition.value.func)):
                    attr = self_attr(definition.value.func)
                    out.append(Candidate(
                        "residual-overwritten", "RL102",
                        f"`{shortcut.value} = self.{attr}(...)` -> `{main.value} = self.{attr}(...)`: "
                        f"the main path is overwritten by the projection",
                        {id(stmt.targets[0].target): cst.Name(main.value)}, layer=attr,
                        site=_site_of(block, attr), variant="projection-into-main"))
        if isinstance(main, cst.Name) and _is_expr_statement_line(site.line):
            line = site.line
            new_line = source.statement(f"{main.value} = {code(shortcut).strip()}\n")
            out.append(Candidate(
                "residual-overwritten", "RL102",
                f"`{main.value} = {code(shortcut).strip()}` inserted before the add",
                {id(line): cst.FlattenSentinel([new_line.with_changes(leading_lines=line.leading_lines),
                                                line.with_changes(leading_lines=())])},
                variant="overwrite-before-add"))
        elif not isinstance(main, cst.Name) and site.kind in ("binop", "torch.add"):
            out.append(Candidate(
                "residual-overwritten", "RL102",
                f"`{code(shortcut).strip()} + {code(main).strip()[:40]}` -> `{code(shortcut).strip()} + "
                f"{code(shortcut).strip()}`",
                {id(main): shortcut.deep_clone()}, variant="x-plus-x"))
    return out


# --------------------------------------------------------------------------
# RL103 shortcut bypassed


def _real_projection(block: Block, attr: str) -> bool:
    """``self.<attr>`` can hold a module with parameters (not only
    ``nn.Identity()``/None/dropout)."""
    return not L.parameter_free(block, attr)


def shortcut_bypassed(block: Block, source: SourceFile) -> List[Candidate]:
    """Every projection call on the shortcut replaced by its argument, so the
    add uses the raw input although the projection exists and is still
    built: ``identity = self.downsample(x)`` -> ``identity = x``,
    ``out + self.shortcut(x)`` -> ``out + x``; a chain (``self.conv3``
    then ``self.norm3``) is bypassed as a whole."""
    out: List[Candidate] = []
    seen: Set[Tuple[int, ...]] = set()
    for residual in block.residuals:
        projections = list({id(call): (attr, call) for attr, call in residual.projections
                            if _real_projection(block, attr)}.values())
        key = tuple(sorted(id(call) for _, call in projections))
        if not projections or key in seen:
            continue
        seen.add(key)
        edits: Dict[int, object] = {}
        texts = []
        for attr, call in projections:
            argument = [a for a in call.args if a.keyword is None][0].value
            edits[id(call)] = argument.deep_clone()
            texts.append(f"`self.{attr}({code(argument).strip()})` -> `{code(argument).strip()}`")
        attr = projections[0][0]
        out.append(Candidate("shortcut-bypassed", "RL103", ", ".join(texts) + ": the projection is unused",
                             edits, layer=attr, site=_site_of(block, attr)))
    return out


# --------------------------------------------------------------------------
# RL104 unused submodule


def unused_submodule(block: Block, source: SourceFile) -> List[Candidate]:
    """The only call of a parametered main-path layer is removed from
    forward: ``out = self.bn2(out)`` dropped, ``out = self.conv1(x)`` ->
    ``out = x``, ``self.bn(self.conv(x))`` -> ``self.conv(x)``.  Layers
    without parameters (activations, dropout, pooling, identity) are not
    used: removing them loses nothing the rule could see."""
    out: List[Candidate] = []
    main = _main_attrs(block)
    for flow in _residual_flows(block):
        for definition in flow.defs:
            value, stmt = definition.value, definition.stmt
            if value is None or not isinstance(stmt, (cst.Assign, cst.AugAssign)):
                continue
            for node in walk(value):
                if not isinstance(node, cst.Call):
                    continue
                attr = _module_call_attr(node)
                if attr is None or attr not in main or L.parameter_free(block, attr):
                    continue
                if _method_references(block, attr) != 1:
                    continue
                positional = [a for a in node.args if a.keyword is None and not a.star]
                if len(positional) != 1 or len(node.args) != 1:
                    continue
                argument = positional[0].value
                if (node is value and isinstance(stmt, cst.Assign) and isinstance(argument, cst.Name)
                        and len(stmt.targets) == 1 and isinstance(stmt.targets[0].target, cst.Name)
                        and stmt.targets[0].target.value == argument.value
                        and _is_expr_statement_line(definition.line)):
                    edits = {id(definition.line): cst.RemovalSentinel.REMOVE}
                    text = f"`{argument.value} = self.{attr}({argument.value})` removed"
                else:
                    edits = {id(node): argument.deep_clone()}
                    text = f"`self.{attr}({code(argument).strip()})` -> `{code(argument).strip()}`"
                out.append(Candidate("unused-submodule", "RL104", text + f": `self.{attr}` is never used",
                                     edits, layer=attr, site=_site_of(block, attr)))
    return out


# --------------------------------------------------------------------------
# RL201 channel mismatch


def channel_mismatch(block: Block, source: SourceFile) -> List[Candidate]:
    """The input width of a conv or norm replaced by another width
    expression of the block (``planes`` -> ``inplanes``, ``mid`` ->
    ``in_chs``, ``planes * self.expansion`` -> ``planes``).  Not on a layer
    fed the block input (its width is the input width); the new expression
    must be defined there and able to differ from the old one
    (:func:`symbolic.can_differ`; ``assert`` equalities and class constants
    are taken into account)."""
    init = block.init
    if init is None:
        return []
    widths = _width_names(block)
    input_width = _input_width(block)
    vocabulary = sorted(widths)
    for site in _sites(block):  # width expressions the block writes in its layers
        sig = L.signature(block, site.call)
        if sig is None:
            continue
        for arg in (L.arg_in(site.call, sig), L.arg_out(site.call, sig) if sig.out_index is not None else None):
            if arg is not None:
                text = code(arg.value).strip()
                if _width_expression(block, text, widths) and text not in vocabulary and "\n" not in text:
                    vocabulary.append(text)
    out: List[Candidate] = []
    for site in _sites(block):
        sig = L.signature(block, site.call)
        kind = L.layer_kind(block, site.call)
        if sig is None or kind not in ("conv", "norm", "module"):
            continue
        arg = L.arg_in(site.call, sig)
        if arg is None or arg.star:
            continue
        old = code(arg.value).strip()
        if old == input_width or not _width_expression(block, old, widths):
            continue
        choices: List[str] = []
        for new in vocabulary:
            if new == old or not _defined_before(block, new, site.stmt_order):
                continue
            if can_differ(old, new, init.scope) and all(can_differ(new, c, init.scope) for c in choices):
                choices.append(new)  # each choice a different value: not `in_channels` and `self.in_channels`
        if not choices:
            continue
        preferred = [c for c in choices if c == input_width] or choices
        for new in preferred[:1] + [c for c in choices if c not in preferred[:1]][:2]:
            out.append(Candidate(
                "channel-mismatch", "RL201",
                f"`{last_name(site.call.func)}({old}, ...)` -> `{last_name(site.call.func)}({new}, ...)`",
                _replace_value(arg, new), layer=site.attr, site=site.call, variant=kind))
    return out


# --------------------------------------------------------------------------
# RL202 missing projection


def _widths_can_change(block: Block) -> bool:
    init = block.init
    params = [p for p in init.params if WIDTH_NAME.search(p)]
    for i, a in enumerate(params):
        for b in params[i + 1:]:
            if can_differ(a, b, init.scope):
                return True
    return False


def missing_projection(block: Block, source: SourceFile) -> List[Candidate]:
    """The projection shortcut removed in a block whose width can change:
    its construction (and an ``if`` that only builds it) deleted from
    ``__init__``, the ``if self.<proj> ...`` statements of forward dropped
    (their ``else`` kept) and its calls replaced by their argument, so the
    add uses the raw input.  Skipped when other methods use the projection.
    A caller-supplied projection (``self.downsample = downsample``) counts:
    the block then ignores what its caller passes."""
    init = block.init
    if init is None or not _widths_can_change(block):
        return []
    out: List[Candidate] = []
    seen: Set[Tuple[str, ...]] = set()
    for residual in block.residuals:
        attrs = tuple(sorted({attr for attr, _ in residual.projections}))
        if not attrs or attrs in seen:
            continue
        seen.add(attrs)
        if any(attr not in init.attr_values for attr in attrs) or not any(_real_projection(block, a) for a in attrs):
            continue
        edits: Dict[int, object] = {}
        for attr in attrs:
            removal = _remove_attribute(block, attr)
            if removal is None:
                edits = {}
                break
            edits.update(removal)
        if not edits:
            continue
        caller = any(isinstance(v, cst.Name) and v.value in init.params
                     for attr in attrs for v, _, _ in init.attr_values[attr])
        names = ", ".join(f"`self.{a}`" for a in attrs)
        out.append(Candidate(
            "missing-projection", "RL202",
            f"projection {names} removed (construction{' from the caller' if caller else ''}, guard and use)",
            edits, layer=attrs[0], site=_site_of(block, attrs[0]), variant="caller" if caller else "own"))
    return out


def _remove_attribute(block: Block, attr: str) -> Optional[Dict[int, object]]:
    init = block.init
    edits: Dict[int, object] = {}
    lines = init.statements_by_attr.get(attr, [])
    if any(len(line.body) != 1 for line in lines):
        return None
    line_ids = {id(line) for line in lines}
    for function in init.functions:
        for node in walk(function):
            if isinstance(node, cst.If) and _only_lines(node, line_ids):
                edits[id(node)] = cst.RemovalSentinel.REMOVE
    covered = {id(n) for key in list(edits) for n in _nodes_under(block, key)}
    for line in lines:
        if id(line) not in covered:
            edits[id(line)] = cst.RemovalSentinel.REMOVE
    init_ids = {id(f) for f in init.functions}
    remaining = 0
    for method in block.functions.values():
        if id(method) in init_ids:
            continue
        handled: Set[int] = set()
        for node in walk(method):
            if id(node) in handled:
                continue
            if isinstance(node, cst.If) and any(self_attr(n) == attr for n in walk(node.test)):
                if isinstance(node.orelse, cst.Else):
                    body = list(statements(node.orelse.body))
                    edits[id(node)] = cst.FlattenSentinel(body) if body else cst.RemovalSentinel.REMOVE
                elif node.orelse is None:
                    edits[id(node)] = cst.RemovalSentinel.REMOVE
                else:
                    return None
                handled.update(id(n) for n in walk(node))
            elif isinstance(node, cst.IfExp) and any(self_attr(n) == attr for n in walk(node.test)):
                branch = node.orelse if any(self_attr(n) == attr for n in walk(node.body)) else node.body
                if any(self_attr(n) == attr for n in walk(branch)):
                    return None
                edits[id(node)] = branch.deep_clone()
                handled.update(id(n) for n in walk(node))
            elif isinstance(node, cst.Call) and self_attr(node.func) == attr:
                args = [a for a in node.args if a.keyword is None and not a.star]
                if len(args) != 1:
                    return None
                edits[id(node)] = args[0].value.deep_clone()
                handled.update(id(n) for n in walk(node))
            elif self_attr(node) == attr:
                remaining += 1
    if remaining:
        return None
    return edits


def _only_lines(node: cst.If, line_ids: Set[int]) -> bool:
    """Whether an ``if`` (with its ``else``) only holds the given lines."""
    bodies = [statements(node.body)]
    orelse = node.orelse
    while orelse is not None:
        if isinstance(orelse, cst.If):
            bodies.append(statements(orelse.body))
            orelse = orelse.orelse
        else:
            bodies.append(statements(orelse.body))
            orelse = None
    return all(bodies) and all(id(s) in line_ids for body in bodies for s in body)


def _nodes_under(block: Block, node_id: int):
    for node in walk(block.cls):
        if id(node) == node_id:
            return list(walk(node))
    return []


# --------------------------------------------------------------------------
# RL203 stride mismatch


def _stride_names(text: str) -> Set[str]:
    return {t for t in re.findall(r"[A-Za-z_]\w*", text) if "stride" in t.lower() or t in ("s",)}


def stride_mismatch(block: Block, source: SourceFile) -> List[Candidate]:
    """The stride removed from one path only.  Main path: a layer (a conv, or
    any submodule built with ``stride=``: ``ResBlock(..., stride=stride)``)
    of the main path loses its ``stride=`` (a positional stride becomes 1) while
    the shortcut still strides -- a projection whose construction (or
    guard) uses the same stride, or a projection the caller builds with it
    (``downsample=None``).  Shortcut: the projection loses its stride while
    the main path keeps it.  The stride must not be 1 by construction."""
    init = block.init
    if init is None:
        return []
    projections = _projection_attrs(block)
    shortcut_text = ""
    caller_projection = False
    for attr in projections:
        for value, stmt, ifs in init.attr_values.get(attr, []):
            shortcut_text += code(value) + " ".join(code(i.test) for i in ifs if isinstance(i, cst.If))
            if isinstance(value, cst.Name) and value.value in init.params:
                caller_projection = True
    shortcut_strides = _stride_names(shortcut_text)
    main: List[Tuple[CallSite, cst.Arg, str]] = []
    shortcut: List[Tuple[CallSite, cst.Arg, str]] = []
    for site in _sites(block):
        sig = L.signature(block, site.call)
        conv = sig is not None and L.layer_kind(block, site.call) == "conv"
        if conv:
            arg = L.arg_named(site.call, sig, "stride")
            conv = not sig.stride_required  # a helper's required stride is set to 1, not removed
        elif L.layer_kind(block, site.call) not in ("free", "norm"):
            # any other submodule built with stride=... (pytorchcv's ResBlock(..., stride=stride))
            arg = L.keyword(site.call, "stride")
        else:
            continue
        if arg is None or arg.star:
            continue
        text = code(arg.value).strip()
        if not _stride_names(text) or is_constant(text, 1, init.scope) is not False:
            continue
        if _site_on_main_path(block, site):
            main.append((site, arg, text, conv))
        elif _site_on_shortcut(block, site):
            shortcut.append((site, arg, text, conv))
    main_strides = {name for _, _, text, _ in main for name in _stride_names(text)}
    out: List[Candidate] = []
    for site, arg, text, conv in main:
        if caller_projection or _stride_names(text) & shortcut_strides:
            out.append(Candidate(
                "stride-mismatch", "RL203",
                f"`stride={text}` {_dropped(conv)} main-path `{last_name(site.call.func)}` (self.{site.attr})",
                _drop_argument(site.call, arg, conv), layer=site.attr, site=site.call, variant="main"))
    for site, arg, text, conv in shortcut:
        if _stride_names(text) & main_strides:
            out.append(Candidate(
                "stride-mismatch", "RL203",
                f"`stride={text}` {_dropped(conv)} the shortcut `{last_name(site.call.func)}` (self.{site.attr})",
                _drop_argument(site.call, arg, conv), layer=site.attr, site=site.call, variant="shortcut"))
    return out


def _dropped(conv: bool) -> str:
    return "removed from" if conv else "set to 1 on"


def _drop_argument(call: cst.Call, arg: cst.Arg, conv: bool = True) -> Dict[int, object]:
    """A conv's stride removed (its default is 1); any other module's set to
    1, which may be a required parameter (pytorchcv's ResBottleneck(...,
    stride)): removing it would plant a TypeError, not a stride mismatch."""
    if arg.keyword is not None and conv:
        return _remove_arg(call, arg)
    return {id(arg.value): cst.Integer("1")}


# --------------------------------------------------------------------------
# RL204 padding


def padding_shape_change(block: Block, source: SourceFile) -> List[Candidate]:
    """``padding=<p>`` -> ``padding=0`` on a main-path conv with a kernel
    larger than 1 and no stride (or a literal stride of 1), where ``p`` is
    not 0 (``1``, ``k // 2``, ``dilation``, ``'same'``)."""
    init = block.init
    if init is None:
        return []
    out: List[Candidate] = []
    for site in _sites(block):
        sig = L.signature(block, site.call)
        if sig is None or L.layer_kind(block, site.call) != "conv" or not _site_on_main_path(block, site):
            continue
        if L.kernel_bigger_than_one(block, site.call, sig) is not True:
            continue
        stride = L.arg_named(site.call, sig, "stride")
        if stride is not None and L.int_literal(stride.value) != 1:
            continue
        padding = L.arg_named(site.call, sig, "padding")
        if padding is None or padding.star:
            continue
        text = code(padding.value).strip()
        if text in ("0", "(0, 0)", "0,") or is_constant(text, 0, init.scope) is True:
            continue
        out.append(Candidate(
            "padding-shape-change", "RL204",
            f"`padding={text}` -> `padding=0` on `{last_name(site.call.func)}` (self.{site.attr})",
            _replace_value(padding, "0"), layer=site.attr, site=site.call))
    out += _helper_padding(block)
    return out


def _helper_padding(block: Block) -> List[Candidate]:
    """The same through a known conv-norm-act helper whose padding keeps the
    size by default (``conv3x3_block``, ``Conv2dNormActivation``,
    ``ConvNormAct``): ``padding=0`` given (or replacing an explicit one)."""
    out: List[Candidate] = []
    for site in _sites(block):
        helper = L.known_helper(block, site.call)
        if helper is None or not _site_on_main_path(block, site) or L.has_star_kwargs(site.call):
            continue
        kernel = helper.kernel
        if kernel is None:
            arg = L.helper_argument(site.call, helper, "kernel")
            kernel = helper.kernel_default if arg is None else L.int_literal(arg.value)
            if kernel is None and arg is not None and isinstance(arg.value, cst.Name) and block.init:
                kernel = L.int_literal(block.init.params.get(arg.value.value))
        if not kernel or kernel <= 1:
            continue
        stride = L.helper_argument(site.call, helper, "stride")
        if stride is not None and L.int_literal(stride.value) != 1:
            continue
        padding = L.helper_argument(site.call, helper, "padding")
        name = last_name(site.call.func)
        if padding is None:
            edits = _add_keyword(site.call, "padding", "0")
            text = f"`padding=0` given to `{name}` (self.{site.attr}; its default keeps the size)"
        elif L.int_literal(padding.value) == 0:
            continue
        else:
            edits = _replace_value(padding, "0")
            text = f"`padding={code(padding.value).strip()}` -> `padding=0` on `{name}` (self.{site.attr})"
        out.append(Candidate("padding-shape-change", "RL204", text, edits, layer=site.attr, site=site.call,
                             variant="helper"))
    return out


def _add_keyword(call: cst.Call, name: str, value: str) -> Dict[int, object]:
    def rewrite(updated: cst.Call) -> cst.Call:
        new = cst.Arg(keyword=cst.Name(name), value=expression(value),
                      equal=cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""),
                                            whitespace_after=cst.SimpleWhitespace("")))
        args = list(updated.args)
        if args and not isinstance(args[-1].comma, cst.Comma):
            args[-1] = args[-1].with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
        return updated.with_changes(args=args + [new])
    return {id(call): rewrite}


# --------------------------------------------------------------------------
# RL205 groups


def groups_mismatch(block: Block, source: SourceFile) -> List[Candidate]:
    """A channel-valued ``groups`` (``groups=hidden``, ``groups=mid_chs``)
    replaced by another width of the block that does not always divide the
    conv's in and out channels, or else by ``groups + 1``.  The original
    must divide both (checked the same way), so the mutant is the bug."""
    init = block.init
    if init is None:
        return []
    widths = _width_names(block)
    out: List[Candidate] = []
    for site in _sites(block):
        sig = L.signature(block, site.call)
        if sig is None or L.layer_kind(block, site.call) != "conv":
            continue
        groups = L.arg_named(site.call, sig, "groups")
        in_arg, out_arg = L.arg_in(site.call, sig), L.arg_out(site.call, sig)
        if groups is None or in_arg is None or out_arg is None or groups.star:
            continue
        old = code(groups.value).strip()
        channels = [code(in_arg.value).strip(), code(out_arg.value).strip()]
        if not _width_expression(block, old, widths) or divides_always(old, channels, init.scope) is not True:
            continue
        choices = [w for w in sorted(widths) if w != old and _defined_before(block, w, site.stmt_order)
                   and divides_always(w, channels, init.scope) is False]
        plus_one = f"{old} + 1" if re.fullmatch(r"[\w.]+", old) else f"({old}) + 1"
        if not choices and divides_always(plus_one, channels, init.scope) is False:
            choices = [plus_one]
        for new in choices[:2]:
            out.append(Candidate(
                "groups-mismatch", "RL205",
                f"`groups={old}` -> `groups={new}` on `{last_name(site.call.func)}({', '.join(channels)})`",
                _replace_value(groups, new), layer=site.attr, site=site.call))
    return out


# --------------------------------------------------------------------------
# RL301 bias before norm


def _feeds_bn(block: Block, site: CallSite) -> bool:
    if site.sequential is not None:
        sequence, position = site.sequential
        args = [a for a in sequence.args if not a.star]
        if position + 1 < len(args) and isinstance(args[position + 1].value, cst.Call):
            return L.is_bn_like(block, args[position + 1].value)
        return False
    if site.attr is None:
        return False
    conv = site.attr
    for method in block.functions.values():
        for node in walk(method):
            if isinstance(node, cst.Call) and node.args and isinstance(node.args[0].value, cst.Call):
                if self_attr(node.args[0].value.func) == conv and _is_bn_attr(block, self_attr(node.func)):
                    return True
    for flow in _residual_flows(block):
        for definition in flow.defs:
            value = definition.value
            if not (isinstance(value, cst.Call) and value.args and isinstance(value.args[0].value, cst.Name)):
                continue
            norm = self_attr(value.func)
            if not _is_bn_attr(block, norm):
                continue
            env = flow.env_at.get(id(definition.stmt), {})
            previous = env.get(value.args[0].value.value, frozenset())
            if previous and all(isinstance(flow.defs[p].value, cst.Call)
                                and self_attr(flow.defs[p].value.func) == conv for p in previous):
                return True
    return False


def _is_bn_attr(block: Block, attr: Optional[str]) -> bool:
    if attr is None:
        return False
    site = L.site_for_attr(block, attr)
    return site is not None and L.is_bn_like(block, site.call)


def bias_before_norm(block: Block, source: SourceFile) -> List[Candidate]:
    """``bias=False`` -> ``bias=True`` on a ``torch.nn`` conv whose output
    goes straight into a BatchNorm/InstanceNorm (next in an
    ``nn.Sequential``, or applied to its output in forward); a
    ``norm_layer`` parameter counts when its default is a BatchNorm, an
    mmcv ``build_norm_layer`` when its config is BN by default."""
    out: List[Candidate] = []
    for site in _sites(block):
        sig = L.signature(block, site.call)
        if sig is None or not sig.certain or L.layer_kind(block, site.call) != "conv":
            continue
        if L.callee_origin(block, site.call) != "torch" and last_name(site.call.func) != "build_conv_layer":
            continue
        bias = L.arg_named(site.call, sig, "bias")
        if bias is None or not (isinstance(bias.value, cst.Name) and bias.value.value == "False"):
            continue
        if not _feeds_bn(block, site):
            continue
        out.append(Candidate(
            "bias-before-norm", "RL301",
            f"`bias=False` -> `bias=True` on `{last_name(site.call.func)}` feeding a BatchNorm",
            _replace_value(bias, "True"), layer=site.attr, site=site.call))
    for site in _sites(block):  # mmcv's ConvModule with a BatchNorm config: bias='auto' means none
        norm_cfg = L.keyword(site.call, "norm_cfg")
        if (last_name(site.call.func) == "ConvModule" and norm_cfg is not None and L.bn_config(block, norm_cfg.value)
                and not L.has_star_kwargs(site.call)):
            bias = L.keyword(site.call, "bias")
            if bias is None:
                edits, text = _add_keyword(site.call, "bias", "True"), "`bias=True` given to `ConvModule`"
            elif code(bias.value).strip() in ("False", "'auto'", '"auto"'):
                edits = _replace_value(bias, "True")
                text = f"`bias={code(bias.value).strip()}` -> `bias=True` on `ConvModule`"
            else:
                continue
            out.append(Candidate("bias-before-norm", "RL301", text + " (its conv feeds its BatchNorm config)",
                                 edits, layer=site.attr, site=site.call, variant="convmodule"))
    for site in _sites(block):  # known conv-norm-act helpers with their default BatchNorm
        helper = L.known_helper(block, site.call)
        if helper is None or not L.helper_norm_is_on(site.call, helper):
            continue
        bias = L.helper_argument(site.call, helper, "bias")
        name = last_name(site.call.func)
        if bias is None:
            edits = _add_keyword(site.call, "bias", "True")
            text = f"`bias=True` given to `{name}` (its conv feeds its default BatchNorm)"
        elif isinstance(bias.value, cst.Name) and bias.value.value in ("False", "None"):
            edits = _replace_value(bias, "True")
            text = f"`bias={bias.value.value}` -> `bias=True` on `{name}` (its conv feeds its default BatchNorm)"
        else:
            continue
        out.append(Candidate("bias-before-norm", "RL301", text, edits, layer=site.attr, site=site.call,
                             variant="helper"))
    return out


# --------------------------------------------------------------------------
# RL302 in-place op on the identity


def inplace_identity(block: Block, source: SourceFile) -> List[Candidate]:
    """An in-place op mutates the tensor kept as the identity: the add
    rewritten ``identity += out`` (then used) when ``identity`` is the
    block input; ``x = x + f(x)`` -> ``x += f(x)`` on the input itself; or
    the first main-path layer applied to ``x.relu_()`` while ``x`` is also
    the identity."""
    out: List[Candidate] = []
    for residual in block.residuals:
        flow, site = residual.flow, residual.site
        shortcut, main = residual.shortcut, residual.main
        if not isinstance(shortcut, cst.Name):
            continue
        shortcut_defs = flow.defs_of(shortcut, site.env)
        raw = residual.base_is_input and any(not _through_projection(flow, d) for d in shortcut_defs)
        if not raw:
            continue
        s = shortcut.value
        line = site.line
        small = line.body[0] if _is_expr_statement_line(line) else None
        # the add as a whole statement value
        target = None
        if isinstance(small, cst.AugAssign) and small is site.node and isinstance(main, cst.Name):
            target, addend = small.target.value, main.value
        elif isinstance(small, cst.Assign) and small.value is site.node and len(small.targets) == 1 and isinstance(
                small.targets[0].target, cst.Name):
            target, addend = small.targets[0].target.value, code(main).strip()
        elif isinstance(small, cst.Return) and small.value is site.node:
            target, addend = "return", code(main).strip()
        if target is not None and "\n" not in addend:
            is_input = shortcut_defs <= flow.input_def
            if target == s:
                lines = [f"{s} += {addend}"]
            elif target == "return":
                lines = [f"{s} += {addend}", f"return {s}"]
            else:
                lines = [f"{s} += {addend}", f"{target} = {s}"]
            new = [source.statement(text + "\n") for text in lines]
            new[0] = new[0].with_changes(leading_lines=line.leading_lines)
            out.append(Candidate(
                "inplace-identity", "RL302", f"the add rewritten in place on the identity: `{'; '.join(lines)}`",
                {id(line): cst.FlattenSentinel(new)}, variant="input-augassign" if is_input else "identity-augassign"))
        # x.relu_() fed to the first main-path layer while x is the identity
        first = _first_main_call_on(residual, flow)
        if first is not None:
            call, name = first
            out.append(Candidate(
                "inplace-identity", "RL302",
                f"`self.{self_attr(call.func)}({name.value})` -> `self.{self_attr(call.func)}({name.value}.relu_())`: "
                f"the identity is mutated",
                {id(name): expression(f"{name.value}.relu_()")}, layer=self_attr(call.func),
                site=_site_of(block, self_attr(call.func)), variant="inplace-activation"))
    return out


def _through_projection(flow: Flow, d: int, depth: int = 0) -> bool:
    definition = flow.defs[d]
    if definition.kind == "param" or depth > 8:
        return False
    if isinstance(definition.value, cst.Name):
        return all(_through_projection(flow, r, depth + 1) for r in definition.reads) if definition.reads else False
    return True


def _first_main_call_on(residual: Residual, flow: Flow):
    """The first main-path submodule call whose first argument is a name
    holding the block input (the same tensor as the identity)."""
    for d in residual.chain:
        definition = flow.defs[d]
        if definition.value is None:
            continue
        env = flow.env_at.get(id(definition.stmt), {})
        for node in walk(definition.value):
            if isinstance(node, cst.Call) and self_attr(node.func) and node.args and not node.args[0].keyword:
                first = node.args[0].value
                if isinstance(first, cst.Name) and env.get(first.value) and env[first.value] <= flow.input_def \
                        and residual.bases <= flow.input_def:
                    return node, first
        return None
    return None


# --------------------------------------------------------------------------

GENERATORS: Dict[str, Callable[[Block, SourceFile], List[Candidate]]] = {
    "RL101": stale_input,
    "RL102": residual_overwritten,
    "RL103": shortcut_bypassed,
    "RL104": unused_submodule,
    "RL201": channel_mismatch,
    "RL202": missing_projection,
    "RL203": stride_mismatch,
    "RL204": padding_shape_change,
    "RL205": groups_mismatch,
    "RL301": bias_before_norm,
    "RL302": inplace_identity,
}


def candidates(block: Block, source: SourceFile, codes: Sequence[str]) -> Dict[str, List[Candidate]]:
    """Every candidate of every operator in ``codes`` for one block,
    deterministic (same order every time)."""
    out: Dict[str, List[Candidate]] = {}
    for operator_code in codes:
        try:
            found = GENERATORS[operator_code](block, source)
        except RecursionError:
            found = []
        unique, seen = [], set()
        for candidate in found:
            if candidate.description in seen:
                continue
            seen.add(candidate.description)
            unique.append(candidate)
        out[operator_code] = unique
    return out
