"""The typer application: built from the option table of :mod:`resnetlint.options`.

``app`` is the lint command, ``resnetlint [OPTIONS] [PATH]...``; its
parameters are generated from :data:`~resnetlint.options.OPTIONS` (no
option is written twice), every value arrives as the string the user typed,
and :func:`~resnetlint.options.options_from_raw` converts and checks it, the
same function the entry point's fast path uses.  Two things of typer's are
replaced, so that they read like Ruff and speak resnetlint's words:

* ``--help``: the sections, ``<METAVARS>``, defaults and possible values
  are written from the table (:func:`help_text`);
* usage errors (an unknown flag, a missing value): one line,
  ``resnetlint: error: ...``, exit status 2, with a suggestion only when a
  flag is close to the one typed.

Subcommands (``resnetlint server``, ...) are commands of the ``commands``
Typer, listed by name in :data:`resnetlint.cli.SUBCOMMANDS` so that the
entry point can send them here without importing typer for a lint run::

    @commands.command("server")
    def server(...): ...
"""
from __future__ import annotations

import inspect
import shutil
import textwrap
from typing import Any, List, Optional, Tuple

import typer
from typer.core import TyperCommand

from . import __version__  # noqa: F401  (``resnetlint.cli_app.__version__``)
from .command import error, run
from .errors import UsageError
from .options import OPTIONS, SECTIONS, Option, options_from_raw, suggest_flag

try:  # typer vendors click since 0.20-something; before, it used click itself
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover - older typer
    from click import exceptions as click_errors

DESCRIPTION = "Find, confirm and fix bugs in PyTorch residual blocks."
PATHS_HELP = "Files or directories to check; `-` reads the source from stdin"
EPILOG = ("Exit status: 0 no findings, 1 findings, 2 a usage or configuration error (or RL999).\n"
          "Rules: resnetlint --list-rules; a rule's documentation: resnetlint --explain RL101.")


class LintCommand(TyperCommand):
    """The lint command with resnetlint's help text and error messages."""

    def parse_args(self, ctx, args: List[str]) -> List[str]:
        try:
            return super().parse_args(ctx, args)
        except click_errors.UsageError as exc:
            error(usage_message(exc))
            raise typer.Exit(2) from None

    def format_help(self, ctx, formatter) -> None:
        formatter.write(help_text())


def usage_message(exc) -> str:
    """A parsing error of click's, in resnetlint's words."""
    if isinstance(exc, click_errors.NoSuchOption):
        return f"unknown option `{exc.option_name}`{suggest_flag(exc.option_name)}; see `resnetlint --help`"
    if isinstance(exc, click_errors.BadOptionUsage):
        name = exc.option_name
        if "does not take a value" in exc.format_message():
            return f"`{name}` takes no value"
        option = next((o for o in OPTIONS if name in o.flags), None)
        metavar = f" ({option.value.metavar})" if option is not None and option.value is not None else ""
        return f"`{name}` needs a value{metavar}"
    return exc.format_message()


# -- the command, its parameters generated from the table


def _parameter(option: Option) -> inspect.Parameter:
    if option.is_flag:
        decls = option.flags if option.negative is None else (f"{option.flags[-1]}/{option.negative}",)
        annotation: Any = bool if option.negative is None else Optional[bool]
        default = typer.Option(False if option.negative is None else None, *decls, help=option.help,
                               hidden=option.hidden)
    else:
        annotation = Optional[List[str]] if option.repeat else Optional[str]
        default = typer.Option(None, *option.flags, metavar=option.value.metavar, help=option.help,
                               hidden=option.hidden, show_default=False)
    return inspect.Parameter(option.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def lint(**raw: Any) -> None:
    try:
        options = options_from_raw(raw)
    except UsageError as exc:
        error(str(exc))
        raise typer.Exit(2) from None
    raise typer.Exit(run_options(options))


lint.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [inspect.Parameter("paths", inspect.Parameter.KEYWORD_ONLY, annotation=Optional[List[str]],
                       default=typer.Argument(None, metavar="[PATH]...", help=PATHS_HELP, show_default=False))]
    + [_parameter(option) for option in OPTIONS if option.flags])

app = typer.Typer(add_completion=False, rich_markup_mode=None, pretty_exceptions_enable=False)
app.command(cls=LintCommand, help=DESCRIPTION, context_settings={"help_option_names": ["-h", "--help"]})(lint)

# Subcommands register here (see the module docstring and cli.SUBCOMMANDS).
commands = typer.Typer(add_completion=False, rich_markup_mode=None, pretty_exceptions_enable=False,
                       no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]})


@commands.callback()
def _commands() -> None:
    """resnetlint's subcommands (a callback keeps typer from treating a
    single registered command as the whole application)."""


@commands.command("server")
def server(stdio: bool = typer.Option(False, "--stdio", hidden=True,
                                      help="Accepted and ignored: stdio is the only transport.")) -> None:
    """Run the language server for editors: the Language Server Protocol on
    stdin/stdout (diagnostics as you type, fixes as code actions, rule
    documentation on hover). Needs pip install 'resnetlint[server]'; see the
    README's Editors section for VS Code, Neovim and Helix."""
    from .server import main as serve

    raise typer.Exit(serve())


def run_options(options) -> int:
    """The seam the fast path shares (tests replace it to compare parsers)."""
    return run(options)


def main(argv: Optional[List[str]] = None) -> None:
    app(args=argv, prog_name="resnetlint")


def run_subcommand(argv: List[str]) -> None:
    commands(args=argv, prog_name="resnetlint")


# -- --help, written from the table


def help_text(width: Optional[int] = None) -> str:
    width = min(width or shutil.get_terminal_size((100, 24)).columns, 100)
    out = [DESCRIPTION, "", "Usage: resnetlint [OPTIONS] [PATH]..."]
    names = [info.name or info.callback.__name__.replace("_", "-") for info in commands.registered_commands]
    if names:
        out.append("       resnetlint <COMMAND> [ARGS]...")
        out += ["", "Commands:"] + [f"  {name}" for name in names]
    out += ["", "Arguments:"]
    out += _rows([("[PATH]...", f"{PATHS_HELP} [default: .]")], width)
    for section in SECTIONS:
        rows = [(_flags_column(o), _help_column(o)) for o in OPTIONS if o.section == section and o.flags
                and not o.hidden]
        if section == SECTIONS[0]:
            rows.append(("-h, --help", "Print help"))
        out += ["", f"{section}:"] + _rows(rows, width)
    out += ["", EPILOG]
    return "\n".join(out) + "\n"


def _flags_column(option: Option) -> str:
    short = [f for f in option.flags if not f.startswith("--")]
    long = [f for f in option.flags if f.startswith("--")]
    text = (short[0] + ", " if short else "    ") + ", ".join(long)
    if option.value is not None:
        text += f" <{option.value.metavar}>"
    return text


def _help_column(option: Option) -> str:
    text = option.help
    if option.negative:
        text += f". Use {option.negative} to disable"
    value = option.value
    if value is not None and value.choices() and value.metavar != "|".join(value.choices()):
        text += f" [possible values: {', '.join(value.choices())}]"
    default = option.shown_default or _default_text(option)
    if default:
        text += f" [default: {default}]"
    return text


def _default_text(option: Option) -> str:
    default = option.default
    if option.value is None or default in (None, [], {}, ""):
        return ""
    return f"{default:g}" if isinstance(default, float) else str(default)


def _rows(rows: List[Tuple[str, str]], width: int) -> List[str]:
    """Two columns, Ruff's layout: a flag too long for the first column puts
    its help on the next line."""
    column = 34
    out = []
    for left, right in rows:
        left = "  " + left
        wrapped = textwrap.wrap(right, max(width - column, 30), break_on_hyphens=False) or [""]
        if len(left) + 2 > column:
            out.append(left)
            out += [" " * column + line for line in wrapped]
        else:
            out.append(left.ljust(column) + wrapped[0])
            out += [" " * column + line for line in wrapped[1:]]
    return out
