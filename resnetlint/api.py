"""The Python API the CLI is built on.

    >>> from resnetlint import check_source
    >>> [f.code for f in check_source(code)]
    ['RL101']

``check_paths`` walks files and directories the way the CLI does.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Sequence, Type

from .discovery import discover
from .errors import UsageError
from .options import check_settings
from .findings import FileError, Finding
from .parallel import default_jobs, map_files
from .results import FileResult
from .selection import select_rules
from .source import SourceError, read_source
from .trace import TraceOptions, TraceReport, confirm, torch_available
from .cache import cache_dir_for, open_cache

if TYPE_CHECKING:  # pragma: no cover
    from .fixer import FixOutcome
    from .rule import Rule


def check_text(text: str, path: str, rules: Sequence[Rule], fast: bool = True, **options) -> FileResult:
    """:func:`resnetlint.engine.check_text`, imported on first use: the
    engine imports libcst and the block model, which a run whose files all
    come from the cache never needs."""
    from .engine import check_text as engine_check_text

    return engine_check_text(text, path, rules, fast=fast, **options)


def all_rules() -> List[Type[Rule]]:
    from .rules import ALL_RULES

    return list(ALL_RULES)


@dataclass
class Settings:
    """What to check and how; the CLI and ``[tool.resnetlint]`` fill it in.

    Checked when made, with the command line's checks and messages: a wrong
    value raises :class:`resnetlint.UsageError` (``Settings(select=["RL9"])``,
    ``Settings(select="RL101")``).  Rule names become codes
    (``select=["stale-input"]`` is ``["RL101"]``)."""

    select: Optional[Sequence[str]] = None  # None: the rules that are on by default
    ignore: Sequence[str] = ()
    extend_select: Sequence[str] = ()
    exclude: Sequence[str] = ()
    fast: bool = True  # build the model from the ast (libcst's own parser only for --fix)
    jobs: int = 0  # worker processes; 0 = one per available core
    trace: TraceOptions = field(default_factory=lambda: TraceOptions(mode="off"))
    fix: str = "off"  # "off", "fix" (write files) or "diff" (show, write nothing)
    unsafe_fixes: bool = False
    per_file_ignores: Dict[str, Sequence[str]] = field(default_factory=dict)  # glob -> codes
    config_root: Optional[str] = None  # directory per-file-ignores and excludes are relative to
    respect_gitignore: bool = True
    cache: bool = False  # the CLI turns it on; the API leaves the disk alone by default
    cache_dir: Optional[str] = None  # default: .resnetlint_cache beside the configuration (or cwd)
    force_exclude: bool = False  # apply exclude/.gitignore to files named explicitly (pre-commit)
    show_refuted: bool = False  # keep the findings the trace refuted (JSON/SARIF; see the trace)

    def __post_init__(self) -> None:
        check_settings(self)

    def rules(self) -> List[Rule]:
        return [cls() for cls in select_rules(all_rules(), self.select, self.ignore, self.extend_select)]

    def rules_for(self, path: str, rules: Sequence[Rule]) -> Sequence[Rule]:
        """``rules`` minus the codes ``per-file-ignores`` turns off for ``path``."""
        ignored = per_file_ignored(path, self.per_file_ignores, self.config_root)
        if not ignored:
            return rules
        return [rule for rule in rules if not any(_code_matches(rule.code, code) for code in ignored)]


def _code_matches(code: str, selector: str) -> bool:
    return selector == "ALL" or code.startswith(selector)


def per_file_ignored(path: str, table: Dict[str, Sequence[str]], root: Optional[str]) -> List[str]:
    """The codes ``per-file-ignores`` turns off for ``path``.  A pattern
    with a ``/`` matches the path relative to ``root`` (the configuration's
    directory), one without matches the file name; ``**`` spans
    directories."""
    if not table:
        return []
    import fnmatch
    import os

    absolute = os.path.abspath(path)
    relative = os.path.relpath(absolute, root or os.getcwd()).replace(os.sep, "/")
    name = os.path.basename(absolute)
    out: List[str] = []
    for pattern, codes in table.items():
        target = relative if "/" in pattern else name
        if fnmatch.fnmatch(target, pattern) or fnmatch.fnmatch(target, pattern.replace("**/", "")):
            out.extend(codes)
    return out


@dataclass
class RunResult:
    findings: List[Finding] = field(default_factory=list)
    errors: List[FileError] = field(default_factory=list)
    files: int = 0
    classes: int = 0
    tracebacks: List[str] = field(default_factory=list)
    sources: Dict[str, str] = field(default_factory=dict)  # text of files with findings
    trace: Optional[TraceReport] = None
    fixes: List[FixOutcome] = field(default_factory=list)
    found_before_fixing: Optional[int] = None  # findings before --fix rewrote files
    cached: int = 0  # files whose results came from the cache (not re-analysed)
    refuted: List[Finding] = field(default_factory=list)  # findings the trace's runs disproved

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
            outcome = fix_file(result.path, settings.rules_for(result.path, rules), unsafe, trace=prover)
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
            fresh = check_file(result.path, settings.rules_for(result.path, rules), fast=settings.fast)
            _keep_configurations(result, fresh)
            kept.append(fresh)
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


def _keep_configurations(before, after) -> None:
    """The trace of a fixed file tries the configurations its findings were
    traced in before the fix (``ReduceBlock(c=16)``), which the fixed text's
    own findings and call sites may no longer name."""
    for finding in before.findings:
        config = finding.expect.get("config")
        info = after.blocks.get(finding.symbol)
        if info is None or not isinstance(config, dict) or not config:
            continue
        site = {"args": [], "kwargs": dict(config), "origin": "the configuration traced before the fix"}
        if site not in info.call_sites:
            info.call_sites.append(site)


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
                return None  # no trace here: the fixer asks the static model
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
    return check_text(source, path, settings.rules_for(path, settings.rules()), fast=settings.fast).findings


class _Checker:
    """``check_file`` with the rules that apply to each path (picklable, for
    the process pool)."""

    def __init__(self, rules: Sequence[Rule], settings: Settings):
        self.rules = rules
        self.settings = settings

    def __call__(self, path: str) -> FileResult:
        return check_file(path, self.settings.rules_for(path, self.rules), fast=self.settings.fast)


_PROJECT = None


def shared_project():
    """The project model of this process (one per worker of the pool): the
    modules it parsed and the summaries it made serve every file checked."""
    global _PROJECT
    if _PROJECT is None:
        from .model.project import Project

        _PROJECT = Project()
    return _PROJECT


def check_file(path: str, rules: Sequence[Rule], fast: bool = True) -> FileResult:
    try:
        source = read_source(path)
    except SourceError as exc:
        return FileResult(path, error=str(exc))
    return check_text(source.text, path, rules, fast=fast, project=shared_project())


def _ignore_check(settings: Settings):
    if not settings.respect_gitignore:
        return None
    from .gitignore import GitIgnore

    return GitIgnore().is_ignored


def check_paths(paths: Sequence[str], settings: Optional[Settings] = None,
                progress: Optional[Callable[[str, int, int], None]] = None) -> RunResult:
    """Check every Python file under ``paths``.  A path that does not exist
    raises :class:`UsageError` before anything is checked.  ``progress``,
    when given, is called as ``progress("check", done, total)`` while files
    are checked and ``progress("trace", 0, 0)`` when the trace starts."""
    settings = settings or Settings()
    found = discover(paths, settings.exclude, _ignore_check(settings), settings.config_root, settings.force_exclude)
    if found.missing:
        raise UsageError(f"{', '.join(found.missing)}: no such file or directory")
    run = RunResult()
    run.errors.extend(FileError(p, m) for p, m in found.errors)
    # Cache hits skip the engine (and its imports); see resnetlint/cache.py.
    cache = open_cache(settings, paths)
    hits, todo = cache.lookup(found.files) if cache is not None else ([], found.files)
    rules = []
    if todo or settings.fix != "off":
        from . import engine  # noqa: F401 - once, before the pool forks: the workers share it
        rules = settings.rules()
    check = _Checker(rules, settings)
    traceable = []
    total = len(found.files)
    for done, result in enumerate(itertools.chain(hits, map_files(check, todo, settings.jobs or default_jobs())), 1):
        if progress is not None:
            progress("check", done, total)
        if cache is not None:
            cache.store((result,))  # now: --fix and the trace change findings later
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
    if cache is not None:
        cache.save()
        run.cached = cache.hits
    if settings.fix != "off":
        traceable = _fix(run, traceable, rules, settings)
    if settings.trace.mode != "off":
        if progress is not None and traceable:
            progress("trace", 0, 0)
        run.trace = confirm(traceable, settings.trace, cache_dir_for(settings, paths) if settings.cache else None,
                            progress)
        run.trace.show_refuted = settings.show_refuted
        # A refuted finding is not reported (nor counted for the exit code);
        # the JSON and SARIF reports keep it with --show-refuted.
        run.refuted = [f for f in run.findings if f.confirmation.status == "refuted"]
        run.findings = [f for f in run.findings if f.confirmation.status != "refuted"]
        for finding in run.trace.new_findings:
            run.findings.append(finding)
            source = next((r.text for r in traceable if r.path == finding.path), None)
            if source is not None:
                run.sources[finding.path] = source
    run.findings.sort(key=Finding.sort_key)
    run.errors.sort(key=lambda e: e.path)
    return run


def check_stdin(source: str, path: str, settings: Optional[Settings] = None) -> RunResult:
    """Check (and with ``settings.fix``, fix) source text that has no file:
    ``resnetlint - --stdin-filename path.py``.  The fixed text is in
    ``run.fixes[0].fixed``.  The trace needs a module it can import, so it
    does not run here."""
    from .fixer import fix_text

    settings = settings or Settings()
    rules = settings.rules_for(path, settings.rules())
    result = check_text(source, path, rules, fast=settings.fast)
    run = RunResult(findings=list(result.findings), files=1, classes=result.classes,
                    tracebacks=list(result.tracebacks), sources={path: source})
    if settings.trace.mode == "on":
        run.trace = TraceReport(ran=False, reason="the source came from stdin")
    if settings.fix != "off" and any(f.code != "RL000" for f in result.findings):
        outcome = fix_text(source, path, rules, settings.unsafe_fixes)
        outcome.written = settings.fix == "fix" and outcome.changed  # "written" to stdout
        run.fixes.append(outcome)
        run.found_before_fixing = len(run.findings)
        if outcome.written:
            for applied in outcome.applied:
                applied.finding.fix.applied = True
            run.findings = [a.finding for a in outcome.applied] + list(outcome.remaining)
            run.sources[path] = outcome.fixed
    run.findings.sort(key=Finding.sort_key)
    return run
