"""The fix report: per operator, how many observable bugs the fixes repair
and how many come back to the original code, and the failures by cause."""
from __future__ import annotations

import collections
from typing import Dict, List, Sequence

from ..recall.operators import NAMES
from ..recall.report import _table
from .judge import Verdict


def _ratio(part: int, whole: int) -> str:
    return f"{part}/{whole} ({part / whole:.0%})" if whole else "—"


def totals(verdicts: Sequence[Verdict]) -> str:
    observable = [v for v in verdicts if v.status == "observable"]
    detected = [v for v in observable if v.detected]
    clean = sum(v.runs_clean for v in observable)
    exact = sum(v.exact for v in observable)
    as_fixed = sum(v.exact_fixed_original and not v.exact for v in observable)
    crashes = sum(bool(v.static_new_crash) for v in verdicts)
    return (f"observable crash-type mutants: {len(observable)}; run cleanly after --fix --unsafe-fixes (trace): "
            f"{_ratio(clean, len(observable))}; back to the original: {_ratio(exact, len(observable))}"
            f" (and {as_fixed} more back to the original as resnetlint fixes it: its own findings, fixed too). "
            f"Of the {len(detected)} that resnetlint detects: run cleanly "
            f"{_ratio(sum(v.runs_clean for v in detected), len(detected))}, back to the original "
            f"{_ratio(sum(v.exact for v in detected), len(detected))}. "
            f"--no-trace fixes that made a block crash: {crashes}")


def markdown(settings: dict, linter: dict, mutants: List[dict], verdicts: Dict[str, Verdict]) -> str:
    lines: List[str] = [f"# resnetlint fixes on planted bugs ({settings['date']})", ""]
    lines.append(f"resnetlint {linter.get('version')} ({linter.get('commit') or 'no git'}, {linter.get('location')}),"
                 f" run by `{linter.get('python')}`. Command: `{settings['command']}`; seed {settings['seed']}, at "
                 f"most {settings['per_operator']} mutants per (package, operator); {settings.get('seconds', '?')} s.")
    lines.append("")
    lines.append("Each mutant is fixed with `--fix --unsafe-fixes` and the rules on by default, as with torch "
                 "installed (each fix proven by the trace) and as `--no-trace` (the pre-commit hook: only fixes the "
                 "static model proves). The original, the mutant and both fixed texts are run by the trace worker "
                 "in the same constructor configurations. *Observable*: the mutant fails, leaves a parameter "
                 "without gradient or changes its input in place in a configuration where the original ran "
                 "cleanly. *Runs cleanly*: the fixed block does none of that in any such configuration. *Back*: "
                 "the fixed file equals the original modulo whitespace.")
    lines.append("")
    lines.append(totals(list(verdicts.values())))
    lines.append("")
    by_code = collections.defaultdict(list)
    for m in mutants:
        by_code[m["code"]].append(verdicts[m["id"]])
    rows = []
    for code in sorted(by_code):
        vs = by_code[code]
        observable = [v for v in vs if v.status == "observable"]
        rows.append([f"{code} {NAMES.get(code, '')}", len(vs), sum(v.status == "error" for v in vs),
                     sum(v.status == "original does not run" for v in vs),
                     sum(v.status == "not observable" for v in vs), len(observable),
                     sum(v.detected for v in observable),
                     _ratio(sum(v.runs_clean for v in observable), len(observable)),
                     _ratio(sum(v.runs_clean for v in observable if v.detected), sum(v.detected for v in observable)),
                     _ratio(sum(v.exact for v in observable), len(observable)),
                     _ratio(sum(v.static_runs_clean for v in observable), len(observable)),
                     sum(bool(v.static_new_crash) for v in vs)])
    observable = [v for v in verdicts.values() if v.status == "observable"]
    rows.append(["all", len(verdicts), sum(v.status == "error" for v in verdicts.values()),
                 sum(v.status == "original does not run" for v in verdicts.values()),
                 sum(v.status == "not observable" for v in verdicts.values()), len(observable),
                 sum(v.detected for v in observable),
                 _ratio(sum(v.runs_clean for v in observable), len(observable)),
                 _ratio(sum(v.runs_clean for v in observable if v.detected), sum(v.detected for v in observable)),
                 _ratio(sum(v.exact for v in observable), len(observable)),
                 _ratio(sum(v.static_runs_clean for v in observable), len(observable)),
                 sum(bool(v.static_new_crash) for v in verdicts.values())])
    lines += _table(["operator", "mutants", "harness errors", "original does not run", "not observable",
                     "observable", "detected", "runs cleanly (trace)", "runs cleanly / detected", "back to the original", "runs cleanly (--no-trace)",
                     "--no-trace fix added a crash"], rows)
    lines.append("")
    failures = [(m, verdicts[m["id"]]) for m in mutants
                if verdicts[m["id"]].status == "observable" and not verdicts[m["id"]].runs_clean]
    lines.append("## Observable mutants that do not run cleanly after the fix, by cause")
    lines.append("")
    causes = collections.Counter(v.cause for _, v in failures)
    rows = []
    for cause, count in causes.most_common():
        per_code = collections.Counter(m["code"] for m, v in failures if v.cause == cause)
        rows.append([cause, count, ", ".join(f"{c} {n}" for c, n in sorted(per_code.items()))])
    lines += _table(["cause", "mutants", "by operator"], rows)
    lines.append("")
    for m, v in sorted(failures, key=lambda item: (item[1].cause, item[0]["id"]))[:60]:
        lines.append(f"- `{m['relpath']}` {m['qualname']} {m['code']}: {m['description']} — {v.cause}")
    lines.append("")
    inexact = [(m, verdicts[m["id"]]) for m in mutants
               if verdicts[m["id"]].status == "observable" and verdicts[m["id"]].runs_clean
               and not verdicts[m["id"]].exact]
    lines.append("## Fixed (runs cleanly) but not back to the original")
    lines.append("")
    for m, v in sorted(inexact, key=lambda item: item[0]["id"])[:60]:
        lines.append(f"- `{m['relpath']}` {m['qualname']} {m['code']}: {m['description']} — {v.exact_cause}")
    lines.append("")
    crashes = [(m, verdicts[m["id"]]) for m in mutants if verdicts[m["id"]].static_new_crash]
    lines.append("## `--no-trace` fixes that made a block crash")
    lines.append("")
    if not crashes:
        lines.append("None.")
    for m, v in crashes:
        lines.append(f"- `{m['relpath']}` {m['qualname']} {m['code']}: {m['description']} — {v.static_new_crash[0]}")
    lines.append("")
    others = collections.Counter((v.status, v.detail[:100]) for v in verdicts.values()
                                 if v.status in ("error", "original does not run"))
    if others:
        lines.append("## Not measured")
        lines.append("")
        for (status, detail), count in others.most_common(15):
            lines.append(f"- {status} ({count}): {detail}")
        lines.append("")
    return "\n".join(lines)
