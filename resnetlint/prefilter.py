"""The cheap first pass: ``ast`` over the whole file.

It does three jobs, all without libcst (which costs ~50 µs per statement):

1. the syntax check (``RL000``), since every file must be parsed anyway;
2. :class:`FileFacts` that some rules need from the *whole* file (who reads
   ``self.conv1`` anywhere, reflective access), so the fast path and the full
   analysis see the same facts;
3. the *reduction*: the top-level statements the model can need (imports,
   module classes, and the helpers and constants they name, transitively),
   concatenated with a line map.  libcst then parses only that.

The reduction is sound by construction: the model resolves module-level names
only through imports and top-level definitions, and every top-level statement
binding a name the kept code mentions is kept.  A test runs both paths over the
fixtures and a real corpus and asserts identical findings.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Dict, FrozenSet, Iterable, List, Optional, Set, Tuple

from .model.context import ClassFacts, FileFacts

REFLECTIVE_METHODS = {"modules", "children", "named_modules", "named_children", "_modules", "apply", "__dict__"}
FUNCTION_NODES = (ast.FunctionDef, ast.AsyncFunctionDef)


@dataclass
class Reduction:
    """The kept part of a file and how its lines map back."""

    source: str
    # (first line in reduced source, first line in original, number of lines), 1-based
    segments: List[Tuple[int, int, int]] = field(default_factory=list)
    complete: bool = False  # True when nothing was dropped

    def original_line(self, line: int) -> int:
        for reduced_start, original_start, count in self.segments:
            if reduced_start <= line < reduced_start + count:
                return original_start + (line - reduced_start)
        return line


# ----------------------------------------------------------------------------
# File facts
# ----------------------------------------------------------------------------


def collect_facts(tree: ast.Module) -> FileFacts:
    external: Set[str] = set()
    classes: Dict[str, ClassFacts] = {}
    bases: Dict[str, FrozenSet[str]] = {}
    class_names = {n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
    calls: Dict[str, list] = {}
    called_nodes: Set[int] = set()
    loads: Dict[str, int] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in class_names:
            called_nodes.add(id(node.func))
            if any(isinstance(a, ast.Starred) for a in node.args):
                calls.setdefault(node.func.id, []).append(None)
            else:
                # ``**dd`` (device/dtype) is left out: the facts drawn from call
                # sites only ever silence a rule, never make one fire.
                calls.setdefault(node.func.id, []).append(
                    (tuple(ast.dump(a) for a in node.args),
                     {k.arg: ast.dump(k.value) for k in node.keywords if k.arg is not None}))
        elif isinstance(node, ast.Name) and node.id in class_names and isinstance(node.ctx, ast.Load):
            loads[node.id] = loads.get(node.id, 0) + 1
    call_sites = {}
    for name, sites in calls.items():
        # Only when every use of the name is a direct, bindable call.
        direct = len(sites) == loads.get(name, 0) and all(site is not None for site in sites)
        call_sites[name] = sites if direct else None
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            classes[node.name] = _class_facts(node)
            bases[node.name] = frozenset(_base_name(b) for b in node.bases if _base_name(b))
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
            if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                external.add(node.attr)
        elif isinstance(node, ast.Call) and _is_name(node.func, "getattr") and len(node.args) >= 2:
            if not _is_name(node.args[0], "self") and isinstance(node.args[1], ast.Constant):
                if isinstance(node.args[1].value, str):
                    external.add(node.args[1].value)
    return FileFacts(external_attribute_loads=frozenset(external), classes=classes, subclass_bases=bases,
                     call_sites=call_sites)


def _class_facts(cls: ast.ClassDef) -> ClassFacts:
    loads: Dict[str, Set[str]] = {}
    init_loads: Set[str] = set()
    literal_getattr: Set[str] = set()
    reflective = False
    methods = set()
    for stmt in cls.body:
        if not isinstance(stmt, FUNCTION_NODES):
            continue
        methods.add(stmt.name)
        if stmt.name == "__getattr__":
            reflective = True
        if stmt.name == "__init__":
            init_loads |= _passed_on_in_init(stmt)
            continue
        for node in ast.walk(stmt):
            if isinstance(node, ast.Attribute) and _is_name(node.value, "self"):
                if isinstance(node.ctx, ast.Load):
                    if node.attr in REFLECTIVE_METHODS:
                        reflective = True
                    loads.setdefault(node.attr, set()).add(stmt.name)
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "setattr", "hasattr", "delattr"):
                if node.args and _is_name(node.args[0], "self"):
                    if len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str):
                        if node.func.id == "getattr":
                            literal_getattr.add(node.args[1].value)
                    else:
                        reflective = True
            elif isinstance(node, ast.Name) and node.id == "vars":
                reflective = True
    return ClassFacts(
        self_attribute_loads=frozenset(loads),
        load_methods={k: frozenset(v) for k, v in loads.items()},
        init_attribute_loads=frozenset(init_loads),
        reflective=reflective,
        literal_getattr=frozenset(literal_getattr),
        methods=frozenset(methods),
    )


def _passed_on_in_init(init: ast.AST) -> Set[str]:
    """``self.X`` read in ``__init__`` other than to reach one of its own
    attributes (``self.conv.weight`` is weight init; ``nn.Sequential(self.conv)``
    hands the module on)."""
    parents: Dict[int, ast.AST] = {}
    for node in ast.walk(init):
        for child in ast.iter_child_nodes(node):
            parents[id(child)] = node
    out: Set[str] = set()
    for node in ast.walk(init):
        if isinstance(node, ast.Attribute) and _is_name(node.value, "self") and isinstance(node.ctx, ast.Load):
            parent = parents.get(id(node))
            if isinstance(parent, ast.Attribute) and parent.value is node:
                continue
            out.add(node.attr)
    return out


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


def reduce_source(source: str, tree: ast.Module, lines: Optional[List[str]] = None) -> Reduction:
    """Keep imports, classes that may be modules, and what they need."""
    body = tree.body
    keep: Set[int] = set()
    needed: Set[str] = set()
    for index, stmt in enumerate(body):
        if isinstance(stmt, (ast.Import, ast.ImportFrom)) or _holds_import(stmt):
            keep.add(index)
            needed |= _names_used(stmt)
        elif _may_hold_module_class(stmt):
            keep.add(index)
            needed |= _names_used(stmt)
    binders: Dict[str, List[int]] = {}
    for index, stmt in enumerate(body):
        for name in _names_bound(stmt):
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
                queue.extend(_names_used(body[index]) - seen)
    if len(keep) == len(body):
        return Reduction(source, [(1, 1, source.count("\n") + 1)], complete=True)
    if lines is None:
        lines = split_lines(source)
    return _assemble(lines, [body[i] for i in sorted(keep)], body)


def _assemble(lines: List[str], kept: List[ast.stmt], body: List[ast.stmt]) -> Reduction:
    # Line ranges of the kept statements, widened so that no statement sharing
    # a line with a kept one is cut in half.
    ranges: List[List[int]] = []
    for stmt in kept:
        start = _first_line(stmt)
        end = stmt.end_lineno or stmt.lineno
        if ranges and start <= ranges[-1][1] + 0:
            ranges[-1][1] = max(ranges[-1][1], end)
        else:
            ranges.append([start, end])
    changed = True
    while changed:
        changed = False
        for stmt in body:
            start, end = _first_line(stmt), stmt.end_lineno or stmt.lineno
            for r in ranges:
                overlaps = start <= r[1] and end >= r[0]
                if overlaps and (start < r[0] or end > r[1]):
                    r[0], r[1] = min(r[0], start), max(r[1], end)
                    changed = True
        ranges.sort()
        merged: List[List[int]] = []
        for r in ranges:
            if merged and r[0] <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], r[1])
            else:
                merged.append(r)
        ranges = merged
    parts: List[str] = []
    segments: List[Tuple[int, int, int]] = []
    reduced_line = 1
    for start, end in ranges:
        chunk = lines[start - 1:end]
        if chunk and not chunk[-1].endswith(("\n", "\r")):
            chunk = chunk[:-1] + [chunk[-1] + "\n"]
        parts.extend(chunk)
        segments.append((reduced_line, start, end - start + 1))
        reduced_line += end - start + 1
    return Reduction("".join(parts), segments, complete=False)


def split_lines(source: str) -> List[str]:
    """Lines as Python's tokenizer sees them: only \\n, \\r\\n and \\r end a line."""
    out: List[str] = []
    start = 0
    i = 0
    n = len(source)
    while i < n:
        ch = source[i]
        if ch == "\n" or ch == "\r":
            if ch == "\r" and i + 1 < n and source[i + 1] == "\n":
                i += 1
            out.append(source[start:i + 1])
            start = i + 1
        i += 1
    if start < n:
        out.append(source[start:])
    return out


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


def _names_used(stmt: ast.AST) -> Set[str]:
    return {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name)}


def _names_bound(stmt: ast.stmt) -> Set[str]:
    if isinstance(stmt, (*FUNCTION_NODES, ast.ClassDef)):
        return {stmt.name}
    out: Set[str] = set()
    for node in ast.walk(stmt):
        if isinstance(node, (*FUNCTION_NODES, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            out.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                out.add((alias.asname or alias.name).split(".")[0])
    return out
