"""Command line of the fix harness: ``python -m bench.fixes`` (from the
repository root).  See the package docstring and bench/README.md."""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

if __package__ in (None, ""):  # run as a script: make `bench.fixes` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    __package__ = "bench.fixes"

from ..recall import corpora as CO  # noqa: E402
from ..recall import generate as GE  # noqa: E402
from ..recall.check import linter_from  # noqa: E402
from . import judge as JU  # noqa: E402
from . import report as RE  # noqa: E402

WORKER = Path(__file__).resolve().parent / "worker.py"
REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".bench-cache" / "fixes"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.fixes",
        description="Plant single bugs in the residual blocks of real packages (bench.recall's operators), fix them "
                    "with `--fix --unsafe-fixes` (with and without the trace) and run the fixed blocks with torch.")
    parser.add_argument("--corpus", choices=sorted(CO.CORPORA), default="all")
    parser.add_argument("--packages", help="comma-separated distribution names (overrides --corpus)")
    parser.add_argument("--operators", default=",".join(JU.CRASH_OPERATORS),
                        help="comma-separated codes (default: the crash-type operators "
                             f"{','.join(JU.CRASH_OPERATORS)})")
    parser.add_argument("--per-operator", type=int, default=6, help="mutants per (package, operator) (default 6)")
    parser.add_argument("--seed", type=int, default=13, help="sampling seed (default 13, as bench.recall)")
    parser.add_argument("--src", default=str(CO.DEFAULT_SRC), help=f"unpacked packages (default {CO.DEFAULT_SRC})")
    parser.add_argument("--resnetlint", help="checkout of the resnetlint to measure (put first on PYTHONPATH)")
    parser.add_argument("--python", help="interpreter with torch and the corpus packages' dependencies whose "
                                         "resnetlint is measured (default: this one)")
    parser.add_argument("-j", "--jobs", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--chunk", type=int, default=20, help="mutants per worker process (default 20)")
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds allowed per mutant (default 240)")
    parser.add_argument("--json", help="write every mutant with its fixes, runs and verdict to this file")
    parser.add_argument("--markdown", help="write the report to this file (default: stdout)")
    parser.add_argument("--rejudge", help="re-read a --json file and report again (no fixing, no running)")
    return parser.parse_args(argv)


def _generation_key(args, packages, codes) -> str:
    """Mutants depend on the sample settings and on the harness's operators."""
    digest = hashlib.sha256()
    for path in sorted((REPO / "bench" / "recall").glob("*.py")):
        digest.update(path.read_bytes())
    digest.update(json.dumps([[p.distribution for p in packages], codes, args.per_operator, args.seed,
                              args.src]).encode())
    return digest.hexdigest()[:16]


def generate(args, packages, codes) -> Tuple[List[GE.Mutant], Dict[str, Tuple[Path, str]]]:
    """The mutants (from bench.recall, cached on disk: scanning is slow)."""
    src = Path(args.src)
    roots: Dict[str, Tuple[Path, str]] = {}
    for package in packages:
        root = CO.package_root(src, package)
        if root is None:
            raise SystemExit(f"{package.distribution}: no {package.top}/ under {src}")
        roots[package.distribution] = (root, package.top)
    cached = CACHE / f"mutants-{_generation_key(args, packages, codes)}.json"
    if cached.is_file():
        log(f"mutants from {cached}")
        rows = json.loads(cached.read_text(encoding="utf-8"))
        return [GE.Mutant(**row) for row in rows], roots
    mutants: List[GE.Mutant] = []
    for package in packages:
        root = roots[package.distribution][0]
        scan = GE.scan_package(package, root, codes, jobs=args.jobs, progress=log)
        chosen = GE.select(scan, codes, args.per_operator, args.seed)
        made = GE.materialize(scan, package, root, chosen, jobs=args.jobs)
        log(f"{package.distribution}: {len(scan.blocks)} blocks, {len(made)} sampled, "
            f"{sum(1 for m in made if not m.rejected)} kept")
        mutants.extend(made)
    CACHE.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps([dataclasses.asdict(m) for m in mutants]), encoding="utf-8")
    return mutants, roots


def _scratch_tree(base: Path, slot: int, package: str, roots) -> Path:
    """A full copy of the package (compiled extensions and data files
    included: the trace imports it), one per worker slot."""
    target = base / f"w{slot}" / package
    if not (target / ".complete").exists():
        root, top = roots[package]
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(root / top, target / top, ignore=shutil.ignore_patterns("__pycache__"))
        (target / "pyproject.toml").write_text("[tool.resnetlint]\n")
        (target / ".complete").write_text("")
    return target


def _run_chunk(chunk: List[GE.Mutant], slot: int, base: Path, roots, linter, timeout: float) -> Dict[str, dict]:
    package = chunk[0].package
    root = _scratch_tree(base, slot, package, roots)
    items = [{"id": m.id, "relpath": m.relpath, "qualname": m.qualname,
              "original": (roots[package][0] / m.relpath).read_text(encoding="utf-8"), "mutant": m.text}
             for m in chunk]
    job = {"root": str(root), "items": items}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as fh:
        json.dump(job, fh)
        job_path = fh.name
    results: Dict[str, dict] = {}
    try:
        env = linter.env()
        env.setdefault("OMP_NUM_THREADS", "1")
        process = subprocess.Popen([linter.python, str(WORKER), job_path], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, env=env, cwd=str(root),
                                   start_new_session=True)
        try:
            stdout, stderr = process.communicate(timeout=60 + timeout * len(chunk))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            stdout, stderr = process.communicate()
            stderr = "timed out\n" + (stderr or "")
        for line in stdout.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            results[record["id"]] = record
        for m in chunk:
            results.setdefault(m.id, {"id": m.id, "error": f"no result (worker exit {process.returncode}: "
                                                           f"{(stderr or '').strip()[-400:]})"})
    finally:
        os.unlink(job_path)
        for item in items:  # whatever happened, the tree is pristine again
            (root / item["relpath"]).write_text(item["original"], encoding="utf-8")
    return results


def _chunks(mutants: Sequence[GE.Mutant], size: int) -> List[List[GE.Mutant]]:
    chunks: List[List[GE.Mutant]] = []
    for mutant in sorted(mutants, key=lambda m: (m.package, m.relpath, m.id)):
        if chunks and len(chunks[-1]) < size and chunks[-1][0].package == mutant.package:
            chunks[-1].append(mutant)
        else:
            chunks.append([mutant])
    return chunks


def fix_all(mutants, roots, linter, jobs: int, chunk_size: int, timeout: float) -> Dict[str, dict]:
    base = Path(tempfile.mkdtemp(prefix="fixes-scratch-"))
    chunks = _chunks([m for m in mutants if not m.rejected], chunk_size)
    results: Dict[str, dict] = {}
    started = time.perf_counter()
    try:
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = [pool.submit(_run_chunk, chunk, index % max(1, jobs), base, roots, linter, timeout)
                       for index, chunk in enumerate(chunks)]
            for future in futures:
                results.update(future.result())
                log(f"  fixed and ran {len(results)}/{sum(len(c) for c in chunks)} mutants "
                    f"({time.perf_counter() - started:.0f} s)")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return results


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if args.rejudge:
        document = json.loads(Path(args.rejudge).read_text(encoding="utf-8"))
        verdicts = {row["mutant"]["id"]: JU.judge(row["mutant"], row["result"]) for row in document["mutants"]}
        text = RE.markdown(document["settings"], document["linter"], [row["mutant"] for row in document["mutants"]],
                           verdicts)
        _emit(args, text, None)
        return 0
    started = time.perf_counter()
    packages = CO.select_packages(args.corpus, args.packages.split(",") if args.packages else None)
    codes = [c.strip().upper() for c in args.operators.split(",") if c.strip()]
    mutants, roots = generate(args, packages, codes)
    linter = linter_from(args.resnetlint, args.python, sys.executable)
    linter_info = linter.describe()
    log(f"resnetlint {linter_info['version']} {linter_info['commit']} at {linter_info['location']}")
    kept = [m for m in mutants if not m.rejected]
    log(f"{len(kept)} mutants to fix and run")
    results = fix_all(kept, roots, linter, args.jobs, args.chunk, args.timeout)
    rows = [{"mutant": {"id": m.id, "package": m.package, "relpath": m.relpath, "qualname": m.qualname,
                        "code": m.code, "description": m.description, "features": m.features, "diff": m.diff,
                        "original_text_sha": hashlib.sha256((roots[m.package][0] / m.relpath).read_bytes())
                        .hexdigest()[:12]},
             "result": results.get(m.id, {"error": "not run"})} for m in kept]
    verdicts = {row["mutant"]["id"]: JU.judge(row["mutant"], row["result"]) for row in rows}
    settings = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": "python -m bench.fixes " + " ".join(shlex.quote(a) for a in (argv if argv is not None
                                                                                 else sys.argv[1:])),
        "packages": [p.distribution for p in packages], "operators": codes, "per_operator": args.per_operator,
        "seed": args.seed, "seconds": round(time.perf_counter() - started),
    }
    text = RE.markdown(settings, linter_info, [r["mutant"] for r in rows], verdicts)
    document = None
    if args.json:
        for row in rows:
            row["verdict"] = dataclasses.asdict(verdicts[row["mutant"]["id"]])
        document = {"settings": settings, "linter": linter_info, "mutants": rows}
    _emit(args, text, document)
    summary = RE.totals(list(verdicts.values()))
    log(summary)
    return 0


def _emit(args, text: str, document: Optional[dict]) -> None:
    if args.markdown:
        Path(args.markdown).write_text(text + "\n", encoding="utf-8")
    else:
        print(text)
    if args.json and document is not None:
        Path(args.json).write_text(json.dumps(document, indent=1), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
