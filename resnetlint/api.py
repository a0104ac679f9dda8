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
from .trace import TraceOptions, TraceReport, confirm


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

    @property
    def internal_errors(self) -> int:
        return sum(1 for f in self.findings if f.code == "RL999")


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
