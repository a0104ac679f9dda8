"""Snapshot resnetlint's findings on unpacked corpora, and compare snapshots.

Precision is reviewed finding by finding; this script keeps that review
cheap after a change: it lists only the findings that appeared or went away.

    python bench/findings.py snapshot /work/corpora/src -o before.json
    ... change the model ...
    python bench/findings.py snapshot /work/corpora/src -o after.json
    python bench/findings.py diff before.json after.json

``snapshot`` runs ``resnetlint --select ALL --no-trace --no-cache`` once per
package folder found under the root (each child folder is one package), in a
subprocess of this interpreter, and stores every finding (code, file, line,
class, message).  A finding is matched across snapshots by code, file, class
and message, not line, so an edit above it does not make it new.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import time
from typing import Dict, List, Tuple


def snapshot(root: str, output: str, jobs: int, packages: List[str]) -> None:
    names = packages or sorted(n for n in os.listdir(root) if os.path.isdir(os.path.join(root, n)))
    findings = []
    timings = {}
    for name in names:
        started = time.monotonic()
        command = [sys.executable, "-m", "resnetlint", os.path.join(root, name), "--select", "ALL", "--no-trace",
                   "--no-cache", "--format", "json", "-j", str(jobs), "--exit-zero"]
        done = subprocess.run(command, capture_output=True, text=True)
        timings[name] = round(time.monotonic() - started, 1)
        try:
            report = json.loads(done.stdout)
        except json.JSONDecodeError:
            sys.exit(f"{name}: resnetlint did not print JSON (exit {done.returncode}):\n{done.stderr[-2000:]}")
        for item in _findings(report):
            item["package"] = name
            item["path"] = os.path.relpath(item["path"], root)
            findings.append(item)
        print(f"{name}: {sum(f['package'] == name for f in findings)} findings in {timings[name]} s", file=sys.stderr)
    with open(output, "w", encoding="utf-8") as handle:
        json.dump({"root": root, "seconds": timings, "findings": findings}, handle, indent=1)


def _findings(report) -> List[dict]:
    items = report.get("findings", report) if isinstance(report, dict) else report
    out = []
    for item in items:
        location = item.get("location") or {}
        out.append({
            "code": item.get("code"),
            "path": item.get("filename") or item.get("path"),
            "line": location.get("row", item.get("line")),
            "symbol": item.get("symbol") or item.get("class"),
            "message": item.get("message"),
        })
    return out


def _key(item) -> Tuple:
    return item["code"], item["path"], item["symbol"], item["message"]


def diff(before_path: str, after_path: str) -> int:
    before = json.load(open(before_path, encoding="utf-8"))["findings"]
    after = json.load(open(after_path, encoding="utf-8"))["findings"]
    old: Dict[Tuple, dict] = {_key(f): f for f in before}
    new: Dict[Tuple, dict] = {_key(f): f for f in after}
    gone = [old[k] for k in old if k not in new]
    came = [new[k] for k in new if k not in old]
    for title, items in (("new", came), ("gone", gone)):
        print(f"## {title}: {len(items)}")
        for f in sorted(items, key=lambda f: (f["path"], f["line"] or 0)):
            print(f"{f['code']} {f['path']}:{f['line']} {f['symbol']}: {f['message']}")
    counts = collections.Counter(f["code"] for f in after)
    print(f"## after: {len(after)} findings ({', '.join(f'{c} {n}' for c, n in sorted(counts.items()))})")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    take = sub.add_parser("snapshot", help="run resnetlint on every package under ROOT")
    take.add_argument("root")
    take.add_argument("-o", "--output", required=True)
    take.add_argument("-j", "--jobs", type=int, default=2)
    take.add_argument("--packages", default="", help="comma-separated package folders (default: all)")
    compare = sub.add_parser("diff", help="findings that appeared or went away")
    compare.add_argument("before")
    compare.add_argument("after")
    args = parser.parse_args()
    if args.command == "snapshot":
        snapshot(args.root, args.output, args.jobs, [p for p in args.packages.split(",") if p])
        return 0
    return diff(args.before, args.after)


if __name__ == "__main__":
    sys.exit(main())
