"""Runs inside the interpreter of the resnetlint under test, which must have
torch and the corpus package's dependencies (never imports anything from the
harness): fixes each mutant of a job and runs the blocks.

    <python> worker.py JOB.json

The job names the scratch copy of one package and, per mutant, its file,
class, original text and mutant text.  For each mutant, with the mutant's
text written into its file:

1. the static model of the *original* text gives the class's trace request
   (call sites, widths...), so every run below tries the same constructor
   configurations;
2. the original and the mutant are run by the trace worker (the text is sent
   as source, so every run gets a fresh module);
3. ``fix_file(..., unsafe=True, trace=prover)`` fixes the file as
   ``resnetlint FILE --fix --unsafe-fixes`` does with torch installed, and
   ``fix_file(..., unsafe=True)`` as ``--no-trace`` does (the pre-commit
   hook); both fixed texts are run too.

One JSON line is printed per mutant (see ``_record``); the file's original
text is put back after each mutant and in a ``finally``.
"""
import json
import os
import sys
import time
import traceback
from typing import Dict, Optional

RESTART_EVERY = 20  # mutants per trace worker: each run leaves a module behind in it


def _summary(response):
    """Per configuration: the first error, the parameters without gradient,
    whether the input was changed in place (plain data for the judge)."""
    if response.get("status") != "ok":
        return {"status": response.get("status", "?"), "error": str(response.get("error", ""))[:300], "configs": []}
    configs = []
    for config in response.get("runs", []):
        if config.get("stochastic"):
            continue  # dropout on: outputs are random, and its errors are the other configuration's
        entry = {"config": config.get("config", "?"), "error": config.get("construct_error", ""),
                 "stage": "construct" if config.get("construct_error") else "", "no_grad": [], "mutated": False}
        for run in config.get("runs", []):
            for stage in ("forward", "backward"):
                if run.get(f"{stage}_error") and not entry["error"]:
                    entry["error"], entry["stage"] = run[f"{stage}_error"], stage
            entry["no_grad"] = sorted(set(entry["no_grad"]) | set(run.get("no_grad", [])))
            entry["mutated"] = entry["mutated"] or bool(run.get("input_mutated"))
        entry["error"] = entry["error"][:300]
        configs.append(entry)
    return {"status": "ok", "error": "", "configs": configs}


def _applied(outcome):
    return {
        "applied": [{"code": a.finding.code, "symbol": a.finding.symbol, "description": a.finding.fix.description,
                     "safety": a.finding.fix.safety} for a in outcome.applied],
        "rejected": [{"code": r.finding.code, "symbol": r.finding.symbol, "why": r.rejected[:300]}
                     for r in outcome.rejected],
        "unproven": [{"code": u.finding.code, "symbol": u.finding.symbol, "why": u.rejected[:300]}
                     for u in getattr(outcome, "unproven", [])],
        "remaining": [{"code": f.code, "symbol": f.symbol, "has_fix": f.fix is not None and bool(f.fix.edits)}
                      for f in outcome.remaining],
        "error": outcome.error,
        "changed": outcome.changed,
    }


def _same_code(a, b):
    """Equal modulo whitespace."""
    return "".join(a.split()) == "".join(b.split())


def _diff(before, after, limit=4000):
    """What the fixed file still differs in from the original (empty: nothing)."""
    import difflib

    text = "".join(difflib.unified_diff(before.splitlines(True), after.splitlines(True), "original", "fixed", n=1))
    return text if len(text) <= limit else text[:limit] + "\n[...]"


def main():
    with open(sys.argv[1], encoding="utf-8") as fh:
        job = json.load(fh)
    from resnetlint.api import Settings, shared_project
    from resnetlint.engine import check_text
    from resnetlint.fixer import fix_file
    from resnetlint.trace import TraceOptions, _request, prove_fixes, run_source
    from resnetlint.trace.runner import TraceRunner

    rules = Settings().rules()  # the rules on by default, as `resnetlint FILE --fix --unsafe-fixes` runs them
    options = TraceOptions(mode="on", total_timeout=10.0 ** 9, class_timeout=job.get("class_timeout", 30.0))
    runner = None
    served = 0

    def run(path, name, info, text):
        request = _request(path, name, info, options)
        request["source"] = text
        return _summary(run_source(runner, request))

    def prove(outcome):
        return prove_fixes(outcome, runner, options, rules)

    root = job["root"]
    # The original as resnetlint fixes it, per file: where the original has
    # findings of its own, a mutant's fix repairs them too, and "back to the
    # original" is then judged against this as well (reported apart).
    references: Dict[str, Optional[str]] = {}
    try:
        for item in job["items"]:
            if runner is None or served >= RESTART_EVERY:
                if runner is not None:
                    runner.stop()
                runner = TraceRunner("cpu", options.class_timeout, options.total_timeout, options.memory_mb)
                runner.start()
                served = 0
            served += 1
            path = os.path.join(root, item["relpath"])
            name = item["qualname"].split(".")[-1]
            record = {"id": item["id"]}
            started = time.perf_counter()
            try:
                if item["relpath"] not in references:
                    reference = fix_file(path, rules, True, trace=prove)
                    references[item["relpath"]] = reference.fixed if reference.changed else None
                with open(path, "w", encoding="utf-8", newline="") as fh:
                    fh.write(item["mutant"])
                original = check_text(item["original"], path, rules, fast=False, project=shared_project())
                info = original.blocks.get(name)
                if info is None:
                    record["error"] = f"the static model has no class {name}"
                else:
                    record["original_findings"] = sorted(f.code for f in original.findings if f.symbol == name)
                    mutant = check_text(item["mutant"], path, rules, fast=False, project=shared_project())
                    record["mutant_findings"] = [{"code": f.code, "symbol": f.symbol, "message": f.message[:200],
                                                  "fix": f.fix.description if f.fix else None,
                                                  "safety": f.fix.safety if f.fix else None}
                                                 for f in mutant.findings if f.symbol == name]
                    record["runs"] = {"original": run(path, name, info, item["original"]),
                                      "mutant": run(path, name, info, item["mutant"])}
                    traced = fix_file(path, rules, True, trace=prove)
                    record["fix"] = _applied(traced)
                    record["exact"] = _same_code(traced.fixed, item["original"])
                    fixed_original = references[item["relpath"]]
                    record["exact_fixed_original"] = fixed_original is not None and \
                        _same_code(traced.fixed, fixed_original)
                    record["fixed_diff"] = _diff(item["original"], traced.fixed)
                    record["runs"]["fixed"] = run(path, name, info, traced.fixed) if traced.changed else \
                        record["runs"]["mutant"]
                    static = fix_file(path, rules, True, trace=None)
                    record["fix_static"] = _applied(static)
                    record["exact_static"] = _same_code(static.fixed, item["original"])
                    record["fixed_static_diff"] = _diff(item["original"], static.fixed)
                    record["runs"]["fixed_static"] = run(path, name, info, static.fixed) if static.changed else \
                        record["runs"]["mutant"]
            except Exception:  # noqa: BLE001 - one mutant's failure is recorded, the job goes on
                record["error"] = traceback.format_exc()[-1500:]
            finally:
                with open(path, "w", encoding="utf-8", newline="") as fh:
                    fh.write(item["original"])
            record["seconds"] = round(time.perf_counter() - started, 2)
            print(json.dumps(record), flush=True)
    finally:
        if runner is not None:
            runner.stop()


if __name__ == "__main__":
    main()
