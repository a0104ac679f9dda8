"""The full command line, with typer: every flag, ``--help``, usage errors.

A plain lint is usually served by the fast path in :mod:`resnetlint.cli`
without importing this module (typer validates options through pydantic,
which costs about as much as the analysis of a small file); both build the
same :class:`~resnetlint.command.CliOptions` and call
:func:`~resnetlint.command.execute`.
"""
from __future__ import annotations

from enum import Enum
from typing import List, Optional

import typer

from . import __version__
from .command import CliExit, CliOptions, execute

app = typer.Typer(add_completion=False, rich_markup_mode=None, pretty_exceptions_enable=False)


class OutputFormat(str, Enum):
    text = "text"
    concise = "concise"
    json = "json"
    sarif = "sarif"
    github = "github"
    junit = "junit"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"resnetlint {__version__}")
        raise typer.Exit()


@app.command(context_settings={"help_option_names": ["-h", "--help"]})
def main_command(
    paths: Optional[List[str]] = typer.Argument(None, help="Files or directories to check (default: .); - reads stdin."),
    output_format: OutputFormat = typer.Option(OutputFormat.text, "--format", "--output-format", help="Output format."),
    output_file: Optional[str] = typer.Option(None, "-o", "--output-file", help="Write the report to this file."),
    select: Optional[List[str]] = typer.Option(None, "--select", help="Rule codes or prefixes to enable (comma-separated), or ALL."),
    ignore: Optional[List[str]] = typer.Option(None, "--ignore", help="Rule codes or prefixes to disable."),
    extend_select: Optional[List[str]] = typer.Option(None, "--extend-select", help="Codes to enable on top of the selection."),
    exclude: Optional[List[str]] = typer.Option(None, "--exclude", help="Patterns to skip (replaces the configured list)."),
    extend_exclude: Optional[List[str]] = typer.Option(None, "--extend-exclude", help="Patterns to skip, in addition."),
    force_exclude: bool = typer.Option(False, "--force-exclude", help="Apply exclusions to files named explicitly too."),
    respect_gitignore: Optional[bool] = typer.Option(None, "--respect-gitignore/--no-respect-gitignore",
                                                     help="Skip what .gitignore ignores (default: yes)."),
    config: Optional[str] = typer.Option(None, "--config", metavar="FILE", help="Use this pyproject.toml."),
    isolated: bool = typer.Option(False, "--isolated", help="Ignore every configuration file."),
    exit_zero: bool = typer.Option(False, "--exit-zero", help="Exit 0 even when there are findings."),
    statistics: bool = typer.Option(False, "--statistics", help="Show the number of findings per rule."),
    list_rules: bool = typer.Option(False, "--list-rules", help="List the rules and exit."),
    explain: Optional[str] = typer.Option(None, "--explain", metavar="CODE", help="Show a rule's documentation and exit."),
    full: bool = typer.Option(False, "--full-parse", hidden=True, help="Parse whole files with libcst (slower; for debugging)."),
    jobs: int = typer.Option(0, "-j", "--jobs", min=0, help="Worker processes (default: one per core)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not read or write the result cache."),
    cache_dir: Optional[str] = typer.Option(None, "--cache-dir", metavar="DIR", help="Where the cache lives (default: .resnetlint_cache)."),
    trace: Optional[bool] = typer.Option(None, "--trace/--no-trace",
                                         help="Confirm findings by running the blocks (default: when torch is installed). "
                                              "This imports and runs the code being checked."),
    trace_all: bool = typer.Option(False, "--trace-all", help="Also trace residual blocks without static findings."),
    device: Optional[str] = typer.Option(None, "--device", help="Where the trace runs: cpu, cuda, meta or auto (default cpu)."),
    trace_timeout: Optional[float] = typer.Option(None, "--trace-timeout", min=1.0, help="Seconds allowed per traced class (default 30)."),
    fix: Optional[bool] = typer.Option(None, "--fix/--no-fix", help="Apply safe fixes (with --unsafe-fixes, all fixes) to the files."),
    unsafe_fixes: Optional[bool] = typer.Option(None, "--unsafe-fixes/--no-unsafe-fixes", help="Also apply fixes that change what the code computes."),
    diff: bool = typer.Option(False, "--diff", help="Show the fixes as a unified diff and write nothing (same with --fix)."),
    show_fixes: bool = typer.Option(False, "--show-fixes", help="Show the available fix under each finding."),
    add_noqa: bool = typer.Option(False, "--add-noqa", help="Add `# noqa: CODE` comments for every current finding."),
    stdin_filename: Optional[str] = typer.Option(None, "--stdin-filename", metavar="PATH", help="The name of the file read from stdin."),
    show_traceback: bool = typer.Option(False, "--show-traceback", help="Print the traceback of internal errors (RL999)."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version and exit."),
) -> None:
    """Find, confirm and fix bugs in PyTorch residual blocks."""
    from . import command

    try:
        if list_rules:
            from .api import all_rules

            raise typer.Exit(command._list_rules(all_rules()))
        if explain is not None:
            from .api import all_rules

            raise typer.Exit(command._explain(explain, all_rules()))
        options = CliOptions(
            paths=tuple(paths or ()), output_format=output_format.value, output_file=output_file, select=select,
            ignore=ignore, extend_select=extend_select, exclude=exclude, extend_exclude=extend_exclude,
            force_exclude=force_exclude, respect_gitignore=respect_gitignore, config=config, isolated=isolated,
            exit_zero=exit_zero, statistics=statistics, full=full, jobs=jobs, no_cache=no_cache, cache_dir=cache_dir,
            trace=trace, trace_all=trace_all, device=device, trace_timeout=trace_timeout, fix=fix,
            unsafe_fixes=unsafe_fixes, diff=diff, show_fixes=show_fixes, add_noqa=add_noqa,
            stdin_filename=stdin_filename, show_traceback=show_traceback,
        )
        raise typer.Exit(run_options(options))
    except CliExit as exc:
        raise typer.Exit(exc.code)


def run_options(options: CliOptions) -> int:
    """The seam the fast path shares (tests replace it to compare parsers)."""
    return execute(options)


def main(argv: Optional[List[str]] = None) -> None:
    app(args=argv, prog_name="resnetlint")
