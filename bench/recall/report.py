"""The recall report: Markdown tables and a JSON document."""
from __future__ import annotations

import collections
from typing import Dict, List, Optional, Sequence

from . import features as FE
from .check import Outcome
from .corpora import PINNED, SECOND
from .generate import Mutant, PackageScan
from .operators import OPERATORS


def _ratio(detected: int, total: int) -> str:
    return f"{detected}/{total} ({detected / total:.2f})" if total else "—"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> List[str]:
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h))
              for i, h in enumerate(header)]
    out = ["| " + " | ".join(str(h).ljust(w) for h, w in zip(header, widths)) + " |",
           "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    for row in rows:
        out.append("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths)) + " |")
    return out


def _kept(mutants: Sequence[Mutant], outcomes: Dict[str, Outcome]) -> List[Mutant]:
    """Mutants kept and checked without an error."""
    return [m for m in mutants if not m.rejected and m.id in outcomes and not outcomes[m.id].error]


def summary(scans: Sequence[PackageScan], mutants: Sequence[Mutant], outcomes: Dict[str, Outcome]) -> dict:
    kept = _kept(mutants, outcomes)
    detected = [m for m in kept if outcomes[m.id].detected]
    per_operator = {}
    for code, name in OPERATORS:
        ms = [m for m in kept if m.code == code]
        d = sum(outcomes[m.id].detected for m in ms)
        any_code = sum(outcomes[m.id].detected or bool(outcomes[m.id].other_codes) for m in ms)
        per_operator[code] = {"name": name, "kept": len(ms), "detected": d,
                              "recall": round(d / len(ms), 3) if ms else None,
                              "detected_any_code": any_code}
    per_package = {}
    for scan in scans:
        ms = [m for m in kept if m.package == scan.package]
        d = sum(outcomes[m.id].detected for m in ms)
        per_package[scan.package] = {
            "kept": len(ms), "detected": d, "recall": round(d / len(ms), 3) if ms else None,
            "by_operator": {code: [sum(outcomes[m.id].detected for m in ms if m.code == code),
                                   sum(1 for m in ms if m.code == code)] for code, _ in OPERATORS}}
    return {"kept": len(kept), "detected": len(detected),
            "recall": round(len(detected) / len(kept), 3) if kept else None,
            "per_operator": per_operator, "per_package": per_package}


def markdown(settings: dict, linter: dict, scans: Sequence[PackageScan], mutants: Sequence[Mutant],
             outcomes: Dict[str, Outcome], seconds: Dict[str, float], examples: int = 3) -> str:
    lines: List[str] = []
    lines.append(f"# resnetlint recall on planted bugs ({settings['date']})")
    lines.append("")
    lines.append(f"resnetlint {linter.get('version')} ({linter.get('commit') or 'no git'}, "
                 f"{linter.get('location')}), run by `{linter.get('python')}`; rules `--select "
                 f"{','.join(settings['select'])}`, static only (no trace, no cache).")
    lines.append(f"Command: `{settings['command']}`")
    lines.append(f"Seed {settings['seed']}, at most {settings['per_operator']} mutants per (package, operator). "
                 f"Times: scan {seconds.get('scan', 0):.0f} s, mutants {seconds.get('materialize', 0):.0f} s, "
                 f"checks {seconds.get('check', 0):.0f} s, total {seconds.get('total', 0):.0f} s "
                 f"(-j {settings['jobs']}).")
    lines.append("")
    lines.append("A mutant is *detected* when a finding of the operator's code appears in the mutated class that "
                 "the original file does not have. Recall = detected / kept (kept: compiles, changes the file, "
                 "checked without error).")
    lines.append("")
    kept = _kept(mutants, outcomes)
    by_package = collections.defaultdict(list)
    for m in kept:
        by_package[m.package].append(m)

    # Counts per package
    rows = []
    for scan in scans:
        ms = [m for m in mutants if m.package == scan.package]
        k = by_package.get(scan.package, [])
        errors = sum(1 for m in ms if not m.rejected and m.id in outcomes and outcomes[m.id].error)
        d = sum(outcomes[m.id].detected for m in k)
        rows.append([scan.package, scan.files, scan.parsed, len(scan.blocks), len(scan.candidates), len(ms),
                     sum(1 for m in ms if m.rejected), errors, len(k), _ratio(d, len(k))])
    lines.append("## Counts")
    lines.append("")
    lines += _table(["package", "files", "parsed", "blocks", "candidate sites", "sampled", "rejected",
                     "check errors", "kept", "detected (recall)"], rows)
    lines.append("")

    # Recall per operator and package
    codes = [code for code, _ in OPERATORS]
    for title, group in (("pinned corpus", [p.distribution for p in PINNED]),
                         ("second corpus", [p.distribution for p in SECOND])):
        present = [s.package for s in scans if s.package in group]
        if not present:
            continue
        lines.append(f"## Recall per operator and package: {title}")
        lines.append("")
        rows = []
        for code in codes:
            row = [f"{code} {dict(OPERATORS)[code]}"]
            total_d = total_k = 0
            for package in present:
                ms = [m for m in by_package.get(package, []) if m.code == code]
                d = sum(outcomes[m.id].detected for m in ms)
                total_d += d
                total_k += len(ms)
                row.append(_ratio(d, len(ms)))
            row.append(_ratio(total_d, total_k))
            rows.append(row)
        row = ["all operators"]
        total_d = total_k = 0
        for package in present:
            ms = by_package.get(package, [])
            d = sum(outcomes[m.id].detected for m in ms)
            total_d += d
            total_k += len(ms)
            row.append(_ratio(d, len(ms)))
        row.append(_ratio(total_d, total_k))
        rows.append(row)
        lines += _table(["operator", *present, "total"], rows)
        lines.append("")

    # Per operator overall
    lines.append("## Per operator (all packages)")
    lines.append("")
    rows = []
    for code, name in OPERATORS:
        ms = [m for m in mutants if m.code == code]
        k = [m for m in kept if m.code == code]
        d = sum(outcomes[m.id].detected for m in k)
        other = sum(1 for m in k if not outcomes[m.id].detected and outcomes[m.id].other_codes)
        elsewhere = sum(1 for m in k if not outcomes[m.id].detected and outcomes[m.id].elsewhere)
        other_codes = collections.Counter(c for m in k if not outcomes[m.id].detected
                                          for c in outcomes[m.id].other_codes)
        rows.append([f"{code} {name}", len(ms), sum(1 for m in ms if m.rejected), len(k), _ratio(d, len(k)),
                     other, ", ".join(f"{c} {n}" for c, n in other_codes.most_common(3)) or "—", elsewhere])
    lines += _table(["operator", "sampled", "rejected", "kept", "detected (recall)",
                     "missed but other code", "which codes", "expected code in another class"], rows)
    lines.append("")

    # Misses by cause
    missed = [m for m in kept if not outcomes[m.id].detected]
    causes = collections.Counter(FE.primary_cause(m.features) for m in missed)
    lines.append("## Misses by cause")
    lines.append("")
    lines.append("Each missed mutant gets one cause: the first feature of the mutated block in this order "
                 "(what builds the mutated layer first). `plain-torch`: none of them, the block uses "
                 "torch.nn layers in one class.")
    lines.append("")
    rows = []
    for cause, count in causes.most_common():
        per_op = collections.Counter(m.code for m in missed if FE.primary_cause(m.features) == cause)
        rows.append([cause, count, f"{count / len(missed):.0%}" if missed else "—",
                     ", ".join(f"{c} {n}" for c, n in sorted(per_op.items())),
                     FE.FEATURE_TEXT.get(cause, "plain torch.nn layers in one class")])
    lines += _table(["cause", "misses", "share", "by operator", "meaning"], rows)
    lines.append("")

    lines.append("## Recall by feature (all kept mutants with the feature)")
    lines.append("")
    counts = collections.Counter(f for m in kept for f in m.features)
    rows = []
    for feature, n in counts.most_common():
        d = sum(outcomes[m.id].detected for m in kept if feature in m.features)
        rows.append([feature, n, _ratio(d, n)])
    lines += _table(["feature", "mutants", "detected (recall)"], rows)
    lines.append("")

    lines.append("## Examples of misses (per top cause)")
    lines.append("")
    for cause, _ in causes.most_common(8):
        lines.append(f"**{cause}**")
        lines.append("")
        ms = sorted([m for m in missed if FE.primary_cause(m.features) == cause], key=lambda m: m.id)
        by_code = collections.defaultdict(list)
        for m in ms:
            by_code[m.code].append(m)
        picks = []
        for code in sorted(by_code):  # spread the examples over operators
            picks.append(by_code[code][0])
        for m in picks[:examples + 2]:
            other = outcomes[m.id].other_codes
            lines.append(f"- `{m.relpath}:{m.line}` ({m.qualname}) {m.code}: {m.description}"
                         + (f" — reported as {', '.join(other)} instead" if other else ""))
        lines.append("")

    errors = [m for m in mutants if not m.rejected and m.id in outcomes and outcomes[m.id].error]
    rejected = collections.Counter((m.rejected or "").split(":")[0] for m in mutants if m.rejected)
    if errors or rejected:
        lines.append("## Rejected mutants and check errors")
        lines.append("")
        for reason, n in rejected.most_common():
            lines.append(f"- rejected, {reason}: {n}")
        for m in errors[:10]:
            lines.append(f"- error on `{m.relpath}` ({m.code}): {outcomes[m.id].error[:200]}")
        if len(errors) > 10:
            lines.append(f"- ... {len(errors) - 10} more errors")
        lines.append("")
    return "\n".join(lines)


def document(settings: dict, linter: dict, scans: Sequence[PackageScan], mutants: Sequence[Mutant],
             outcomes: Dict[str, Outcome], seconds: Dict[str, float], observed: Optional[dict] = None) -> dict:
    rows = []
    for m in mutants:
        outcome = outcomes.get(m.id)
        rows.append({
            "id": m.id, "package": m.package, "path": m.relpath, "class": m.qualname, "class_line": m.class_line,
            "line": m.line, "code": m.code, "operator": m.operator, "variant": m.variant,
            "description": m.description, "layer": m.layer, "features": m.features,
            "cause": FE.primary_cause(m.features), "rejected": m.rejected, "diff": m.diff,
            "detected": outcome.detected if outcome else None,
            "elsewhere": outcome.elsewhere if outcome else None,
            "other_codes": outcome.other_codes if outcome else None,
            "new_findings": outcome.new_findings if outcome else None,
            "error": outcome.error if outcome else None,
            "seconds": outcome.seconds if outcome else None,
        })
    return {
        "settings": settings, "linter": linter, "seconds": seconds,
        "packages": [{"package": s.package, "files": s.files, "parsed": s.parsed, "parse_errors": s.parse_errors,
                      "blocks": len(s.blocks), "candidates": len(s.candidates),
                      "candidates_per_operator": dict(collections.Counter(c.code for c in s.candidates))}
                     for s in scans],
        "summary": summary(scans, mutants, outcomes),
        "observed": observed,
        "mutants": rows,
    }
