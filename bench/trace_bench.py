"""What the dynamic trace costs and how much of real code it can run.

    python bench/trace_bench.py [PATH ...] [--device cpu|meta|cuda] [--repeat N]
    python bench/trace_bench.py --coverage PKG_DIR [PKG_DIR ...] [--limit N] [--json FILE]
    python bench/trace_bench.py --cache [PATH ...]

Default mode: worker start-up (torch import), each traced class, and the
whole run against a static-only run, on the bundled fixtures by default.

``--coverage``: for each package folder (an installed package, e.g.
``$VENV/lib/python3.11/site-packages/timm``, so the trace imports it with its
dependencies), every residual block the static model finds is run, and the
table says how many ran cleanly in some configuration (built, and forward
returned), the time per class, and why the others could not be run.  Run it
with the interpreter of the environment the packages are installed in.

``--cache``: a run with the trace on and the verdict cache, then the same run
again (the second must not start the worker), against a static-only run.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from resnetlint.api import Settings, check_file, check_paths  # noqa: E402
from resnetlint.trace import TraceOptions, _request, _targets  # noqa: E402
from resnetlint.trace.runner import TraceRunner  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="*", default=[str(ROOT / "fixtures")])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--coverage", action="store_true", help="coverage of residual blocks per package")
    parser.add_argument("--cache", action="store_true", help="time a cached rerun (verdict cache)")
    parser.add_argument("--limit", type=int, default=0, help="at most N blocks per package (0: all)")
    parser.add_argument("--json", help="also write the per-block results here")
    args = parser.parse_args()
    if args.coverage:
        return coverage(args)
    if args.cache:
        return cached_rerun(args)
    return timing(args)


# ----------------------------------------------------------------------------
# Coverage of real packages
# ----------------------------------------------------------------------------


def _ran_cleanly(response) -> bool:
    if response.get("status") != "ok":
        return False
    return any("construct_error" not in config and not run.get("forward_error")
               for config in response.get("runs", []) for run in config.get("runs", []))


def _reason(response) -> str:
    """Why a block did not run: the category, and for import errors the
    missing module (the detail is in --json)."""
    try:
        from resnetlint.trace.reasons import missing_module, unrunnable_reason
    except ImportError:  # an older resnetlint: its statuses only
        status = response.get("status")
        if status != "ok":
            return status, response.get("error", "")
        configs = response.get("runs", [])
        built = any("construct_error" not in c for c in configs)
        return ("forward-raised" if built else "constructor-raised"), ""
    reason, detail = unrunnable_reason(response, False) or ("?", "")
    missing = missing_module(detail) if reason == "import-error" else None
    return (f"{reason} ({missing})" if missing else reason), detail


def _package_blocks(package: str, limit: int):
    """The residual blocks of a package: {(path, class): info}."""
    files = sorted(_python_files(package))
    rules = Settings().rules()
    targets = {}
    for path in files:
        result = check_file(path, rules)
        for key, (info, _) in _targets([result], True).items():
            if info.residual:
                targets[key] = info
        if limit and len(targets) >= limit:
            break
    return dict(list(targets.items())[:limit] if limit else targets.items())


def _python_files(package: str):
    for directory, dirs, names in os.walk(package):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(names):
            if name.endswith(".py"):
                yield os.path.join(directory, name)


def coverage(args) -> int:
    rows, records = [], []
    options = TraceOptions(mode="on", device=args.device, class_timeout=30.0)
    for package in args.paths:
        name = Path(package).name
        targets = _package_blocks(package, args.limit)
        began = time.perf_counter()
        ran, reasons, times = 0, {}, []
        with TraceRunner(args.device, options.class_timeout, 24 * 3600.0, options.memory_mb) as runner:
            runner.start()
            for (path, cls), info in targets.items():
                start = time.perf_counter()
                response = runner.run(_request(path, cls, info, options))
                times.append(time.perf_counter() - start)
                clean = _ran_cleanly(response)
                ran += clean
                reason, detail = ("", "") if clean else _reason(response)
                if reason:
                    reasons[reason] = reasons.get(reason, 0) + 1
                records.append({"package": name, "path": path, "class": cls, "ran": clean, "reason": reason,
                                "error": detail, "seconds": round(times[-1], 3)})
        total = len(targets)
        rows.append((name, total, ran, time.perf_counter() - began, statistics.median(times) if times else 0.0,
                     reasons))
        print(f"{name}: {ran}/{total} residual blocks ran cleanly", file=sys.stderr, flush=True)
    print(f"| {'package':<28} | blocks |  ran | coverage | seconds | median s/class | not run: why |")
    print(f"|{'-' * 30}|--------|------|----------|---------|----------------|--------------|")
    all_blocks = all_ran = 0
    for name, total, ran, seconds, median, reasons in rows:
        all_blocks, all_ran = all_blocks + total, all_ran + ran
        why = ", ".join(f"{count} {reason}" for reason, count in sorted(reasons.items(), key=lambda r: -r[1]))
        share = f"{100 * ran / total:.1f}%" if total else "-"
        print(f"| {name:<28} | {total:>6} | {ran:>4} | {share:>8} | {seconds:>7.1f} | {median:>14.3f} | {why} |")
    if all_blocks:
        print(f"\nall packages: {all_ran}/{all_blocks} = {100 * all_ran / all_blocks:.1f}% ran cleanly")
    if args.json:
        Path(args.json).write_text(json.dumps(records, indent=1))
    return 0


# ----------------------------------------------------------------------------
# The verdict cache
# ----------------------------------------------------------------------------


def cached_rerun(args) -> int:
    with tempfile.TemporaryDirectory() as cache_dir:
        settings = Settings(cache=True, cache_dir=cache_dir, trace=TraceOptions(mode="on", device=args.device))
        timings = []
        for attempt in ("first run (fills the caches)", "second run (unchanged files)"):
            began = time.perf_counter()
            run = check_paths(args.paths, settings)
            timings.append(time.perf_counter() - began)
            print(f"{attempt}: {timings[-1]:.2f} s; {run.trace.cached} of {run.trace.classes} classes from the "
                  f"verdict cache")
        began = time.perf_counter()
        check_paths(args.paths, Settings(cache=True, cache_dir=cache_dir))
        print(f"static only (cached):  {time.perf_counter() - began:.2f} s")
    return 0


# ----------------------------------------------------------------------------
# Timing on small inputs
# ----------------------------------------------------------------------------


def timing(args) -> int:
    static = []
    traced = []
    starts = []
    per_class = {}
    for _ in range(args.repeat):
        began = time.perf_counter()
        run = check_paths(args.paths, Settings())
        static.append(time.perf_counter() - began)

        began = time.perf_counter()
        check_paths(args.paths, Settings(trace=TraceOptions(mode="on", device=args.device)))
        traced.append(time.perf_counter() - began)

        # The same work, timed piece by piece.
        rules = Settings().rules()
        results = [check_file(f.path, rules) for f in _unique_files(run)]
        options = TraceOptions(mode="on", device=args.device)
        with TraceRunner(args.device) as runner:
            began = time.perf_counter()
            runner.start()
            starts.append(time.perf_counter() - began)
            for (path, name), (info, _) in _targets(results, False).items():
                began = time.perf_counter()
                response = runner.run(_request(path, name, info, options))
                per_class.setdefault(f"{Path(path).name}:{name}", []).append(
                    (time.perf_counter() - began, len(response.get("runs", []))))

    print(f"| {'class':<55} | configs | median s |")
    print(f"|{'-' * 57}|---------|----------|")
    medians = []
    for name, samples in sorted(per_class.items()):
        median = statistics.median(s for s, _ in samples)
        medians.append(median)
        print(f"| {name:<55} | {samples[0][1]:>7} | {median:>8.3f} |")
    print()
    print(f"classes traced:            {len(per_class)}")
    print(f"worker start (torch import): {statistics.median(starts):.2f} s (median of {len(starts)})")
    print(f"per class after the start: median {statistics.median(medians):.3f} s, "
          f"max {max(medians):.3f} s, total {sum(medians):.2f} s")
    print(f"whole run, static only:    {statistics.median(static):.2f} s")
    print(f"whole run, with the trace: {statistics.median(traced):.2f} s")
    return 0


def _unique_files(run):
    seen = {}
    for finding in run.findings:
        seen.setdefault(finding.path, finding)
    return list(seen.values())


if __name__ == "__main__":
    sys.exit(main())
