"""Honouring ``.gitignore`` while walking directories (``respect-gitignore``).

A small reader of git's ignore rules, so it works the same with or without
git installed and costs no subprocess: the ``.gitignore`` of every directory
from the repository top (the nearest ancestor with a ``.git``) down to the
file, plus ``.git/info/exclude``.  Supported: comments, blank lines,
negation (``!keep.py``), directory-only patterns (``build/``), anchored
patterns (``/generated`` or any pattern with a ``/`` inside), ``*``, ``?``,
``[...]`` and ``**``.  Within a directory the last matching pattern wins and
a deeper ``.gitignore`` overrides a shallower one, as in git.  Not read: the
user's global excludes file (``core.excludesFile``), which holds personal
editor clutter rather than a project's decisions.

Like git, a file inside an ignored directory stays ignored even if a later
pattern negates the file.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Dict, List, Optional, Pattern


@dataclass(frozen=True)
class IgnoreRule:
    regex: Pattern[str]
    negate: bool
    dir_only: bool


def parse(text: str) -> List[IgnoreRule]:
    rules = []
    for raw in text.splitlines():
        rule = _parse_line(raw)
        if rule is not None:
            rules.append(rule)
    return rules


def _parse_line(raw: str) -> Optional[IgnoreRule]:
    line = raw.rstrip("\r")
    if not line.strip() or line.startswith("#"):
        return None
    # Trailing spaces are dropped unless escaped with a backslash.
    while line.endswith(" ") and not line.endswith("\\ "):
        line = line[:-1]
    negate = line.startswith("!")
    if negate:
        line = line[1:]
    elif line.startswith("\\!") or line.startswith("\\#"):
        line = line[1:]
    dir_only = line.endswith("/")
    line = line.rstrip("/")
    if not line:
        return None
    anchored = "/" in line
    line = line.lstrip("/")
    body = _translate(line)
    prefix = "" if anchored else "(?:.*/)?"
    return IgnoreRule(re.compile(f"^{prefix}{body}$", re.DOTALL), negate, dir_only)


def _translate(glob: str) -> str:
    out = []
    i = 0
    while i < len(glob):
        char = glob[i]
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif glob.startswith("/**", i) and i + 3 == len(glob):
            out.append("/.*")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif char == "*":
            out.append("[^/]*")
            i += 1
        elif char == "?":
            out.append("[^/]")
            i += 1
        elif char == "[":
            end = glob.find("]", i + 1)
            if end == -1:
                out.append(re.escape(char))
                i += 1
            else:
                content = glob[i + 1:end]
                if content.startswith("!"):
                    content = "^" + content[1:]
                out.append(f"[{content}]")
                i = end + 1
        elif char == "\\" and i + 1 < len(glob):
            out.append(re.escape(glob[i + 1]))
            i += 2
        else:
            out.append(re.escape(char))
            i += 1
    return "".join(out)


class GitIgnore:
    """``is_ignored(path, is_dir)`` for paths anywhere on disk."""

    def __init__(self) -> None:
        self._rules: Dict[str, List[IgnoreRule]] = {}
        self._directories: Dict[tuple, bool] = {}

    def is_ignored(self, path: str, is_dir: bool, walked: Optional[str] = None) -> bool:
        """``walked``: the directory the user named.  Only what lies below it
        can be ignored: naming a directory that an enclosing repository
        ignores (a pyenv tree, a vendored checkout) means "check this"."""
        full = os.path.abspath(path)
        parent = os.path.dirname(full)
        top = _repository_top(parent) or parent
        if full == top:
            return False
        below = os.path.abspath(walked) if walked is not None else None
        if parent != top and parent != below and self._directory_ignored(parent, top, below):
            return True  # inside an ignored directory: nothing can bring it back
        parts = os.path.relpath(full, top).split(os.sep)
        return self._matches(top, parts, is_dir)

    def _directory_ignored(self, directory: str, top: str, below: Optional[str] = None) -> bool:
        if below is not None and not directory.startswith(below + os.sep):
            return False  # the named directory itself, or above it
        key = (directory, below)
        verdict = self._directories.get(key)
        if verdict is None:
            parent = os.path.dirname(directory)
            verdict = (parent != top and self._directory_ignored(parent, top, below)) or \
                self._matches(top, os.path.relpath(directory, top).split(os.sep), True)
            self._directories[key] = verdict
        return verdict

    def _matches(self, top: str, parts: List[str], is_dir: bool) -> bool:
        ignored = False
        # From the top down: a deeper .gitignore overrides a shallower one.
        for depth in range(len(parts)):
            directory = os.path.join(top, *parts[:depth]) if depth else top
            relative = "/".join(parts[depth:])
            for rule in self._rules_of(directory, top):
                if rule.dir_only and not is_dir:
                    continue
                if rule.regex.match(relative):
                    ignored = not rule.negate
        return ignored

    def _rules_of(self, directory: str, top: str) -> List[IgnoreRule]:
        rules = self._rules.get(directory)
        if rules is None:
            rules = _read_rules(os.path.join(directory, ".gitignore"))
            if directory == top:
                rules = _read_rules(os.path.join(top, ".git", "info", "exclude")) + rules
            self._rules[directory] = rules
        return rules


def _read_rules(path: str) -> List[IgnoreRule]:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return parse(handle.read())
    except OSError:
        return []


@lru_cache(maxsize=256)
def _repository_top(directory: str) -> Optional[str]:
    current = directory
    while True:
        if os.path.exists(os.path.join(current, ".git")):
            return current
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent

