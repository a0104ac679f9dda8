"""How much the dynamic trace costs: worker start-up (torch import), then each
traced class, then the whole run against a static-only run.

    .venv/bin/python bench/trace_bench.py [PATH ...] [--device cpu|meta|cuda] [--repeat N]

Defaults to the bundled fixtures.  Prints a table of per-class times (median
over the repeats) and the totals.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from resnetlint.api import Settings, check_paths  # noqa: E402
from resnetlint.trace import TraceOptions, _request, _targets  # noqa: E402
from resnetlint.trace.runner import TraceRunner  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="*", default=[str(ROOT / "fixtures")])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

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
        from resnetlint.api import check_file

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
