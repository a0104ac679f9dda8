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
``kept-resolution``  forward returned a map as large as its input although the
                   configuration asked for a stride (RL206 with no caller's
                   projection: nothing fails, the stride is ignored)
``mutation``       forward changed its input, or backward hit an in-place error (RL302)
``dead-bias``      the conv bias received a zero gradient (RL301)
``design``         nothing a run can show (RL303)
=================  ==========================================================

``confirmed`` needs the predicted evidence, from the layer or the add the
finding names, on the dimension it predicts, in a configuration that meets
the finding's conditions (:mod:`resnetlint.trace.conditions`), and not also
in a configuration that does not meet them (a GroupNorm that wants widths
divisible by 32, an input in the wrong layout: failures of every width are no
evidence of a width-dependent one).

``refuted`` means runs that meet the conditions completed without the
evidence, where a run could have shown it (see ``COVERS``); a design or
warning rule (RL3xx) is never refuted.  ``not-confirmed`` means the runs
showed nothing but did not cover the conditions (the detail says which);
``unverified`` means the block could not be imported, built or run.
"""
from __future__ import annotations

import re
from typing import Any, Dict, Iterator, List, Optional, Tuple

from ..findings import Confirmation, Finding
from .conditions import Unknown, conditions_of, evaluate, holds, value_of

CHANNEL_ERROR = re.compile(
    r"channels|channel dimensions|running_mean|running_var|size mismatch|mat1 and mat2|normalized_shape|"
    r"must match the size of tensor .* at non-singleton dimension 1\b|weight of size|expected input",
    re.IGNORECASE)
# Two wordings of a failed elementwise add: real tensors, and meta tensors.
SIZE_ERROR = re.compile(r"size of tensor a \((\d+)\) must match the size of tensor b \((\d+)\) at non-singleton dimension (\d+)"
                        r"|Attempting to broadcast a dimension of length (\d+) at (-?\d+)")


# A concatenation along the channels whose other sizes differ: a spatial
# mismatch met before the add (a dense block's torch.cat((x, x1), 1)).
CAT_ERROR = re.compile(r"Sizes of tensors must match except in dimension 1\b")


def mismatched_dimension(error: str, rank: int = 4) -> Optional[int]:
    """Which dimension a failed add disagreed on (0-based, like torch); a
    channel concatenation's failure is read as the first spatial one."""
    match = SIZE_ERROR.search(error)
    if match is None:
        return 2 if CAT_ERROR.search(error) else None
    if match.group(3) is not None:
        return int(match.group(3))
    dim = int(match.group(5))
    return dim + rank if dim < 0 else dim
INPLACE_ERROR = re.compile(r"modified by an inplace operation", re.IGNORECASE)

# Errors about a width a layer *requires* (GroupNorm's groups, attention
# heads, a grouped conv): the configuration broke the block's own contract,
# which says nothing about a mismatch between two layers.
CONSTRAINT_ERROR = re.compile(r"divisible|num_groups|number of groups|num_heads|embed_dim must be", re.IGNORECASE)

FAILURES = {
    "import-error": "could not import the module",
    "class-not-found": "could not find the class",
    "no-config": "could not build the block",
    "timeout": "the block did not finish in time",
    "crashed": "the trace worker died",
    "budget": "not traced",
    "worker-error": "the trace worker failed",
}
# Kinds of evidence a clean run can rule out (see COVERS).
REFUTABLE = ("dead-chain", "no-grad", "shape-or-dead", "channel-error", "shape-error", "construction-error",
             "kept-resolution")


def judge(finding: Finding, response: Dict[str, Any]) -> Confirmation:
    status = response.get("status")
    if status != "ok":
        reason = FAILURES.get(status, "the trace failed")
        error = response.get("error", "")
        if error.startswith(reason.split(" the ")[0]):
            return Confirmation("unverified", error)  # it says so itself: "could not import einops: ..."
        return Confirmation("unverified", f"{reason}: {error}".rstrip(": "))
    configs = response.get("runs", [])
    kind = finding.expect.get("kind", "")
    check = CHECKS.get(kind)
    if check is None:
        return Confirmation("not-confirmed", "a design rule: no run of the block can show it")
    conditions = conditions_of(finding)
    # Per finding: the configurations are shared by every finding of the class.
    configs = [dict(config, _meets=_meets(config, conditions)) for config in configs]
    # A configuration with dropout at work is random: it shows in-place
    # damage (dropout after a saved activation), never missing gradients.
    usable = configs if kind == "mutation" else [c for c in configs if not c.get("stochastic")]
    candidates = [c for c in usable if c["_meets"] is not False]
    evidence = check(finding, candidates, Context(finding, conditions, usable))
    if evidence is not None:
        return Confirmation("confirmed", evidence)
    built = [c for c in configs if "construct_error" not in c and "input_error" not in c]
    if not built and kind != "construction-error":
        first = configs[0] if configs else {}
        why = first.get("construct_error") or first.get("input_error") or "no configuration"
        return Confirmation("unverified", f"no configuration could be built and run ({first.get('config', '?')}: {why})")
    refutation = _refutation(finding, kind, conditions, usable)
    if refutation is not None:
        return refutation
    clean = [(c, run) for c in built for run in c["runs"] if _ran_cleanly(run)]
    total = sum(len(c["runs"]) for c in built)
    if clean:
        config, run = clean[0]
        return Confirmation("not-confirmed", f"{len(clean)} of {total} runs completed (e.g. {_where(config, run)}) "
                                             f"without the predicted evidence; {_not_covered(finding, kind, conditions, usable)}")
    if not built:
        first = configs[0] if configs else {}
        return Confirmation("unverified", f"no configuration could be built ({first.get('config', '?')}: "
                                          f"{first.get('construct_error', 'no configuration')})")
    config, run = next((c, r) for c in built for r in c["runs"])
    error = run.get("forward_error") or run.get("backward_error") or "?"
    return Confirmation("unverified", f"every run failed before the evidence could show, e.g. {_where(config, run)}: "
                                      f"{_raised(run)} {error}")


class Context:
    """What an evidence check needs besides the candidate configurations: the
    finding's conditions and every usable configuration (to tell a failure the
    conditions explain from one that happens anyway)."""

    def __init__(self, finding: Finding, conditions: Optional[List[str]], configs: List[Dict[str, Any]]):
        self.finding = finding
        self.conditions = conditions
        self.configs = configs

    def specific(self, error: str, raised_in: Optional[str]) -> bool:
        """The failure does not also happen where the conditions are false."""
        if not self.conditions:
            return True
        mode = _mode(error)
        for config in self.configs:
            if config.get("_meets") is not False:
                continue
            if _mode(config.get("construct_error", "")) == mode:
                return False
            for run in config.get("runs", []):
                for key in ("forward_error", "backward_error"):
                    if run.get(key) and _mode(run[key]) == mode and (raised_in is None or run.get("raised_in") == raised_in):
                        return False
        return True

    def value(self, config: Dict[str, Any], expression: Optional[str]) -> Optional[float]:
        """An expression of the finding (a width) in this configuration, or None."""
        if not expression:
            return None
        try:
            value = value_of(expression, _names(config))
        except Unknown:
            return None
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _names(config: Dict[str, Any]) -> Dict[str, Any]:
    names = dict(config.get("bound") or {})
    names.update({f"self.{k}": v for k, v in (config.get("attrs") or {}).items()})
    return names


def _meets(config: Dict[str, Any], conditions: Optional[List[str]]) -> Optional[bool]:
    if conditions is None:
        return None
    if not conditions:
        return True
    if "bound" not in config:
        return None  # built before the worker reported its arguments (or not built at all)
    return holds(conditions, _names(config))


def _mode(error: str) -> str:
    """An error with its sizes blanked: the same failure at other sizes (the
    dimension an add disagreed on is kept: channels and space are two failures)."""
    return re.sub(r"(?<!dimension )(?<!dimension -)\d+", "N", error or "")


def _numbers(error: str) -> List[int]:
    return [int(n) for n in re.findall(r"\d+", error)]


# ----------------------------------------------------------------------------
# Refutation: runs that met the conditions and could have shown the evidence
# ----------------------------------------------------------------------------


def _refutation(finding: Finding, kind: str, conditions: Optional[List[str]], configs) -> Optional[Confirmation]:
    if finding.code.startswith("RL3") or kind not in REFUTABLE or conditions is None:
        return None
    covering = [(c, run) for c in configs if c.get("_meets") is True for run in _covering_runs(finding, kind, c)]
    if not covering:
        return None
    config, run = covering[0]
    where = _where(config, run) if run is not None else f"{config['config']}"
    meeting = (" meeting " + " and ".join(f"`{c}`" for c in conditions)) if conditions else ""
    predicted = "" if conditions else " (the finding predicts it in every configuration)"
    confirmation = Confirmation(
        "refuted", f"{len(covering)} run(s){meeting} completed without the predicted failure{predicted}, e.g. "
                   f"{where}{_what_ran(kind, finding)}")
    confirmation.runs = [{"config": c["config"], "origin": c.get("origin", ""),
                          "input": list(r.get("input", ())) if r is not None else None} for c, r in covering[:8]]
    return confirmation


def _what_ran(kind: str, finding: Finding) -> str:
    if kind == "construction-error":
        return ": the constructor did not raise"
    if kind == "kept-resolution":
        return ": the output was smaller than the input (the stride is used)"
    if kind in ("dead-chain", "no-grad", "shape-or-dead"):
        layers = _layers(finding)
        return f": {', '.join(f'`{name}`' for name in layers)} received a gradient" if layers else ""
    return ": forward completed"


def _covering_runs(finding: Finding, kind: str, config: Dict[str, Any]) -> List[Optional[Dict[str, Any]]]:
    """The runs of one configuration (that meets the conditions) that would
    have shown the evidence had the finding been right."""
    if "construct_error" in config or "input_error" in config:
        return []
    if kind == "construction-error":
        return [None]  # built: the constructor did not raise
    return [run for run in config.get("runs", []) if COVERS[kind](finding, run)]


def _resolutions(run: Dict[str, Any]) -> Optional[Tuple[List[int], List[int]]]:
    """(input, output) spatial sizes of a run that completed on a
    channels-first map and returned one of the same rank, else None."""
    shape, out = run.get("input", []), run.get("output_shape")
    if not _forward_completed(run) or run.get("channels_last") or not out or len(out) != len(shape) or len(shape) < 3:
        return None
    return list(shape[2:]), list(out[2:])


def _forward_completed(run: Dict[str, Any]) -> bool:
    """Forward returned a tensor from an input with a real spatial extent."""
    return not run.get("forward_error") and "output_shape" in run and all(s >= 2 for s in run.get("input", [0])[1:])


def _layers(finding: Finding) -> List[str]:
    expect = finding.expect
    names = list(expect.get("dead_layers") or []) + list(expect.get("layers") or [])
    return [name for name in names if name and not name.startswith("<")]


def _reached(run: Dict[str, Any], layer: str) -> bool:
    """The layer's output reached the loss, or its parameters got a gradient."""
    named = lambda name: name == layer or name.startswith(layer + ".")  # noqa: E731
    return any(named(n) for n in run.get("live_calls", ())) or any(named(n) for n in run.get("grad", ()))


def _gradients_seen(finding: Finding, run: Dict[str, Any]) -> bool:
    """Backward ran, and every layer the finding calls dead reached the loss."""
    layers = _layers(finding)
    if not layers or "no_grad" not in run or run.get("backward_error") or not _forward_completed(run):
        return False
    return all(_reached(run, layer) for layer in layers)


COVERS = {
    "shape-error": lambda finding, run: _forward_completed(run),
    "kept-resolution": lambda finding, run: _resolutions(run) is not None,
    "channel-error": lambda finding, run: _forward_completed(run),
    "dead-chain": _gradients_seen,
    "no-grad": _gradients_seen,
    "shape-or-dead": _gradients_seen,
}


def _not_covered(finding: Finding, kind: str, conditions: Optional[List[str]], configs) -> str:
    """Why the clean runs do not refute the finding."""
    if finding.code.startswith("RL3") or kind not in REFUTABLE:
        return "a run cannot rule out this kind of finding"
    if conditions is None:
        return "the finding states no conditions a run can check"
    unmet = [c for c in conditions if not any(_holds_one(c, config) is True for config in configs
                                              if "construct_error" not in config)]
    if unmet:
        return f"no configuration that was built met `{unmet[0]}`"
    if kind in ("dead-chain", "no-grad", "shape-or-dead"):
        return "no run that met the conditions reached " + \
            (", ".join(f"`{name}`" for name in _layers(finding)) or "the layers it names") + " with a gradient"
    return "no run that met the conditions completed forward"


def _holds_one(condition: str, config: Dict[str, Any]) -> Optional[bool]:
    if "bound" not in config:
        return None
    try:
        return evaluate(condition, _names(config))
    except Unknown:
        return None


# ----------------------------------------------------------------------------
# Evidence
# ----------------------------------------------------------------------------


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


def _widths_match(error: str, values: List[Optional[float]]) -> bool:
    """The error's numbers include the widths the finding predicts (when they
    can be computed for this configuration)."""
    known = [v for v in values if v is not None]
    if len(known) < len(values) or not known:
        return True  # nothing to compare with: the layer and the pattern decide
    numbers = _numbers(error)
    if not numbers:
        return True  # a wording without sizes (meta tensors: "Invalid channel dimensions")
    return all(v in numbers for v in known)


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


def _channel_error_in(run: Dict[str, Any], layer: Optional[str]) -> bool:
    error = run.get("forward_error", "")
    if not error or not CHANNEL_ERROR.search(error) or CONSTRAINT_ERROR.search(error) or SIZE_ERROR.search(error):
        return False
    raised = run.get("raised_in", "")
    if layer is not None:
        return raised == layer or raised.startswith(layer + ".")
    return bool(raised)  # a layer raised it, not the block's own code


def check_dead_chain(finding, configs, context: Context):
    """The stale layer chokes on the stale value's width, or the layers
    whose output is dead get no gradient."""
    stale = finding.expect.get("stale_layer")
    if stale:
        for config, run in _runs(configs):
            if _channel_error_in(run, stale) and context.specific(run["forward_error"], run.get("raised_in")):
                return f"{_where(config, run)}: {_raised(run)} {run['forward_error']}"
    return _no_gradient(configs, finding.expect.get("dead_layers", []))


def check_no_grad(finding, configs, context: Context):
    return _no_gradient(configs, finding.expect.get("layers", []))


def check_shape_or_dead(finding, configs, context: Context):
    return _add_error(configs, context, None) or _no_gradient(configs, finding.expect.get("layers", []))


def check_channel_error(finding, configs, context: Context):
    layer = finding.expect.get("layer")
    for config, run in _runs(configs):
        if not _channel_error_in(run, layer):
            continue
        error = run["forward_error"]
        widths = [context.value(config, finding.expect.get(k)) for k in ("expected", "got")]
        if _widths_match(error, widths) and context.specific(error, run.get("raised_in")):
            return f"{_where(config, run)}: {_raised(run)} {error}"
    return None


def _add_error(configs, context: Context, dims: Optional[Tuple[int, ...]],
               widths: Tuple[Optional[str], ...] = ()) -> Optional[str]:
    """A failed add in the block's own forward (not inside a layer), on the
    predicted dimension, with the predicted sizes when they are known."""
    for config, run in _runs(configs):
        error = run.get("forward_error", "")
        if not (SIZE_ERROR.search(error) or CAT_ERROR.search(error)) or run.get("raised_in"):
            continue
        if CAT_ERROR.search(error) and (dims is None or 1 in dims or run.get("channels_last")):
            continue  # it says only that a size other than the channels differs, on a channels-first input
        rank = len(run.get("input", ())) or 4
        dim = _as_channels_first(mismatched_dimension(error, rank), rank, run.get("channels_last", False))
        if dims is not None and dim not in dims:
            continue
        if dims is not None and dims != (1,) and run.get("layout"):
            continue  # a spatial claim judged on a layout resnetlint guessed
        if widths and not _widths_match(error, [context.value(config, w) for w in widths]):
            continue
        if not context.specific(error, ""):
            continue
        return f"{_where(config, run)}: {_raised(run)} {error}"
    return None


def _as_channels_first(dim: Optional[int], rank: int, channels_last: bool) -> Optional[int]:
    """A dimension of a channels-last tensor named as the channels-first one
    it stands for (1: channels, 2 and up: spatial or tokens), as findings
    predict them."""
    if dim is None or not channels_last or dim == 0:
        return dim
    return 1 if dim == rank - 1 else dim + 1


def check_shape_error(finding, configs, context: Context):
    expect = finding.expect
    if expect.get("dim") == 1:
        return _add_error(configs, context, (1,), tuple(expect.get("widths") or ()))
    if expect.get("stride") or finding.code == "RL204":
        return _add_error(configs, context, (2, 3, 4))
    return _add_error(configs, context, None)


def check_construction_error(finding, configs, context: Context):
    text = finding.expect.get("text", "")
    for config in configs:
        error = config.get("construct_error", "")
        if error and text and text in error and context.specific(error, None):
            return f"{config['config']}: the constructor raised {error}"
    return None


def check_mutation(finding, configs, context: Context):
    for config, run in _runs(configs):
        if run.get("input_mutated"):
            return f"{_where(config, run)}: forward changed its input tensor in place"
        error = run.get("backward_error", "")
        if INPLACE_ERROR.search(error):
            return f"{_where(config, run)}: backward raised {error}"
    return None


def _inside(name: str, module: str) -> bool:
    """``name`` (a real submodule path) is the module a finding names, or
    lies inside it.  A composite's child the model knows only by position
    (``conv.0``: the first layer ``ConvNormAct`` runs) stands for any conv
    inside the composite (``conv.conv``)."""
    if name == module or name.startswith(module + "."):
        return True
    head, _, position = module.rpartition(".")
    return bool(head) and position.isdigit() and name.startswith(head + ".") and _inside(name, head)


def check_dead_bias(finding, configs, context: Context):
    module = finding.expect.get("module")
    if not module:
        return None
    for config, run in _runs(configs):
        # the conv itself, or the conv inside the module the finding names
        # (`self.conv = ConvNormAct(..., bias=True)` holds `conv.conv`)
        zero = next((name for name in run.get("zero_bias", []) if _inside(name, module)), None)
        if zero is not None:
            return (f"{_where(config, run)}: the gradient of `{zero}.bias` is zero (the norm removes the "
                    "per-channel mean, so the bias never changes the output)")
    return None


def check_kept_resolution(finding, configs, context: Context):
    for config, run in _runs(c for c in configs if c["_meets"] is True):
        sizes = _resolutions(run)
        if sizes is not None and sizes[0] == sizes[1]:
            return (f"{_where(config, run)}: forward returned {tuple(run['output_shape'])}, the input's "
                    "resolution, although the configuration asks for a stride")
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
    "kept-resolution": check_kept_resolution,
}
