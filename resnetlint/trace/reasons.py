"""Why the trace could not run a block: one reason per block, in words a
user can act on, for the JSON report and the text summary (grouped)."""
from __future__ import annotations

import re
from typing import Any, Dict, Optional, Tuple

REASONS = {
    "import-error": "could not import the module",
    "class-not-found": "the class is not an nn.Module of the imported module",
    "no-config": "a constructor argument without a value resnetlint can choose",
    "constructor-raised": "the constructor raised in every configuration",
    "forward-raised": "forward raised in every configuration",
    "timeout": "did not finish in time",
    "crashed": "the trace worker died",
    "budget": "the run's time budget was used up",
    "no-device": "the device is not available",
    "worker-error": "the trace worker failed",
}
_MISSING_MODULE = re.compile(r"No module named '([^']+)'")


def missing_module(error: str) -> Optional[str]:
    """The module an import error names as missing, if any."""
    match = _MISSING_MODULE.search(error or "")
    return match.group(1) if match else None


def unrunnable_reason(response: Dict[str, Any], evidence_found: bool) -> Optional[Tuple[str, str]]:
    """(reason, detail) when no configuration of the block ran to the end of
    forward and no finding got its evidence from a failed run; else None."""
    status = response.get("status")
    if status != "ok":
        reason = status if status in REASONS else "worker-error"
        return reason, response.get("error", "") or REASONS[reason]
    configs = response.get("runs", [])
    built = [c for c in configs if "construct_error" not in c]
    for config in built:
        for run in config.get("runs", []):
            if not run.get("forward_error"):
                return None
    if evidence_found:
        return None  # it ran into the predicted failure: that is running it
    if not built:
        first = configs[0] if configs else {}
        return "constructor-raised", f"{first.get('config', '?')}: {first.get('construct_error', 'no configuration')}"
    config = built[0]
    run = (config.get("runs") or [{}])[0]
    where = f"{config['config']} on input {tuple(run.get('input', ()))}"
    raised = run.get("raised_in") or "forward"
    return "forward-raised", f"{where}: {raised} raised {run.get('forward_error', '?')}"
