"""Which rules run: ``--select``/``--ignore`` with prefixes, as small decisions.

* A selector is a code prefix (``RL1``, ``RL201``) or ``ALL``.
* For each rule the most specific matching selector decides: ``--select RL1
  --ignore RL101`` runs RL102 but not RL101; ``--ignore RL1 --select RL101``
  runs RL101.  At equal specificity, ignore wins.
* Rules that are off by default (RL303) run only when selected by their full
  code or by ``ALL``, never by a shorter prefix.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Iterable, List, Optional, Sequence, Type

if TYPE_CHECKING:  # pragma: no cover - the rule module imports libcst and the block model
    from .rule import Rule

CODE_PATTERN = re.compile(r"^(ALL|RL\d{0,3})$")


# Every rule code, so selectors can be validated without importing the rules
# (and libcst) on a run served from the cache; a test keeps it equal to
# ``rules.ALL_RULES``.
KNOWN_CODES = ("RL100", "RL101", "RL102", "RL103", "RL104", "RL201", "RL202", "RL203", "RL204", "RL205",
               "RL301", "RL302", "RL303")


class SelectionError(ValueError):
    pass


def parse_selectors(values: Iterable[str]) -> List[str]:
    """Comma- or space-separated selectors, validated."""
    out: List[str] = []
    for value in values:
        for part in re.split(r"[,\s]+", value.strip()):
            if not part:
                continue
            part = part.upper()
            if not CODE_PATTERN.match(part):
                raise SelectionError(f"{part!r} is not a rule code or prefix (expected e.g. RL101, RL2 or ALL)")
            if part != "ALL" and not any(code.startswith(part) for code in KNOWN_CODES):
                raise SelectionError(f"{part!r} matches no rule (see --list-rules)")
            out.append(part)
    return out


def _specificity(selector: str, code: str) -> int:
    """Length of the match, -1 when the selector does not match."""
    if selector == "ALL":
        return 0
    return len(selector) if code.startswith(selector) else -1


def is_enabled(rule: Type[Rule], select: Optional[Sequence[str]], ignore: Sequence[str],
               extend_select: Sequence[str] = ()) -> bool:
    code = rule.code
    selectors = list(select) if select is not None else []
    selectors += list(extend_select)
    best_select = max((_specificity(s, code) for s in selectors), default=-1)
    if select is None and rule.default_enabled:
        best_select = max(best_select, 0)
    best_ignore = max((_specificity(s, code) for s in ignore), default=-1)
    if best_select < 0 or best_ignore >= best_select:
        return False
    if not rule.default_enabled:
        explicit = any(s == code or s == "ALL" for s in selectors)
        return explicit
    return True


def select_rules(all_rules: Sequence[Type[Rule]], select: Optional[Sequence[str]] = None,
                 ignore: Sequence[str] = (), extend_select: Sequence[str] = ()) -> List[Type[Rule]]:
    return [r for r in all_rules if is_enabled(r, select, ignore, extend_select)]
