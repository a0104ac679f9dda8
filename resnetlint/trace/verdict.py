"""From raw evidence to a verdict on one finding.

Each rule says what runtime evidence its finding predicts (the ``expect``
of its violation); this module looks for it in the worker's results:

=================  ==========================================================
``dead-chain``     the stale layer raised a channel error, or the layers whose
                   output is dead received no gradient (RL101, RL102)
``no-grad``        the module's parameters received no gradient (RL104)
``shape-or-dead``  the add failed, or the bypassed shortcut got no gradient (RL103)
``channel-error``  a width error at construction or in forward (RL201)
``shape-error``    the residual add (or the main path) failed on sizes (RL202-4)
``construction-error``  the constructor raised the predicted error (RL205)
``mutation``       forward changed its input, or backward hit an in-place error (RL302)
``dead-bias``      the conv bias received a zero gradient (RL301)
``design``         nothing a run can show (RL303)
=================  ==========================================================

``confirmed`` needs the predicted evidence in at least one configuration;
``not-confirmed`` means every configuration ran cleanly and none showed it;
``unverified`` means the block could not be imported, built or run.
"""
from __future__ import annotations

import re
from typing import Any, Dict, Iterator, List, Optional, Tuple

from ..findings import Confirmation, Finding

CHANNEL_ERROR = re.compile(
    r"channels|channel dimensions|running_mean|running_var|size mismatch|mat1 and mat2|normalized_shape|"
    r"must match the size of tensor .* at non-singleton dimension 1\b|weight of size|expected input",
    re.IGNORECASE)
# Two wordings of a failed elementwise add: real tensors, and meta tensors.
SIZE_ERROR = re.compile(r"size of tensor a \((\d+)\) must match the size of tensor b \((\d+)\) at non-singleton dimension (\d+)"
                        r"|Attempting to broadcast a dimension of length (\d+) at (-?\d+)")


def mismatched_dimension(error: str, rank: int = 4) -> Optional[int]:
    """Which dimension a failed add disagreed on (0-based, like torch)."""
    match = SIZE_ERROR.search(error)
    if match is None:
        return None
    if match.group(3) is not None:
        return int(match.group(3))
    dim = int(match.group(5))
    return dim + rank if dim < 0 else dim
INPLACE_ERROR = re.compile(r"modified by an inplace operation", re.IGNORECASE)

FAILURES = {
    "import-error": "could not import the module",
    "class-not-found": "could not find the class",
    "no-config": "could not build the block",
    "timeout": "the block did not finish in time",
    "crashed": "the trace worker died",
    "budget": "not traced",
    "worker-error": "the trace worker failed",
}


def judge(finding: Finding, response: Dict[str, Any]) -> Confirmation:
    status = response.get("status")
    if status != "ok":
        reason = FAILURES.get(status, "the trace failed")
        return Confirmation("unverified", f"{reason}: {response.get('error', '')}".rstrip(": "))
    configs = response.get("runs", [])
    kind = finding.expect.get("kind", "")
    check = CHECKS.get(kind)
    if check is None:
        return Confirmation("not-confirmed", "a design rule: no run of the block can show it")
    # A configuration with dropout at work is random: it shows in-place
    # damage (dropout after a saved activation), never missing gradients.
    evidence = check(finding, configs if kind == "mutation" else [c for c in configs if not c.get("stochastic")])
    if evidence is not None:
        return Confirmation("confirmed", evidence)
    built = [c for c in configs if "construct_error" not in c and "input_error" not in c]
    if not built:
        first = configs[0] if configs else {}
        why = first.get("construct_error") or first.get("input_error") or "no configuration"
        return Confirmation("unverified", f"no configuration could be built and run ({first.get('config', '?')}: {why})")
    clean = [(c, run) for c in built for run in c["runs"] if _ran_cleanly(run)]
    total = sum(len(c["runs"]) for c in built)
    if clean:
        config, run = clean[0]
        return Confirmation("not-confirmed", f"{len(clean)} of {total} runs completed (e.g. {_where(config, run)}) "
                                             "without the predicted evidence")
    config, run = next((c, r) for c in built for r in c["runs"])
    error = run.get("forward_error") or run.get("backward_error") or "?"
    return Confirmation("unverified", f"every run failed before the evidence could show, e.g. {_where(config, run)}: "
                                      f"{_raised(run)} {error}")


def _ran_cleanly(run: Dict[str, Any]) -> bool:
    return not any(k in run for k in ("forward_error", "backward_error"))


def _runs(configs) -> Iterator[Tuple[Dict[str, Any], Dict[str, Any]]]:
    for config in configs:
        for run in config.get("runs", []):
            yield config, run


def _where(config, run) -> str:
    shape = tuple(run.get("input", ()))
    return f"{config['config']} on input {shape}"


def _raised(run) -> str:
    who = run.get("raised_in")
    return f"{who} raised" if who else "forward raised"


def _forward_error(configs, pattern: re.Pattern, dims: Optional[Tuple[int, ...]] = None) -> Optional[str]:
    for config in configs:
        error = config.get("construct_error")
        if error and pattern.search(error) and dims is None:
            return f"{config['config']}: the constructor raised {error}"
    for config, run in _runs(configs):
        error = run.get("forward_error", "")
        match = pattern.search(error)
        if not match:
            continue
        if dims is not None and mismatched_dimension(error, len(run.get("input", ())) or 4) not in dims:
            continue
        return f"{_where(config, run)}: {_raised(run)} {error}"
    return None


def _no_gradient(configs, layers: List[str]) -> Optional[str]:
    layers = [layer for layer in layers if layer and not layer.startswith("<")]
    if not layers:
        return None
    for config, run in _runs(configs):
        if "no_grad" not in run:
            continue
        starved = [layer for layer in layers
                   if any(name == layer or name.startswith(layer + ".") for name in run["no_grad"])]
        if starved:
            names = ", ".join(f"`{name}`" for name in starved)
            return f"{_where(config, run)}: the parameters of {names} received no gradient from out.sum().backward()"
    return None


def check_dead_chain(finding, configs):
    """The stale layer chokes on the stale value's width, or the layers
    whose output is dead get no gradient."""
    stale = finding.expect.get("stale_layer")
    if stale:
        for config, run in _runs(configs):
            error = run.get("forward_error", "")
            if run.get("raised_in") == stale and CHANNEL_ERROR.search(error):
                return f"{_where(config, run)}: {_raised(run)} {error}"
    return _no_gradient(configs, finding.expect.get("dead_layers", []))


def check_no_grad(finding, configs):
    return _no_gradient(configs, finding.expect.get("layers", []))


def check_shape_or_dead(finding, configs):
    return _forward_error(configs, SIZE_ERROR) or _no_gradient(configs, finding.expect.get("layers", []))


def check_channel_error(finding, configs):
    return _forward_error(configs, CHANNEL_ERROR)


def check_shape_error(finding, configs):
    dims = (1,) if finding.expect.get("dim") == 1 else (2, 3, 4) if finding.expect.get("stride") or \
        finding.code == "RL204" else None
    found = _forward_error(configs, SIZE_ERROR, dims)
    if found is None and finding.code == "RL202":
        found = _forward_error(configs, CHANNEL_ERROR)
    return found


def check_construction_error(finding, configs):
    text = finding.expect.get("text", "")
    for config in configs:
        error = config.get("construct_error", "")
        if error and (text in error or "divisible by groups" in error):
            return f"{config['config']}: the constructor raised {error}"
    return None


def check_mutation(finding, configs):
    for config, run in _runs(configs):
        if run.get("input_mutated"):
            return f"{_where(config, run)}: forward changed its input tensor in place"
        error = run.get("backward_error", "")
        if INPLACE_ERROR.search(error):
            return f"{_where(config, run)}: backward raised {error}"
    return None


def check_dead_bias(finding, configs):
    module = finding.expect.get("module")
    if not module:
        return None
    for config, run in _runs(configs):
        if module in run.get("zero_bias", []):
            return (f"{_where(config, run)}: the gradient of `{module}.bias` is zero (the norm removes the "
                    "per-channel mean, so the bias never changes the output)")
    return None


CHECKS = {
    "dead-chain": check_dead_chain,
    "no-grad": check_no_grad,
    "shape-or-dead": check_shape_or_dead,
    "channel-error": check_channel_error,
    "shape-error": check_shape_error,
    "construction-error": check_construction_error,
    "mutation": check_mutation,
    "dead-bias": check_dead_bias,
}
