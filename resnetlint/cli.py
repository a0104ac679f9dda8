"""Command line: ``resnetlint [OPTIONS] [PATH]...``.

Exit codes: 0 no findings, 1 findings (syntax errors and unreadable files
included), 2 usage, configuration or internal errors.
"""
from __future__ import annotations

import sys
from enum import Enum
from typing import List, Optional

import typer

from . import __version__

app = typer.Typer(add_completion=False, rich_markup_mode=None, pretty_exceptions_enable=False)


class OutputFormat(str, Enum):
    text = "text"
    concise = "concise"
    json = "json"


EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


def _version(value: bool) -> None:
    if value:
        typer.echo(f"resnetlint {__version__}")
        raise typer.Exit()


@app.command(context_settings={"help_option_names": ["-h", "--help"]})
def main_command(
    paths: Optional[List[str]] = typer.Argument(None, help="Files or directories to check (default: .)."),
    output_format: OutputFormat = typer.Option(OutputFormat.text, "--format", "--output-format", help="Output format."),
    select: Optional[List[str]] = typer.Option(None, "--select", help="Rule codes or prefixes to enable (comma-separated), or ALL."),
    ignore: Optional[List[str]] = typer.Option(None, "--ignore", help="Rule codes or prefixes to disable."),
    extend_select: Optional[List[str]] = typer.Option(None, "--extend-select", help="Codes to enable on top of the selection."),
    exit_zero: bool = typer.Option(False, "--exit-zero", help="Exit 0 even when there are findings."),
    list_rules: bool = typer.Option(False, "--list-rules", help="List the rules and exit."),
    explain: Optional[str] = typer.Option(None, "--explain", metavar="CODE", help="Show a rule's documentation and exit."),
    full: bool = typer.Option(False, "--full-parse", hidden=True, help="Parse whole files with libcst (slower; for debugging)."),
    jobs: int = typer.Option(0, "-j", "--jobs", min=0, help="Worker processes (default: one per core)."),
    trace: Optional[bool] = typer.Option(None, "--trace/--no-trace",
                                         help="Confirm findings by running the blocks (default: when torch is installed). "
                                              "This imports and runs the code being checked."),
    trace_all: bool = typer.Option(False, "--trace-all", help="Also trace residual blocks without static findings."),
    device: str = typer.Option("cpu", "--device", help="Where the trace runs: cpu, cuda, meta or auto."),
    trace_timeout: float = typer.Option(30.0, "--trace-timeout", min=1.0, help="Seconds allowed per traced class."),
    fix: bool = typer.Option(False, "--fix", help="Apply safe fixes (with --unsafe-fixes, all fixes) to the files."),
    unsafe_fixes: bool = typer.Option(False, "--unsafe-fixes", help="Also apply fixes that change what the code computes."),
    diff: bool = typer.Option(False, "--diff", help="Show the fixes as a unified diff and write nothing (same with --fix)."),
    show_fixes: bool = typer.Option(False, "--show-fixes", help="Show the available fix under each finding."),
    show_traceback: bool = typer.Option(False, "--show-traceback", help="Print the traceback of internal errors (RL999)."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version and exit."),
) -> None:
    """Find, confirm and fix bugs in PyTorch residual blocks."""
    from .api import Settings, all_rules, check_paths
    from .selection import SelectionError, parse_selectors
    from .trace import DEVICES, TraceOptions

    if list_rules:
        raise typer.Exit(_list_rules(all_rules()))
    if explain is not None:
        raise typer.Exit(_explain(explain, all_rules()))
    try:
        settings = Settings(
            select=parse_selectors(select) if select else None,
            ignore=parse_selectors(ignore or []),
            extend_select=parse_selectors(extend_select or []),
            fast=not full,
            jobs=jobs,
            fix="diff" if diff else "fix" if (fix or unsafe_fixes) else "off",
            unsafe_fixes=unsafe_fixes,
            trace=TraceOptions(
                mode="off" if trace is False else "on" if trace or trace_all else "auto",
                trace_all=trace_all,
                device=device,
                class_timeout=trace_timeout,
            ),
        )
        if device not in DEVICES:
            raise SelectionError(f"--device must be one of {', '.join(DEVICES)}, not {device!r}")
    except SelectionError as exc:
        _usage_error(str(exc))
    run = check_paths(list(paths) if paths else ["."], settings)
    for missing in run.missing:
        _error(f"{missing}: no such file or directory")
    if run.missing:
        raise typer.Exit(EXIT_ERROR)
    if diff:
        raise typer.Exit(_report_diff(run))
    _report(run, output_format, show_fixes, unsafe_fixes)
    if show_traceback:
        for text in run.tracebacks:
            sys.stderr.write(text + "\n")
    raise typer.Exit(_exit_code(run, exit_zero))


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


def _report(run, output_format: OutputFormat, show_fixes: bool = False, unsafe: bool = False) -> None:
    stream = sys.stdout
    if output_format == OutputFormat.json:
        from .report import json_

        json_.render(run, stream)
        return
    from .report import text

    paint = text.Painter(text.use_color(stream))
    text.render(run.unfixed_findings(), run.sources, stream, paint, concise=output_format == OutputFormat.concise,
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
    raise typer.Exit(EXIT_ERROR)


def main() -> None:
    app(prog_name="resnetlint")


if __name__ == "__main__":
    main()
