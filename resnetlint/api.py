"""The Python API the CLI is built on.

    >>> from resnetlint import check_source
    >>> [f.code for f in check_source(code)]
    ['RL101']

``check_paths`` walks files and directories the way the CLI does.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Type

from .discovery import discover
from .engine import FileResult, check_text
from .findings import FileError, Finding
from .parallel import default_jobs, map_files
from .rule import Rule
from .selection import select_rules
from .source import SourceError, read_source
from .fixer import FixOutcome
from .trace import TraceOptions, TraceReport, confirm, torch_available


def all_rules() -> List[Type[Rule]]:
    from .rules import ALL_RULES

    return list(ALL_RULES)


@dataclass
class Settings:
    """What to check and how; the CLI and ``[tool.resnetlint]`` fill it in."""

    select: Optional[Sequence[str]] = None  # None: the rules that are on by default
    ignore: Sequence[str] = ()
    extend_select: Sequence[str] = ()
    exclude: Sequence[str] = ()
    fast: bool = True  # build the model from the ast (libcst's own parser only for --fix)
    jobs: int = 0  # worker processes; 0 = one per available core
    trace: TraceOptions = field(default_factory=lambda: TraceOptions(mode="off"))
    fix: str = "off"  # "off", "fix" (write files) or "diff" (show, write nothing)
    unsafe_fixes: bool = False

    def rules(self) -> List[Rule]:
        return [cls() for cls in select_rules(all_rules(), self.select, self.ignore, self.extend_select)]


@dataclass
class RunResult:
    findings: List[Finding] = field(default_factory=list)
    errors: List[FileError] = field(default_factory=list)
    files: int = 0
    classes: int = 0
    tracebacks: List[str] = field(default_factory=list)
    missing: List[str] = field(default_factory=list)
    sources: Dict[str, str] = field(default_factory=dict)  # text of files with findings
    trace: Optional[TraceReport] = None
    fixes: List[FixOutcome] = field(default_factory=list)
    found_before_fixing: Optional[int] = None  # findings before --fix rewrote files

    @property
    def fixes_applied(self) -> int:
        return sum(len(o.applied) for o in self.fixes if o.written)

    @property
    def resolved(self) -> int:
        """Problems that the fixes made disappear (their own or by consequence)."""
        if self.found_before_fixing is None:
            return 0
        return max(self.found_before_fixing - len(self.unfixed_findings()), 0)

    def unfixed_findings(self) -> List[Finding]:
        return [f for f in self.findings if not (f.fix is not None and f.fix.applied)]

    @property
    def internal_errors(self) -> int:
        return sum(1 for f in self.findings if f.code == "RL999")


def _fix(run: RunResult, results, rules, settings: Settings):
    """Fix the files with fixable findings; returns the results to trace
    (re-checked after writing)."""
    from .fixer import FileChanged, ReadOnly, allowed, fix_file, write_fixed

    unsafe = settings.unsafe_fixes
    prover = _fix_prover(rules, settings)
    kept = []
    by_path = {}
    try:
        for result in results:
            if not any(allowed(f, unsafe) for f in result.findings):
                kept.append(result)
                continue
            outcome = fix_file(result.path, rules, unsafe, trace=prover)
            run.fixes.append(outcome)
            if settings.fix == "fix" and outcome.changed and outcome.error is None:
                try:
                    write_fixed(outcome)
                except (OSError, FileChanged, ReadOnly, SourceError) as exc:
                    outcome.error = str(exc) if not isinstance(exc, OSError) else f"cannot write: {exc.strerror or exc}"
            if not outcome.written:
                kept.append(result)
                continue
            by_path[result.path] = outcome
            kept.append(check_file(result.path, rules, fast=settings.fast))
    finally:
        if prover is not None:
            prover.close()
    for outcome in run.fixes:
        if outcome.error:
            run.errors.append(FileError(outcome.path, f"not fixed: {outcome.error}"))
    run.found_before_fixing = len(run.findings)
    if by_path:
        # Findings of fixed files: those fixed (marked applied, at their old
        # place) and those that remain in the new text.
        run.findings = [f for f in run.findings if f.path not in by_path]
        for path, outcome in by_path.items():
            for applied in outcome.applied:
                applied.finding.fix.applied = True
                run.findings.append(applied.finding)
        for result in kept:
            if result.path in by_path:
                run.findings.extend(result.findings)
                run.sources[result.path] = result.text
    return [r for r in kept if r.findings or settings.trace.trace_all]


class _FixProver:
    """Runs fixed classes before and after (one trace worker for the run)."""

    def __init__(self, rules, options: TraceOptions):
        from .trace.runner import TraceRunner

        self.rules = rules
        self.options = options
        self.runner = TraceRunner("cpu" if options.device == "auto" else options.device, options.class_timeout,
                                  options.total_timeout, options.memory_mb)
        self.started = False

    def __call__(self, outcome):
        from .trace import prove_fixes
        from .trace.runner import WorkerUnavailable

        if not self.started:
            try:
                self.runner.start()
            except WorkerUnavailable:
                return {}
            self.started = True
        return prove_fixes(outcome, self.runner, self.options, self.rules)

    def close(self):
        self.runner.stop()


def _fix_prover(rules, settings: Settings):
    if settings.trace.mode == "off" or not torch_available():
        return None
    return _FixProver(rules, settings.trace)


def check_source(source: str, path: str = "<string>", settings: Optional[Settings] = None) -> List[Finding]:
    """Findings for one piece of source code."""
    settings = settings or Settings()
    return check_text(source, path, settings.rules(), fast=settings.fast).findings


def check_file(path: str, rules: Sequence[Rule], fast: bool = True) -> FileResult:
    try:
        source = read_source(path)
    except SourceError as exc:
        return FileResult(path, error=str(exc))
    return check_text(source.text, path, rules, fast=fast)


def check_paths(paths: Sequence[str], settings: Optional[Settings] = None) -> RunResult:
    """Check every Python file under ``paths``."""
    settings = settings or Settings()
    rules = settings.rules()
    found = discover(paths, settings.exclude)
    run = RunResult(missing=list(found.missing))
    run.errors.extend(FileError(p, m) for p, m in found.errors)
    check = functools.partial(check_file, rules=rules, fast=settings.fast)
    traceable = []
    for result in map_files(check, found.files, settings.jobs or default_jobs()):
        path = result.path
        if result.findings or (settings.trace.trace_all and any(b.residual for b in result.blocks.values())):
            traceable.append(result)
        if result.error is not None:
            run.errors.append(FileError(path, result.error))
            continue
        run.files += 1
        run.classes += result.classes
        run.findings.extend(result.findings)
        run.tracebacks.extend(result.tracebacks)
        if result.findings:
            run.sources[path] = result.text
    if settings.fix != "off":
        traceable = _fix(run, traceable, rules, settings)
    if settings.trace.mode != "off":
        run.trace = confirm(traceable, settings.trace)
        for finding in run.trace.new_findings:
            run.findings.append(finding)
            source = next((r.text for r in traceable if r.path == finding.path), None)
            if source is not None:
                run.sources[finding.path] = source
    run.findings.sort(key=Finding.sort_key)
    run.errors.sort(key=lambda e: e.path)
    return run
