"""Every option of resnetlint, defined once.

Each :class:`Option` says how the flag is spelled, what value it takes and
how that value is read and checked, its help text and section in
``--help``, its default, and its key in ``[tool.resnetlint]`` when it has
one.  Everything else is derived from this table:

* :mod:`resnetlint.cli_app` builds the typer application from it (its
  ``--help`` and its error messages);
* :func:`parse_argv`, the entry point's fast path, reads the common command
  lines (a pre-commit hook, an editor, CI) with the same table and without
  importing typer, whose import (with pydantic) costs about 0.09 s, a third
  of a one-file run; anything it does not understand (``--help``, a typo)
  goes to typer;
* :mod:`resnetlint.config` checks ``[tool.resnetlint]`` with the options'
  value types, and :class:`resnetlint.api.Settings` its fields.

Both parsers hand the raw strings to :func:`options_from_raw`, so a value
is judged by the same code, with the same message, whichever read it.
Nothing here imports typer, libcst or the rules.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from .errors import UsageError

FORMATS = ("text", "concise", "json", "sarif", "github", "junit")
DEVICES = ("cpu", "cuda", "meta", "auto")  # the trace's devices (resnetlint.trace.DEVICES, kept equal by a test)
TRACE_MODES = ("auto", "on", "off")
COLORS = ("auto", "always", "never")


# -- value types: how a value is read from the command line and checked from TOML or Python


class Value:
    metavar = "VALUE"

    def read(self, text: str, where: str) -> Any:
        """A value from a command-line string."""
        return self.check(text, where)

    def check(self, value: Any, where: str) -> Any:
        """A value from TOML or from Python, already typed."""
        raise NotImplementedError

    def choices(self) -> Sequence[str]:
        return ()


class Text(Value):
    def __init__(self, metavar: str):
        self.metavar = metavar

    def check(self, value: Any, where: str) -> str:
        if not isinstance(value, str):
            raise UsageError(f"{where} must be a string, not {value!r}")
        return value


class Choice(Value):
    def __init__(self, values: Sequence[str], metavar: Optional[str] = None):
        self.values = tuple(values)
        self.metavar = metavar or "|".join(values)

    def check(self, value: Any, where: str) -> str:
        if value not in self.values:
            raise UsageError(f"{where} must be one of {', '.join(self.values)}, not {value!r}")
        return value

    def choices(self) -> Sequence[str]:
        return self.values


class Count(Value):
    """A whole number, 0 or more."""

    metavar = "N"

    def read(self, text: str, where: str) -> int:
        if not text.strip().isdigit():
            raise UsageError(f"{where} must be a whole number (0 or more), not {text!r}")
        return int(text)

    def check(self, value: Any, where: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise UsageError(f"{where} must be a whole number (0 or more), not {value!r}")
        return value


class Seconds(Value):
    metavar = "SECONDS"

    def __init__(self, minimum: float):
        self.minimum = minimum

    def read(self, text: str, where: str) -> float:
        try:
            number = float(text)
        except ValueError:
            number = None
        return self.check(number if number is not None else text, where)

    def check(self, value: Any, where: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= self.minimum:
            raise UsageError(f"{where} must be a number of seconds, at least {self.minimum:g}, not {value!r}")
        return float(value)


class Codes(Value):
    """Rule codes, prefixes or names, comma-separated; a list in TOML."""

    metavar = "CODES"

    def read(self, text: str, where: str) -> List[str]:
        return self._parse([text], where)

    def check(self, value: Any, where: str) -> List[str]:
        if isinstance(value, str):
            raise UsageError(f"{where} must be a list of rule codes, not the string {value!r} (write [{value!r}])")
        if not isinstance(value, (list, tuple)):
            raise UsageError(f"{where} must be a list of rule codes, not {value!r}")
        return self._parse(value, where)

    @staticmethod
    def _parse(values: Sequence[Any], where: str) -> List[str]:
        from .selection import SelectionError, parse_selectors

        try:
            return parse_selectors(values)
        except SelectionError as exc:
            raise UsageError(f"{where}: {exc}") from None


class Strings(Value):
    """A list of strings in TOML (patterns, paths)."""

    def __init__(self, metavar: str):
        self.metavar = metavar

    def read(self, text: str, where: str) -> List[str]:
        return [text]

    def check(self, value: Any, where: str) -> List[str]:
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            what = f"the string {value!r} (write [{value!r}])" if isinstance(value, str) else repr(value)
            raise UsageError(f"{where} must be a list of strings, not {what}")
        return list(value)


class Boolean(Value):
    metavar = "true|false"

    def check(self, value: Any, where: str) -> bool:
        if not isinstance(value, bool):
            raise UsageError(f"{where} must be true or false, not {value!r}")
        return value


class CodesByGlob(Value):
    """``per-file-ignores``: glob pattern -> list of codes."""

    metavar = "GLOB=CODES"

    def check(self, value: Any, where: str) -> Dict[str, List[str]]:
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise UsageError(f"{where} must map glob patterns to lists of codes, not {value!r}")
        return {pattern: Codes().check(codes, f"{where}[{pattern!r}]") for pattern, codes in value.items()}


# -- the options


@dataclass(frozen=True)
class Option:
    name: str  # attribute of CliOptions and of the resolved settings
    flags: Tuple[str, ...]  # how it is spelled; empty: configuration only
    help: str
    value: Optional[Value] = None  # None: a flag (no value)
    negative: Optional[str] = None  # the flag that turns it off ("--no-trace")
    repeat: bool = False  # the flag may repeat; the values add up
    default: Any = None  # when neither the command line nor the configuration sets it
    config: Optional[str] = None  # key in [tool.resnetlint]
    config_value: Optional[Value] = None  # how the key is checked, when not like the flag
    section: str = "Options"
    hidden: bool = False
    shown_default: Optional[str] = None  # the default as --help says it, when not obvious

    def __post_init__(self) -> None:
        if self.value is None and self.default is None:
            object.__setattr__(self, "default", False)  # a flag not given is off

    @property
    def flag(self) -> str:
        """The name messages use: the first long flag."""
        return next((f for f in self.flags if f.startswith("--")), self.config or self.name)

    @property
    def is_flag(self) -> bool:
        return self.value is None

    def toml_value(self) -> Value:
        if self.config_value is not None:
            return self.config_value
        if self.value is None:
            return Boolean()
        return self.value


_TEXT = "Options"
_RULES = "Rule selection"
_FILES = "File selection"
_TRACE = "Trace"
_MISC = "Miscellaneous"
_LOG = "Log levels"
_GLOBAL = "Global options"
SECTIONS = (_TEXT, _RULES, _FILES, _TRACE, _MISC, _LOG, _GLOBAL)

OPTIONS: Tuple[Option, ...] = (
    Option("fix", ("--fix",), "Apply the safe fixes and write the files (with --unsafe-fixes, every fix)",
           negative="--no-fix", default=False, config="fix"),
    Option("unsafe_fixes", ("--unsafe-fixes",),
           "Also apply (and count as fixable) the fixes that may change what the code computes",
           negative="--no-unsafe-fixes", default=False, config="unsafe-fixes"),
    Option("show_fixes", ("--show-fixes",), "Show each available fix as a diff under its finding",
           negative="--no-show-fixes", default=False, config="show-fixes"),
    Option("diff", ("--diff",), "Print the fixes as a unified diff and write nothing; exit 1 when there is one"),
    Option("fix_only", ("--fix-only",),
           "Apply the fixes, but do not report or fail on the findings that remain; implies --fix"),
    Option("add_noqa", ("--add-noqa",), "Add `# noqa: CODE` comments to the lines with findings, to adopt "
                                        "resnetlint on existing code"),
    Option("output_format", ("--format", "--output-format"), "How to print the findings",
           value=Choice(FORMATS, "FORMAT"), default="text", config="output-format"),
    Option("output_file", ("-o", "--output-file"), "Write the report to this file instead of stdout",
           value=Text("FILE")),
    Option("color", ("--color",), "Colour and links in the text report: auto is on a terminal "
                                  "(and never with NO_COLOR set)", value=Choice(COLORS), default="auto"),
    Option("statistics", ("--statistics",), "Print the number of findings per rule instead of the findings"),
    Option("show_files", ("--show-files",), "Print the files that would be checked, and exit"),
    Option("show_settings", ("--show-settings",), "Print the settings in effect and where each came from, and exit"),
    Option("list_rules", ("--list-rules",), "List the rules and exit (with --format json, as JSON)"),
    Option("explain", ("--explain",), "Print a rule's documentation and exit", value=Text("CODE")),
    Option("version", ("--version",), "Print the version and exit"),

    Option("select", ("--select",), "Rules to run: codes, prefixes (RL1) or names (stale-input), "
                                    "comma-separated, or ALL; replaces the configured selection",
           value=Codes(), repeat=True, config="select", section=_RULES, shown_default="the rules on by default"),
    Option("ignore", ("--ignore",), "Rules not to run, on top of the configured ones", value=Codes(), repeat=True,
           config="ignore", section=_RULES),
    Option("extend_select", ("--extend-select",), "Rules to run on top of the selection", value=Codes(),
           repeat=True, config="extend-select", section=_RULES),
    Option("per_file_ignores", (), "Rules not to run on files matching a glob pattern",
           value=CodesByGlob(), config="per-file-ignores", default={}, section=_RULES),

    Option("exclude", ("--exclude",), "Files and directories to skip (patterns); replaces the configured list",
           value=Strings("PATTERN"), repeat=True, config="exclude", default=[], section=_FILES),
    Option("extend_exclude", ("--extend-exclude",), "Files and directories to skip, in addition",
           value=Strings("PATTERN"), repeat=True, config="extend-exclude", default=[], section=_FILES),
    Option("respect_gitignore", ("--respect-gitignore",), "Skip what .gitignore files ignore",
           negative="--no-respect-gitignore", default=True, config="respect-gitignore", section=_FILES),
    Option("force_exclude", ("--force-exclude",), "Apply the exclusions to files named on the command line "
                                                  "too (pre-commit passes every file)",
           negative="--no-force-exclude", default=False, config="force-exclude", section=_FILES),

    Option("trace", ("--trace",), "Confirm findings by running the blocks; this imports and runs the code "
                                  "being checked (auto: when torch is installed)",
           negative="--no-trace", default="auto", config="trace", config_value=Choice(TRACE_MODES),
           section=_TRACE, shown_default="auto"),
    Option("trace_all", ("--trace-all",), "Also trace the residual blocks without static findings", section=_TRACE),
    Option("device", ("--device",), "Where the trace runs (auto: CUDA when available)", value=Choice(DEVICES),
           default="cpu", config="device", section=_TRACE),
    Option("trace_timeout", ("--trace-timeout",), "Time allowed per traced class", value=Seconds(1.0),
           default=30.0, config="trace-timeout", section=_TRACE),
    Option("trace_paths", ("--trace-path",), "A directory the traced code imports from (put on sys.path); "
                                             "may repeat", value=Strings("PATH"), repeat=True, default=[],
           config="trace-path", section=_TRACE),
    Option("show_refuted", ("--show-refuted",), "Keep the findings the trace refuted in the report", section=_TRACE),

    Option("jobs", ("-j", "--jobs"), "Worker processes", value=Count(), default=0, section=_MISC,
           shown_default="one per core"),
    Option("no_cache", ("--no-cache",), "Do not read or write the result cache", section=_MISC),
    Option("cache_dir", ("--cache-dir",), "Where the result cache lives (also $RESNETLINT_CACHE_DIR)",
           value=Text("DIR"), section=_MISC, shown_default=".resnetlint_cache at the project root"),
    Option("stdin_filename", ("--stdin-filename",), "The name of the file read from stdin (`-`)",
           value=Text("PATH"), section=_MISC),
    Option("exit_zero", ("--exit-zero",), "Exit 0 even when there are findings", section=_MISC),
    Option("exit_non_zero_on_fix", ("--exit-non-zero-on-fix",),
           "Exit 1 when a file was fixed, even if no finding remains", section=_MISC),
    Option("show_traceback", ("--show-traceback",), "Print the traceback of internal errors (RL999)",
           section=_MISC),
    Option("full", ("--full-parse",), "Parse whole files with libcst (slower; for debugging)", section=_MISC,
           hidden=True),

    Option("verbose", ("-v", "--verbose"), "Say more: the configuration used, the files, the cache, the trace",
           section=_LOG),
    Option("quiet", ("-q", "--quiet"), "Print the findings and nothing else", section=_LOG),

    Option("config", ("--config",), "Use this pyproject.toml (it must have a [tool.resnetlint] table)",
           value=Text("FILE"), section=_GLOBAL),
    Option("isolated", ("--isolated",), "Ignore every configuration file", section=_GLOBAL),
)
BY_NAME: Dict[str, Option] = {option.name: option for option in OPTIONS}
CONFIG_KEYS: Dict[str, Option] = {option.config: option for option in OPTIONS if option.config}


def _spellings() -> Dict[str, Tuple[Option, bool]]:
    """Every flag -> (option, is the negative form)."""
    out: Dict[str, Tuple[Option, bool]] = {}
    for option in OPTIONS:
        for flag in option.flags:
            out[flag] = (option, False)
        if option.negative:
            out[option.negative] = (option, True)
    return out


SPELLINGS = _spellings()
HELP_FLAGS = ("-h", "--help")


# -- the command line


class CliOptions:
    """Every option as given on the command line: None when it was not
    given (then the configuration or the default decides); ``paths`` is a
    tuple."""

    def __init__(self, paths: Sequence[str] = (), **values: Any):
        unknown = set(values) - set(BY_NAME)
        if unknown:
            raise TypeError(f"unknown options {sorted(unknown)}")
        self.paths = tuple(paths)
        for option in OPTIONS:
            setattr(self, option.name, values.get(option.name))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CliOptions) and vars(self) == vars(other)

    def __repr__(self) -> str:
        given = {k: v for k, v in vars(self).items() if v not in (None, ())}
        return f"CliOptions({given})"


def parse_argv(argv: Sequence[str]) -> Optional[Dict[str, Any]]:
    """The raw values of a command line (strings, lists of strings, True or
    False for flags), or None when typer should read it: ``--help``, an
    unknown flag, a flag without its value, anything unusual, so that
    typer's reading and messages stay the only ones for those."""
    raw: Dict[str, Any] = {}
    paths: List[str] = []
    args = list(argv)
    only_paths = False
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if only_paths or arg == "-" or not arg.startswith("-"):
            paths.append(arg)
            continue
        if arg == "--":
            only_paths = True
            continue
        name, eq, inline = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        spelled = SPELLINGS.get(name)
        if spelled is None:
            return None  # --help, -h, a typo, -j2, -qv: typer's job
        option, negative = spelled
        if option.is_flag:
            if eq:
                return None
            raw[option.name] = not negative
            continue
        if eq:
            value = inline
        elif i < len(args) and (args[i] == "-" or not args[i].startswith("-")):
            value, i = args[i], i + 1
        else:
            return None  # no value, or one that looks like a flag
        if option.repeat:
            raw.setdefault(option.name, []).append(value)
        else:
            raw[option.name] = value
    raw["paths"] = paths
    return raw


def options_from_raw(raw: Mapping[str, Any]) -> CliOptions:
    """Convert and check what a parser read (raises :class:`UsageError`)."""
    values: Dict[str, Any] = {}
    for option in OPTIONS:
        given = raw.get(option.name)
        if given is None or given == [] or given == () or (option.is_flag and given is False and not option.negative):
            continue  # not given (typer reports an absent plain flag as False, a list as [])
        where = f"`{option.flag}`"
        if option.is_flag:
            values[option.name] = bool(given)
        elif option.repeat:
            values[option.name] = [item for text in given for item in option.value.read(text, where)]
        else:
            values[option.name] = option.value.read(given, where)
    return CliOptions(paths=tuple(raw.get("paths") or ()), **values)


def suggest_flag(unknown: str) -> str:
    """`` (did you mean `--select`?)`` for a close misspelling, else ''."""
    name = unknown.partition("=")[0]
    shown = [flag for option in OPTIONS if not option.hidden
             for flag in option.flags + ((option.negative,) if option.negative else ())] + list(HELP_FLAGS)
    close = difflib.get_close_matches(name, shown, n=1, cutoff=0.75)
    return f" (did you mean `{close[0]}`?)" if close else ""


# -- the Python API


FIX_MODES = ("off", "fix", "diff")


def check_settings(settings: Any) -> None:
    """Check (and normalize: rule names to codes) a
    :class:`resnetlint.api.Settings` in place, with the checks and messages
    of the command line; raises :class:`UsageError`."""
    def where(field: str) -> str:
        return f"Settings.{field}"

    for field in ("select", "ignore", "extend_select"):
        value = getattr(settings, field)
        if value is not None or field != "select":
            setattr(settings, field, Codes().check(value, where(field)))
    settings.exclude = Strings("PATTERN").check(settings.exclude, where("exclude"))
    settings.per_file_ignores = CodesByGlob().check(settings.per_file_ignores, where("per_file_ignores"))
    settings.fix = Choice(FIX_MODES).check(settings.fix, where("fix"))
    settings.jobs = Count().check(settings.jobs, where("jobs"))
    for field in ("fast", "unsafe_fixes", "respect_gitignore", "cache", "force_exclude", "show_refuted"):
        Boolean().check(getattr(settings, field), where(field))
    for field in ("config_root", "cache_dir"):
        if getattr(settings, field) is not None:
            Text("PATH").check(getattr(settings, field), where(field))
    trace = settings.trace
    if not all(hasattr(trace, name) for name in ("mode", "device", "trace_all")):
        raise UsageError(f"{where('trace')} must be a resnetlint.trace.TraceOptions, not {trace!r}")
    Choice(TRACE_MODES).check(trace.mode, where("trace.mode"))
    Choice(DEVICES).check(trace.device, where("trace.device"))
