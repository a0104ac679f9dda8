"""``[tool.resnetlint]`` in ``pyproject.toml``.

Found by walking up from the paths being checked (or from the current
directory), or named with ``--config``; ``--isolated`` ignores every file.
Keys use the same names as the command-line flags; a flag given on the
command line wins over the file.  An unknown key or a bad value is an error
(exit status 2) naming the key and the file, with a suggestion for a
misspelt key.

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
    fix = false
    unsafe-fixes = false
"""
from __future__ import annotations

import difflib
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - older Pythons use the backport
    import tomli as tomllib

KEYS = {
    "select": "codes",
    "ignore": "codes",
    "extend-select": "codes",
    "per-file-ignores": "globs",
    "exclude": "strings",
    "extend-exclude": "strings",
    "respect-gitignore": "bool",
    "trace": ("auto", "on", "off"),
    "device": ("cpu", "cuda", "meta", "auto"),
    "trace-timeout": "number",
    "fix": "bool",
    "unsafe-fixes": "bool",
}


class ConfigError(Exception):
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


def load_config(path: str) -> FileConfig:
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    table = data.get("tool", {}).get("resnetlint", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.resnetlint] must be a table")
    values = {}
    for key, value in table.items():
        values[key] = _validate(path, key, value)
    return FileConfig(path, values)


def _validate(path: str, key: str, value: Any) -> Any:
    kind = KEYS.get(key)
    if kind is None:
        close = difflib.get_close_matches(key, list(KEYS), n=1)
        hint = f" (did you mean `{close[0]}`?)" if close else f" (known keys: {', '.join(sorted(KEYS))})"
        raise ConfigError(f"{path}: unknown key `{key}` in [tool.resnetlint]{hint}")
    where = f"{path}: `{key}`"
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, not {value!r}")
        return value
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ConfigError(f"{where} must be a positive number of seconds, not {value!r}")
        return float(value)
    if isinstance(kind, tuple):
        if value not in kind:
            raise ConfigError(f"{where} must be one of {', '.join(kind)}, not {value!r}")
        return value
    if kind in ("codes", "strings"):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where} must be a list of strings, not {value!r}")
        if kind == "codes":
            return _codes(where, value)
        return value
    if kind == "globs":
        if not isinstance(value, dict) or not all(isinstance(v, list) for v in value.values()):
            raise ConfigError(f"{where} must map glob patterns to lists of codes")
        return {pattern: _codes(f"{where}[{pattern!r}]", codes) for pattern, codes in value.items()}
    raise AssertionError(kind)


def _codes(where: str, values: List[str]) -> List[str]:
    from .selection import SelectionError, parse_selectors

    try:
        return parse_selectors(values)
    except SelectionError as exc:
        raise ConfigError(f"{where}: {exc}") from None
