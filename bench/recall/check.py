"""Checking mutants with the resnetlint under test, each inside a copy of
its own package, and deciding what was detected.

The package tree (its ``*.py`` files) is copied once per worker into a
scratch directory; the driver (``driver.py``, run by the interpreter of the
resnetlint under test) swaps each mutant into its file, checks that one file
and puts the original back.  A mutant is **detected** when a finding with
the operator's code, in the mutated class, appears in the mutant's findings
and not in the original's (findings are compared as (code, class, message
with digits masked) multisets, so a line shift does not count as new).
New findings of other codes in the class are recorded as "other codes";
the expected code appearing only in another class (a subclass inheriting
the bug) as "elsewhere".
"""
from __future__ import annotations

import collections
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from .generate import Mutant

DRIVER = Path(__file__).resolve().parent / "driver.py"


@dataclass
class Outcome:
    detected: bool = False
    elsewhere: bool = False
    other_codes: List[str] = field(default_factory=list)
    new_findings: List[dict] = field(default_factory=list)
    error: Optional[str] = None
    seconds: float = 0.0


@dataclass
class Linter:
    """The resnetlint under test: an interpreter, and a checkout to put
    first on ``PYTHONPATH`` (or None: whatever that interpreter imports)."""

    python: str
    checkout: Optional[str] = None

    def env(self) -> Dict[str, str]:
        env = dict(os.environ)
        env.pop("PYTHONSTARTUP", None)
        if self.checkout:
            env["PYTHONPATH"] = self.checkout + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env["NO_COLOR"] = "1"
        return env

    def describe(self) -> Dict[str, str]:
        code = ("import resnetlint, os, sys; print(getattr(resnetlint, '__version__', '?')); "
                "print(os.path.dirname(os.path.abspath(resnetlint.__file__)))")
        # not from the current directory: `python -c` puts it first on sys.path, before PYTHONPATH
        done = subprocess.run([self.python, "-c", code], capture_output=True, text=True, env=self.env(), timeout=120,
                              cwd=tempfile.gettempdir())
        if done.returncode != 0:
            raise SystemExit(f"cannot import resnetlint with {self.python}: {done.stderr.strip()[-500:]}")
        version, location = (done.stdout.strip().splitlines() + ["", ""])[:2]
        commit = ""
        git = subprocess.run(["git", "-C", location, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        if git.returncode == 0:
            commit = git.stdout.strip()
            dirty = subprocess.run(["git", "-C", location, "status", "--porcelain", "--untracked-files=no"],
                                   capture_output=True, text=True)
            if dirty.stdout.strip():
                commit += "+dirty"
        return {"python": self.python, "version": version, "location": location, "commit": commit}


def linter_from(resnetlint: Optional[str], python: Optional[str], default_python: str) -> Linter:
    """``--resnetlint CHECKOUT`` uses ``CHECKOUT/.venv/bin/python`` when it
    exists (else ``--python`` / this interpreter) with the checkout first
    on ``PYTHONPATH``; ``--python`` alone uses what that interpreter has."""
    if python:  # absolute (the checks run elsewhere), but not resolved: a venv's python is a symlink
        python = os.path.abspath(python) if os.sep in python else (shutil.which(python) or python)
    if resnetlint:
        checkout = str(Path(resnetlint).resolve())
        venv_python = Path(checkout) / ".venv" / "bin" / "python"
        interpreter = python or (str(venv_python) if venv_python.exists() else default_python)
        return Linter(interpreter, checkout)
    return Linter(python or default_python)


class Scratch:
    """One copy of each package's tree per worker thread."""

    def __init__(self, base: Path, roots: Dict[str, Tuple[Path, str]]):
        self.base = base
        self.roots = roots  # package -> (folder holding the package, top-level name)
        self.local = threading.local()
        self.lock = threading.Lock()
        self.counter = 0

    def tree(self, package: str) -> Path:
        if not hasattr(self.local, "index"):
            with self.lock:
                self.local.index = self.counter
                self.counter += 1
        target = self.base / f"w{self.local.index}" / package
        if not (target / ".complete").exists():
            root, top = self.roots[package]
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(root / top, target / top,
                            ignore=lambda d, names: [n for n in names if not n.endswith(".py")
                                                     and not (Path(d) / n).is_dir()])
            (target / "pyproject.toml").write_text("[tool.resnetlint]\n")
            (target / ".complete").write_text("")
        return target


def _chunks(mutants: Sequence[Mutant], size: int) -> List[List[Mutant]]:
    """Mutants grouped by (package, file), cut into chunks of ``size``."""
    by_file: Dict[Tuple[str, str], List[Mutant]] = collections.OrderedDict()
    for mutant in mutants:
        by_file.setdefault((mutant.package, mutant.relpath), []).append(mutant)
    chunks: List[List[Mutant]] = []
    current: List[Mutant] = []
    for (package, _), group in by_file.items():
        for mutant in group:
            if current and (len(current) >= size or current[0].package != package):
                chunks.append(current)
                current = []
            current.append(mutant)
    if current:
        chunks.append(current)
    return chunks


def _run_chunk(chunk: List[Mutant], linter: Linter, scratch: Scratch, select: Sequence[str], via: str,
               timeout_per_check: float) -> Dict[str, dict]:
    package = chunk[0].package
    root = scratch.tree(package)
    files: Dict[str, List[dict]] = collections.OrderedDict()
    for mutant in chunk:
        files.setdefault(mutant.relpath, []).append({"id": mutant.id, "text": mutant.text})
    job = {"root": str(root), "select": list(select), "via": via,
           "files": [{"path": path, "mutants": items} for path, items in files.items()]}
    originals = {path: (root / path).read_text(encoding="utf-8") for path in files}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as fh:
        json.dump(job, fh)
        job_path = fh.name
    results: Dict[str, dict] = {}
    checks = len(chunk) + len(files)
    try:
        process = subprocess.Popen([linter.python, str(DRIVER), job_path], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, env=linter.env(), cwd=str(root))
        try:
            stdout, stderr = process.communicate(timeout=60 + timeout_per_check * checks)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
            stderr = f"timed out after {60 + timeout_per_check * checks:.0f} s\n" + (stderr or "")
        for line in stdout.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            results[record["id"]] = record
        missing = f"no result (driver exit {process.returncode}: {(stderr or '').strip()[-300:]})"
        for mutant in chunk:
            results.setdefault(mutant.id, {"id": mutant.id, "findings": [], "error": missing})
        for path in files:
            results.setdefault("original:" + path, {"findings": [], "error": missing})
    finally:
        os.unlink(job_path)
        for path, text in originals.items():  # whatever happened, the tree is pristine again
            (root / path).write_text(text, encoding="utf-8")
    return {key: dict(value, package=package) for key, value in results.items()}


def _key(finding: dict) -> Tuple[str, str, str]:
    return (finding["code"], finding.get("symbol", ""), re.sub(r"\d+", "#", finding.get("message", "")))


def _in_class(symbol: str, qualname: str) -> bool:
    short = qualname.split(".")[-1]
    return symbol in (qualname, short) or symbol.startswith(qualname + ".") or symbol.startswith(short + ".")


def judge(mutant: Mutant, original: dict, result: dict) -> Outcome:
    outcome = Outcome(error=result.get("error") or original.get("error"), seconds=result.get("seconds", 0.0))
    before = collections.Counter(_key(f) for f in original.get("findings", []))
    after = collections.Counter(_key(f) for f in result.get("findings", []))
    new_keys = after - before
    new = [f for f in result.get("findings", []) if new_keys.get(_key(f), 0) > 0]
    outcome.new_findings = new
    for finding in new:
        in_class = _in_class(finding.get("symbol", ""), mutant.qualname)
        if finding["code"] == mutant.code:
            if in_class:
                outcome.detected = True
            else:
                outcome.elsewhere = True
        elif in_class and finding["code"] not in outcome.other_codes:
            outcome.other_codes.append(finding["code"])
    outcome.other_codes.sort()
    return outcome


def check_all(mutants: Sequence[Mutant], linter: Linter, roots: Dict[str, Tuple[Path, str]], select: Sequence[str],
              via: str = "api", jobs: int = 1, chunk_size: int = 25, scratch_dir: Optional[str] = None,
              timeout_per_check: float = 30.0, progress: Optional[Callable[[str], None]] = None
              ) -> Dict[str, Outcome]:
    """Check every kept mutant; returns mutant id -> outcome."""
    base = Path(tempfile.mkdtemp(prefix="recall-scratch-", dir=scratch_dir))
    scratch = Scratch(base, roots)
    chunks = _chunks([m for m in mutants if not m.rejected], chunk_size)
    outcomes: Dict[str, Outcome] = {}
    started = time.perf_counter()
    done = 0
    try:
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = [pool.submit(_run_chunk, chunk, linter, scratch, select, via, timeout_per_check)
                       for chunk in chunks]
            for chunk, future in zip(chunks, futures):
                results = future.result()
                for mutant in chunk:
                    original = results.get("original:" + mutant.relpath, {})
                    outcomes[mutant.id] = judge(mutant, original, results[mutant.id])
                done += len(chunk)
                if progress:
                    progress(f"  checked {done}/{sum(len(c) for c in chunks)} mutants "
                             f"({time.perf_counter() - started:.0f} s)")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return outcomes
