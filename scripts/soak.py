#!/usr/bin/env python3
"""Soak test: resnetlint on real code, checked and fixed, must never crash.

Targets: the five reference packages (timm, torchvision, pytorchcv,
segmentation_models_pytorch, mmpretrain: the pinned wheels of
``bench/bench.py``, fetched and unpacked into its cache unless ``--corpus``
names a directory holding one folder per package) and the sources of the
Python standard library this interpreter runs on.

For each target:

1. ``resnetlint DIR --no-trace --no-cache --format json``: files, findings,
   unreadable files, and crashes: ``RL999`` findings or an exit code other
   than 0 or 1;
2. the same with ``--fix --unsafe-fixes`` on a scratch copy (``*.py`` files
   only): files changed, fixes applied, crashes; then every changed file must
   still parse (``ast``) and, in the model packages, compile
   (``compile(..., "exec")``: also catches what only the compiler rejects);
3. with ``--import``: import each fixed model package in a subprocess (needs
   the package's own dependencies; reported, never a failure).

    .venv/bin/python scripts/soak.py                               # fetch the wheels, all targets
    .venv/bin/python scripts/soak.py --corpus /path/to/src --import
    .venv/bin/python scripts/soak.py --no-stdlib --target timm

Prints a Markdown table; exit code 1 when anything crashed or a fixed file
does not parse or compile.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import subprocess
import sys
import sysconfig
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

import bench  # noqa: E402  (bench/bench.py: the pinned corpus and its cache)

PACKAGES = [name for name, _ in bench.CORPUS]
SKIP_DIRS = {"__pycache__", "site-packages", ".git"}


@dataclass
class Outcome:
    target: str
    files: int = 0
    findings: int = 0
    by_code: Dict[str, int] = field(default_factory=dict)
    unreadable: int = 0
    crashes: List[str] = field(default_factory=list)
    check_s: float = 0.0
    fixed_files: int = 0
    fixes: int = 0
    fix_crashes: List[str] = field(default_factory=list)
    fix_s: float = 0.0
    not_parsing: List[str] = field(default_factory=list)
    not_compiling: List[str] = field(default_factory=list)
    imported: Optional[str] = None


def resnetlint_command() -> List[str]:
    script = Path(sys.executable).with_name("resnetlint")
    return [str(script)] if script.exists() else [sys.executable, "-m", "resnetlint"]


def run(args: Sequence[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    """resnetlint, without cache or trace; not honouring .gitignore files
    (the standard library of a pyenv install lies in a git checkout that
    ignores it)."""
    env = dict(os.environ, NO_COLOR="1")
    flags = ["--no-trace", "--no-cache", "--no-respect-gitignore", "--format", "json"]
    return subprocess.run(resnetlint_command() + list(args) + flags, cwd=str(cwd), capture_output=True, text=True,
                          env=env, timeout=timeout, stdin=subprocess.DEVNULL)


def crashes_of(result: subprocess.CompletedProcess, doc: Optional[dict]) -> List[str]:
    found = []
    if result.returncode not in (0, 1):
        found.append(f"exit code {result.returncode}: {result.stderr.strip().splitlines()[-1:] or ''}")
    if doc is not None:
        for finding in doc["findings"]:
            if finding["code"] == "RL999":
                found.append(f"{finding['path']}:{finding['line']}: {finding['message']}")
    return found


def parse_json(result: subprocess.CompletedProcess) -> Optional[dict]:
    try:
        return json.loads(result.stdout)
    except ValueError:
        return None


def python_files(root: Path) -> List[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        out.extend(Path(dirpath) / name for name in sorted(filenames) if name.endswith(".py"))
    return out


def scratch_copy(source: Path, target: Path) -> Dict[str, bytes]:
    """Copy the ``*.py`` files; returns their bytes by relative path."""
    originals = {}
    for path in python_files(source):
        if not path.is_file():
            continue
        relative = path.relative_to(source)
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            data = path.read_bytes()
        except OSError:
            continue
        destination.write_bytes(data)
        originals[str(relative)] = data
    return originals


def soak(target: str, directory: Path, scratch: Path, model: bool, timeout: float, do_import: bool) -> Outcome:
    outcome = Outcome(target)
    started = time.monotonic()
    checked = run([str(directory)], directory.parent, timeout)
    outcome.check_s = time.monotonic() - started
    doc = parse_json(checked)
    outcome.crashes = crashes_of(checked, doc)
    if doc is not None:
        outcome.files = doc["summary"]["files"]
        outcome.findings = len(doc["findings"])
        outcome.unreadable = len(doc["errors"])
        for finding in doc["findings"]:
            outcome.by_code[finding["code"]] = outcome.by_code.get(finding["code"], 0) + 1
    elif not outcome.crashes:
        outcome.crashes.append(f"no JSON document (exit code {checked.returncode}): {checked.stderr[-300:]}")

    copy = scratch / target
    originals = scratch_copy(directory, copy)
    started = time.monotonic()
    fixed = run([str(copy), "--fix", "--unsafe-fixes"], scratch, timeout)
    outcome.fix_s = time.monotonic() - started
    fix_doc = parse_json(fixed)
    outcome.fix_crashes = crashes_of(fixed, fix_doc)
    if fix_doc is not None:
        outcome.fixes = fix_doc["summary"].get("fixes_applied", 0)
    for relative, before in originals.items():
        path = copy / relative
        after = path.read_bytes() if path.exists() else None
        if after == before:
            continue
        outcome.fixed_files += 1
        if after is None:
            outcome.not_parsing.append(f"{relative}: deleted")
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tree = ast.parse(after, filename=relative)
                if model:
                    compile(tree, relative, "exec")
        except SyntaxError as exc:
            (outcome.not_compiling if model else outcome.not_parsing).append(f"{relative}:{exc.lineno}: {exc.msg}")
        except (ValueError, RecursionError, MemoryError) as exc:
            outcome.not_parsing.append(f"{relative}: {type(exc).__name__}: {exc}")
    leftovers = [p for p in copy.rglob("*") if p.name.endswith(".resnetlint")]
    if leftovers:
        outcome.fix_crashes.append(f"{len(leftovers)} temporary files left behind")
    if model and do_import:
        outcome.imported = try_import(target, copy)
    return outcome


def try_import(package: str, root: Path) -> str:
    """Import the fixed package from the scratch copy (in a subprocess)."""
    code = (f"import sys; sys.path.insert(0, {str(root.parent)!r}); sys.path.insert(0, {str(root)!r}); "
            f"import importlib; m = importlib.import_module({package!r}); "
            f"assert m.__file__.startswith({str(root)!r}), m.__file__; print('ok')")
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                              cwd=str(root), stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return "timed out"
    if done.returncode == 0 and "ok" in done.stdout:
        return "imported"
    last = (done.stderr.strip().splitlines() or ["?"])[-1]
    return f"not imported ({last[:120]})"


def corpus_directories(corpus: Optional[Path], cache: Path, wheelhouse: Optional[Path]) -> Dict[str, Path]:
    """package -> its source folder (the folder holding the package itself)."""
    found = {}
    if corpus is None:
        wheels = bench.fetch_wheels(cache, wheelhouse)
        bench.unpack_corpus(cache, wheels)
        corpus = cache / "corpus"
    for name in PACKAGES:
        candidates = [corpus / name / name, corpus / name]
        for candidate in candidates:
            if (candidate / "__init__.py").is_file():
                found[name] = candidate
                break
        else:
            print(f"soak: no sources for {name} under {corpus}", file=sys.stderr)
    return found


def table(outcomes: List[Outcome]) -> str:
    header = ["target", "files", "findings", "unreadable", "crashes", "check s", "fixed files", "fixes",
              "fix crashes", "fix s", "not parsing", "not compiling", "import"]
    rows = [header, ["---"] * len(header)]
    for o in outcomes:
        rows.append([o.target, str(o.files), str(o.findings), str(o.unreadable), str(len(o.crashes)),
                     f"{o.check_s:.1f}", str(o.fixed_files), str(o.fixes), str(len(o.fix_crashes)), f"{o.fix_s:.1f}",
                     str(len(o.not_parsing)), str(len(o.not_compiling)), o.imported or "-"])
    total = Outcome("total")
    for o in outcomes:
        for name in ("files", "findings", "unreadable", "fixed_files", "fixes"):
            setattr(total, name, getattr(total, name) + getattr(o, name))
        total.check_s += o.check_s
        total.fix_s += o.fix_s
        total.crashes += o.crashes
        total.fix_crashes += o.fix_crashes
        total.not_parsing += o.not_parsing
        total.not_compiling += o.not_compiling
    rows.append([f"**{total.target}**", str(total.files), str(total.findings), str(total.unreadable),
                 str(len(total.crashes)), f"{total.check_s:.1f}", str(total.fixed_files), str(total.fixes),
                 str(len(total.fix_crashes)), f"{total.fix_s:.1f}", str(len(total.not_parsing)),
                 str(len(total.not_compiling)), ""])
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, help="a folder with one source folder per package "
                        "(default: fetch the pinned wheels into the bench cache)")
    parser.add_argument("--cache", type=Path, default=bench.DEFAULT_CACHE, help="bench/bench.py's cache")
    parser.add_argument("--wheelhouse", type=Path, help="take the pinned wheels from here when present")
    parser.add_argument("--target", action="append", choices=PACKAGES + ["stdlib"], help="only these (repeatable)")
    parser.add_argument("--no-stdlib", action="store_true", help="skip the standard library")
    parser.add_argument("--import", dest="do_import", action="store_true", help="import each fixed model package")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per resnetlint run")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    wanted = args.target or PACKAGES + ([] if args.no_stdlib else ["stdlib"])
    directories: Dict[str, Path] = {}
    if any(t in PACKAGES for t in wanted):
        directories.update(corpus_directories(args.corpus, args.cache, args.wheelhouse))
    if "stdlib" in wanted:
        directories["stdlib"] = Path(sysconfig.get_paths()["stdlib"])
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="resnetlint-soak-") as scratch:
        for target in wanted:
            if target not in directories:
                continue
            print(f"soak: {target} ({directories[target]}) ...", file=sys.stderr, flush=True)
            outcome = soak(target, directories[target], Path(scratch), target != "stdlib", args.timeout,
                           args.do_import)
            outcomes.append(outcome)
            print(f"soak: {target}: {outcome.files} files, {outcome.findings} findings, "
                  f"{len(outcome.crashes) + len(outcome.fix_crashes)} crashes, {outcome.fixed_files} files fixed",
                  file=sys.stderr, flush=True)
    print(table(outcomes))
    problems = False
    for o in outcomes:
        if o.by_code:
            print(f"\n{o.target}: findings by code: " + ", ".join(f"{k} {v}" for k, v in sorted(o.by_code.items())))
        for label, items in (("crash", o.crashes), ("crash with --fix", o.fix_crashes),
                             ("fixed file does not parse", o.not_parsing),
                             ("fixed file does not compile", o.not_compiling)):
            for item in items[:20]:
                print(f"{o.target}: {label}: {item}")
                problems = True
    if args.json:
        args.json.write_text(json.dumps([o.__dict__ for o in outcomes], indent=2, default=str))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
