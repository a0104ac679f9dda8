"""The persistent result cache: a rerun re-analyses only what changed.

Layout (the directory is ``Settings.cache_dir``, by default
``.resnetlint_cache`` at the project root: the configuration's directory,
else the nearest directory above the first path checked that holds a
``pyproject.toml`` or a ``.git``, else the current directory; see
:func:`cache_dir_for`)::

    .resnetlint_cache/
        CACHEDIR.TAG            marks it as a cache for backup tools
        .gitignore              "*": never committed
        results-<key>.json      one index per settings fingerprint

**One index file per fingerprint.**  ``<key>`` is a hash of everything
besides a file's own content that can change its findings: the resnetlint
version, the cache format, resnetlint's own source files (the size and
mtime of every module of the package and of the rules, so a development
edit starts a fresh index), Python's and libcst's versions, and the
settings that act per file (the rule selection as given, per-file-ignores,
``config_root``, ``fast``).  Runs with other settings use another index and
never see these results; the 8 most recently written indexes are kept.

An index is one JSON document ``{"format", "key", "entries"}`` mapping each
absolute path to ``[size, mtime_ns, inode, mode, hash, classes, residual,
payload, dependencies]``.  It is read once per run (a few milliseconds for thousands of
files), and a file is a *hit* when

* its ``stat()`` still matches (size, mtime, inode, mode): nothing is read; or
* the stat differs but the hash of its decoded text is the one stored (a
  ``touch``, a checkout that rewrote the same content): the new stat is
  recorded.

``dependencies`` maps every other module the analysis read (a helper module,
the module of a base class: see :mod:`resnetlint.model.project`) to ``[size,
mtime_ns, hash of its bytes]``; the entry is a hit only while each of them
is unchanged (same stat, or same content), so an edit to ``common.py``
re-checks exactly the files that used it.

The hash is BLAKE2b over the decoded text the analysis saw, so it always
describes exactly what the results were computed from.  A file whose mtime
is within :data:`RACY_NS` of the run's start is stored without its stat (it
could still change within the same clock tick unnoticed), so the next run
re-hashes it: this is git's "racily clean" rule.

``payload`` is ``null`` for a file without findings (nearly all of them),
otherwise the serialized findings (fix edits included) and the text, which
the report needs to show the offending lines.

**What is never trusted from the cache.**  A hit has no syntax tree and no
block summaries (``FileResult.blocks``), which only the trace and ``--fix``
use.  So a cached file *with findings* is re-checked when the trace is on
(``trace.mode`` not ``"off"``) or ``settings.fix`` is not ``"off"``, and a
file with a residual block is re-checked under ``--trace-all``.  Files with
findings are few (six in 2,003 files of the model zoos), so this costs little
and keeps one simple rule: whatever needs more than the static report is
computed fresh.  Results of files that could not be read, or with an
internal error (RL999), are never stored.

**Concurrency and damage.**  Writes go to a temporary file in the cache
directory and are renamed over the index (``os.replace``), so a reader sees
the old or the new index, never a torn one; before writing, the index on
disk is re-read and merged with this run's entries when another run wrote
it meanwhile (for the paths both checked, the last writer wins).  An
unreadable, corrupt or foreign index is ignored and rewritten; a cache
directory that cannot be created or written makes the run uncached, never
an error.  Entries of files that no longer exist are dropped when the index
is written.

Importing this module, and a run whose files are all hits, import neither
libcst nor the block model.
"""
from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

try:  # hashlib's blake2b, without importing OpenSSL's _hashlib (a few ms at start-up)
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - other Python implementations
    from hashlib import blake2b

from . import __version__
from .findings import Confirmation, Edit, Finding, FixInfo
from .results import FileResult

FORMAT = 2
DEFAULT_DIR = ".resnetlint_cache"
INDEX_PREFIX = "results-"
KEEP_INDEXES = 8
RACY_NS = 2_000_000_000  # mtimes this close to the run's start are not trusted
CACHEDIR_TAG = ("Signature: 8a477f597d28d172789f06886806bc55\n"
                "# This file is a cache directory tag created by resnetlint.\n"
                "# For information about cache directory tags see https://bford.info/cachedir/\n")

# Entry fields
_SIZE, _MTIME, _INO, _MODE, _HASH, _CLASSES, _RESIDUAL, _PAYLOAD, _DEPS = range(9)


def cache_dir_for(settings, paths: Sequence[str] = ()) -> str:
    """Where the cache of a run over ``paths`` lives: ``settings.cache_dir``,
    else ``.resnetlint_cache`` at the project root, so that running from a
    subdirectory (or from outside the project) reuses the same cache and
    leaves no cache directory behind in whatever directory it started in."""
    return settings.cache_dir or default_cache_dir(getattr(settings, "config_root", None), paths)


def default_cache_dir(config_root: Optional[str], paths: Sequence[str] = ()) -> str:
    return os.path.join(config_root or project_root(paths), DEFAULT_DIR)


def project_root(paths: Sequence[str] = ()) -> str:
    """The nearest directory holding a ``pyproject.toml`` or a ``.git``,
    walking up from the first path (or the current directory); the current
    directory when there is none."""
    start = os.path.abspath(paths[0] if paths and paths[0] != "-" else os.curdir)
    directory = start if os.path.isdir(start) else os.path.dirname(start)
    while True:
        if os.path.isfile(os.path.join(directory, "pyproject.toml")) or \
                os.path.exists(os.path.join(directory, ".git")):
            return directory
        parent = os.path.dirname(directory)
        if parent == directory:
            return os.getcwd()
        directory = parent


def text_hash(text: str) -> str:
    return blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


# --------------------------------------------------------------------------
# The key: what besides a file's content decides its results


def _package_dirs() -> List[str]:
    """resnetlint's own package directories, the rules' included (found
    without importing the rules, which would import libcst)."""
    import importlib.util

    here = os.path.dirname(os.path.abspath(__file__))
    dirs = [here] + [os.path.join(here, sub) for sub in ("model", "rules")]
    try:
        spec = importlib.util.find_spec("resnetlint.rules")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        dirs.extend(spec.submodule_search_locations)
    out, seen = [], set()
    for d in dirs:
        d = os.path.realpath(d)
        if d not in seen and os.path.isdir(d):
            seen.add(d)
            out.append(d)
    return out


def code_fingerprint() -> List[Any]:
    """Size and mtime of every module the analysis is made of."""
    stamp: List[Any] = []
    for directory in _package_dirs():
        try:
            with os.scandir(directory) as entries:
                for entry in sorted(entries, key=lambda e: e.name):
                    if entry.name.endswith(".py"):
                        st = entry.stat()
                        stamp.append([directory, entry.name, st.st_size, st.st_mtime_ns])
        except OSError:
            stamp.append([directory, None])
    stamp.append(["libcst", _libcst_stamp()])
    return stamp


def _libcst_stamp() -> Any:
    """libcst's version without importing it (its import costs ~0.15 s)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("libcst")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    try:
        st = os.stat(os.path.join(os.path.dirname(spec.origin), "_version.py"))
        return [spec.origin, st.st_size, st.st_mtime_ns]
    except OSError:
        return spec.origin


def settings_fingerprint(settings) -> Dict[str, Any]:
    """The settings that change a single file's results (see the module
    docstring); the rule selection is kept as given: which rules it selects
    is a function of it and of the rule catalog, itself part of the code."""
    def codes(values):
        return None if values is None else sorted(str(v) for v in values)

    table = getattr(settings, "per_file_ignores", None) or {}
    root = getattr(settings, "config_root", None)
    return {
        "select": codes(settings.select),
        "ignore": codes(settings.ignore),
        "extend_select": codes(settings.extend_select),
        "per_file_ignores": sorted([str(k), codes(v)] for k, v in table.items()),
        "config_root": os.path.abspath(root) if root else None,
        "cwd": os.getcwd() if table else None,  # per-file-ignores relative to it when there is no root
        "fast": bool(settings.fast),
    }


def cache_key(settings) -> str:
    material = {
        "format": FORMAT,
        "version": __version__,
        "python": list(sys.version_info[:3]),
        "code": code_fingerprint(),
        "settings": settings_fingerprint(settings),
    }
    return blake2b(json.dumps(material, sort_keys=True).encode(), digest_size=12).hexdigest()


# --------------------------------------------------------------------------
# Findings <-> JSON


def _plain(value: Any) -> bool:
    """JSON round-trips it (tuples come back as lists, which ``expect``'s
    readers accept)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def finding_to_json(f: Finding) -> Optional[list]:
    if not _plain(f.expect):
        return None
    fix = None
    if f.fix is not None:
        fix = [f.fix.safety, f.fix.description, f.fix.applied,
               [[e.line, e.column, e.end_line, e.end_column, e.text] for e in f.fix.edits]]
    return [f.code, f.rule, f.severity, f.line, f.column, f.end_line, f.end_column, f.symbol, f.message, f.help,
            f.confirmation.status, f.confirmation.detail, fix, f.expect]


def finding_from_json(data: list, path: str) -> Finding:
    (code, rule, severity, line, column, end_line, end_column, symbol, message, help_text,
     status, detail, fix, expect) = data
    if not all(type(v) is int for v in (line, column, end_line, end_column)) or \
            not all(isinstance(v, str) for v in (code, rule, severity, symbol, message, help_text, status, detail)) \
            or not isinstance(expect, dict):
        raise TypeError("finding")
    finding = Finding(code, rule, severity, path, line, column, end_line, end_column, symbol, message, help_text,
                      confirmation=Confirmation(status, detail))
    if fix is not None:
        safety, description, applied, edits = fix
        finding.fix = FixInfo(safety, description, applied, [Edit(*e) for e in edits])
    finding.expect = expect
    return finding


# --------------------------------------------------------------------------
# The cache


class ResultCache:
    """One run's view of the index for its settings."""

    def __init__(self, settings, directory: Optional[str] = None, paths: Sequence[str] = ()):
        self.directory = os.path.abspath(directory or cache_dir_for(settings, paths))
        self.key = cache_key(settings)
        self.path = os.path.join(self.directory, f"{INDEX_PREFIX}{self.key}.json")
        trace = settings.trace
        # Hits lack the syntax tree and block summaries (see the docstring).
        self._live_findings = trace.mode != "off" or settings.fix != "off"
        self._live_residual = bool(trace.trace_all)
        self._started_ns = time.time_ns()
        self._cwd = os.getcwd()
        self._entries: Dict[str, list] = {}
        self._loaded_stat: Optional[Tuple[int, int]] = None
        self._new: Dict[str, list] = {}  # written this run
        self._used: set = set()  # keys this run looked up
        self._pending: Dict[str, Optional[os.stat_result]] = {}  # misses: stat before checking
        self.hits = 0
        self._load()

    # -- reading

    def _load(self) -> None:
        entries, stat = _read_index(self.path, self.key)
        self._entries, self._loaded_stat = entries, stat

    def _abs(self, path: str) -> str:
        return os.path.normpath(os.path.join(self._cwd, path))

    def lookup(self, paths: Sequence[str]) -> Tuple[List[FileResult], List[str]]:
        """Split ``paths`` into results from the cache and paths to check."""
        hits: List[FileResult] = []
        misses: List[str] = []
        entries = self._entries
        for path in paths:
            key = self._abs(path)
            self._used.add(key)
            try:
                st = os.stat(path)
            except OSError:
                self._pending[key] = None
                misses.append(path)
                continue
            entry = entries.get(key)
            result = None
            if entry is not None:
                try:
                    if not self._reusable(entry):
                        pass
                    elif (entry[_MTIME] == st.st_mtime_ns and entry[_SIZE] == st.st_size
                          and entry[_INO] == st.st_ino and entry[_MODE] == st.st_mode):
                        result = self._result(path, entry)
                    else:
                        result = self._rehash(path, key, entry, st)
                except (TypeError, ValueError, KeyError, IndexError, AttributeError):
                    result = None  # a damaged entry: check the file again
            if result is None:
                self._pending[key] = st
                misses.append(path)
            else:
                hits.append(result)
        self.hits = len(hits)
        return hits, misses

    def _reusable(self, entry: list) -> bool:
        if entry[_PAYLOAD] is not None and self._live_findings:
            return False
        if entry[_RESIDUAL] and self._live_residual:
            return False
        return _dependencies_unchanged(entry[_DEPS])

    def _rehash(self, path: str, key: str, entry: list, st: os.stat_result) -> Optional[FileResult]:
        """The stat changed: a hit if the text did not."""
        from .source import SourceError, read_source

        try:
            text = read_source(path).text
        except SourceError:
            return None
        if text_hash(text) != entry[_HASH]:
            return None
        result = self._result(path, entry)
        updated = list(entry)
        updated[_SIZE], updated[_MTIME], updated[_INO], updated[_MODE] = self._stat_fields(st)
        self._new[key] = updated  # the new stat, so that the next run need not read it
        return result

    def _result(self, path: str, entry: list) -> FileResult:
        classes = entry[_CLASSES]
        if type(classes) is not int:
            raise TypeError("classes")
        result = FileResult(path, classes=classes, cached=True)
        payload = entry[_PAYLOAD]
        if payload is not None:
            result.findings = [finding_from_json(f, path) for f in payload["findings"]]
            result.text = payload["text"]
            if not isinstance(result.text, str) or not result.findings:
                raise TypeError("payload")
        return result

    def _stat_fields(self, st: Optional[os.stat_result]) -> Tuple[int, int, int, int]:
        if st is None or st.st_mtime_ns >= self._started_ns - RACY_NS:
            return (-1, -1, -1, -1)  # re-hash next time
        return (st.st_size, st.st_mtime_ns, st.st_ino, st.st_mode)

    # -- writing

    def store(self, results: Iterable[FileResult]) -> None:
        """Remember freshly checked results (those worth keeping)."""
        for result in results:
            if result.error is not None or result.tracebacks or result.cached:
                continue
            if any(f.code == "RL999" for f in result.findings):
                continue
            key = self._abs(result.path)
            if key not in self._pending:
                continue  # not looked up in this run: no stat from before it was read
            payload = None
            if result.findings:
                findings = [finding_to_json(f) for f in result.findings]
                if any(f is None for f in findings):
                    continue
                payload = {"findings": findings, "text": result.text}
            residual = any(b.residual for b in result.blocks.values())
            dependencies = _dependency_stamps(result.dependencies)
            if dependencies is None:
                continue  # a module it read changed or vanished meanwhile
            self._new[key] = [*self._stat_fields(self._pending[key]), text_hash(result.text), result.classes,
                              residual, payload, dependencies]

    def save(self) -> None:
        """Write the index if this run added to it; never raises."""
        if not self._new:
            return
        try:
            # Files gone since they were cached (looked for only when writing anyway).
            stale = [k for k in self._entries if k not in self._used and not os.path.exists(k)]
            self._write(stale)
        except (OSError, ValueError, TypeError):
            pass  # an unwritable cache only makes the next run slower

    def _write(self, stale: List[str]) -> None:
        _prepare_dir(self.directory)
        entries = self._entries
        # Another run may have written the index since we read it: keep its
        # entries too (ours win for the files both checked).
        if _index_stat(self.path) != self._loaded_stat:
            theirs, _ = _read_index(self.path, self.key)
            entries = {**entries, **theirs}
        for key in stale:
            entries.pop(key, None)
        entries.update(self._new)
        data = json.dumps({"format": FORMAT, "key": self.key, "entries": entries}, separators=(",", ":"))
        tmp = os.path.join(self.directory, f".tmp-{os.getpid()}-{time.time_ns()}.json")
        try:
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write(data)
            os.replace(tmp, self.path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        self._entries, self._new = entries, {}
        self._loaded_stat = _index_stat(self.path)
        _prune_indexes(self.directory, keep=self.path)


def _index_stat(path: str) -> Optional[Tuple[int, int]]:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


def _read_index(path: str, key: str) -> Tuple[Dict[str, list], Optional[Tuple[int, int]]]:
    """The entries of an index, ``{}`` for a missing, unreadable, corrupt or
    foreign one."""
    try:
        with open(path, "rb") as handle:
            stat = os.fstat(handle.fileno())
            raw = handle.read()
        data = json.loads(raw)
    except (OSError, ValueError, RecursionError):
        return {}, None
    loaded = (stat.st_mtime_ns, stat.st_size)
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("key") != key:
        return {}, loaded
    entries = data.get("entries")
    if not isinstance(entries, dict):
        return {}, loaded
    # Entries are checked where they are used (a damaged one is a miss).
    return {k: v for k, v in entries.items() if type(v) is list and len(v) == 9}, loaded


def _dependency_stamps(dependencies: Dict[str, str]) -> Optional[Dict[str, list]]:
    """``path -> [size, mtime_ns, hash]`` for the modules an analysis read
    (None when one of them no longer has the content it was read with)."""
    out = {}
    for path, digest in dependencies.items():
        try:
            st = os.stat(path)
        except OSError:
            return None
        if _content_digest(path) != digest:
            return None
        out[path] = [st.st_size, st.st_mtime_ns, digest]
    return out


def _dependencies_unchanged(stamps: Any) -> bool:
    if not stamps:
        return True
    for path, (size, mtime_ns, digest) in stamps.items():
        try:
            st = os.stat(path)
        except OSError:
            return False
        if st.st_size == size and st.st_mtime_ns == mtime_ns:
            continue
        if _content_digest(path) != digest:
            return False
    return True


def _content_digest(path: str) -> Optional[str]:
    from .source import content_digest

    try:
        with open(path, "rb") as handle:
            return content_digest(handle.read())
    except OSError:
        return None


def _prepare_dir(directory: str) -> None:
    os.makedirs(directory, exist_ok=True)
    for name, content in (("CACHEDIR.TAG", CACHEDIR_TAG), (".gitignore", "# Created by resnetlint automatically.\n*\n")):
        target = os.path.join(directory, name)
        if not os.path.exists(target):
            tmp = f"{target}.{os.getpid()}.tmp"
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write(content)
            os.replace(tmp, target)


def _prune_indexes(directory: str, keep: str) -> None:
    """Keep the most recently written indexes (other settings, older code)."""
    try:
        with os.scandir(directory) as entries:
            found = [(e.stat().st_mtime_ns, e.path) for e in entries
                     if e.name.startswith(INDEX_PREFIX) and e.name.endswith(".json") and e.path != keep]
    except OSError:
        return
    for _, path in sorted(found, reverse=True)[KEEP_INDEXES - 1:]:
        try:
            os.unlink(path)
        except OSError:
            pass


def open_cache(settings, paths: Sequence[str] = ()) -> Optional[ResultCache]:
    """The cache of a run over ``paths``, or None when caching is off."""
    if not getattr(settings, "cache", False):
        return None
    return ResultCache(settings, paths=paths)
