"""Runs inside the interpreter of the resnetlint under test (never imports
anything from the harness): checks files of a scratch copy of a package,
each first as it is, then with each mutant's text swapped in.

    <python> driver.py JOB.json

The job names the scratch root, the rule selection and, per file, the
mutants (id and full text).  One JSON line is printed per check as soon as
it is done, so a time-out loses only the check that was running:

    {"id": "<mutant id or 'original:<path>'>", "findings": [...], "error": null, "seconds": 0.12}

Each check uses the public API (``resnetlint.check_paths`` on that one file,
no trace, no cache); with ``"via": "cli"`` (or when the API is missing) the
command line ``python -m resnetlint FILE --no-trace --no-cache --isolated
--format json --select ...`` instead.  The original text of every file is
put back before the next file, and in a ``finally``.
"""
import importlib
import json
import os
import subprocess
import sys
import time


def _finding(f):
    return {"code": f["code"], "symbol": f.get("symbol", ""), "line": f.get("line", 0),
            "message": f.get("message", "")}


def _check_api(path, select):
    from resnetlint import Settings, check_paths

    run = check_paths([path], Settings(select=select, jobs=1, cache=False))
    findings = [_finding({"code": f.code, "symbol": f.symbol, "line": f.line, "message": f.message})
                for f in run.findings]
    errors = [f"{e.path}: {e.message}" for e in run.errors]
    return findings, ("; ".join(errors) or None)


def _check_cli(path, select):
    cmd = [sys.executable, "-m", "resnetlint", path, "--no-trace", "--no-cache", "--isolated", "--format", "json",
           "--select", ",".join(select), "--exit-zero", "-j", "1"]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=os.path.dirname(path) or ".")
    try:
        document = json.loads(done.stdout)
    except ValueError:
        return [], f"exit {done.returncode}: {done.stderr[-500:]}"
    errors = [f"{e.get('path')}: {e.get('message')}" for e in document.get("errors", [])]
    return [_finding(f) for f in document.get("findings", [])], ("; ".join(errors) or None)


def _write(path, text, stamp):
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
    # a new mtime every time: a cache keyed on (path, mtime) must not see the same file
    os.utime(path, ns=(stamp, stamp))


def main():
    with open(sys.argv[1], encoding="utf-8") as fh:
        job = json.load(fh)
    select = job.get("select") or ["ALL"]
    check = _check_api
    if job.get("via") == "cli":
        check = _check_cli
    else:
        try:
            importlib.import_module("resnetlint").check_paths  # noqa: B018 - the API the driver needs
        except (ImportError, AttributeError):
            check = _check_cli
    stamp = time.time_ns()
    for item in job["files"]:
        path = os.path.join(job["root"], item["path"])
        with open(path, encoding="utf-8", newline="") as fh:
            original = fh.read()
        try:
            for entry in [{"id": "original:" + item["path"], "text": None}] + item["mutants"]:
                started = time.perf_counter()
                if entry["text"] is not None:
                    stamp += 1_000_000_000
                    _write(path, entry["text"], stamp)
                try:
                    findings, error = check(path, select)
                except Exception as exc:  # an internal error of the linter: recorded, not fatal
                    findings, error = [], f"{type(exc).__name__}: {exc}"
                print(json.dumps({"id": entry["id"], "findings": findings, "error": error,
                                  "seconds": round(time.perf_counter() - started, 4)}), flush=True)
        finally:
            stamp += 1_000_000_000
            _write(path, original, stamp)


if __name__ == "__main__":
    main()
