"""What the command line does once its arguments are parsed.

No typer here (and no libcst until a file needs analysing): the fast path in
:mod:`resnetlint.cli` runs a plain lint without the option machinery, and
:mod:`resnetlint.cli_app`, the full interface (help, every flag, errors),
builds the same :class:`CliOptions`.

Exit codes: 0 no findings, 1 findings (syntax errors and unreadable files
included), 2 usage, configuration or internal errors.
"""
from __future__ import annotations

import sys
from typing import List, Optional

FORMATS = ("text", "concise", "json", "sarif", "github", "junit")
EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


class CliExit(Exception):
    """Stop with this exit status (any message is already printed)."""

    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


class CliOptions:
    """Every flag of a lint run (None: not given, so the configuration decides)."""

    DEFAULTS = dict(
        paths=(), output_format="text", output_file=None, select=None, ignore=None, extend_select=None,
        exclude=None, extend_exclude=None, force_exclude=False, respect_gitignore=None, config=None, isolated=False,
        exit_zero=False, statistics=False, full=False, jobs=0, no_cache=False, cache_dir=None, trace=None,
        trace_all=False, device=None, trace_timeout=None, fix=None, unsafe_fixes=None, diff=False, show_fixes=False,
        add_noqa=False, stdin_filename=None, show_traceback=False,
    )

    def __init__(self, **values):
        unknown = set(values) - set(self.DEFAULTS)
        if unknown:
            raise TypeError(f"unknown options {sorted(unknown)}")
        self.__dict__.update(self.DEFAULTS)
        self.__dict__.update(values)

    def __eq__(self, other):
        return isinstance(other, CliOptions) and vars(self) == vars(other)

    def __repr__(self):
        return f"CliOptions({ {k: v for k, v in vars(self).items() if v != self.DEFAULTS[k]} })"


def execute(o: CliOptions) -> int:
    """Run resnetlint as the flags say; returns the exit status."""
    paths = list(o.paths)
    from_stdin = paths == ["-"] or (not paths and o.stdin_filename is not None)
    if "-" in paths and not from_stdin:
        _usage_error("`-` (stdin) cannot be combined with other paths")
    settings = _settings(o, paths or ([o.stdin_filename] if o.stdin_filename else ["."]), o.config, o.isolated)
    if from_stdin:
        return _run_stdin(o.stdin_filename or "-", settings, o.output_format, o.output_file, o.show_fixes, o.exit_zero)
    from .api import check_paths

    run = check_paths(paths or ["."], settings)
    for missing in run.missing:
        _error(f"{missing}: no such file or directory")
    if run.missing:
        return EXIT_ERROR
    if o.add_noqa:
        return _add_noqa(run)
    if settings.fix == "diff":
        return _report_diff(run)
    with _output(o.output_file) as stream:
        if o.statistics:
            _statistics(run, stream)
        else:
            _report(run, o.output_format, o.show_fixes, settings.unsafe_fixes, stream)
    if o.show_traceback:
        for text in run.tracebacks:
            sys.stderr.write(text + "\n")
    return _exit_code(run, o.exit_zero)


def _settings(options: CliOptions, paths: List[str], config: Optional[str], isolated: bool):
    """Settings from the configuration file, overridden by the flags.

    ``--select`` replaces the configured selection (and its ``ignore``);
    otherwise ``--ignore`` and ``--extend-select`` add to the file's.
    ``--exclude`` replaces the configured ``exclude``; ``--extend-exclude``
    adds to both."""
    import os

    from .api import Settings
    from .config import ConfigError, FileConfig, find_config, load_config
    from .selection import SelectionError, parse_selectors
    from .trace import DEVICES, TraceOptions

    try:
        if isolated:
            file = FileConfig()
        elif config is not None:
            if not os.path.isfile(config):
                raise ConfigError(f"{config}: no such configuration file")
            file = load_config(config)
        else:
            found = find_config(paths)
            file = load_config(found) if found else FileConfig()
        cli_select = parse_selectors(options.select) if options.select else None
        cli_ignore = parse_selectors(options.ignore or [])
        cli_extend = parse_selectors(options.extend_select or [])
        if cli_select is not None:
            select, ignore = cli_select, cli_ignore
        else:
            # A code the command line selects again beats the file ignoring that same code.
            file_ignore = [code for code in file.get("ignore", []) if code not in cli_extend]
            select, ignore = file.get("select"), file_ignore + cli_ignore
        device = options.device if options.device is not None else file.get("device", "cpu")
        if device not in DEVICES:
            raise SelectionError(f"--device must be one of {', '.join(DEVICES)}, not {device!r}")
        fix = options.fix if options.fix is not None else file.get("fix", False)
        unsafe = options.unsafe_fixes if options.unsafe_fixes is not None else file.get("unsafe-fixes", False)
        trace_mode = _trace_mode(options.trace, options.trace_all, file.get("trace", "auto"))
        exclude = list(options.exclude) if options.exclude is not None else list(file.get("exclude", []))
        exclude += list(file.get("extend-exclude", [])) + list(options.extend_exclude or [])
        respect = options.respect_gitignore if options.respect_gitignore is not None else file.get("respect-gitignore", True)
        return Settings(
            select=select,
            ignore=ignore,
            extend_select=list(file.get("extend-select", [])) + cli_extend,
            exclude=exclude,
            per_file_ignores=dict(file.get("per-file-ignores", {})),
            config_root=file.root if file.path else None,
            respect_gitignore=respect,
            force_exclude=options.force_exclude,
            fast=not options.full,
            jobs=options.jobs,
            cache=not options.no_cache,
            cache_dir=_cache_dir(options.cache_dir, file),
            fix="diff" if options.diff else "fix" if (fix or unsafe) else "off",
            unsafe_fixes=bool(unsafe),
            trace=TraceOptions(
                mode=trace_mode,
                trace_all=options.trace_all,
                device=device,
                class_timeout=options.trace_timeout if options.trace_timeout is not None else file.get("trace-timeout", 30.0),
            ),
        )
    except (SelectionError, ConfigError) as exc:
        _usage_error(str(exc))


def _cache_dir(flag: Optional[str], file) -> Optional[str]:
    """--cache-dir, else $RESNETLINT_CACHE_DIR, else beside the configuration
    file (None: the cache's own default, the current directory)."""
    import os

    if flag is not None:
        return flag
    if os.environ.get("RESNETLINT_CACHE_DIR"):
        return os.environ["RESNETLINT_CACHE_DIR"]
    return os.path.join(file.root, ".resnetlint_cache") if file.path else None


def _trace_mode(flag: Optional[bool], trace_all: bool, configured: str) -> str:
    if flag is False:
        return "off"
    if flag or trace_all:
        return "on"
    return configured


def _exit_code(run, exit_zero: bool) -> int:
    if run.internal_errors:
        return EXIT_ERROR
    if exit_zero:
        return EXIT_CLEAN
    return EXIT_FINDINGS if (run.unfixed_findings() or run.errors) else EXIT_CLEAN


def _report_diff(run) -> int:
    """--diff: the unified diff of every fix, nothing written; exit 1 when
    there is something to fix."""
    changed = [o for o in run.fixes if o.changed]
    for outcome in changed:
        sys.stdout.write(outcome.diff())
    count = sum(len(o.applied) for o in changed)
    sys.stderr.write(f"Would fix {count} problem{'' if count == 1 else 's'} in {len(changed)} "
                     f"file{'' if len(changed) == 1 else 's'}.\n" if count else "No fixes available.\n")
    for outcome in run.fixes:
        for rejected in outcome.rejected:
            sys.stderr.write(f"{outcome.path}: fix rejected for {rejected.finding.code} in {rejected.finding.symbol}: "
                             f"{rejected.rejected}\n")
    return EXIT_FINDINGS if changed else EXIT_CLEAN


def _report(run, output_format: str, show_fixes: bool = False, unsafe: bool = False, stream=None) -> None:
    stream = stream if stream is not None else sys.stdout
    if output_format in ("json", "sarif", "github", "junit"):
        import importlib

        module = "json_" if output_format == "json" else output_format
        importlib.import_module(f".report.{module}", __package__).render(run, stream)
        return
    from .report import text

    paint = text.Painter(text.use_color(stream))
    text.render(run.unfixed_findings(), run.sources, stream, paint, concise=output_format == "concise",
                show_fixes=show_fixes)
    for outcome in run.fixes:
        for rejected in outcome.rejected:
            stream.write(f"{paint(outcome.path + ':', text.BOLD)} fix rejected for {rejected.finding.code} "
                         f"[{rejected.finding.rule}] in {rejected.finding.symbol}: {rejected.rejected}\n")
    for error in run.errors:
        stream.write(f"{paint(error.path + ':', text.BOLD)} {paint('error', text.RED, text.BOLD)}: {error.message}\n")
    stream.write(_summary(run, text) + "\n")
    trace_line = _trace_summary(run.trace, text)
    if trace_line:
        stream.write(trace_line + "\n")


class _output:
    """The report stream: stdout, or ``--output-file`` (written whole at the
    end, atomically, so a reader never sees half a report)."""

    def __init__(self, path: Optional[str]):
        self.path = path

    def __enter__(self):
        if self.path is None:
            return sys.stdout
        import io

        self.buffer = io.StringIO()
        return self.buffer

    def __exit__(self, kind, value, tb):
        if self.path is None or kind is not None:
            return False
        import os
        import tempfile

        directory = os.path.dirname(os.path.abspath(self.path))
        try:
            handle, temporary = tempfile.mkstemp(prefix=".resnetlint-report.", dir=directory)
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(self.buffer.getvalue())
            os.replace(temporary, self.path)
        except OSError as exc:
            _error(f"{self.path}: cannot write the report: {exc.strerror or exc}")
            raise CliExit(EXIT_ERROR)
        return False


def _statistics(run, stream) -> None:
    """--statistics: one line per rule, most frequent first."""
    counts = {}
    for finding in run.unfixed_findings():
        entry = counts.setdefault(finding.code, [0, finding.rule, 0])
        entry[0] += 1
        if finding.fix is not None and finding.fix.edits:
            entry[2] += 1
    for code, (count, name, fixable) in sorted(counts.items(), key=lambda item: (-item[1][0], item[0])):
        marker = f"  [{fixable} fixable]" if fixable else ""
        stream.write(f"{count:>5}  {code}  {name}{marker}\n")
    if run.errors:
        stream.write(f"{len(run.errors):>5}  files could not be checked\n")


def _add_noqa(run) -> int:
    """--add-noqa: suppress every current finding in place (atomically, in
    the file's own encoding); exit 0 unless a file could not be written."""
    from collections import defaultdict

    from .fixer import FileChanged, FixOutcome, ReadOnly, write_fixed
    from .noqa import add_noqa
    from .source import SourceError, read_source

    by_path = defaultdict(list)
    for finding in run.findings:
        by_path[finding.path].append(finding)
    total = files = 0
    status = EXIT_CLEAN
    for path, findings in sorted(by_path.items()):
        try:
            source = read_source(path)
            text, changed = add_noqa(source.text, findings)
            if not changed:
                continue
            outcome = FixOutcome(path, source.text, text)
            outcome.source = source  # type: ignore[attr-defined]
            write_fixed(outcome)
        except (OSError, SourceError, FileChanged, ReadOnly) as exc:
            _error(f"{path}: cannot add noqa: {getattr(exc, 'strerror', None) or exc}")
            status = EXIT_ERROR
            continue
        total += changed
        files += 1
    sys.stderr.write(f"Added `# noqa` to {total} line{'s' if total != 1 else ''} in {files} file{'s' if files != 1 else ''}.\n")
    return status


def _run_stdin(name: str, settings, output_format, output_file, show_fixes, exit_zero) -> int:
    """``resnetlint - --stdin-filename x.py``: the report on stdout, or with
    --fix the fixed source on stdout and the report on stderr (Ruff's
    behaviour, so editors can pipe through it)."""
    from .api import check_stdin
    from .source import SourceError, decode_source

    try:
        source = decode_source(sys.stdin.buffer.read(), name).text
    except SourceError as exc:
        _error(str(exc))
        return EXIT_ERROR
    run = check_stdin(source, name, settings)
    if settings.fix == "diff":
        for outcome in run.fixes:
            if outcome.changed:
                sys.stdout.write(outcome.diff())
        return EXIT_FINDINGS if any(o.changed for o in run.fixes) else EXIT_CLEAN
    if settings.fix == "fix":
        fixed = run.fixes[0].fixed if run.fixes else source
        sys.stdout.write(fixed)
        sys.stdout.flush()
        with _output(output_file) as stream:
            _report(run, output_format, show_fixes, settings.unsafe_fixes, stream if output_file else sys.stderr)
        return _exit_code(run, exit_zero)
    with _output(output_file) as stream:
        _report(run, output_format, show_fixes, settings.unsafe_fixes, stream)
    return _exit_code(run, exit_zero)


def _summary(run, text) -> str:
    remaining = run.unfixed_findings()
    fixed = run.resolved
    files_with = len({f.path for f in run.findings})
    parts = []
    if fixed:
        found = len(remaining) + fixed
        parts.append(f"Found {text.plural(found, 'problem')} in {text.plural(files_with, 'file')} "
                     f"({fixed} fixed, {len(remaining)} remaining).")
    elif run.findings:
        parts.append(f"Found {text.plural(len(run.findings), 'problem')} in {text.plural(files_with, 'file')}.")
    unsafe_only = sum(1 for f in remaining if f.fix is not None and f.fix.edits and f.fix.safety == "unsafe")
    safe = sum(1 for f in remaining if f.fix is not None and f.fix.edits and f.fix.safety == "safe")
    if safe:
        parts.append(f"{safe} fixable with --fix.")
    if unsafe_only:
        parts.append(f"{unsafe_only} more fixable with --unsafe-fixes.")
    if run.errors:
        parts.append(f"{text.plural(len(run.errors), 'file')} could not be checked.")
    if not parts or (not run.findings and not run.errors):
        if run.files == 0:
            return "No Python files found."
        return f"All checks passed! ({text.plural(run.files, 'file')}, {text.plural(run.classes, 'module class').replace('classs', 'classes')})"
    return " ".join(parts)


def _trace_summary(report, text) -> str:
    if report is None or (not report.ran and report.reason == "nothing to trace"):
        return ""
    if not report.ran:
        return f"Trace: not run ({report.reason})."
    line = (f"Trace: {text.plural(report.classes, 'class').replace('classs', 'classes')} run on {report.device} "
            f"(torch {report.torch}) in {report.seconds:.1f} s")
    if report.unverified:
        line += f"; {report.unverified} could not be run"
    return line + "."


def _list_rules(rules) -> int:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="resnetlint rules", show_lines=False)
    for column in ("Code", "Name", "Default", "Severity", "Fix", "Summary"):
        table.add_column(column)
    for rule in rules:
        fix = "-" if rule.fix_availability == "none" else f"{rule.fix_availability} ({rule.fix_safety})"
        table.add_row(rule.code, rule.name, "on" if rule.default_enabled else "off", rule.severity, fix, rule.summary)
    Console().print(table)
    return EXIT_CLEAN


def _explain(code: str, rules) -> int:
    wanted = code.strip().upper()
    for rule in rules:
        if rule.code == wanted or rule.name == code.strip().lower():
            from rich.console import Console
            from rich.markdown import Markdown

            fix = "no automatic fix" if rule.fix_availability == "none" else f"fix: {rule.fix_availability}, {rule.fix_safety}"
            header = f"# {rule.code} `{rule.name}`\n\n*{rule.summary}* — {rule.severity}, " \
                     f"{'on' if rule.default_enabled else 'off'} by default, {fix}.\n\n"
            Console().print(Markdown(header + rule.documentation()))
            return EXIT_CLEAN
    _error(f"unknown rule {code!r}; see --list-rules")
    return EXIT_ERROR


def _error(message: str) -> None:
    sys.stderr.write(f"resnetlint: error: {message}\n")


def _usage_error(message: str) -> None:
    _error(message)
    raise CliExit(EXIT_ERROR)
