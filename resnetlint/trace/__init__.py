"""The dynamic shape-trace: confirm static findings by running the blocks.

**The trace executes the code being linted** (it imports the module and runs
the block's ``__init__`` and ``forward``), the way running its tests would.
It runs in a separate, resource-limited worker process with timeouts, never
runs a module's ``if __name__ == "__main__":`` block, and is skipped when torch
is not installed.  Turn it off with ``--no-trace`` (or ``trace = "off"`` in
``[tool.resnetlint]``) for code you do not trust.
"""
from __future__ import annotations

import importlib.util
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ..findings import Confirmation, Finding
from .reasons import unrunnable_reason
from .verdict import CHANNEL_ERROR, SIZE_ERROR, judge, mismatched_dimension
from .verdict_cache import VerdictCache

STATIC_ONLY = ("RL000", "RL999", "RL100")
DEVICES = ("cpu", "cuda", "meta", "auto")


@dataclass
class TraceOptions:
    mode: str = "auto"  # "auto": when torch is importable; "on"; "off"
    trace_all: bool = False  # also trace residual blocks without findings
    device: str = "cpu"
    class_timeout: float = 30.0
    total_timeout: float = 600.0
    memory_mb: Optional[int] = 8192
    trace_paths: List[str] = field(default_factory=list)  # --trace-path: where the traced code imports from


@dataclass
class Unrunnable:
    """A block the trace could not run (in any configuration), and why."""

    path: str
    symbol: str
    reason: str  # one of REASONS
    detail: str

    def to_json(self) -> Dict[str, str]:
        return {"path": self.path, "symbol": self.symbol, "reason": self.reason, "detail": self.detail}


@dataclass
class TraceReport:
    ran: bool = False
    reason: str = ""
    classes: int = 0
    unverified: int = 0  # == len(unrunnable)
    seconds: float = 0.0
    torch: str = ""
    device: str = ""
    new_findings: List[Finding] = field(default_factory=list)
    refuted: int = 0
    cached: int = 0  # classes whose runs came from the verdict cache
    unrunnable: List[Unrunnable] = field(default_factory=list)
    show_refuted: bool = False  # set from Settings.show_refuted: the JSON and SARIF reports keep refuted findings

    def by_reason(self) -> Dict[str, int]:
        counts: Dict[str, int] = {}
        for block in self.unrunnable:
            counts[block.reason] = counts.get(block.reason, 0) + 1
        return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))

    def to_json(self) -> Dict[str, Any]:
        return {"ran": self.ran, "reason": self.reason, "classes": self.classes, "unverified": self.unverified,
                "refuted": self.refuted, "cached": self.cached, "seconds": round(self.seconds, 3),
                "device": self.device, "torch": self.torch, "unrunnable_by_reason": self.by_reason(),
                "unrunnable": [block.to_json() for block in self.unrunnable]}


def torch_available() -> bool:
    """Without importing it: the parent process never imports torch."""
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):
        return False


def confirm(results, options: TraceOptions, cache_dir: Optional[str] = None,
            progress: Optional[Callable[[str, int, int], None]] = None) -> TraceReport:
    """Trace the classes with findings (all residual blocks with
    ``trace_all``) and set each finding's ``confirmation``.  With
    ``cache_dir``, runs of unchanged classes come from the verdict cache;
    ``progress("trace", done, total)`` is called as classes are run (see
    :func:`resnetlint.api.check_paths`)."""
    from .runner import TraceRunner, WorkerUnavailable

    report = TraceReport()
    targets = _targets(results, options.trace_all)
    if options.mode == "off":
        report.reason = "tracing is off (--no-trace)"
        return report
    if not targets:
        report.reason = "nothing to trace"
        return report
    if not torch_available():
        report.reason = "torch is not installed (pip install 'resnetlint[trace]')"
        if options.mode == "on":  # asked for explicitly: say so under each finding; "auto" says it once
            _mark(targets, Confirmation("not-run", report.reason))
        return report
    started = time.monotonic()
    device = "cpu" if options.device == "auto" else options.device
    requests = {key: _request(key[0], key[1], info, options, findings)
                for key, (info, findings) in targets.items()}
    cache = VerdictCache.open(cache_dir, options, device) if cache_dir else None
    responses = cache.lookup(requests) if cache is not None else {}
    todo = [key for key in targets if key not in responses]
    report.cached = len(responses)
    if cache is not None and responses:
        report.torch, report.device, report.ran = cache.torch, device, True
    if todo:
        with TraceRunner(device, options.class_timeout, options.total_timeout, options.memory_mb) as runner:
            try:
                hello = runner.start()
            except WorkerUnavailable as exc:
                report.reason = str(exc)
                _mark({k: targets[k] for k in todo}, Confirmation("not-run", report.reason))
                todo = []
                hello = None
            if hello is not None:
                if options.device == "auto":
                    runner.device = "cuda" if hello.get("cuda") else "cpu"
                report.ran, report.torch, report.device = True, hello.get("torch", ""), runner.device
                if runner.device == "cuda" and not hello.get("cuda"):
                    why = "--device cuda was asked for but CUDA is not available here"
                    for key in todo:
                        responses[key] = {"status": "no-device", "error": why}
                else:
                    for done, key in enumerate(todo):
                        if progress is not None:
                            progress("trace", done, len(todo))
                        responses[key] = runner.run(requests[key])
                        if cache is not None:
                            cache.store(requests[key], responses[key])
                    if progress is not None:
                        progress("trace", len(todo), len(todo))
    if cache is not None:
        cache.save()
    for key, (info, findings) in targets.items():
        response = responses.get(key)
        if response is None:
            continue  # the worker never started: marked not-run above
        report.classes += 1
        _judge_class(report, key, info, findings, response)
    report.unverified = len(report.unrunnable)
    report.seconds = time.monotonic() - started
    return report


def _judge_class(report: TraceReport, key: Tuple[str, str], info, findings: List[Finding],
                 response: Dict[str, Any]) -> None:
    path, name = key
    for finding in findings:
        finding.confirmation = judge(finding, response)
        if finding.confirmation.status == "refuted":
            report.refuted += 1
    why = unrunnable_reason(response, any(f.confirmation.status == "confirmed" for f in findings))
    if why is not None:
        report.unrunnable.append(Unrunnable(path, name, *why))
    if not findings and response.get("status") == "ok":
        report.new_findings.extend(_trace_only_findings(path, name, info, response))


def _targets(results, trace_all: bool) -> Dict[Tuple[str, str], Tuple[Any, List[Finding]]]:
    targets: Dict[Tuple[str, str], Tuple[Any, List[Finding]]] = {}
    for result in results:
        blocks = getattr(result, "blocks", {}) or {}
        for finding in result.findings:
            if finding.code in STATIC_ONLY or not finding.symbol or finding.symbol not in blocks:
                continue
            targets.setdefault((result.path, finding.symbol), (blocks[finding.symbol], []))[1].append(finding)
        if trace_all:
            for name, info in blocks.items():
                if info.residual:
                    targets.setdefault((result.path, name), (info, []))
    return targets


def _ran_cleanly(response: Dict[str, Any]) -> bool:
    """Some configuration was built and its forward ran without an error."""
    for config in response.get("runs", []):
        if config.get("construct_error"):
            continue
        if any(not run.get("forward_error") for run in config.get("runs", [])):
            return True
    return False


def _mark(targets, confirmation: Confirmation) -> None:
    for _, findings in targets.values():
        for finding in findings:
            finding.confirmation = Confirmation(confirmation.status, confirmation.detail)


def package_location(path: str, trace_paths: Sequence[str] = ()) -> Tuple[str, str]:
    """(sys.path root, dotted module name) the way the code imports itself:
    under a ``trace-path`` folder, relative to it (the project puts it on
    ``sys.path``; its folders need no ``__init__.py``); else walk up while
    the directory is a package."""
    path = os.path.abspath(path)
    directory, filename = os.path.split(path)
    stem = os.path.splitext(filename)[0]
    roots = sorted((os.path.abspath(p) for p in trace_paths), key=len, reverse=True)
    for root in roots:
        if path.startswith(root.rstrip(os.sep) + os.sep):
            parts = os.path.relpath(os.path.splitext(path)[0], root).split(os.sep)
            if parts[-1] == "__init__":
                parts.pop()
            if parts and all(part.isidentifier() for part in parts):
                return root, ".".join(parts)
    parts = [] if stem == "__init__" else [stem]
    while os.path.isfile(os.path.join(directory, "__init__.py")):
        parts.insert(0, os.path.basename(directory))
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        directory = parent
    return directory, ".".join(parts)


def _request(path: str, name: str, info, options: TraceOptions,
             findings: Sequence[Finding] = ()) -> Dict[str, Any]:
    root, dotted = package_location(path, options.trace_paths)
    return {
        "file": os.path.abspath(path),
        "root": root,
        "module": dotted,
        "class": name,
        "trace_paths": [os.path.abspath(p) for p in options.trace_paths],
        # A configuration each finding's static model predicts fails: tried first.
        "call_sites": _finding_configs(findings) + list(info.call_sites),
        "input_hint": info.input_hint,
        "channels_last": info.channels_last,
        "width_params": info.width_params,
        "input_params": info.input_params,
        "stride_params": info.stride_params,
        "natural": info.natural,
        "equal_widths": info.equal_widths,
        "spatial": [16, 15],
        "config_timeout": max(1.0, min(10.0, options.class_timeout / 4)),
        "max_configs": 8,
        # Layers the findings say get no gradient: a run must reach them to refute that.
        "reach": sorted({layer for f in findings if f.expect.get("kind") in ("no-grad", "shape-or-dead", "dead-chain")
                         for layer in (f.expect.get("layers") or []) + (f.expect.get("dead_layers") or [])
                         if isinstance(layer, str) and layer and not layer.startswith("<")}),
    }


def _finding_configs(findings: Sequence[Finding]) -> List[Dict[str, Any]]:
    """The configurations the findings' static model predicts fail
    (``expect["config"]``: from a call site or the defaults), as call sites."""
    configs = []
    for finding in findings:
        config = finding.expect.get("config")
        if isinstance(config, dict) and config and all(isinstance(k, str) for k in config):
            site = {"args": [], "kwargs": dict(config), "origin": f"the configuration {finding.code} predicts fails"}
            if site not in configs:
                configs.append(site)
    return configs


TRUSTED_NATURAL = "natural: widths that match the residual add"  # see worker.synthesize


def _trace_only_findings(path: str, name: str, info, response) -> List[Finding]:
    """With --trace-all: what a clean-looking block did at run time, in the
    configurations any caller may use: its literal call sites, or its natural
    configuration (equal widths at stride 1; a bottleneck's input as wide as
    its expanded output)."""
    found: List[Finding] = []
    for config in response.get("runs", []):
        # Only configurations a caller really uses (a literal call) or that the
        # static model derived; a guessed grid point (a token count, an even
        # kernel the model never uses) proves nothing about the block.
        origin = config.get("origin", "")
        trusted = origin.startswith(("the call", "the network")) or origin == TRUSTED_NATURAL
        for run in config.get("runs", []):
            where = f"{config['config']} on input {tuple(run.get('input', ()))}"
            error = run.get("forward_error", "")
            code = None
            # NCHW as read off the block (not a layout tried after it refused another):
            # dimension 1 channels, 2-3 space.
            image_like = len(run.get("input", ())) == 4 and not run.get("layout") and not run.get("channels_last")
            if trusted and error and image_like:
                dim = mismatched_dimension(error, 4)
                if dim is not None:
                    code = "RL202" if dim == 1 else "RL203"
                elif CHANNEL_ERROR.search(error):
                    code = "RL201"
            if code is None and run.get("input_mutated"):
                code = "RL302"
            if code is None:
                continue
            from ..rules import ALL_RULES

            rule = next(r for r in ALL_RULES if r.code == code)
            evidence = f"{where}: {run.get('raised_in') or 'forward'} raised {error}" if error else \
                f"{where}: forward changed its input tensor in place"
            finding = Finding(code, rule.name, rule.severity, path, info.line, 1, info.line, 1, name,
                              f"found by the trace (not by static analysis): {evidence}",
                              "run the block with these arguments to reproduce")
            finding.confirmation = Confirmation("confirmed", f"from the trace: {evidence}")
            found.append(finding)
            return found
    return found


def prove_fixes(outcome, runner, options: TraceOptions, rules) -> Dict[str, Tuple[List[str], str]]:
    """Run every fixed class before and after its fixes; a class whose fixes
    do not hold up rejects them: ``{class: (codes, why)}``.  A class the
    trace cannot run (it cannot be imported or built, or never runs cleanly
    before or after the fix) proves nothing: it goes into
    ``outcome.untraced`` with the reason, and the fixer asks the static model
    instead."""
    from ..engine import check_text

    before_blocks = check_text(outcome.original, outcome.path, rules).blocks
    after_blocks = check_text(outcome.fixed, outcome.path, rules).blocks
    rejected: Dict[str, Tuple[List[str], str]] = {}
    for name in sorted({a.finding.symbol for a in outcome.applied}):
        if name not in before_blocks or name not in after_blocks:
            outcome.untraced[name] = "the trace does not know the class"  # (a file-level fix: RL100)
            continue
        fixed = [a.finding for a in outcome.applied if a.finding.symbol == name]
        remaining = [f for f in outcome.remaining if f.symbol == name]
        # One request for both texts (the configurations the findings predict
        # fail come first), so before and after are the same configurations.
        before_request = _request(outcome.path, name, before_blocks[name], options, fixed)
        # The text that was fixed, not the module a previous run imported
        # (the worker keeps modules by path; the file may have changed since).
        before_request["source"] = outcome.original
        before = run_source(runner, before_request)
        if before.get("status") != "ok":
            outcome.untraced[name] = f"the trace could not run the block ({before.get('error', before.get('status'))})"
            continue
        after_request = dict(before_request, source=outcome.fixed)
        after = run_source(runner, after_request)
        if not _ran_cleanly(before) and not _ran_cleanly(after):
            # Nothing ran before or after (no forward, arguments the trace
            # cannot choose well): the runs prove nothing either way.
            outcome.untraced[name] = "the trace ran the block cleanly in no configuration, before or after the fix"
            continue
        new_findings = {f.code for f in remaining} - {f.code for f in outcome.found if f.symbol == name}
        why = regression(before, after, fixed, remaining, added_findings=bool(new_findings))
        if why is not None:
            rejected[name] = (sorted({f.code for f in fixed}), why)
        elif not _ran_cleanly(after):
            outcome.untraced[name] = "the trace ran the fixed block cleanly in no configuration"
    return rejected


def run_source(runner, request: Dict[str, Any]) -> Dict[str, Any]:
    """Run a request that carries the module's text (``source``).  A worker
    that imported the module already loads the text beside it, which a
    package that registers its classes by name refuses; a fresh worker loads
    the text as the module itself, so a failed import is tried once more
    there."""
    response = runner.run(request)
    if response.get("status") == "import-error":
        runner.stop()  # the next run starts a fresh worker
        response = runner.run(request)
    return response


def regression(before: Dict[str, Any], after: Dict[str, Any], fixed: List[Finding],
               remaining: List[Finding], added_findings: bool = False) -> Optional[str]:
    """Why the fixed block does not hold up, or None.  Per configuration: one
    that ran cleanly must still run, and every parameter that received a
    gradient there must still receive one; the error that was a fixed
    finding's evidence must be gone.  A configuration that failed before and
    fails differently after is accepted when the error is one the block
    already had elsewhere (a caller contract), a finding that remains
    explains it, or the fix made another configuration run: the fix then got
    the block further, and what it uncovered is the code's own limit (a
    stride-2 block without a projection for other widths).  A configuration
    resnetlint guessed (a grid point, no caller's) that ran before and
    fails after does not count against the fix when the networks of the
    file that build the block run every configuration they build cleanly
    after it, nothing trains less, and the fix added no finding
    (``added_findings``): the block no network builds is the code's limit
    (a unit that strides only when it doubles its width), which the bug
    had hidden by leaving layers dead."""
    if before.get("status") != "ok":
        return None  # nothing to compare with: the static re-check stands alone
    if after.get("status") != "ok":
        return f"the fixed block could not be run ({after.get('error', after.get('status'))})"
    configs_before = {c["config"]: c for c in before.get("runs", [])}
    modes_before = {_mode(error) for c in before.get("runs", []) for error in _errors(c)}
    improved = False
    differently = None
    for config in after.get("runs", []):
        old = configs_before.get(config["config"])
        if old is None:
            continue
        errors_before, errors_after = _errors(old), _errors(config)
        if errors_before and not errors_after:
            improved = True
        if not errors_before and not errors_after and not config.get("stochastic"):
            lost = _gradients_lost(old, config)
            if lost:
                return (f"{config['config']}: {', '.join(f'`{name}`' for name in lost)} received a gradient "
                        "before the fix and no longer does")
        for error in sorted(errors_after):
            if error in errors_before:
                if _is_evidence_of(fixed, old, error):
                    return f"{config['config']} still fails: {error}"
                continue
            if not errors_before:
                if _guessed_caller(config) and (SIZE_ERROR.search(error) or CHANNEL_ERROR.search(error)):
                    continue  # a projection the trace made up for the caller may simply not fit this block
                if not added_findings and _starved(old) and _vouched_by_networks(config, after, configs_before):
                    continue  # it ran only with layers dead, in a configuration no network builds
                return f"{config['config']} ran before the fix and now fails: {error}"
            if _mode(error) in modes_before or _explained(remaining, config, error):
                # A failure the block already had in another configuration
                # (a caller contract, e.g. no projection passed), or a
                # problem that is still reported: the fix uncovered it.
                continue
            differently = differently or f"{config['config']} fails differently after the fix: {error}"
    if differently is not None and not improved:
        return differently
    for finding in fixed:
        was, now = judge(finding, before), judge(finding, after)
        if was.status == "confirmed" and now.status == "confirmed" and now.detail == was.detail:
            return f"the fixed block still shows it: {now.detail}"
    return None


REAL_ORIGINS = ("the network", "the call", "the configuration")  # a network's, a literal call's, a finding's


def _vouched_by_networks(config: Dict[str, Any], after: Dict[str, Any],
                         configs_before: Dict[str, Dict[str, Any]]) -> bool:
    """``config`` is a guess, and the file's networks build the block in
    configurations that all run cleanly after the fix, each parameter that
    trained before still training."""
    if config.get("origin", "").startswith(REAL_ORIGINS):
        return False
    built = [c for c in after.get("runs", []) if c.get("origin", "").startswith("the network")]
    if not built:
        return False
    for network_config in built:
        old = configs_before.get(network_config["config"])
        if _errors(network_config) or (old is not None and _gradients_lost(old, network_config)):
            return False
    return True


def _guessed_caller(config: Dict[str, Any]) -> bool:
    """A configuration with a projection the trace built for the caller's
    argument (``downsample=<1x1 conv 16->32>``): a guess, not a caller's."""
    return "projection" in config.get("origin", "")


def _starved(config: Dict[str, Any]) -> set:
    """Modules whose parameters got no gradient in some run of the configuration."""
    names: set = set()
    for run in config.get("runs", []):
        names |= set(run.get("no_grad", []))
    return names


def _gradients_lost(before: Dict[str, Any], after: Dict[str, Any]) -> List[str]:
    """Modules whose parameters received a gradient in every run of the
    configuration before the fix and not after."""
    return sorted(_starved(after) - _starved(before))


def _mode(error: str) -> str:
    """An error with its numbers blanked: the same failure at other sizes."""
    import re

    return re.sub(r"\d+", "N", error)


def _errors(config: Dict[str, Any]) -> set:
    found = set()
    if config.get("construct_error"):
        found.add(config["construct_error"])
    for run in config.get("runs", []):
        for key in ("forward_error", "backward_error"):
            if run.get(key):
                found.add(run[key])
    return found


def _only(config: Dict[str, Any], error: str) -> Dict[str, Any]:
    """A response holding just the runs of ``config`` that raised ``error``."""
    trimmed = {k: v for k, v in config.items() if k != "runs"}
    trimmed["runs"] = [r for r in config.get("runs", []) if error in (r.get("forward_error"), r.get("backward_error"))]
    if config.get("construct_error") != error:
        trimmed.pop("construct_error", None)
    return {"status": "ok", "runs": [trimmed]}


def _is_evidence_of(findings: List[Finding], config, error: str) -> bool:
    response = _only(config, error)
    return any(judge(f, response).status == "confirmed" and error in judge(f, response).detail for f in findings)


def _explained(findings: List[Finding], config, error: str) -> bool:
    return _is_evidence_of(findings, config, error)
