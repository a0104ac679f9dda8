"""The settings of a command-line run: flags over ``[tool.resnetlint]`` over
defaults, and where each value came from (``--show-settings``).

Most options follow one rule: the flag when given, else the configuration's
key, else the option's default.  A few combine both, as in Ruff:

* ``--select`` replaces the configured ``select`` and its ``ignore``;
  otherwise ``--ignore`` and ``--extend-select`` add to the file's (a code the
  command line selects again beats the file ignoring it);
* ``--exclude`` replaces ``exclude``; ``extend-exclude`` from both adds;
* the cache directory: ``--cache-dir``, else ``$RESNETLINT_CACHE_DIR``, else
  ``.resnetlint_cache`` at the project root (:func:`resnetlint.cache.cache_dir_for`);
* ``trace-path`` entries in the file are relative to the file's directory.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Dict, List

from .config import ConfigError, FileConfig, find_config, load_config
from .options import OPTIONS, CliOptions

DEFAULT = "default"
COMMAND_LINE = "command line"
CACHE_ENV = "RESNETLINT_CACHE_DIR"


@dataclass
class Resolved:
    """Every option's value for this run, with its source (``default``,
    ``command line``, the configuration file's path, or an environment
    variable), and the :class:`resnetlint.api.Settings` made from them."""

    values: Dict[str, Any]
    sources: Dict[str, str]
    config: FileConfig
    settings: Any = None
    paths: List[str] = field(default_factory=list)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["values"][name]
        except KeyError:
            raise AttributeError(name) from None


def load_file(options: CliOptions, paths: List[str]) -> FileConfig:
    if options.isolated:
        return FileConfig()
    if options.config is not None:
        if not os.path.isfile(options.config):
            raise ConfigError(f"{options.config}: no such configuration file")
        return load_config(options.config, required=True)
    found = find_config(paths)
    return load_config(found) if found else FileConfig()


def resolve(options: CliOptions, paths: List[str]) -> Resolved:
    """Raises :class:`resnetlint.errors.UsageError` for a bad configuration."""
    file = load_file(options, paths)
    values: Dict[str, Any] = {}
    sources: Dict[str, str] = {}
    for option in OPTIONS:
        given = getattr(options, option.name)
        if given is not None:
            values[option.name], sources[option.name] = given, COMMAND_LINE
        elif option.config and option.config in file.values:
            values[option.name], sources[option.name] = file.values[option.config], file.path
        else:
            values[option.name], sources[option.name] = option.default, DEFAULT
    resolved = Resolved(values, sources, file, paths=list(paths))
    _combine_selection(resolved, options, file)
    _combine_excludes(resolved, options, file)
    _trace_settings(resolved, options, file)
    _cache_dir(resolved, options, paths)
    if options.fix_only:
        values["fix"], sources["fix"] = True, COMMAND_LINE
    resolved.settings = _settings(resolved)
    return resolved


def _both(file: FileConfig) -> str:
    return f"{file.path} + {COMMAND_LINE}"


def _combine_selection(r: Resolved, options: CliOptions, file: FileConfig) -> None:
    if options.select is not None:
        r.values["ignore"] = list(options.ignore or [])
        r.sources["ignore"] = COMMAND_LINE if options.ignore else DEFAULT
    else:
        cli_extend = options.extend_select or []
        file_ignore = [code for code in file.get("ignore", []) if code not in cli_extend]
        r.values["ignore"] = file_ignore + list(options.ignore or [])
        if file_ignore and options.ignore:
            r.sources["ignore"] = _both(file)
    r.values["ignore"] = r.values["ignore"] or []
    if options.extend_select and "extend-select" in file.values:
        r.values["extend_select"] = list(file.get("extend-select")) + list(options.extend_select)
        r.sources["extend_select"] = _both(file)
    r.values["extend_select"] = r.values["extend_select"] or []


def _combine_excludes(r: Resolved, options: CliOptions, file: FileConfig) -> None:
    if options.extend_exclude and "extend-exclude" in file.values:
        r.values["extend_exclude"] = list(file.get("extend-exclude")) + list(options.extend_exclude)
        r.sources["extend_exclude"] = _both(file)


def _trace_settings(r: Resolved, options: CliOptions, file: FileConfig) -> None:
    # The flag is on/off; the file says auto, on or off; --trace-all turns it on.
    if options.trace is not None:
        r.values["trace"] = "on" if options.trace else "off"
    elif options.trace_all:
        r.values["trace"], r.sources["trace"] = "on", COMMAND_LINE
    if options.trace_paths is None and "trace-path" in file.values:
        r.values["trace_paths"] = [os.path.normpath(os.path.join(file.root, p)) for p in file.get("trace-path")]


def _cache_dir(r: Resolved, options: CliOptions, paths: List[str]) -> None:
    from .cache import default_cache_dir

    if options.cache_dir is not None:
        return
    if os.environ.get(CACHE_ENV):
        r.values["cache_dir"], r.sources["cache_dir"] = os.environ[CACHE_ENV], f"${CACHE_ENV}"
        return
    r.values["cache_dir"] = default_cache_dir(r.config.root if r.config.path else None, paths)


def _settings(r: Resolved):
    from .api import Settings
    from .trace import TraceOptions

    # As in Ruff, --unsafe-fixes alone writes nothing: it widens what --fix,
    # --diff and the [*] markers count as fixable.
    fix = "diff" if r.diff else "fix" if r.fix else "off"
    return Settings(
        select=r.select,
        ignore=r.ignore,
        extend_select=r.extend_select,
        exclude=list(r.exclude) + list(r.extend_exclude),
        per_file_ignores=dict(r.per_file_ignores),
        config_root=r.config.root if r.config.path else None,
        respect_gitignore=r.respect_gitignore,
        force_exclude=r.force_exclude,
        fast=not r.full,
        jobs=r.jobs,
        cache=not r.no_cache,
        cache_dir=r.cache_dir,
        fix=fix,
        unsafe_fixes=bool(r.unsafe_fixes),
        show_refuted=bool(r.show_refuted),
        trace=TraceOptions(mode=r.trace, trace_all=bool(r.trace_all), device=r.device,
                           class_timeout=r.trace_timeout, trace_paths=list(r.trace_paths)),
    )
