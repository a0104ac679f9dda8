"""The trace's lines in the text summary: what ran, what was refuted, and
the blocks that could not be run grouped by reason (each one listed with
``--verbose``)."""
from __future__ import annotations

from typing import List

from .reasons import REASONS


def _plural(count: int, word: str, many: str = "") -> str:
    return f"{count} {word if count == 1 else (many or word + 's')}"


def summary_lines(report, verbose: bool = False) -> List[str]:
    """The trace summary as text lines (none when there was nothing to trace)."""
    if report is None or (not report.ran and report.reason == "nothing to trace"):
        return []
    if not report.ran:
        return [f"Trace: not run ({report.reason})."]
    line = (f"Trace: {_plural(report.classes, 'class', 'classes')} run on {report.device} "
            f"(torch {report.torch}) in {report.seconds:.1f} s")
    if report.cached:
        line += f" ({report.cached} from the cache)"
    if report.refuted:
        line += f"; {_plural(report.refuted, 'finding')} refuted by the runs (--show-refuted keeps them in JSON/SARIF)"
    if report.unrunnable:
        groups = ", ".join(f"{count} {REASONS.get(reason, reason)}" for reason, count in report.by_reason().items())
        line += f"; {report.unverified} could not be run ({groups})"
    lines = [line + "."]
    if report.unrunnable and verbose:
        for block in sorted(report.unrunnable, key=lambda b: (b.reason, b.path, b.symbol)):
            label = REASONS.get(block.reason, block.reason)
            text = block.detail if block.detail.startswith(label.split(" the ")[0]) else f"{label}: {block.detail}"
            lines.append(f"  {block.path}: {block.symbol}: {text}")
    return lines
