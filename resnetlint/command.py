"""What the command line does once its arguments are parsed.

No typer here (and no libcst until a file needs analysing): the fast path in
:mod:`resnetlint.cli` and the typer application in :mod:`resnetlint.cli_app`
both build a :class:`~resnetlint.options.CliOptions` and call :func:`run`.

Exit codes: 0 no findings, 1 findings (syntax errors and unreadable files
included), 2 usage, configuration or internal errors.  Every mistake in how
resnetlint was asked to run is one line on stderr, ``resnetlint: error:
...``, and exit status 2.
"""
from __future__ import annotations

import os
import sys
import time
from typing import IO, List, Optional

from .errors import UsageError
from .options import CliOptions

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


class CliExit(Exception):
    """Stop with this exit status (any message is already printed)."""

    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


def run(options: CliOptions) -> int:
    """:func:`execute`, with a usage error as one line and exit status 2."""
    try:
        return execute(options)
    except UsageError as exc:
        error(str(exc))
        return EXIT_ERROR
    except CliExit as exc:
        return exc.code


def execute(o: CliOptions) -> int:
    """Run resnetlint as the flags say; returns the exit status."""
    if o.version:
        from . import __version__

        sys.stdout.write(f"resnetlint {__version__}\n")
        return EXIT_CLEAN
    if o.list_rules:
        return list_rules(o.output_format or "text", sys.stdout, o.color or "auto")
    if o.explain is not None:
        return explain(o.explain, sys.stdout, o.color or "auto")
    paths = list(o.paths)
    from_stdin = paths == ["-"] or (not paths and o.stdin_filename is not None)
    if "-" in paths and not from_stdin:
        raise UsageError("`-` (stdin) cannot be combined with other paths")
    if from_stdin and (o.show_files or o.add_noqa):
        raise UsageError(f"`{'--show-files' if o.show_files else '--add-noqa'}` needs files, not stdin")
    from .resolution import resolve

    resolved = resolve(o, paths or ([o.stdin_filename] if o.stdin_filename else ["."]))
    log = Log(bool(resolved.quiet), bool(resolved.verbose))
    log.verbose(f"configuration: {resolved.config.path or 'none (the defaults)'}")
    if o.show_settings:
        return show_settings(resolved, sys.stdout)
    if from_stdin:
        return _run_stdin(o.stdin_filename or "-", resolved, log)
    if o.show_files:
        return show_files(paths or ["."], resolved.settings, sys.stdout)
    return _run_paths(paths or ["."], resolved, log)


class Log:
    """Messages on stderr: warnings (not with --quiet), details (--verbose)."""

    def __init__(self, quiet: bool = False, verbose: bool = False):
        self.quiet, self.is_verbose = quiet, verbose

    def warning(self, message: str) -> None:
        if not self.quiet:
            sys.stderr.write(f"resnetlint: warning: {message}\n")

    def verbose(self, message: str) -> None:
        if self.is_verbose:
            sys.stderr.write(f"resnetlint: {message}\n")


def _run_paths(paths: List[str], r, log: Log) -> int:
    from .api import check_paths

    settings = r.settings
    progress = _progress(r, log)
    started = time.monotonic()
    try:
        run_result = check_paths(paths, settings, progress)
    finally:
        if progress is not None:
            progress.close()
    from .report.text import plural

    log.verbose(f"checked {plural(run_result.files, 'file')} in {time.monotonic() - started:.2f} s"
                + (f" ({run_result.cached} from the cache in {settings.cache_dir})" if settings.cache else
                   " (no cache)"))
    if run_result.files == 0 and not run_result.errors:
        log.warning(f"No Python files found under {', '.join(paths)}")
    if r.add_noqa:
        return _add_noqa(run_result)
    if settings.fix == "diff":
        return _report_diff(run_result)
    if r.fix_only and r.output_format not in ("text", "concise"):
        run_result.findings = [f for f in run_result.findings if f.fix is not None and f.fix.applied]
    with _output(r.output_file) as stream:
        if r.statistics:
            _statistics(run_result, r.output_format, stream, r.color)
        else:
            report(run_result, r, stream)
    if r.show_traceback:
        for text in run_result.tracebacks:
            sys.stderr.write(text + "\n")
    return exit_code(run_result, r)


def _progress(r, log: Log):
    """The progress display on stderr: on a terminal only, never with
    --quiet (see report/progress.py)."""
    if log.quiet:
        return None
    from .report.progress import Progress

    return Progress.for_stream(sys.stderr)


def exit_code(run, r) -> int:
    if run.internal_errors:
        return EXIT_ERROR
    fixed = run.fixes_applied > 0
    if r.exit_non_zero_on_fix and fixed:
        return EXIT_FINDINGS
    if r.exit_zero or r.fix_only:
        return EXIT_CLEAN
    return EXIT_FINDINGS if (run.unfixed_findings() or run.errors) else EXIT_CLEAN


def report(run, r, stream: IO[str]) -> None:
    """The report in the chosen format."""
    fmt = r.output_format
    if fmt in ("json", "sarif", "github", "junit"):
        import importlib

        module = "json_" if fmt == "json" else fmt
        importlib.import_module(f".report.{module}", __package__).render(run, stream)
        return
    from .report import text

    out = text.output(stream, r.color if stream is sys.stdout or stream is sys.stderr else "never")
    text.render(run, out, concise=fmt == "concise", show_fixes=bool(r.show_fixes), unsafe=bool(r.unsafe_fixes),
                quiet=bool(r.quiet), trace_mode=r.trace, fix_only=bool(r.fix_only), verbose=bool(r.verbose))


class _output:
    """The report stream: stdout, or ``--output-file`` (written whole at the
    end, atomically, so a reader never sees half a report, with the
    permissions a new file gets from the umask)."""

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
        import tempfile

        directory = os.path.dirname(os.path.abspath(self.path))
        try:
            handle, temporary = tempfile.mkstemp(prefix=".resnetlint-report.", dir=directory)
            try:
                with os.fdopen(handle, "w", encoding="utf-8") as stream:
                    stream.write(self.buffer.getvalue())
                os.chmod(temporary, _new_file_mode(self.path))  # mkstemp makes it 0600
                os.replace(temporary, self.path)
            except BaseException:
                os.unlink(temporary)
                raise
        except OSError as exc:
            error(f"{self.path}: cannot write the report: {exc.strerror or exc}")
            raise CliExit(EXIT_ERROR)
        return False


def _new_file_mode(path: str) -> int:
    """The mode of the file being replaced, or what the umask gives a new one."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


def _statistics(run, fmt: str, stream: IO[str], color: str = "auto") -> None:
    """--statistics: one line per rule, most frequent first (or JSON)."""
    from .report import text

    if fmt == "json":
        import json

        rows = [{"code": code, "name": name, "count": count, "fixable": fixable}
                for code, name, count, fixable in text.statistics_rows(run)]
        json.dump({"version": 1, "statistics": rows, "errors": len(run.errors)}, stream, indent=2)
        stream.write("\n")
        return
    text.write_statistics(run, text.output(stream, color if stream is sys.stdout else "never"))


def _report_diff(run) -> int:
    """--diff: the unified diff of every fix, nothing written; exit 1 when
    there is something to fix."""
    from .report.text import plural

    changed = [o for o in run.fixes if o.changed]
    for outcome in changed:
        sys.stdout.write(outcome.diff())
    count = sum(len(o.applied) for o in changed)
    sys.stderr.write(f"Would fix {plural(count, 'problem')} in {plural(len(changed), 'file')}.\n" if count
                     else "No fixes available.\n")
    from .report.text import fix_notes

    for outcome in run.fixes:
        for where, note in fix_notes(outcome):
            sys.stderr.write(f"{where}{note}\n")
    return EXIT_FINDINGS if changed else EXIT_CLEAN


def _add_noqa(run) -> int:
    """--add-noqa: suppress every current finding in place (atomically, in
    the file's own encoding); exit 0 unless a file could not be written."""
    from collections import defaultdict

    from .fixer import FileChanged, FixOutcome, ReadOnly, write_fixed
    from .noqa import add_noqa
    from .report.text import plural
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
            error(f"{path}: cannot add noqa: {getattr(exc, 'strerror', None) or exc}")
            status = EXIT_ERROR
            continue
        total += changed
        files += 1
    sys.stderr.write(f"Added `# noqa` to {plural(total, 'line')} in {plural(files, 'file')}.\n")
    return status


def _run_stdin(name: str, r, log: Log) -> int:
    """``resnetlint - --stdin-filename x.py``: the report on stdout, or with
    --fix the fixed source on stdout and the report on stderr (Ruff's
    behaviour, so editors can pipe through it)."""
    from .api import check_stdin
    from .source import SourceError, decode_source

    settings = r.settings
    try:
        source = decode_source(sys.stdin.buffer.read(), name).text
    except SourceError as exc:
        error(str(exc))
        return EXIT_ERROR
    run_result = check_stdin(source, name, settings)
    if settings.fix == "diff":
        for outcome in run_result.fixes:
            if outcome.changed:
                sys.stdout.write(outcome.diff())
        return EXIT_FINDINGS if any(o.changed for o in run_result.fixes) else EXIT_CLEAN
    if settings.fix == "fix":
        fixed = run_result.fixes[0].fixed if run_result.fixes else source
        sys.stdout.write(fixed)
        sys.stdout.flush()
        if r.fix_only and r.output_format not in ("text", "concise"):
            run_result.findings = [f for f in run_result.findings if f.fix is not None and f.fix.applied]
        with _output(r.output_file) as stream:
            report(run_result, r, stream if r.output_file else sys.stderr)
        return exit_code(run_result, r)
    with _output(r.output_file) as stream:
        report(run_result, r, stream)
    return exit_code(run_result, r)


# -- the actions that print something and exit


def show_files(paths: List[str], settings, stream: IO[str]) -> int:
    """--show-files: the files a run would check, one per line, sorted."""
    from .api import _ignore_check
    from .discovery import discover

    found = discover(paths, settings.exclude, _ignore_check(settings), settings.config_root, settings.force_exclude)
    if found.missing:
        raise UsageError(f"{', '.join(found.missing)}: no such file or directory")
    for path in sorted(found.files):
        stream.write(path + "\n")
    for path, message in found.errors:
        sys.stderr.write(f"{path}: {message}\n")
    return EXIT_CLEAN


# Shown by --show-settings besides the options [tool.resnetlint] can set.
RUN_SETTINGS = ("trace_all", "show_refuted", "jobs", "no_cache", "cache_dir")


def show_settings(r, stream: IO[str]) -> int:
    """--show-settings: every setting in effect, as a ``[tool.resnetlint]``
    key where there is one, with where its value came from."""
    from .options import OPTIONS

    rows = []
    for option in OPTIONS:
        if option.config or option.name in RUN_SETTINGS:
            key = option.config or option.flag.lstrip("-")
            rows.append((key, _toml(r.values[option.name]), r.sources[option.name]))
    stream.write(f"# configuration file: {r.config.path or 'none'}\n")
    width = max(len(key) for key, _, _ in rows)
    value_width = min(max(len(value) for _, value, _ in rows), 40)
    for key, value, source in rows:
        stream.write(f"{key:<{width}} = {value:<{value_width}}  # {source}\n")
    stream.write(f"# rules that run: {', '.join(rule.code for rule in r.settings.rules())}\n")
    return EXIT_CLEAN


def _toml(value) -> str:
    import json

    if value is None:
        return "(not set)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + " }" if value else "{}"
    return json.dumps(value)


def list_rules(fmt: str, stream: IO[str], color: str = "auto") -> int:
    """--list-rules: a table on a terminal, plain lines on a pipe, or JSON;
    RL000 and RL999 included."""
    from .api import all_rules
    from .registry import ENGINE_CODES

    rules = sorted(list(all_rules()) + list(ENGINE_CODES), key=lambda rule: rule.code)
    if fmt == "json":
        import json

        json.dump([_rule_json(rule) for rule in rules], stream, indent=2)
        stream.write("\n")
        return EXIT_CLEAN
    from .report.text import use_color

    rows = [(rule.code, rule.name, "on" if rule.default_enabled else "off", rule.severity, _fix_text(rule),
             rule.summary) for rule in rules]
    if use_color(stream, color):
        from rich.console import Console
        from rich.table import Table

        table = Table(title="resnetlint rules")
        for column in ("Code", "Name", "Default", "Severity", "Fix", "Summary"):
            table.add_column(column)
        for row in rows:
            table.add_row(*row)
        Console(file=stream).print(table)
        return EXIT_CLEAN
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        stream.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[5] + "\n")
    return EXIT_CLEAN


def _fix_text(rule) -> str:
    return "-" if rule.fix_availability == "none" else f"{rule.fix_safety} ({rule.fix_availability})"


def _rule_json(rule) -> dict:
    return {"code": rule.code, "name": rule.name, "summary": rule.summary, "severity": rule.severity,
            "default": rule.default_enabled, "fix": None if rule.fix_availability == "none" else
            {"availability": rule.fix_availability, "safety": rule.fix_safety}}


def explain(code: str, stream: IO[str], color: str = "auto") -> int:
    """--explain CODE (or a rule name): the rule's documentation."""
    from .api import all_rules
    from .registry import ENGINE_CODES
    from .selection import SelectionError, parse_selectors

    try:
        wanted = parse_selectors([code])
    except SelectionError:
        wanted = []
    rule = next((rule for rule in list(all_rules()) + list(ENGINE_CODES) if [rule.code] == wanted), None)
    if rule is None:
        raise UsageError(f"unknown rule {code!r}; `--explain` takes a code such as RL101 or a name such as "
                         f"stale-input (see --list-rules)")
    fix = "no automatic fix" if rule.fix_availability == "none" else f"fix: {rule.fix_availability}, {rule.fix_safety}"
    header = (f"# {rule.code} `{rule.name}`\n\n*{rule.summary}* — {rule.severity}, "
              f"{'on' if rule.default_enabled else 'off'} by default, {fix}.\n\n")
    from .report.text import use_color

    if use_color(stream, color):
        from rich.console import Console
        from rich.markdown import Markdown

        Console(file=stream).print(Markdown(header + rule.documentation()))
    else:
        stream.write(header + rule.documentation() + "\n")
    return EXIT_CLEAN


def error(message: str) -> None:
    sys.stderr.write(f"resnetlint: error: {message}\n")
