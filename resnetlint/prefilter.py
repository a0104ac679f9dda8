"""The cheap first pass: ``ast`` over the whole file.

It does three jobs, all without libcst (which costs ~50 µs per statement):

1. the syntax check (``RL000``), since every file must be parsed anyway;
2. :class:`FileFacts` that some rules need from the *whole* file (who reads
   ``self.conv1`` anywhere, reflective access), so the fast path and the full
   analysis see the same facts;
3. the *selection*: the top-level statements the model can need (imports,
   module classes, and the helpers and constants they name, transitively) and,
   inside classes, the methods reachable from ``__init__`` and ``forward``.
   Only those are turned into model nodes (see :mod:`resnetlint.model.lite`).

The selection is sound by construction: the model resolves module-level names
only through imports and top-level definitions, every top-level statement
binding a name the kept code mentions is kept, and a method is dropped only if
no kept code mentions it as ``self.<name>``.  A test runs both front ends over
the fixtures and a real corpus and asserts identical findings.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Dict, FrozenSet, List, Optional, Set

if TYPE_CHECKING:  # pragma: no cover
    # Imported where used: model.context imports libcst, which the text
    # report (it uses split_lines) must not import on a run from the cache.
    from .model.context import ClassFacts, FileFacts

# ``self.conv.<one of these>`` reads a layer's state without running it:
# outside forward (re-parameterisation, weight initialisation) it is not a use.
STATE_ATTRIBUTES = {
    "weight", "bias", "data", "running_mean", "running_var", "num_batches_tracked", "weight_g", "weight_v",
    "apply", "reset_parameters", "parameters", "named_parameters", "requires_grad_", "eval", "train",
    "in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "num_features",
    "eps", "momentum", "in_features", "out_features", "padding_mode", "state_dict", "load_state_dict",
}
_ATTRIBUTE_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$")
REFLECTIVE_METHODS = {"modules", "children", "named_modules", "named_children", "_modules", "apply", "__dict__"}
FUNCTION_NODES = (ast.FunctionDef, ast.AsyncFunctionDef)


# ----------------------------------------------------------------------------
# One pass over the file
# ----------------------------------------------------------------------------


class _ClassScan:
    __slots__ = ("loads", "init_passed_on", "literal_getattr", "reflective", "methods", "mentions", "state_reads")

    def __init__(self):
        self.mentions: Dict[str, Set[str]] = {}  # method -> the `self.X`/`cls.X` names it mentions
        self.loads: Dict[str, Set[str]] = {}
        self.state_reads: Dict[str, Set[str]] = {}  # X -> methods reading only `self.X.weight` and the like
        self.init_passed_on: Set[str] = set()
        self.literal_getattr: Set[str] = set()
        self.reflective = False
        self.methods: Set[str] = set()

    def facts(self) -> ClassFacts:
        from .model.context import ClassFacts

        return ClassFacts(
            self_attribute_loads=frozenset(self.loads),
            load_methods={k: frozenset(v) for k, v in self.loads.items()},
            state_reads={k: frozenset(v) for k, v in self.state_reads.items()},
            mentions={k: frozenset(v) for k, v in self.mentions.items()},
            init_attribute_loads=frozenset(self.init_passed_on),
            reflective=self.reflective,
            literal_getattr=frozenset(self.literal_getattr),
            methods=frozenset(self.methods),
        )


class FileScan:
    """Everything the engine needs from the ``ast``, gathered in one iterative
    pass (no recursion: deeply nested expressions must not crash us)."""

    def __init__(self, tree: ast.Module):
        self.tree = tree
        body = tree.body
        self.used: List[Set[str]] = [set() for _ in body]  # names read by each top-level statement
        self.bound: List[Set[str]] = [set() for _ in body]  # names each top-level statement binds
        self.self_attrs: List[Set[str]] = [set() for _ in body]  # `self.X` / `cls.X` names it mentions
        self.external: Set[str] = set()
        self.attribute_paths: Set[str] = set()  # parts of dotted attribute paths written as strings
        self.classes: Dict[str, _ClassScan] = {}
        self.bases: Dict[str, FrozenSet[str]] = {}
        self.class_names = set()
        self._calls: Dict[str, list] = {}
        self.literal_sites: Dict[str, List[dict]] = {}  # class -> calls whose arguments are all literals
        self._class_loads: Dict[str, int] = {}
        self._class_tests: Dict[str, int] = {}  # names tested by isinstance/issubclass
        self._call_funcs: Set[int] = set()
        self._scan()

    # The traversal keeps, for each node, the top-level statement index, the
    # innermost class scan, the method name inside it, and whether the node is
    # the object of an attribute access (``self.conv`` in ``self.conv.weight``).
    def _scan(self) -> None:
        # ``scoped``: inside a def or class, where assignments bind no module name.
        stack = [(stmt, index, None, None, False, False) for index, stmt in enumerate(self.tree.body)]
        class_calls = []
        while stack:
            node, top, cls, method, is_base, scoped = stack.pop()
            kind = type(node)
            if kind is ast.Name:
                if isinstance(node.ctx, ast.Load):
                    self.used[top].add(node.id)
                    self._class_loads[node.id] = self._class_loads.get(node.id, 0) + 1
                elif not scoped:
                    self.bound[top].add(node.id)
                continue
            if kind is ast.Attribute:
                value = node.value
                if type(value) is ast.Name and value.id in ("self", "cls"):
                    self.self_attrs[top].add(node.attr)
                    if cls is not None and method:
                        cls.mentions.setdefault(method, set()).add(node.attr)
                    if cls is not None and value.id == "self" and isinstance(node.ctx, ast.Load) and method:
                        self._self_load(cls, method, node.attr, is_base)
                elif isinstance(node.ctx, ast.Load):
                    self.external.add(node.attr)
                stack.append((value, top, cls, method, node.attr, scoped))
                continue
            if kind is ast.ClassDef:
                if not scoped:
                    self.bound[top].add(node.name)
                self.class_names.add(node.name)
                scan = self.classes.setdefault(node.name, _ClassScan())
                self.bases[node.name] = frozenset(n for n in map(_base_name, node.bases) if n)
                for stmt in node.body:
                    if isinstance(stmt, FUNCTION_NODES):
                        scan.methods.add(stmt.name)
                        if stmt.name == "__getattr__":
                            scan.reflective = True
                        for child in _children(stmt):
                            stack.append((child, top, scan, stmt.name, False, True))
                    else:
                        stack.append((stmt, top, scan, None, False, True))
                for child in node.bases + node.keywords + node.decorator_list:
                    stack.append((child, top, cls, method, False, scoped))
                continue
            if kind in FUNCTION_NODES:
                if not scoped:
                    self.bound[top].add(node.name)
                for child in _children(node):
                    stack.append((child, top, cls, method, False, True))
                continue
            if kind in (ast.Import, ast.ImportFrom):
                if not scoped:
                    for alias in node.names:
                        self.bound[top].add((alias.asname or alias.name).split(".")[0])
                continue
            if kind is ast.Call:
                self._call(node, cls, method, class_calls)
            # Names and constants (half of all nodes) are handled here rather
            # than pushed and popped: the same effect as the branch above.
            for child in _children(node):
                child_kind = type(child)
                if child_kind is ast.Name:
                    if type(child.ctx) is ast.Load:
                        self.used[top].add(child.id)
                        self._class_loads[child.id] = self._class_loads.get(child.id, 0) + 1
                    elif not scoped:
                        self.bound[top].add(child.id)
                elif child_kind is not ast.Constant:
                    stack.append((child, top, cls, method, False, scoped))
                elif type(child.value) is str and "." in child.value and _ATTRIBUTE_PATH.match(child.value):
                    # "head.decoder.bias": a state_dict key or a tied-weights
                    # entry names attributes other code reaches by string
                    self.attribute_paths.update(child.value.split("."))
        self._finish_calls(class_calls)

    def _self_load(self, cls: _ClassScan, method: str, attr: str, outer) -> None:
        """``self.<attr>`` read in ``method``; ``outer`` is the attribute read
        off it (``self.conv.weight``: "weight"), or False."""
        if method == "__init__":
            if not outer:
                cls.init_passed_on.add(attr)  # handed on, not just `self.conv.weight`
            return
        if attr in REFLECTIVE_METHODS:
            cls.reflective = True
        if outer in STATE_ATTRIBUTES:
            cls.state_reads.setdefault(attr, set()).add(method)
        else:
            cls.loads.setdefault(attr, set()).add(method)

    def _call(self, node: ast.Call, cls: Optional[_ClassScan], method: Optional[str], class_calls: list) -> None:
        func = node.func
        if type(func) is ast.Name:
            if func.id in ("getattr", "setattr", "hasattr", "delattr") and node.args:
                first = node.args[0]
                literal = len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) \
                    and isinstance(node.args[1].value, str)
                if _is_name(first, "self"):
                    if cls is not None and method not in (None, "__init__"):
                        if not literal:
                            cls.reflective = True
                        elif func.id == "getattr":
                            cls.literal_getattr.add(node.args[1].value)
                elif literal and func.id == "getattr":
                    self.external.add(node.args[1].value)
            elif func.id == "vars" and cls is not None and method not in (None, "__init__"):
                cls.reflective = True
            elif func.id in ("isinstance", "issubclass") and len(node.args) == 2:
                # ``isinstance(layer, (CellA, CellB))`` tests a class without
                # building it: not a use that hides a call site
                tested = node.args[1]
                for name in (tested.elts if isinstance(tested, ast.Tuple) else [tested]):
                    if type(name) is ast.Name:
                        self._class_tests[name.id] = self._class_tests.get(name.id, 0) + 1
            class_calls.append(node)

    def _finish_calls(self, class_calls: List[ast.Call]) -> None:
        for node in class_calls:
            name = node.func.id
            if name not in self.class_names:
                continue
            if any(isinstance(a, ast.Starred) for a in node.args):
                site = None
            else:
                # ``**dd`` (device/dtype) is left out: the facts drawn from call
                # sites only ever silence a rule, never make one fire.
                site = (tuple(ast.dump(a) for a in node.args),
                        {k.arg: ast.dump(k.value) for k in node.keywords if k.arg is not None})
            self._calls.setdefault(name, []).append(site)
            literal = _literal_call(node)
            if literal is not None:
                self.literal_sites.setdefault(name, []).append(literal)

    def facts(self) -> FileFacts:
        from .model.context import FileFacts

        call_sites = {}
        for name, sites in self._calls.items():
            # Only when every use of the name is a direct, bindable call.
            loads = self._class_loads.get(name, 0) - self._class_tests.get(name, 0)
            direct = len(sites) == loads and all(site is not None for site in sites)
            call_sites[name] = sites if direct else None
        return FileFacts(
            external_attribute_loads=frozenset(self.external),
            string_constants=frozenset(self.attribute_paths),
            classes={name: scan.facts() for name, scan in self.classes.items()},
            subclass_bases=self.bases,
            call_sites=call_sites,
        )


def _literal_call(node: ast.Call) -> Optional[dict]:
    """``Bottleneck(256, 64, stride=2)`` as plain data, for the trace."""
    try:
        args = [_plain(ast.literal_eval(a)) for a in node.args]
        kwargs = {k.arg: _plain(ast.literal_eval(k.value)) for k in node.keywords if k.arg is not None}
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    if any(k.arg is None for k in node.keywords) or any(isinstance(a, ast.Starred) for a in node.args):
        return None
    return {"args": args, "kwargs": kwargs, "origin": f"the call on line {node.lineno}"}


def _plain(value):
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    raise ValueError("not plain data")


# Fields that never hold a node (or hold only an expression context, which
# the scan has no use for): skipped without being read.  Not ``name``: a
# string mostly, but a node in ``type X = ...`` (Python 3.12).
_LEAF_FIELDS = frozenset({"ctx", "id", "attr", "asname", "module", "level", "arg", "kind", "conversion",
                          "is_async", "type_comment", "simple"})
_NODE_FIELDS: Dict[type, tuple] = {}


def _children(node: ast.AST) -> List[ast.AST]:
    """The child nodes, in ``ast.iter_child_nodes`` order but without
    expression contexts; ~2x faster than it (no generators, fields that
    cannot hold a node are not read)."""
    kind = type(node)
    fields = _NODE_FIELDS.get(kind)
    if fields is None:
        fields = _NODE_FIELDS[kind] = tuple(f for f in kind._fields if f not in _LEAF_FIELDS)
    out: List[ast.AST] = []
    for name in fields:
        value = getattr(node, name, None)
        if type(value) is list:
            if None in value or (value and type(value[0]) is str):  # dict keys with **, global names
                out.extend(item for item in value if isinstance(item, ast.AST))
            else:
                out.extend(value)
        elif isinstance(value, ast.AST):
            out.append(value)
    return out


def collect_facts(tree: ast.Module) -> FileFacts:
    return FileScan(tree).facts()


def _is_name(node: ast.AST, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def _base_name(node: ast.AST) -> Optional[str]:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


# ----------------------------------------------------------------------------
# Reduction
# ----------------------------------------------------------------------------


@dataclass
class Selection:
    """What the lite front end builds: top-level statements in order, and for
    trimmed classes the members kept (keyed by ``id`` of the ClassDef)."""

    statements: List[ast.stmt]
    members: Dict[int, List[ast.stmt]]
    complete: bool  # nothing was left out


def select_statements(scan: "FileScan") -> Selection:
    """Keep imports, classes that may be modules, and what they need; inside
    those classes keep only ``__init__``, ``forward``, the methods they reach
    through ``self.X`` and the class attributes anything reads."""
    body = scan.tree.body
    keep: Set[int] = set()
    needed: Set[str] = set()
    for index, stmt in enumerate(body):
        if isinstance(stmt, (ast.Import, ast.ImportFrom)) or _holds_import(stmt) or _may_hold_module_class(stmt):
            keep.add(index)
            needed |= scan.used[index]
    binders: Dict[str, List[int]] = {}
    for index in range(len(body)):
        for name in scan.bound[index]:
            binders.setdefault(name, []).append(index)
    queue = list(needed)
    seen: Set[str] = set()
    while queue:
        name = queue.pop()
        if name in seen:
            continue
        seen.add(name)
        for index in binders.get(name, ()):
            if index not in keep:
                keep.add(index)
                queue.extend(scan.used[index] - seen)
    statements = [body[i] for i in sorted(keep)]
    members = _kept_members(scan, [s for s in statements if isinstance(s, ast.ClassDef)])
    return Selection(statements, members, complete=len(keep) == len(body) and not members)


def _kept_members(scan: "FileScan", classes: List[ast.ClassDef]) -> Dict[int, List[ast.stmt]]:
    """For each top-level class whose body can be trimmed, the members to keep.

    Methods reachable from ``__init__``/``forward`` through ``self.X`` (in any
    class, since subclasses call their bases' helpers) are kept, to a fixpoint;
    so are class attributes whose name is read as an attribute anywhere."""
    reachable = {"__init__", "forward"}
    attribute_names = set(scan.external)
    for attrs in scan.self_attrs:
        attribute_names |= attrs
    changed = True
    while changed:
        changed = False
        for cls in classes:
            mentions = scan.classes.get(cls.name)
            if mentions is None:
                continue
            for method, names in mentions.mentions.items():
                if method in reachable and not names <= reachable:
                    reachable |= names
                    changed = True
    out: Dict[int, List[ast.stmt]] = {}
    for cls in classes:
        if not cls.body or cls.body[0].lineno == cls.lineno:
            continue  # a one-line class: keep it whole
        kept = []
        for stmt in cls.body:
            if isinstance(stmt, FUNCTION_NODES):
                if stmt.name in reachable:
                    kept.append(stmt)
            elif _is_docstring(stmt):
                continue
            elif not isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)) or \
                    _assigned_names(stmt) & attribute_names:
                kept.append(stmt)
        if kept and len(kept) < len(cls.body):
            out[id(cls)] = kept
    return out


def _is_docstring(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)


def _assigned_names(stmt: ast.stmt) -> Set[str]:
    targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
    out = set()
    for target in targets:
        for node in ast.walk(target):
            if isinstance(node, ast.Name):
                out.add(node.id)
    return out


_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")


def split_lines(source: str) -> List[str]:
    """Lines as Python's tokenizer sees them: only \\n, \\r\\n and \\r end a
    line (``str.splitlines`` also splits at form feeds and other separators)."""
    return _LINE.findall(source)


def _first_line(stmt: ast.stmt) -> int:
    decorators = getattr(stmt, "decorator_list", None) or []
    return min([stmt.lineno] + [d.lineno for d in decorators])


def _holds_import(stmt: ast.stmt) -> bool:
    if isinstance(stmt, (ast.If, ast.Try)) or type(stmt).__name__ == "TryStar":
        return any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in ast.walk(stmt))
    return False


def _may_hold_module_class(stmt: ast.stmt) -> bool:
    """A class with a base (any base may make it an nn.Module), possibly
    inside a top-level if/try/with block."""
    if isinstance(stmt, ast.ClassDef):
        return bool(stmt.bases)
    if isinstance(stmt, (ast.If, ast.Try, ast.With)) or type(stmt).__name__ == "TryStar":
        for node in ast.walk(stmt):
            if isinstance(node, ast.ClassDef) and node.bases:
                return True
    return False
