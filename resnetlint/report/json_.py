"""The JSON contract (version 1): see README.md "JSON output"."""
from __future__ import annotations

import json
from typing import IO, Any, Dict


def document(run, extra_summary: Dict[str, Any] = None) -> Dict[str, Any]:
    remaining = run.unfixed_findings() if hasattr(run, "unfixed_findings") else run.findings
    summary = {"files": run.files, "findings": len(remaining)}
    if getattr(run, "found_before_fixing", None) is not None:
        summary["fixed"] = run.resolved
        summary["fixes_applied"] = run.fixes_applied
    trace = getattr(run, "trace", None)
    findings = list(run.findings)
    if trace is not None:
        summary["trace"] = trace.to_json()
        if trace.show_refuted:  # kept, with status "refuted" and the runs that disproved them
            findings = sorted(findings + list(getattr(run, "refuted", ())), key=lambda f: f.sort_key())
    summary.update(extra_summary or {})
    return {
        "version": 1,
        "findings": [f.to_json() for f in findings],
        "errors": [e.to_json() for e in run.errors],
        "summary": summary,
    }


def render(run, stream: IO[str], extra_summary: Dict[str, Any] = None) -> None:
    json.dump(document(run, extra_summary), stream, indent=2, ensure_ascii=False)
    stream.write("\n")
