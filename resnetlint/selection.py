"""Which rules run: ``--select``/``--ignore`` with prefixes, as small decisions.

* A selector is a code prefix (``RL1``, ``RL201``), a rule name
  (``stale-input``, the same as ``RL101``) or ``ALL``.
* For each rule the most specific matching selector decides: ``--select RL1
  --ignore RL101`` runs RL102 but not RL101; ``--ignore RL1 --select RL101``
  runs RL101.  At equal specificity, ignore wins.
* Rules that are off by default (RL303) run only when selected by their full
  code or by ``ALL``, never by a shorter prefix.
* RL000 and RL999 (the engine's own codes) are valid selectors, but nothing
  selects them away: they are always reported.
"""
from __future__ import annotations

import difflib
import re
from typing import TYPE_CHECKING, Iterable, List, Optional, Sequence, Type

from .errors import UsageError
from .registry import ENGINE_CODES, codes_by_name, rule_files

if TYPE_CHECKING:  # pragma: no cover - the rule module imports libcst and the block model
    from .rule import Rule

CODE_PATTERN = re.compile(r"^(ALL|RL\d{0,3})$")
ENGINE = {code.code for code in ENGINE_CODES}


class SelectionError(UsageError):
    pass


def parse_selectors(values: Iterable[str]) -> List[str]:
    """Comma- or space-separated selectors, validated; names become codes."""
    if isinstance(values, str):
        raise SelectionError(f"expected a list of rule codes, not the string {values!r}")
    out: List[str] = []
    for value in values:
        if not isinstance(value, str):
            raise SelectionError(f"{value!r} is not a rule code (expected a string such as 'RL101')")
        for part in re.split(r"[,\s]+", value.strip()):
            if part:
                out.append(_selector(part))
    return out


def _selector(part: str) -> str:
    names = codes_by_name()
    if part.lower() in names:
        return names[part.lower()]
    code = part.upper()
    if CODE_PATTERN.match(code):
        # Engine codes count only in full: "RL9" is a typo, not a way to say RL999.
        if code != "ALL" and code not in ENGINE and not any(rule.code.startswith(code) for rule in rule_files()):
            raise SelectionError(f"{part!r} matches no rule (see --list-rules)")
        return code
    close = difflib.get_close_matches(part.lower(), list(names), n=1, cutoff=0.8)
    hint = f"; did you mean {close[0]!r}?" if close else \
        " (expected a code such as RL101, a prefix such as RL2, ALL, or a rule name such as stale-input)"
    raise SelectionError(f"{part!r} is not a rule code, prefix or name{hint}")


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
