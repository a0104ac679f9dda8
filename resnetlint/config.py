"""``[tool.resnetlint]`` in ``pyproject.toml``.

Found by walking up from the paths being checked (or from the current
directory), or named with ``--config``; ``--isolated`` ignores every file.
The keys are the options of :mod:`resnetlint.options` that have one, named
like their flags and checked with the same value types; a flag given on the
command line wins over the file.  An unknown key or a bad value is an error
(exit status 2) naming the key and the file, with a suggestion for a
misspelt key.  A file named with ``--config`` must have the table.

.. code-block:: toml

    [tool.resnetlint]
    select = ["RL1", "RL2"]
    ignore = ["RL301"]
    extend-select = ["RL303"]
    per-file-ignores = { "tests/*" = ["RL104"], "legacy/**" = ["ALL"] }
    exclude = ["generated/"]
    extend-exclude = ["third_party/"]
    respect-gitignore = true
    trace = "auto"          # "auto" | "on" | "off"
    device = "cpu"          # "cpu" | "cuda" | "meta" | "auto"
    trace-timeout = 30
    trace-path = ["src"]    # where the traced code imports from
    fix = false
    unsafe-fixes = false
    show-fixes = false
    force-exclude = false
    output-format = "text"
"""
from __future__ import annotations

import difflib
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Sequence

from .errors import UsageError
from .options import CONFIG_KEYS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - older Pythons use the backport
    import tomli as tomllib

class ConfigError(UsageError):
    """A configuration problem; the message names the file and the key."""


@dataclass
class FileConfig:
    path: Optional[str] = None  # the pyproject.toml it came from
    values: Dict[str, Any] = field(default_factory=dict)

    def get(self, key: str, default=None):
        return self.values.get(key, default)

    @property
    def root(self) -> str:
        return os.path.dirname(os.path.abspath(self.path)) if self.path else os.getcwd()


def find_config(paths: Sequence[str]) -> Optional[str]:
    """The nearest ``pyproject.toml`` with a ``[tool.resnetlint]`` table,
    walking up from the first path (or the current directory)."""
    start = os.path.abspath(paths[0] if paths else ".")
    directory = start if os.path.isdir(start) else os.path.dirname(start)
    while True:
        candidate = os.path.join(directory, "pyproject.toml")
        if os.path.isfile(candidate) and _has_table(candidate):
            return candidate
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent


def _has_table(path: str) -> bool:
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError:
        return False
    try:
        data = tomllib.loads(raw.decode("utf-8", errors="replace"))
    except tomllib.TOMLDecodeError as exc:
        if b"tool.resnetlint" in raw:  # ours, but broken: say so rather than silently ignore it
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        return False
    return isinstance(data.get("tool"), dict) and "resnetlint" in data["tool"]


def load_config(path: str, required: bool = False) -> FileConfig:
    """The checked ``[tool.resnetlint]`` of ``path``.  ``required`` (a file
    named with ``--config``): a file without the table is an error, not an
    empty configuration."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    tool = data.get("tool", {})
    if not isinstance(tool, dict) or "resnetlint" not in tool:
        if required:
            raise ConfigError(f"{path}: no [tool.resnetlint] table (an empty one is enough to use this file)")
        return FileConfig(path, {})
    table = tool["resnetlint"]
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.resnetlint] must be a table")
    return FileConfig(path, {key: _validate(path, key, value) for key, value in table.items()})


def _validate(path: str, key: str, value: Any) -> Any:
    option = CONFIG_KEYS.get(key)
    if option is None:
        close = difflib.get_close_matches(key, list(CONFIG_KEYS), n=1)
        hint = f" (did you mean `{close[0]}`?)" if close else f" (known keys: {', '.join(sorted(CONFIG_KEYS))})"
        raise ConfigError(f"{path}: unknown key `{key}` in [tool.resnetlint]{hint}")
    try:
        return option.toml_value().check(value, f"{path}: `{key}`")
    except UsageError as exc:
        raise ConfigError(str(exc)) from None
