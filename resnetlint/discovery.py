"""Finding the Python files to check."""
from __future__ import annotations

import errno
import functools
import fnmatch
import os
import re
from dataclasses import dataclass, field
from typing import Callable, Iterable, List, Optional, Sequence, Tuple

# Directory names never entered unless passed explicitly.
DEFAULT_EXCLUDES = (
    ".git", ".hg", ".svn", ".bzr", ".venv", "venv", ".tox", ".nox", "__pycache__", "build", "dist",
    "node_modules", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".resnetlint_cache", ".eggs",
    "*.egg-info", "site-packages", "__pypackages__", ".ipynb_checkpoints",
)
PYTHON_SUFFIXES = (".py", ".pyi")


@dataclass
class Discovery:
    files: List[str] = field(default_factory=list)
    errors: List[Tuple[str, str]] = field(default_factory=list)  # (path, message)
    missing: List[str] = field(default_factory=list)  # explicit paths that do not exist


def discover(
    paths: Sequence[str],
    exclude: Sequence[str] = (),
    is_ignored: Optional[Callable[[str, bool], bool]] = None,
    exclude_root: Optional[str] = None,
    force_exclude: bool = False,
) -> Discovery:
    """Files under ``paths``: explicit files are always checked (unless
    ``force_exclude``, for pre-commit, which passes every staged file);
    directories are walked, skipping excluded names, virtualenvs and ignored
    paths.  ``exclude`` patterns match a file or directory name, its path
    below the walked directory, or its path below ``exclude_root`` (the
    directory of the configuration file)."""
    found = Discovery()
    seen = set()
    patterns = tuple(DEFAULT_EXCLUDES) + tuple(exclude)
    user_patterns = tuple(exclude)

    def add(path: str) -> None:
        key = os.path.normcase(os.path.abspath(path))
        if key not in seen:
            seen.add(key)
            found.files.append(path)

    for path in paths:
        if not os.path.lexists(path):
            found.missing.append(path)
            continue
        if os.path.isdir(path):
            _walk(path, patterns, _below(is_ignored, path), add, found, exclude_root)
        elif os.path.isfile(path):
            if force_exclude and (_explicitly_excluded(path, user_patterns, exclude_root)
                                  or (is_ignored is not None and is_ignored(path, False))):
                continue
            if not path.endswith(PYTHON_SUFFIXES) and not _has_python_shebang(path):
                found.errors.append((path, "not a Python source file (expected a .py file); skipped"))
            else:
                add(path)
        else:
            found.errors.append((path, _not_a_file(path)))
    return found


def _below(is_ignored, walked: str):
    """``is_ignored`` judging only what lies below the directory the user
    named (see :meth:`resnetlint.gitignore.GitIgnore.is_ignored`)."""
    from .gitignore import GitIgnore

    if isinstance(getattr(is_ignored, "__self__", None), GitIgnore):
        return functools.partial(is_ignored, walked=walked)
    return is_ignored


def _not_a_file(path: str) -> str:
    """Why an explicit path that exists is neither a file nor a directory.
    (In a walk such paths are skipped silently: editors leave dangling
    links such as Emacs's ``.#x.py`` lock files.)"""
    if os.path.islink(path):
        try:
            os.stat(path)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return "a symbolic link loop; skipped"
            return f"a broken symbolic link (to {os.readlink(path)!r}); skipped"
    return "not a regular file or directory; skipped"


class _Patterns:
    """Exclude patterns compiled into one regular expression: a walk asks
    about every entry, and thousands of ``fnmatch`` calls per entry showed
    in the warm (cached) run's profile."""

    def __init__(self, patterns: Iterable[str]):
        parts = [fnmatch.translate(os.path.normcase(p.rstrip("/"))) for p in patterns if p.rstrip("/")]
        self.regex = re.compile("|".join(f"(?:{part})" for part in parts)) if parts else None

    def match(self, *candidates: Optional[str]) -> bool:
        if self.regex is None:
            return False
        return any(c is not None and self.regex.match(os.path.normcase(c)) is not None for c in candidates)


def _excluded(name: str, relpath: str, patterns, rootpath: Optional[str] = None) -> bool:
    matcher = patterns if isinstance(patterns, _Patterns) else _Patterns(patterns)
    return matcher.match(name, relpath, rootpath)


def _root_relative(path: str, exclude_root: Optional[str]) -> Optional[str]:
    if exclude_root is None:
        return None
    relative = os.path.relpath(os.path.abspath(path), exclude_root)
    return None if relative.startswith("..") else relative.replace(os.sep, "/")


def _explicitly_excluded(path: str, patterns: Sequence[str], exclude_root: Optional[str]) -> bool:
    """--force-exclude: the file or any directory above it is excluded."""
    relative = _root_relative(path, exclude_root) or os.path.normpath(path).replace(os.sep, "/")
    parts = relative.split("/")
    for depth in range(len(parts), 0, -1):
        prefix = "/".join(parts[:depth])
        if _excluded(parts[depth - 1], prefix, patterns):
            return True
    return False


def _walk(root: str, patterns, is_ignored, add, found: Discovery, exclude_root: Optional[str] = None) -> None:
    def on_error(exc: OSError) -> None:
        found.errors.append((exc.filename or root, f"cannot read directory: {(exc.strerror or str(exc)).lower()}"))

    matcher = _Patterns(patterns)
    for dirpath, dirnames, filenames in os.walk(root, onerror=on_error, followlinks=False):
        # Relative paths of this directory, once; entries below just append.
        below_root = os.path.relpath(dirpath, root).replace(os.sep, "/")
        below_config = _root_relative(dirpath, exclude_root)

        def relative(name: str):
            rel = name if below_root == "." else f"{below_root}/{name}"
            config_rel = None if below_config is None else (name if below_config == "." else f"{below_config}/{name}")
            return rel, config_rel

        kept = []
        for name in sorted(dirnames):
            full = os.path.join(dirpath, name)
            if matcher.match(name, *relative(name)) or os.path.exists(os.path.join(full, "pyvenv.cfg")):
                continue
            if is_ignored is not None and is_ignored(full, True):
                continue
            kept.append(name)
        dirnames[:] = kept
        for name in sorted(filenames):
            if not name.endswith(PYTHON_SUFFIXES):
                continue
            full = os.path.join(dirpath, name)
            if matcher.match(name, *relative(name)):
                continue
            if is_ignored is not None and is_ignored(full, False):
                continue
            if not os.path.isfile(full):
                continue  # a broken link or a directory named x.py
            add(full)


def _has_python_shebang(path: str) -> bool:
    try:
        with open(path, "rb") as handle:
            first = handle.readline(200)
    except OSError:
        return False
    return first.startswith(b"#!") and b"python" in first
