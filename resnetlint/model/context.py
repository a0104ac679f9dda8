"""Module-level facts a block needs: imports, same-file helpers and classes.

Everything here is read from the libcst module (the full file, or the reduced
module the prefilter kept: the two hold the same top-level statements that
matter, see :mod:`resnetlint.prefilter`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, FrozenSet, Iterator, List, Optional, Set, Tuple

import libcst as cst

from .torch_api import is_module_base

LOCAL_PREFIX = "<local>."


@dataclass
class ClassFacts:
    """Facts about one class read from the whole file by the ast pass.

    They are computed on the complete file even when libcst only sees part of
    it, so the fast path and the full analysis agree.
    """

    self_attribute_loads: FrozenSet[str] = frozenset()  # self.X read in any method but __init__
    load_methods: Dict[str, FrozenSet[str]] = field(default_factory=dict)  # X -> methods reading self.X
    # X -> methods that only read its state (``self.X.weight``, ``self.X.apply(init)``)
    state_reads: Dict[str, FrozenSet[str]] = field(default_factory=dict)
    mentions: Dict[str, FrozenSet[str]] = field(default_factory=dict)  # method -> the self.X names it mentions
    init_attribute_loads: FrozenSet[str] = frozenset()  # self.X read in __init__
    reflective: bool = False  # getattr/setattr(self, <non-literal>), self.modules(), __getattr__, ...
    literal_getattr: FrozenSet[str] = frozenset()  # getattr(self, "name") names
    methods: FrozenSet[str] = frozenset()


@dataclass
class FileFacts:
    """Whole-file facts from the ast pass (see :mod:`resnetlint.prefilter`)."""

    external_attribute_loads: FrozenSet[str] = frozenset()  # obj.X for obj other than self, anywhere
    # the parts of dotted attribute paths written as strings ("head.decoder.bias":
    # state_dict keys, tied weights): attributes other code reaches by name
    string_constants: FrozenSet[str] = frozenset()
    classes: Dict[str, ClassFacts] = field(default_factory=dict)
    subclass_bases: Dict[str, FrozenSet[str]] = field(default_factory=dict)  # class -> names of its bases
    # Direct calls ``Block(a, b, stride=2)`` of the file's classes: per class,
    # one (positional argument texts, keyword argument texts) per call; None
    # when the class is also used in other ways (passed as a value).
    call_sites: Dict[str, Optional[List[Tuple[Tuple[str, ...], Dict[str, str]]]]] = field(default_factory=dict)


class ModuleContext:
    """Name resolution for one file.

    ``project`` (a :class:`~resnetlint.model.project.Project`) lets names
    imported from other modules be followed; ``foreign`` marks a module read
    only because the checked file imports from it (its nodes have no
    positions in the checked file, so nothing is ever reported on them).
    """

    def __init__(self, module: cst.Module, facts: Optional[FileFacts] = None, path: str = "<string>",
                 project=None, digest: str = "", foreign: bool = False):
        self.module = module
        self.path = path
        self.project = project
        self.digest = digest
        self.foreign = foreign
        self.source_index = None  # a foreign module's positions and text (see Project.text_of)
        self.facts = facts or FileFacts()
        self.imports: Dict[str, str] = {}
        self.star_imports: List[str] = []
        self.functions: Dict[str, cst.FunctionDef] = {}
        self.classes: Dict[str, cst.ClassDef] = {}
        self.constants: Dict[str, cst.BaseExpression] = {}
        self._ambiguous: Set[str] = set()
        for stmt in _module_level_statements(module.body):
            self._record(stmt)
        self.module_classes: Set[str] = self._find_module_classes()
        self._module_class_memo: Dict[str, bool] = {}
        self.resolved: Dict[str, Tuple[object, Dict[str, str]]] = {}  # the project's memo of names resolved here

    # -- collection ----------------------------------------------------------
    def _record(self, stmt: cst.CSTNode) -> None:
        if isinstance(stmt, cst.FunctionDef):
            self._bind_def(stmt.name.value, stmt, self.functions)
        elif isinstance(stmt, cst.ClassDef):
            self._bind_def(stmt.name.value, stmt, self.classes)
        elif isinstance(stmt, (cst.SimpleStatementLine, cst.BaseSmallStatement)):
            smalls = stmt.body if isinstance(stmt, cst.SimpleStatementLine) else [stmt]
            for small in smalls:
                if isinstance(small, cst.Import):
                    self._record_import(small)
                elif isinstance(small, cst.ImportFrom):
                    self._record_import_from(small)
                elif isinstance(small, cst.Assign) and len(small.targets) == 1:
                    target = small.targets[0].target
                    if isinstance(target, cst.Name):
                        self._bind_constant(target.value, small.value)
                elif isinstance(small, cst.AnnAssign) and small.value is not None:
                    if isinstance(small.target, cst.Name):
                        self._bind_constant(small.target.value, small.value)

    def _bind_def(self, name: str, node: cst.CSTNode, table: Dict[str, cst.CSTNode]) -> None:
        # A name defined twice (e.g. in both arms of a try/except) is ambiguous:
        # keep the first for classes (they are analysed on their own anyway) but
        # never resolve a helper call through it.
        if name in table or name in self.constants:
            self._ambiguous.add(name)
        table.setdefault(name, node)

    def _bind_constant(self, name: str, value: cst.BaseExpression) -> None:
        if name in self.constants or name in self.functions or name in self.classes:
            self._ambiguous.add(name)
        self.constants[name] = value

    def _record_import(self, node: cst.Import) -> None:
        for alias in node.names:
            dotted = _dotted(alias.name)
            if dotted is None:
                continue
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                self.imports[alias.asname.name.value] = dotted
            else:
                head = dotted.split(".")[0]
                self.imports[head] = head

    def _record_import_from(self, node: cst.ImportFrom) -> None:
        module = _dotted(node.module) if node.module is not None else ""
        if module is None:
            return
        dots = "".join("." for _ in node.relative)
        base = dots + module
        if isinstance(node.names, cst.ImportStar):
            self.star_imports.append(base)
            return
        for alias in node.names:
            name = _dotted(alias.name)
            if name is None:
                continue
            local = alias.asname.name.value if alias.asname and isinstance(alias.asname.name, cst.Name) else name
            self.imports[local] = f"{base}.{name}" if base and not base.endswith(".") else f"{base}{name}"

    def _find_module_classes(self) -> Set[str]:
        found: Set[str] = set()
        changed = True
        while changed:
            changed = False
            for name, cls in self.classes.items():
                if name in found:
                    continue
                for base in cls.bases:
                    if base.keyword is not None:
                        continue
                    qual = self.qualify(base.value)
                    if qual is None:
                        continue
                    if is_module_base(qual) or (qual.startswith(LOCAL_PREFIX) and qual[len(LOCAL_PREFIX):] in found):
                        found.add(name)
                        changed = True
                        break
        return found

    # -- queries -------------------------------------------------------------
    def qualify(self, expr: cst.BaseExpression) -> Optional[str]:
        """The qualified name an expression refers to: ``nn.Conv2d`` ->
        ``torch.nn.Conv2d``; a same-file class or function -> ``<local>.Name``."""
        if isinstance(expr, cst.Name):
            return self.qualify_name(expr.value)
        if isinstance(expr, cst.Attribute):
            base = self.qualify(expr.value)
            return f"{base}.{expr.attr.value}" if base else None
        return None

    def qualify_name(self, name: str) -> Optional[str]:
        if name in self.imports:
            return self.imports[name]
        if name in self.classes or name in self.functions:
            return LOCAL_PREFIX + name
        for star in self.star_imports:
            if star in ("torch.nn", "torch.nn.modules"):
                return f"torch.nn.{name}"
        if self.project is not None and any(not star.startswith("torch") for star in self.star_imports):
            return LOCAL_PREFIX + name  # the project looks it up in the starred modules
        return None

    def is_ambiguous(self, name: str) -> bool:
        return name in self._ambiguous

    def class_facts(self, name: str) -> ClassFacts:
        return self.facts.classes.get(name, ClassFacts())

    def class_bases(self, cls: cst.ClassDef) -> List[Tuple["ModuleContext", cst.ClassDef]]:
        """Base classes whose source we read (this file's, or another
        module's through the project), nearest first, each with its module."""
        out = []
        for base in cls.bases:
            if base.keyword is not None:
                continue
            found = self._base_class(base.value)
            if found is not None and found[1] is not cls:
                out.append(found)
        return out

    def local_bases(self, cls: cst.ClassDef) -> List[cst.ClassDef]:
        """Same-file base classes, nearest first."""
        return [parent for ctx, parent in self.class_bases(cls) if ctx is self]

    def _base_class(self, expr: cst.BaseExpression) -> Optional[Tuple["ModuleContext", cst.ClassDef]]:
        qual = self.qualify(expr)
        if qual is None:
            return None
        if qual.startswith(LOCAL_PREFIX) and qual[len(LOCAL_PREFIX):] in self.classes:
            return self, self.classes[qual[len(LOCAL_PREFIX):]]
        if self.project is None or is_module_base(qual):
            return None
        from .project import Definition

        resolved = self.project.resolve(self, qual)
        if isinstance(resolved, Definition) and resolved.kind == "class":
            return resolved.ctx, resolved.ctx.classes[resolved.name]
        return None

    def external_bases(self, cls: cst.ClassDef) -> List[str]:
        """Bases whose source we do not read, as absolute names where known
        (``torch.nn.Module``), ``<unknown>`` otherwise."""
        out = []
        for base in cls.bases:
            if base.keyword is not None:
                continue
            if self._base_class(base.value) is not None:
                continue
            qual = self.qualify(base.value)
            if qual is not None and self.project is not None and not qual.startswith(("torch.", LOCAL_PREFIX)):
                from .project import External

                resolved = self.project.resolve(self, qual)
                qual = resolved.qualname if isinstance(resolved, External) else qual
            out.append(qual or "<unknown>")
        return out

    def is_module_class(self, name: str) -> bool:
        """An ``nn.Module`` subclass: through torch's (or mmengine's) base
        classes, through bases in this or another module, or (base unknown)
        a class that defines its own ``forward``."""
        if name in self.module_classes:
            return True
        if name not in self.classes:
            return False
        found = self._module_class_memo.get(name)
        if found is None:
            self._module_class_memo[name] = False  # a cycle of bases is not a module
            found = self._module_class_memo[name] = self._inherits_module(self.classes[name])
        return found

    def _inherits_module(self, cls: cst.ClassDef) -> bool:
        for ctx, parent in self.class_bases(cls):
            if ctx.is_module_class(parent.name.value):
                return True
        external = self.external_bases(cls)
        if any(is_module_base(qual) for qual in external):
            return True
        # torch is modelled whole: a torch base that is not a module base
        # (torch.autograd.Function) is known not to make a module
        unknown = [base for base in cls.bases if base.keyword is None and not _is_builtin_name(base.value)
                   and self._base_class(base.value) is None
                   and not (self.qualify(base.value) or "").startswith("torch.")]
        return bool(unknown) and any(isinstance(stmt, cst.FunctionDef) and stmt.name.value == "forward"
                                     for stmt in cls.body.body)

    def iter_module_classes(self) -> Iterator[cst.ClassDef]:
        for name, cls in self.classes.items():
            if self.is_module_class(name):
                yield cls


def _is_builtin_name(expr: cst.BaseExpression) -> bool:
    """``object``, ``dict``, ``Exception``: bases that never make a module."""
    import builtins

    return isinstance(expr, cst.Name) and hasattr(builtins, expr.value)


def _dotted(node: cst.CSTNode) -> Optional[str]:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        head = _dotted(node.value)
        return f"{head}.{node.attr.value}" if head else None
    return None


def _module_level_statements(body) -> Iterator[cst.CSTNode]:
    """Top-level statements, looking inside if/try/with blocks (imports guarded
    by ``try: ... except ImportError`` are common) but never into functions."""
    if isinstance(body, (cst.IndentedBlock, cst.SimpleStatementSuite)):
        body = body.body
    for stmt in body:
        yield stmt
        if isinstance(stmt, cst.If):
            yield from _module_level_statements(stmt.body)
            orelse = stmt.orelse
            while orelse is not None:
                yield from _module_level_statements(orelse.body)
                orelse = orelse.orelse if isinstance(orelse, cst.If) else None
        elif isinstance(stmt, (cst.Try, cst.TryStar)):
            yield from _module_level_statements(stmt.body)
            for handler in stmt.handlers:
                yield from _module_level_statements(handler.body)
            if stmt.orelse is not None:
                yield from _module_level_statements(stmt.orelse.body)
        elif isinstance(stmt, cst.With):
            yield from _module_level_statements(stmt.body)
