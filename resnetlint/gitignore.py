"""Honouring ``.gitignore`` while walking directories (``respect-gitignore``).

The patterns are git's (wildmatch), matched by `pathspec
<https://pypi.org/project/pathspec/>`_; this module only decides which
files apply where, so it works the same with or without git installed and
costs no subprocess: the ``.gitignore`` of every directory from the
repository top (the nearest ancestor with a ``.git``) down to the file, plus
``.git/info/exclude``.  Within a file the last matching pattern wins, and a
deeper ``.gitignore`` overrides a shallower one, as in git.  Not read: the
user's global excludes file (``core.excludesFile``), which holds personal
editor clutter rather than a project's decisions.

Like git, a file inside an ignored directory stays ignored even if a later
pattern negates the file.

pathspec (1.1) does not know POSIX character classes inside brackets
(``[[:digit:]]``, which git accepts), so :func:`_expand_classes` rewrites
them as the ranges they stand for before pathspec sees the pattern.
"""
from __future__ import annotations

import os
import re
import warnings
from functools import lru_cache
from typing import Dict, List, Optional

# [:class:] -> the same characters as ranges (ASCII, as git's wildmatch).  No
# backslash (pathspec copies a bracket's content into its regex, doubling
# them), no "/" (pathspec splits patterns there; no class matches it in a
# path anyway), and no "!" first (that would negate the bracket).
POSIX_CLASSES = {
    "alpha": "a-zA-Z", "digit": "0-9", "alnum": "a-zA-Z0-9", "upper": "A-Z", "lower": "a-z",
    "xdigit": "0-9A-Fa-f", "space": " \t\n\r\f\v", "blank": " \t", "cntrl": "\x00-\x1f\x7f",
    "punct": ":-@!-.[-`{-~", "graph": "0-~!-.", "print": "0-~ -.",
}
POSIX_CLASS = re.compile(r"\[:([a-z]+):\]")
# A bracket expression with at least one class in it: "[", maybe "!" or "^",
# then classes and other characters up to the closing "]".
BRACKET_WITH_CLASS = re.compile(r"\[[!^]?(?:[^\[\]]|\[:[a-z]+:\])*\[:[a-z]+:\](?:[^\[\]]|\[:[a-z]+:\])*\]")


def _expand_classes(line: str) -> str:
    """``[[:digit:]_]x`` -> ``[0-9_]x``: every ``[:class:]`` inside a bracket
    expression replaced by its ranges (an unknown class is left as written)."""
    if "[:" not in line:
        return line
    return BRACKET_WITH_CLASS.sub(
        lambda bracket: POSIX_CLASS.sub(lambda m: POSIX_CLASSES.get(m.group(1), m.group(0)), bracket.group(0)), line)


def parse(text: str):
    """A pathspec matcher for the lines of one ignore file (None when it has
    no pattern)."""
    lines = [_expand_classes(line) for line in text.splitlines()
             if line.strip() and not line.startswith("#")]
    if not lines:
        return None
    import pathspec  # here: most runs never meet a .gitignore with patterns

    with warnings.catch_warnings():
        # A '[' inside a bracket ("[[]x") is literal today, and pathspec hands
        # it to `re` as is, which warns that this may change.
        warnings.simplefilter("ignore", FutureWarning)
        return pathspec.GitIgnoreSpec.from_lines(lines)


class GitIgnore:
    """``is_ignored(path, is_dir)`` for paths anywhere on disk."""

    def __init__(self) -> None:
        self._specs: Dict[str, object] = {}  # directory -> its pathspec matcher (None: no patterns)
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
            spec = self._spec_of(os.path.join(top, *parts[:depth]) if depth else top, top)
            if spec is None:
                continue
            relative = "/".join(parts[depth:]) + ("/" if is_dir else "")
            verdict = _verdict(spec, relative)
            if verdict is not None:
                ignored = verdict
        return ignored

    def _spec_of(self, directory: str, top: str):
        if directory not in self._specs:
            text = _read(os.path.join(directory, ".gitignore"))
            if directory == top:
                text = _read(os.path.join(top, ".git", "info", "exclude")) + "\n" + text
            self._specs[directory] = parse(text)
        return self._specs[directory]


def _verdict(spec, relative: str) -> Optional[bool]:
    """What the last pattern matching ``relative`` itself says (True:
    ignored, False: re-included, None: no pattern matches it).

    pathspec also counts a match of any parent directory as a match (its
    ``check_file``); here parents are judged one by one by the caller, so
    that a directory the user named is checked even when an enclosing
    repository ignores it.  A pattern's regex marks such a match of a parent
    with its ``ps_d`` group (the "/" after the parent) and leaves text
    unmatched after it."""
    verdict = None
    for pattern in spec.patterns:
        if pattern.include is None:
            continue
        match = pattern.regex.match(relative)
        if match is None:
            continue
        if match.end() == len(relative) or match.groupdict().get("ps_d") is None:
            verdict = pattern.include
    return verdict


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return ""


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

