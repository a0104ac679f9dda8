"""The verdict cache: the worker's runs of a class, kept like static results,
so an unchanged file with findings costs what a static run costs (the worker,
and torch, are not started when every class is a hit).

What is cached is the worker's response to a request (the configurations and
what each run did), not the verdicts: verdicts are judged from it on every
run, so a change in how evidence is judged never needs a stale cache.

Layout: ``<cache dir>/trace-<key>.json``, beside the result cache's indexes
(same directory, same ``CACHEDIR.TAG`` and atomic writes; see
:mod:`resnetlint.cache`).  ``<key>`` hashes what besides the request decides
the runs: resnetlint's own sources, Python's and torch's versions (torch's
read from its installed metadata, never imported here), the device and the
trace settings.  Each entry is keyed by a hash of the request (the file, the
class, the configurations the static model proposed) and records the
content hash of every local module the worker had imported to run it (the
file itself, its package's modules, modules under ``trace-path``): an entry
is reused only while all of them are unchanged.

Runs that failed for reasons outside the code (a timeout, a crash, the time
budget, a missing dependency) are never stored.
"""
from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, Dict, Optional, Tuple

from ..cache import _prepare_dir, code_fingerprint, text_hash

FORMAT = 1
PREFIX = "trace-"
TRANSIENT = ("timeout", "crashed", "budget", "import-error", "no-device", "worker-error")


def torch_version() -> Optional[str]:
    """The installed torch's version, from its metadata (no import)."""
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover
        return None
    try:
        return version("torch")
    except PackageNotFoundError:
        return None


def _file_hash(path: str) -> Optional[str]:
    try:
        with open(path, "rb") as handle:
            return text_hash(handle.read().decode("utf-8", "surrogateescape"))
    except OSError:
        return None


def _digest(value: Any) -> str:
    return text_hash(json.dumps(value, sort_keys=True, default=str))[:24]


class VerdictCache:
    def __init__(self, directory: str, key: str, torch: str):
        self.directory = directory
        self.path = os.path.join(directory, f"{PREFIX}{key}.json")
        self.torch = torch
        self.entries: Dict[str, Any] = {}
        self.new: Dict[str, Any] = {}
        self.hashes: Dict[str, Optional[str]] = {}
        try:
            with open(self.path, "r", encoding="utf-8") as handle:
                data = json.load(handle)
            if isinstance(data, dict) and data.get("format") == FORMAT and isinstance(data.get("entries"), dict):
                self.entries = data["entries"]
        except (OSError, ValueError, RecursionError):
            self.entries = {}

    @classmethod
    def open(cls, directory: str, options, device: str) -> Optional["VerdictCache"]:
        torch = torch_version()
        if torch is None:
            return None
        settings = {"device": device, "class_timeout": options.class_timeout, "memory_mb": options.memory_mb,
                    "trace_paths": sorted(os.path.abspath(p) for p in options.trace_paths)}
        key = _digest({"format": FORMAT, "code": code_fingerprint(), "python": list(sys.version_info[:3]),
                       "executable": sys.executable, "torch": torch, "settings": settings})
        return cls(os.path.abspath(directory), key, torch)

    @staticmethod
    def request_key(request: Dict[str, Any]) -> str:
        return _digest({k: v for k, v in request.items() if k != "id"})

    def _hash(self, path: str) -> Optional[str]:
        if path not in self.hashes:
            self.hashes[path] = _file_hash(path)
        return self.hashes[path]

    def lookup(self, requests: Dict[Tuple[str, str], Dict[str, Any]]) -> Dict[Tuple[str, str], Dict[str, Any]]:
        """The cached responses of the requests whose files are unchanged."""
        found = {}
        for target, request in requests.items():
            entry = self.entries.get(self.request_key(request))
            if not isinstance(entry, dict) or not isinstance(entry.get("deps"), dict):
                continue
            deps = entry["deps"]
            if request["file"] not in deps:
                continue
            if all(self._hash(path) == digest for path, digest in deps.items()):
                found[target] = entry["response"]
        return found

    def store(self, request: Dict[str, Any], response: Dict[str, Any]) -> None:
        if response.get("status") in TRANSIENT:
            return
        files = set(response.get("local_modules", ())) | {request["file"]}
        deps = {path: self._hash(path) for path in sorted(files)}
        if any(digest is None for digest in deps.values()):
            return
        response = {k: v for k, v in response.items() if k not in ("id", "type")}
        self.new[self.request_key(request)] = {"deps": deps, "response": response}

    def save(self) -> None:
        """Write the entries of this run (merged with the file on disk); never raises."""
        if not self.new:
            return
        try:
            _prepare_dir(self.directory)
            entries = dict(self.entries)
            try:
                with open(self.path, "r", encoding="utf-8") as handle:
                    theirs = json.load(handle)
                if isinstance(theirs, dict) and theirs.get("format") == FORMAT:
                    entries.update(theirs.get("entries") or {})
            except (OSError, ValueError, RecursionError):
                pass
            entries.update(self.new)
            tmp = os.path.join(self.directory, f".tmp-trace-{os.getpid()}-{time.time_ns()}.json")
            try:
                with open(tmp, "w", encoding="utf-8") as handle:
                    json.dump({"format": FORMAT, "entries": entries}, handle, separators=(",", ":"))
                os.replace(tmp, self.path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
            self.entries, self.new = entries, {}
            _prune(self.directory, keep=self.path)
        except (OSError, ValueError, TypeError):
            pass  # an unwritable cache only makes the next run slower


def _prune(directory: str, keep: str, count: int = 4) -> None:
    """Keep the most recently written trace caches (older code or settings)."""
    found = []
    with os.scandir(directory) as entries:
        for entry in entries:
            if entry.name.startswith(PREFIX) and entry.name.endswith(".json") and entry.path != keep:
                found.append((entry.stat().st_mtime_ns, entry.path))
    for _, path in sorted(found, reverse=True)[count - 1:]:
        try:
            os.unlink(path)
        except OSError:
            pass
