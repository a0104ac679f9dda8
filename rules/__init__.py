"""The rule catalog: one module per rule, in code order.

To add a rule, write ``rules/rlNNN_<name>.py`` with one
:class:`resnetlint.rule.Rule` subclass (docs in the module docstring,
VALID/INVALID examples on the class).  Nothing else to edit: the file name
gives the code and the name (:mod:`resnetlint.registry`, which a lint run
reads without importing the rules), this module imports what it lists, and
the test suite checks the class agrees with its file name and runs its
examples.
"""
from __future__ import annotations

import importlib
from typing import List, Type

from resnetlint.registry import rule_files
from resnetlint.rule import Rule


def _rule_class(module_name: str) -> Type[Rule]:
    module = importlib.import_module(f"{__name__}.{module_name}")
    defined = [value for value in vars(module).values()
               if isinstance(value, type) and issubclass(value, Rule) and value.__module__ == module.__name__]
    if len(defined) != 1:
        raise ImportError(f"{module.__name__} must define exactly one Rule subclass, not {len(defined)}")
    return defined[0]


ALL_RULES: List[Type[Rule]] = [_rule_class(rule.module) for rule in rule_files()]
