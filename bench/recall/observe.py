"""``--observe N``: run a seeded sample of the kept mutants with torch, to
show that the operators plant bugs that change something observable.

Only packages that import with torch alone are used (pytorchcv; timm and
torchvision need torchvision's compiled operators, which the corpus
sources lack).  The worker (``observe_worker.py``) runs in a subprocess of
the interpreter running the harness, which must have torch; it imports the
corpus package from its unpacked sources (``PYTHONPATH``), never from this
repository.  Blocks whose constructor the worker cannot synthesize
arguments for are reported as "original does not run" and left out of the
fraction.
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from .generate import Mutant

WORKER = Path(__file__).resolve().parent / "observe_worker.py"
IMPORTABLE = ("pytorchcv",)


def observe(mutants: Sequence[Mutant], roots: Dict[str, Tuple[Path, str]], linter, limit: int, seed: int,
            progress: Optional[Callable[[str], None]] = None, timeout: float = 900.0) -> dict:
    pool = [m for m in mutants if not m.rejected and m.package in IMPORTABLE and m.package in roots]
    rng = random.Random(f"{seed}:observe")
    sample = sorted(rng.sample(pool, min(limit, len(pool))), key=lambda m: m.id)
    if not sample:
        return {"summary": "no mutant of an importable package (pytorchcv) in this run", "rows": []}
    check = subprocess.run([sys.executable, "-c", "import torch"], capture_output=True)
    if check.returncode != 0:
        return {"summary": f"torch is not importable by {sys.executable}: nothing observed", "rows": []}
    rows: List[dict] = []
    with tempfile.TemporaryDirectory(prefix="recall-observe-") as folder:
        items = []
        for index, m in enumerate(sample):
            path = Path(folder) / f"mutant_{index}.py"
            path.write_text(m.text, encoding="utf-8")
            module = m.relpath[:-3].replace("/", ".")
            items.append({"id": m.id, "module": module, "qualname": m.qualname, "mutant_file": str(path)})
        job = Path(folder) / "job.json"
        job.write_text(json.dumps({"items": items}))
        by_package: Dict[str, List[dict]] = {}
        for m, item in zip(sample, items):
            by_package.setdefault(m.package, []).append(item)
        for package, package_items in by_package.items():
            env = dict(os.environ, PYTHONPATH=str(roots[package][0]))
            results = _run_worker(package_items, job, env, folder, timeout)
            for item in package_items:
                record = results.get(item["id"], {"status": "error", "detail": "no result"})
                mutant = next(m for m in sample if m.id == item["id"])
                rows.append({"id": item["id"], "code": mutant.code, "original": "runs"
                             if record["status"] in ("differs", "no difference") else record["status"],
                             "mutant": _short(record), "differs": record["status"] == "differs",
                             "record": record})
            if progress:
                progress(f"  observed {len(rows)}/{len(sample)} mutants with torch")
    ran = [r for r in rows if r["original"] == "runs"]
    differs = sum(r["differs"] for r in ran)
    per_code: Dict[str, List[int]] = {}
    for r in ran:
        per_code.setdefault(r["code"], [0, 0])
        per_code[r["code"]][0] += r["differs"]
        per_code[r["code"]][1] += 1
    summary = (f"{len(sample)} sampled pytorchcv mutants; the original block ran with a synthesized configuration "
               f"for {len(ran)}; the mutant was observably different for {differs} of them"
               + (f" ({differs / len(ran):.0%})" if ran else "") + ". Per operator: "
               + ", ".join(f"{c} {d}/{n}" for c, (d, n) in sorted(per_code.items())) + ".")
    return {"summary": summary, "sampled": len(sample), "ran": len(ran), "differs": differs, "per_operator": per_code,
            "rows": rows}


def _run_worker(items: List[dict], job: Path, env: Dict[str, str], folder: str, timeout: float) -> Dict[str, dict]:
    """Results by id; a worker that dies (a module that cannot be imported
    can take the interpreter down) is restarted after the item it died on."""
    results: Dict[str, dict] = {}
    remaining = list(items)
    while remaining:
        job.write_text(json.dumps({"items": remaining}))
        try:
            done = subprocess.run([sys.executable, str(WORKER), str(job)], capture_output=True, text=True, env=env,
                                  timeout=timeout, cwd=folder)
            output, error = done.stdout, done.stderr
        except subprocess.TimeoutExpired as expired:
            output = expired.stdout.decode() if isinstance(expired.stdout, bytes) else (expired.stdout or "")
            error = "timed out"
        for line in output.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            results[record["id"]] = record
        missing = [item for item in remaining if item["id"] not in results]
        if missing:
            results[missing[0]["id"]] = {"id": missing[0]["id"], "status": "error",
                                         "detail": (error or "")[-300:]}
            missing = missing[1:]
        remaining = missing
    return results


def _short(record: dict) -> str:
    if record.get("status") != "differs":
        return record.get("status", "?")
    observed = record.get("observed", {})
    parts = []
    for key, value in observed.items():
        text = value if isinstance(value, str) else ", ".join(value)
        parts.append(f"{key}: {text}")
    return "; ".join(parts)[:160]
