"""Which rule codes exist, read from the file names in ``rules/``.

Every rule is one module, ``rules/rlNNN_<name>.py``, and its file name is its
code and name (``rl101_stale_input.py`` is RL101 ``stale-input``; a test
checks each module's class agrees).  That is all a lint run needs to
validate ``--select``/``--ignore`` and to read ``stale-input`` as RL101, so
it lists the directory instead of importing the rules: a run served from
the cache never imports them (nor libcst).  Adding a rule is adding its
file; there is no list to edit.

Two codes have no rule module because the engine itself reports them:
RL000 (``syntax-error``) and RL999 (``internal-error``).  They are described
here (:data:`ENGINE_CODES`) for ``--list-rules``, ``--explain`` and SARIF,
and are accepted wherever codes are.  Both are always reported:
selecting, ignoring or ``noqa`` does not hide them.
"""
from __future__ import annotations

import functools
import importlib.util
import os
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

RULE_FILE = re.compile(r"^rl(?P<number>\d{3})_(?P<name>[a-z0-9_]+)\.py$")
REPORT_URL = "https://github.com/resnetlint/resnetlint/issues"


@dataclass(frozen=True)
class RuleFile:
    code: str  # "RL101"
    name: str  # "stale-input"
    module: str  # "rl101_stale_input", inside resnetlint.rules


@dataclass(frozen=True)
class EngineCode:
    """A code the engine reports itself; it looks like a rule class to the
    reports (the same attributes), but has no ``check``."""

    code: str
    name: str
    summary: str
    doc: str
    severity: str = "error"
    default_enabled: bool = True
    fix_availability: str = "none"
    fix_safety: Optional[str] = None

    def documentation(self) -> str:
        return self.doc


ENGINE_CODES: Tuple[EngineCode, ...] = (
    EngineCode("RL000", "syntax-error", "The file does not parse; it is reported and the run goes on", """\
## What it does
Reports a file that Python's parser (or libcst's, with `--fix`) rejects,
at the position of the error. Nothing else is checked in that file; the
other files are.

## Why is this bad?
Code that does not parse cannot run, and no rule can look at it. Python 2
code, merge-conflict markers, NUL bytes and nesting too deep for the parser
all end up here.

## Example
```python
def forward(self, x:
    return x
```

## Use instead
```python
def forward(self, x):
    return x
```

## Fix safety
No automatic fix. It is always reported: selecting, ignoring and `noqa`
do not hide it.

## References
- [Python: syntax errors](https://docs.python.org/3/tutorial/errors.html#syntax-errors)
"""),
    EngineCode("RL999", "internal-error", "resnetlint itself failed on a file (please report it)", f"""\
## What it does
Reports that resnetlint raised an exception while checking a file, so that
file was not (fully) checked. The other files are; the exit status is 2.

## Why is this bad?
It is a bug in resnetlint, not in your code: a check that did not run
cannot find anything.

## Example
`--show-traceback` prints the traceback of each internal error.

## Use instead
Please report it at {REPORT_URL}, with the file (or a small part of it
that still fails) if you can.

## Fix safety
No automatic fix. It is always reported: selecting, ignoring and `noqa`
do not hide it.

## References
- [resnetlint issues]({REPORT_URL})
"""),
)


@functools.lru_cache(maxsize=1)
def rule_files() -> Tuple[RuleFile, ...]:
    """Every rule module, in code order (found without importing them)."""
    found = []
    for directory in _rules_directories():
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        for filename in names:
            match = RULE_FILE.match(filename)
            if match is not None:
                found.append(RuleFile(f"RL{match['number']}", match["name"].replace("_", "-"), filename[:-3]))
    return tuple(sorted(set(found), key=lambda rule: rule.code))


def _rules_directories() -> List[str]:
    # find_spec imports the parent package (already imported) but not
    # resnetlint.rules itself, whose __init__ imports every rule.
    spec = importlib.util.find_spec("resnetlint.rules")
    return list(spec.submodule_search_locations or []) if spec is not None else []


def known_codes() -> Tuple[str, ...]:
    """Every code a selector may name, rule modules and engine codes."""
    return tuple(sorted([rule.code for rule in rule_files()] + [code.code for code in ENGINE_CODES]))


@functools.lru_cache(maxsize=1)
def codes_by_name() -> Dict[str, str]:
    """``{"stale-input": "RL101", ...}``, engine codes included."""
    names = {rule.name: rule.code for rule in rule_files()}
    names.update({code.name: code.code for code in ENGINE_CODES})
    return names
