"""What a fixed mutant's runs mean.

A configuration is one set of constructor arguments the trace tried (the
same for the original, the mutant and the fixed texts: they are all run with
the original's trace request).  A configuration is *clean* for the original
when it built, ran forward and backward without an error.  A run is *broken*
against the original's clean run of the same configuration when it raised
(construction, forward or backward), left a parameter without gradient that
had one in the original, or changed its input in place where the original
did not.

* the mutant's bug is **observable** (a crash-type bug) when the mutant is
  broken in some clean configuration of the original;
* the fix **runs cleanly** when the fixed text is broken in no clean
  configuration of the original (and shares at least one with it);
* the fix **comes back** when the fixed text equals the original modulo
  whitespace (reported apart: it equals the original *as resnetlint fixes
  it*, when the original has findings of its own that the fix repairs too);
* the fix without the trace (``--no-trace``, the pre-commit hook) **adds a
  crash** when it raises in a configuration where the mutant did not.
"""
from __future__ import annotations

import collections
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional

CRASH_OPERATORS = ("RL101", "RL102", "RL103", "RL104", "RL201", "RL202", "RL203", "RL204", "RL205", "RL302")


@dataclass
class Verdict:
    code: str
    status: str  # "error" | "original does not run" | "not observable" | "observable"
    runs_clean: bool = False
    exact: bool = False
    # equals the original as resnetlint fixes it (the original has findings of its own)
    exact_fixed_original: bool = False
    cause: str = ""  # why the fix does not run cleanly (observable mutants only)
    exact_cause: str = ""  # why it does not come back to the original
    static_runs_clean: bool = False
    static_exact: bool = False
    static_new_crash: List[str] = field(default_factory=list)  # configurations the no-trace fix broke
    static_unproven: int = 0  # fixes the no-trace run listed as needing the trace
    detected: bool = False  # the mutant has a finding in the class that the original does not
    detail: str = ""


def _configs(summary: dict) -> Dict[str, dict]:
    return {c["config"]: c for c in summary.get("configs", [])} if summary.get("status") == "ok" else {}


def broken(run: dict, base: dict) -> str:
    """Why ``run`` is worse than the original's clean ``base`` ("" if not)."""
    if run.get("error"):
        return f"{run.get('stage') or 'run'}: {run['error']}"
    dead = sorted(set(run.get("no_grad", [])) - set(base.get("no_grad", [])))
    if dead:
        return "no gradient: " + ", ".join(dead[:4])
    if run.get("mutated") and not base.get("mutated"):
        return "changes its input in place"
    return ""


def _clean(original: Dict[str, dict]) -> Dict[str, dict]:
    return {name: c for name, c in original.items() if not c.get("error")}


def _problems(runs: Dict[str, dict], clean: Dict[str, dict]) -> Optional[List[str]]:
    """The broken clean configurations; None when none is shared."""
    shared = [name for name in clean if name in runs]
    if not shared:
        return None
    return [f"{name}: {why}" for name in shared for why in [broken(runs[name], clean[name])] if why]


def _mode(text: str) -> str:
    text = re.sub(r"\d+", "N", text)
    return text[:110]


def judge(mutant: dict, result: dict) -> Verdict:
    code = mutant["code"]
    if result.get("error"):
        return Verdict(code, "error", detail=result["error"].strip().splitlines()[-1][:200])
    runs = result.get("runs", {})
    original = _configs(runs.get("original", {}))
    clean = _clean(original)
    if not clean:
        why = runs.get("original", {}).get("error") or "no configuration ran cleanly"
        return Verdict(code, "original does not run", detail=why[:200])
    bugs = _problems(_configs(runs.get("mutant", {})), clean)
    if bugs is None:
        bugs = ["the mutant shares no configuration with the original"]
    verdict = Verdict(code, "observable" if bugs else "not observable", detail="; ".join(bugs)[:300])
    verdict.exact = bool(result.get("exact"))
    new = collections.Counter(f["code"] for f in result.get("mutant_findings", [])) - \
        collections.Counter(result.get("original_findings", []))
    verdict.detected = bool(new)
    verdict.static_exact = bool(result.get("exact_static"))
    fixed = _problems(_configs(runs.get("fixed", {})), clean)
    verdict.runs_clean = fixed == []
    static = _problems(_configs(runs.get("fixed_static", {})), clean)
    verdict.static_runs_clean = static == []
    verdict.static_unproven = len(result.get("fix_static", {}).get("unproven", []))
    mutant_runs = _configs(runs.get("mutant", {}))
    static_runs = _configs(runs.get("fixed_static", {}))
    verdict.static_new_crash = [f"{name}: {run['error'][:120]}" for name, run in static_runs.items()
                                if run.get("error") and name in mutant_runs and not mutant_runs[name].get("error")]
    if not verdict.runs_clean:
        verdict.cause = _cause(result, fixed, runs.get("fixed", {}))
    verdict.exact_fixed_original = bool(result.get("exact_fixed_original"))
    if not verdict.exact:
        verdict.exact_cause = "not fixed" if not result.get("fix", {}).get("changed") else \
            "back to the original as resnetlint fixes it (its own findings fixed too)" \
            if verdict.exact_fixed_original else "fixed differently"
    return verdict


def _cause(result: dict, problems: Optional[List[str]], fixed_summary: dict) -> str:
    """One cause per failure, the first that applies."""
    fix = result.get("fix", {})
    found = [f for f in result.get("mutant_findings", [])]
    if fix.get("error"):
        return f"fixer error: {fix['error'][:80]}"
    if not fix.get("changed"):
        if not found:
            return "not detected (no finding in the class)"
        if fix.get("rejected"):
            return "fix rejected by the trace: " + _mode(fix["rejected"][0]["why"])
        fixable = [f for f in found if f.get("fix")]
        if not fixable:
            return "no fix offered for " + ",".join(sorted({f["code"] for f in found}))
        return "fix offered but not applied"
    if fixed_summary.get("status") != "ok":
        return "fixed block not traceable: " + _mode(str(fixed_summary.get("error", "")))
    if problems is None:
        return "fixed block shares no configuration with the original"
    first = problems[0].split(": ", 1)[-1] if problems else ""
    if first.startswith("no gradient"):
        return "fixed, but parameters still without gradient"
    if first.startswith("changes its input"):
        return "fixed, but still changes its input in place"
    return "fixed, but still fails: " + _mode(first)
