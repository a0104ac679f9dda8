"""Command line of the recall harness: ``python -m bench.recall`` (from the
repository root) or ``python bench/recall/run.py``.  See the package
docstring and bench/README.md."""
from __future__ import annotations

import argparse
import datetime
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

if __package__ in (None, ""):  # run as a script: make `bench.recall` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    __package__ = "bench.recall"

from . import check as CH  # noqa: E402
from . import corpora as CO  # noqa: E402
from . import generate as GE  # noqa: E402
from . import report as RE  # noqa: E402
from .operators import OPERATORS  # noqa: E402


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.recall",
        description="Plant single bugs in the residual blocks of real packages and measure how many "
                    "resnetlint reports.")
    parser.add_argument("--corpus", choices=sorted(CO.CORPORA), default="all",
                        help="pinned (timm, torchvision, pytorchcv, smp, mmpretrain), second (monai, mmdet, "
                             "mmsegmentation, transformers/models, ultralytics, kornia) or all (default)")
    parser.add_argument("--packages", help="comma-separated distribution names (overrides --corpus)")
    parser.add_argument("--operators", help="comma-separated codes (default: all eleven)")
    parser.add_argument("--per-operator", type=int, default=40, help="mutants per (package, operator) (default 40)")
    parser.add_argument("--seed", type=int, default=13, help="sampling seed (default 13)")
    parser.add_argument("--src", default=str(CO.DEFAULT_SRC),
                        help=f"folder of unpacked packages (default {CO.DEFAULT_SRC})")
    parser.add_argument("--wheels", help="unpack the pinned wheels found in this folder into --src first")
    parser.add_argument("--resnetlint", help="checkout of the resnetlint to measure (its .venv/bin/python if any)")
    parser.add_argument("--python", help="interpreter whose resnetlint is measured (default: this one)")
    parser.add_argument("--select", default="ALL", help="rules to enable (default ALL; 'default' for the defaults)")
    parser.add_argument("--via", choices=("api", "cli"), default="api",
                        help="check through the Python API (default) or the command line")
    parser.add_argument("-j", "--jobs", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--chunk", type=int, default=25, help="mutants per checker process (default 25)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds allowed per check (default 30)")
    parser.add_argument("--scratch", help="where the package copies go (default: a temporary folder)")
    parser.add_argument("--json", help="write the full results (every mutant and outcome) to this file")
    parser.add_argument("--markdown", help="write the report to this file (default: stdout)")
    parser.add_argument("--dump", help="write each kept mutant's diff into this folder")
    parser.add_argument("--list", action="store_true", help="only generate the mutants and list them")
    parser.add_argument("--observe", type=int, default=0,
                        help="also run original and mutant of up to N sampled pytorchcv/torchvision mutants "
                             "with torch (a quality check of the operators)")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    seconds: Dict[str, float] = {}
    packages = CO.select_packages(args.corpus, args.packages.split(",") if args.packages else None)
    codes = [c for c, _ in OPERATORS]
    if args.operators:
        wanted = [c.strip().upper() for c in args.operators.split(",")]
        unknown = [c for c in wanted if c not in codes]
        if unknown:
            raise SystemExit(f"unknown operator code(s): {', '.join(unknown)}")
        codes = [c for c in codes if c in wanted]
    src = Path(args.src)
    if args.wheels:
        CO.unpack_wheels(Path(args.wheels), src, packages)
    roots: Dict[str, Tuple[Path, str]] = {}
    for package in packages:
        root = CO.package_root(src, package)
        if root is None:
            raise SystemExit(f"{package.distribution}: no {package.top}/ under {src} or {src / package.distribution}"
                             f" (unpack the wheel, or pass --wheels)")
        roots[package.distribution] = (root, package.top)

    linter_info: dict = {}
    linter = None
    if not args.list:
        linter = CH.linter_from(args.resnetlint, args.python, sys.executable)
        linter_info = linter.describe()
        log(f"resnetlint {linter_info['version']} {linter_info['commit']} at {linter_info['location']}")

    scans: List[GE.PackageScan] = []
    mutants: List[GE.Mutant] = []
    for package in packages:
        root = roots[package.distribution][0]
        t0 = time.perf_counter()
        scan = GE.scan_package(package, root, codes, jobs=args.jobs, progress=log)
        seconds["scan"] = seconds.get("scan", 0) + time.perf_counter() - t0
        chosen = GE.select(scan, codes, args.per_operator, args.seed)
        t0 = time.perf_counter()
        made = GE.materialize(scan, package, root, chosen, jobs=args.jobs)
        seconds["materialize"] = seconds.get("materialize", 0) + time.perf_counter() - t0
        log(f"{package.distribution}: {scan.parsed}/{scan.files} files, {len(scan.blocks)} blocks, "
            f"{len(scan.candidates)} candidate sites, {len(made)} sampled, "
            f"{sum(1 for m in made if not m.rejected)} kept")
        scans.append(scan)
        mutants.extend(made)

    if args.dump:
        _dump(Path(args.dump), mutants)
    if args.list:
        for m in mutants:
            status = f"REJECTED ({m.rejected})" if m.rejected else ""
            print(f"{m.code} {m.relpath}:{m.line} {m.qualname}: {m.description} {status}")
        return 0

    select = ["ALL"] if args.select == "ALL" else ([] if args.select == "default" else args.select.split(","))
    t0 = time.perf_counter()
    outcomes = CH.check_all(mutants, linter, roots, select or _default_codes(linter), via=args.via, jobs=args.jobs,
                            chunk_size=args.chunk, scratch_dir=args.scratch, timeout_per_check=args.timeout,
                            progress=log)
    seconds["check"] = time.perf_counter() - t0
    observed = None
    if args.observe:
        from .observe import observe

        t0 = time.perf_counter()
        observed = observe(mutants, roots, linter, args.observe, args.seed, progress=log)
        seconds["observe"] = time.perf_counter() - t0
    seconds["total"] = time.perf_counter() - started
    settings = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": "python -m bench.recall " + " ".join(shlex.quote(a) for a in (argv if argv is not None
                                                                                 else sys.argv[1:])),
        "packages": [p.distribution for p in packages], "operators": codes, "per_operator": args.per_operator,
        "seed": args.seed, "select": select or ["default"], "via": args.via, "jobs": args.jobs, "src": str(src),
    }
    text = RE.markdown(settings, linter_info, scans, mutants, outcomes, seconds)
    if observed:
        text += "\n" + _observed_markdown(observed)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n", encoding="utf-8")
    else:
        print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(RE.document(settings, linter_info, scans, mutants, outcomes, seconds,
                                                          observed), indent=1), encoding="utf-8")
    summary = RE.summary(scans, mutants, outcomes)
    log(f"recall {summary['detected']}/{summary['kept']} = {summary['recall']} in {seconds['total']:.0f} s")
    return 0


def _default_codes(linter) -> List[str]:
    """The rules on by default, asked from the resnetlint under test."""
    import subprocess

    code = ("from resnetlint.api import Settings; print(','.join(sorted(r.code for r in Settings().rules())))")
    done = subprocess.run([linter.python, "-c", code], capture_output=True, text=True, env=linter.env(),
                          cwd=tempfile.gettempdir())
    if done.returncode != 0 or not done.stdout.strip():
        return ["ALL"]
    return done.stdout.strip().split(",")


def _dump(folder: Path, mutants: Sequence[GE.Mutant]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for m in mutants:
        if m.rejected:
            continue
        name = m.id.replace("/", "_").replace(":", "__") + ".diff"
        (folder / name).write_text(f"# {m.code} {m.relpath}:{m.line} {m.qualname}\n# {m.description}\n{m.diff}\n",
                                   encoding="utf-8")


def _observed_markdown(observed: dict) -> str:
    lines = ["## Dynamic check of a sample (torch)", "",
             f"{observed['summary']}", ""]
    rows = observed.get("rows", [])
    if rows:
        lines += RE._table(["mutant", "original", "mutant run", "differs"],
                           [[r["id"].split(":", 1)[1], r["original"], r["mutant"], r["differs"]] for r in rows])
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
