"""The project: which file holds module ``a.b.c``, and what an imported name is.

A block is rarely built from ``torch.nn`` alone: its layers come from helpers
in a sibling module (``from .common import conv3x3_block``), its base class
lives in another file, its norm layer is a re-export from a package's
``__init__``.  :class:`Project` lets the model follow those names **without
importing anything**: it finds the file of a module the way Python's import
system would (the checked file's package root, the folders above it for
namespace packages and ``sys.path`` tricks, then the installed packages of
the running interpreter), reads and parses it with the same lite front end
the checked file gets, and resolves a dotted name through ``import``,
``from ... import``, ``from x import *`` and ``__init__`` re-exports to the
definition it names.

What the model learns this way depends on those files, so every module
consulted while a file is analysed is recorded (:meth:`Project.recording`)
with its content hash: the result cache keys a file by its own content *and*
those hashes, and an edit to ``common.py`` re-checks exactly its users.

Parsed modules are kept in a small LRU (a model zoo's shared helper modules
are parsed once per worker, not once per importer); what is worth more than
a parse, the summary of a module class used as a layer, is memoised by the
caller under the module's content hash (:meth:`Project.memo`).
"""
from __future__ import annotations

import ast
import contextlib
import os
import re
import sys
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional, Set, Tuple

from .context import LOCAL_PREFIX, ModuleContext

# Top-level packages never read: torch's own layers are modelled by
# ``torch_api``; the others hold no modules a block builds.
NEVER_READ = frozenset({
    "torch", "numpy", "builtins", "functools", "math", "typing", "collections", "itertools", "os", "sys",
    "warnings", "copy", "abc", "enum", "dataclasses", "inspect", "logging", "re", "operator", "types",
    "contextlib", "typing_extensions", "einops", "scipy", "pandas", "PIL", "cv2",
    "__resnetlint__",  # the stubs' vocabulary of role contracts (see init_exec.CONTRACT_MODULE)
})
# Files at which the search for enclosing project folders stops.
PROJECT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", ".git")
MAX_PACKAGE_FILES = 5000  # a package larger than this is not searched for attribute reads
MAX_PARSED_MODULES = 256  # LRU bound on the modules kept parsed
MAX_STAR_IMPORTS = 16  # a module with more `from x import *` is a hub, not where a helper is found
MAX_MODULE_BYTES = 2 * 1024 * 1024  # a generated file is never a helper worth modelling
# Contracts of library builders, read when the library itself is not
# installed (see resnetlint/stubs/README.md).
STUB_ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "stubs")


@dataclass(frozen=True)
class Definition:
    """A name bound at the top level of a module: a function, a class or a
    constant (``BN = partial(nn.BatchNorm2d, eps=1e-3)``)."""

    ctx: ModuleContext
    name: str
    kind: str  # "function" | "class" | "constant"


@dataclass(frozen=True)
class External:
    """A name outside anything we read (``torch.nn.Conv2d``, or a package
    that is not installed here), as an absolute dotted name."""

    qualname: str


Resolved = Optional[object]  # Definition | External | None (unknown)


class _Parsed:
    __slots__ = ("ctx", "stamp", "digest")

    def __init__(self, ctx: Optional[ModuleContext], stamp: Tuple[int, int], digest: str):
        self.ctx = ctx
        self.stamp = stamp
        self.digest = digest


class Project:
    """Module lookup and name resolution across the checked tree and the
    installed packages (read, never imported)."""

    def __init__(self, extra_roots: Tuple[str, ...] = (), installed: bool = True):
        self.extra_roots = tuple(os.path.abspath(r) for r in extra_roots)
        self.installed = installed
        self._parsed: "OrderedDict[str, _Parsed]" = OrderedDict()
        self._module_files: Dict[Tuple[str, Tuple[str, ...]], Optional[str]] = {}
        self._installed_roots: Dict[str, Optional[str]] = {}
        self._roots: Dict[str, Tuple[str, ...]] = {}
        self._memo: Dict[Tuple[str, str, str], Tuple[object, Dict[str, str]]] = {}
        self._recorders: List[Dict[str, str]] = []
        self._resolving: Set[Tuple[str, str]] = set()
        self._packages: Dict[str, List[str]] = {}
        self._texts: Dict[str, str] = {}
        self._attribute_reads: Dict[Tuple[str, str, Optional[str]], bool] = {}

    # ------------------------------------------------------------------
    # Dependencies
    # ------------------------------------------------------------------
    @contextlib.contextmanager
    def recording(self) -> Iterator[Dict[str, str]]:
        """Collect ``path -> content hash`` of every module consulted inside
        the block (nested recordings all see what the inner ones consult)."""
        consulted: Dict[str, str] = {}
        self._recorders.append(consulted)
        try:
            yield consulted
        finally:
            self._recorders.pop()

    def _consult(self, path: str, digest: str) -> None:
        for recorder in self._recorders:
            recorder[path] = digest

    def memo(self, ctx: ModuleContext, key: str, compute: Callable[[], object]) -> object:
        """``compute()`` once per (module content, key); whoever reuses the
        value also depends on what computing it consulted."""
        entry = (ctx.path, ctx.digest, key)
        found = self._memo.get(entry)
        if found is None:
            with self.recording() as consulted:
                value = compute()
            found = self._memo[entry] = (value, dict(consulted))
        value, consulted = found
        for path, digest in consulted.items():
            self._consult(path, digest)
        return value

    # ------------------------------------------------------------------
    # Finding module files
    # ------------------------------------------------------------------
    def roots_for(self, path: str) -> Tuple[str, ...]:
        """Folders that act as ``sys.path`` entries for a file, nearest first:
        the folder above its topmost package, then every folder above that up
        to the project's top (namespace packages, scripts that extend
        ``sys.path``), then the configured extra roots."""
        folder = os.path.dirname(os.path.abspath(path))
        found = self._roots.get(folder)
        if found is not None:
            return found
        roots: List[str] = []
        top = folder
        while os.path.isfile(os.path.join(top, "__init__.py")):
            parent = os.path.dirname(top)
            if parent == top:
                break
            top = parent
        current = top
        while True:
            roots.append(current)
            if any(os.path.exists(os.path.join(current, marker)) for marker in PROJECT_MARKERS):
                break
            parent = os.path.dirname(current)
            if parent == current or len(roots) >= 8:
                break
            current = parent
        if folder not in roots:
            roots.insert(0, folder)  # a loose script: its siblings import as top-level modules
        result = tuple(dict.fromkeys(roots + list(self.extra_roots)))
        self._roots[folder] = result
        return result

    def module_file(self, dotted: str, near: str) -> Optional[str]:
        """The file of an absolutely imported module, searched from the roots
        of the file ``near``, then among the installed packages."""
        parts = tuple(dotted.split("."))
        if not parts or parts[0] in NEVER_READ or not all(p.isidentifier() for p in parts):
            return None
        roots = self.roots_for(near)
        key = (dotted, roots)
        if key in self._module_files:
            return self._module_files[key]
        found = None
        for root in roots:
            found = _file_in(root, parts)
            if found is not None:
                break
        if found is None and self.installed:
            top = self._installed_root(parts[0])
            if top is not None:
                found = _file_in(os.path.dirname(top), parts)
        if found is None and self.installed and self._installed_root(parts[0]) is None:
            found = _file_in(STUB_ROOT, parts)  # the library is absent: its builders' contracts
        self._module_files[key] = found
        return found

    def relative_file(self, near: str, level: int, dotted: str) -> Optional[str]:
        """The file of ``from <level dots><dotted> import ...`` written in
        ``near`` (resolved by folders, so packages without ``__init__.py``
        work as Python's namespace packages do)."""
        folder = os.path.dirname(os.path.abspath(near))
        for _ in range(level - 1):
            folder = os.path.dirname(folder)
        parts = tuple(p for p in dotted.split(".") if p)
        if not parts:
            for init in (os.path.join(folder, "__init__.py"), os.path.join(folder, "__init__.pyi")):
                if os.path.isfile(init):
                    return init
            return None
        return _file_in(folder, parts)

    def _installed_root(self, top: str) -> Optional[str]:
        """The folder (or file) of an installed top-level package, found the
        way the import system would, without importing anything."""
        if top in self._installed_roots:
            return self._installed_roots[top]
        found = None
        try:
            from importlib.machinery import PathFinder

            spec = PathFinder.find_spec(top, sys.path)  # searches folders only: runs no package code
        except (ImportError, ValueError, OSError):
            spec = None
        if spec is not None and spec.origin not in (None, "built-in", "frozen") or \
                spec is not None and spec.submodule_search_locations:
            if spec.submodule_search_locations:
                found = os.path.join(list(spec.submodule_search_locations)[0], "")
                found = found.rstrip(os.sep)
            elif spec.origin and spec.origin.endswith(".py"):
                found = spec.origin
            if found is not None and _is_standard_library(found):
                found = None
        self._installed_roots[top] = found
        return found

    # ------------------------------------------------------------------
    # Parsing modules
    # ------------------------------------------------------------------
    def context(self, path: str) -> Optional[ModuleContext]:
        """The model's view of a module file (None when it cannot be read or
        parsed), recorded as a dependency of whatever is being analysed."""
        path = os.path.abspath(path)
        try:
            status = os.stat(path)
        except OSError:
            return None
        stamp = (status.st_mtime_ns, status.st_size)
        parsed = self._parsed.get(path)
        if parsed is None or parsed.stamp != stamp:
            parsed = self._parse(path, stamp, status.st_size)
            self._parsed[path] = parsed
            while len(self._parsed) > MAX_PARSED_MODULES:
                self._parsed.popitem(last=False)
        else:
            self._parsed.move_to_end(path)
        self._consult(path, parsed.digest)
        return parsed.ctx

    def text_of(self, node) -> Optional[str]:
        """Source text of a node of an imported module (a helper's argument a
        message quotes), or None when no module read here holds it."""
        for parsed in self._parsed.values():
            index = getattr(parsed.ctx, "source_index", None)
            if index is not None and index.position(node) is not None:
                return index.text(node)
        return None

    def _parse(self, path: str, stamp: Tuple[int, int], size: int) -> _Parsed:
        from ..source import SourceError, content_digest, read_source

        if size > MAX_MODULE_BYTES:
            return _Parsed(None, stamp, "too-large")
        try:
            source = read_source(path)
        except SourceError:
            return _Parsed(None, stamp, "unreadable")
        digest = content_digest(source.raw)
        ctx = module_context(source.text, path, self, digest)
        return _Parsed(ctx, stamp, digest)

    # ------------------------------------------------------------------
    # Resolving names
    # ------------------------------------------------------------------
    def resolve(self, ctx: ModuleContext, qualname: str) -> Resolved:
        """What a qualified name as written in ``ctx`` denotes: ``<local>.X``
        (a top-level name of ``ctx``), ``.common.conv3x3`` (relative),
        ``timm.layers.create_conv2d`` (absolute).  Memoised per module (the
        memo lives and dies with the parsed module), replaying the modules
        the first resolution consulted."""
        memo = ctx.resolved
        found = memo.get(qualname)
        if found is None:
            with self.recording() as consulted:
                resolved = self._resolve(ctx, qualname)
            found = memo[qualname] = (resolved, dict(consulted))
        resolved, consulted = found
        for path, digest in consulted.items():
            self._consult(path, digest)
        return resolved

    def _resolve(self, ctx: ModuleContext, qualname: str) -> Resolved:
        if qualname.startswith(LOCAL_PREFIX):
            return self.lookup(ctx, qualname[len(LOCAL_PREFIX):].split("."))
        if qualname.startswith("."):
            level = len(qualname) - len(qualname.lstrip("."))
            parts = qualname[level:].split(".") if qualname[level:] else []
            return self._resolve_parts(ctx, parts, lambda prefix: self.relative_file(ctx.path, level, ".".join(prefix)))
        parts = qualname.split(".")
        if parts[0] in NEVER_READ:
            return External(qualname)
        resolved = self._resolve_parts(ctx, parts, lambda prefix: self.module_file(".".join(prefix), ctx.path)
                                       if prefix else None)
        return resolved if resolved is not None else External(qualname)

    def _resolve_parts(self, ctx: ModuleContext, parts: List[str], file_of) -> Resolved:
        """Longest module prefix of ``parts``, then the rest looked up inside it."""
        for split in range(len(parts), -1, -1):
            path = file_of(parts[:split])
            if path is None:
                continue
            if split == len(parts) and split > 0:
                bound = self._bound_by_package(parts, file_of)
                if bound is not None:
                    return bound
            module = self.context(path)
            if module is None:
                return None
            rest = parts[split:]
            return self.lookup(module, rest) if rest else ModuleRef(module)
        return None

    def _bound_by_package(self, parts: List[str], file_of) -> Resolved:
        """``pkg.name`` where ``pkg/name.py`` exists but ``pkg/__init__.py``
        also binds ``name`` (``from .create_conv2d import create_conv2d``):
        the package attribute is what ``__init__`` bound last, the function,
        not the submodule."""
        parent = file_of(parts[:-1])
        if parent is None or os.path.basename(parent) not in ("__init__.py", "__init__.pyi"):
            return None
        package = self.context(parent)
        name = parts[-1]
        if package is None or package.is_ambiguous(name):
            return None
        if name in package.functions or name in package.classes or name in package.constants or \
                name in package.imports:
            return self.lookup(package, [name])
        return None

    def lookup(self, ctx: ModuleContext, parts: List[str]) -> Resolved:
        """``parts[0]`` as bound at the top level of ``ctx`` (definitions,
        imports, star imports, submodules of a package), then the rest."""
        if not parts:
            return ModuleRef(ctx)
        name, rest = parts[0], parts[1:]
        key = (ctx.path, ".".join(parts))
        if key in self._resolving or ctx.is_ambiguous(name):
            return None  # an import cycle, or a name bound twice
        self._resolving.add(key)
        try:
            return self._lookup(ctx, name, rest)
        finally:
            self._resolving.discard(key)

    def _lookup(self, ctx: ModuleContext, name: str, rest: List[str]) -> Resolved:
        for kind, table in (("function", ctx.functions), ("class", ctx.classes), ("constant", ctx.constants)):
            if name in table:
                return Definition(ctx, name, kind) if not rest else None
        if name in ctx.imports:
            target = ctx.imports[name]
            return self.resolve(ctx, ".".join([target] + rest))
        if os.path.basename(ctx.path) in ("__init__.py", "__init__.pyi"):
            submodule = _file_in(os.path.dirname(ctx.path), (name,))
            if submodule is not None:
                module = self.context(submodule)
                return self.lookup(module, rest) if module is not None else None
        if len(ctx.star_imports) > MAX_STAR_IMPORTS:
            return None  # a re-export hub (every model of a zoo): searching it would read the whole package
        for star in ctx.star_imports:
            if star.startswith("torch"):
                continue
            resolved = self.resolve(ctx, ".".join([star, name] + rest))
            if isinstance(resolved, (Definition, ModuleRef)):
                return resolved
        return None

    def attribute_read_elsewhere(self, ctx: ModuleContext, name: str, owner: Optional[str] = None) -> bool:
        """Another module of the package reads ``<something>.<name>`` (a parent
        applying its child's layer, a helper given the module): a cheap text
        search, made only when a rule is about to call an attribute unused.
        With ``owner``, only a module that imports this one and names that
        class counts: in a package of a hundred models some file always
        reads a ``.body`` or a ``.fc`` (of a ``Block`` of its own), and one
        that never imports the class cannot be reaching into it."""
        key = (os.path.abspath(ctx.path), name, owner)
        found = self._attribute_reads.get(key)
        if found is None:
            found = self._attribute_read_elsewhere(key[0], name, owner)
            self._attribute_reads[key] = found
        return found

    def forget_text_searches(self, path: str) -> None:
        """After an edit of ``path`` (the editor server): its text, and what
        the searches found in the package, may have changed; the other
        files' texts have not, and are not read again."""
        self._texts.pop(os.path.abspath(path), None)
        self._attribute_reads.clear()

    def _attribute_read_elsewhere(self, path: str, name: str, owner: Optional[str]) -> bool:
        # ``self.<name>`` in another file is that class's own attribute, not
        # a read of this module's; a loose file has no package to search.
        if not os.path.isfile(os.path.join(os.path.dirname(path), "__init__.py")):
            return False
        pattern = re.compile(
            r"(?:(?<=\.)\w+|(?<![\w.])(?!self\b)\w+|[)\]])\s*\.\s*" + re.escape(name) + r"\b"
        )
        named = re.compile(r"\b" + re.escape(owner) + r"\b") if owner is not None else None
        if owner is not None:
            # ...and imports it: every model file of timm has a `Block` of its own whose `.norm2` it reads
            imports = re.compile(r"^\s*(?:from|import)\s[^\n]*\b" + re.escape(_module_stem(path)) + r"\b", re.M)
            # a module this one imports from may read what it is handed (`helper(self, x)` reading
            # `module.linear_pos`): one that defines a function this module hands itself to
            own = self._package_text(path)
            helpers = _imported_names(own)
            handed_to = sorted(set(_HANDED_SELF.findall(own)) - _BUILTINS_GIVEN_SELF)
            defines_handed = re.compile(r"^\s*def\s+(?:" + "|".join(map(re.escape, handed_to)) + r")\s*\(", re.M) \
                if handed_to else None
        for other in self._package_files(path):
            if other == path:
                continue
            text = self._package_text(other)
            # substring tests first: the regular expressions cost a
            # millisecond per file, and a rule asks about every attribute
            if name not in text:
                continue
            if owner is not None:
                helper = defines_handed is not None and _module_stem(other) in helpers and \
                    defines_handed.search(text) is not None
                if not helper and (owner not in text or not named.search(text) or not imports.search(text)):
                    continue
            if pattern.search(text):
                return True
        return False

    def _package_text(self, path: str) -> str:
        text = self._texts.get(path)
        if text is None:
            try:
                with open(path, encoding="utf-8", errors="replace") as handle:
                    text = handle.read(MAX_MODULE_BYTES)
            except OSError:
                text = ""
            self._texts[path] = text
        return text

    def _package_files(self, path: str) -> List[str]:
        """The Python files of the package a file belongs to (its topmost
        package folder; a loose file's own folder), at most a few thousand."""
        folder = os.path.dirname(os.path.abspath(path))
        top = folder
        while os.path.isfile(os.path.join(os.path.dirname(top), "__init__.py")):
            top = os.path.dirname(top)
        found = self._packages.get(top)
        if found is None:
            found = []
            for current, dirs, files in os.walk(top):
                dirs[:] = [d for d in dirs if not d.startswith(".") and d != "__pycache__"]
                found.extend(os.path.join(current, f) for f in files if f.endswith(".py"))
                if len(found) > MAX_PACKAGE_FILES or top == folder and current != top:
                    break
            self._packages[top] = found
        return found

    def module_class_bases(self, ctx: ModuleContext, cls) -> List[Tuple[str, Resolved]]:
        """Each positional base of a class: its qualified name as written and
        what it resolves to."""
        out = []
        for base in cls.bases:
            if base.keyword is not None:
                continue
            qual = ctx.qualify(base.value)
            out.append((qual or "", self.resolve(ctx, qual) if qual else None))
        return out


@dataclass(frozen=True)
class ModuleRef:
    """A module itself (``from . import common`` binds one)."""

    ctx: ModuleContext


def lookup_local(ctx: ModuleContext, qualname: str) -> Resolved:
    """Resolution without a project: this module's own top-level names."""
    if not qualname.startswith(LOCAL_PREFIX):
        return None if qualname.startswith(".") else External(qualname)
    name = qualname[len(LOCAL_PREFIX):]
    if ctx.is_ambiguous(name):
        return None
    for kind, table in (("function", ctx.functions), ("class", ctx.classes), ("constant", ctx.constants)):
        if name in table:
            return Definition(ctx, name, kind)
    return None


def _file_in(root: str, parts: Tuple[str, ...]) -> Optional[str]:
    """``root/a/b/__init__.py`` or ``root/a/b.py`` (or their ``.pyi``
    stubs, when that is all there is) for the module ``a.b``."""
    folder = os.path.join(root, *parts)
    for candidate in (os.path.join(folder, "__init__.py"), folder + ".py",
                      os.path.join(folder, "__init__.pyi"), folder + ".pyi"):
        if os.path.isfile(candidate):
            return candidate
    return None


def _is_standard_library(path: str) -> bool:
    import sysconfig

    stdlib = sysconfig.get_paths().get("stdlib") or ""
    return bool(stdlib) and os.path.abspath(path).startswith(os.path.abspath(stdlib) + os.sep) and \
        "site-packages" not in path


def module_context(text: str, path: str, project: Optional[Project], digest: str = "") -> Optional[ModuleContext]:
    """A module the checked code imports from, built like a checked file
    but whole: every top-level statement, every class member."""
    from ..prefilter import FileScan, split_lines
    from . import lite

    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    scan = FileScan(tree)
    try:
        module, index = lite.build(split_lines(text), tree.body, {})
    except RecursionError:
        return None
    ctx = ModuleContext(module, scan.facts(), path, project=project, digest=digest, foreign=True)
    ctx.source_index = index
    return ctx


def _module_stem(path: str) -> str:
    """The name a module is imported by: its file's, or its package's for an ``__init__.py``."""
    name = os.path.basename(os.path.dirname(path) if os.path.basename(path) == "__init__.py" else path)
    return os.path.splitext(name)[0]


# ``helper(self, ...)``: a function the block hands itself to (not a method's definition, nor ``x.f(self)``)
_HANDED_SELF = re.compile(r"(?<!def\s)(?<![\w.])(\w+)\s*\(\s*self\s*[,)]")
_BUILTINS_GIVEN_SELF = {"super", "isinstance", "getattr", "hasattr", "setattr", "delattr", "type", "id", "vars", "print",
                        "len", "repr", "str"}

_IMPORT_LINE = re.compile(r"^\s*(?:from\s+([\w.]+)\s+import\s+\(?([^)\n]*)|import\s+([\w., ]+))", re.M)


def _imported_names(text: str) -> Set[str]:
    """The last part of every module a text imports from, and the names it
    imports (``from . import common``): cheap, by the text of its import lines."""
    names: Set[str] = set()
    for source, imported, plain in _IMPORT_LINE.findall(text):
        for dotted in ([source] if source else []) + [part.split(" as ")[0] for part in plain.split(",")]:
            if dotted.strip(" ."):
                names.add(dotted.strip(" .").rsplit(".", 1)[-1])
        names.update(part.split(" as ")[0].strip() for part in imported.split(",") if part.strip())
    return names
