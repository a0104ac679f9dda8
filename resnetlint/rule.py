"""What a rule is: code, name, docs, examples, and a ``check`` over a block.

A rule module in ``rules/`` holds one subclass of :class:`Rule`.  Its module
docstring is the documentation (Ruff's sections: What it does / Why is this
bad? / Example / Use instead / Fix safety / References) that ``--explain``
prints, and its ``VALID``/``INVALID`` examples are run by the test suite, so a
rule cannot exist without proof that it fires and stays quiet where it should.
"""
from __future__ import annotations

import re
import sys
import textwrap
from dataclasses import dataclass, field
from typing import Any, ClassVar, Dict, Iterator, List, Optional, Sequence, Tuple

import libcst as cst

from .fixes import FixPlan
from .model.block import BlockModel, FileAnalysis

# Every example runs with these imports in front of it (not shown in docs).
EXAMPLE_PRELUDE = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"
REQUIRED_SECTIONS = ("What it does", "Why is this bad?", "Example", "Use instead", "Fix safety", "References")


@dataclass(frozen=True)
class Valid:
    """Code the rule must not flag."""

    source: str
    note: str = ""


@dataclass(frozen=True)
class Invalid:
    """Code the rule must flag, at these (line, column) positions of the
    example (1-based, prelude not counted; column None = any)."""

    source: str
    expect: Tuple[Tuple[int, Optional[int]], ...]
    note: str = ""
    fixed: Optional[str] = None  # the source after ``--fix --unsafe-fixes``
    # or the edits that make it from ``source``: each text (written once in
    # it) and what the fix writes instead
    fix: Tuple[Tuple[str, str], ...] = ()

    def fixed_source(self) -> Optional[str]:
        """The example after ``--fix --unsafe-fixes``, when it says."""
        if self.fixed is not None or not self.fix:
            return self.fixed
        text = self.source
        for before, after in self.fix:
            if text.count(before) != 1:
                raise ValueError(f"{before!r} must be written exactly once in the example")
            text = text.replace(before, after)
        return text


def example_source(source: str) -> str:
    return EXAMPLE_PRELUDE + textwrap.dedent(source).lstrip("\n")


PRELUDE_LINES = EXAMPLE_PRELUDE.count("\n")


@dataclass
class Violation:
    """What ``check`` yields: the node to report, what to say, what the trace
    should look for (``expect``) and, when the rule can fix it, how."""

    node: cst.CSTNode
    message: str
    help: str = ""
    expect: Dict[str, Any] = field(default_factory=dict)
    fix: Optional["FixPlan"] = None


class Rule:
    code: ClassVar[str]
    name: ClassVar[str]
    summary: ClassVar[str]  # one line, for --list-rules
    severity: ClassVar[str] = "error"
    default_enabled: ClassVar[bool] = True
    fix_availability: ClassVar[str] = "none"  # "none" | "sometimes" | "always"
    fix_safety: ClassVar[Optional[str]] = None  # "safe" | "unsafe" | None
    VALID: ClassVar[Sequence[Valid]] = ()
    INVALID: ClassVar[Sequence[Invalid]] = ()

    def check(self, block: BlockModel, analysis: FileAnalysis) -> Iterator[Violation]:
        raise NotImplementedError

    @classmethod
    def documentation(cls) -> str:
        module = sys.modules[cls.__module__]
        return textwrap.dedent(module.__doc__ or "").strip()

    @classmethod
    def sections(cls) -> List[str]:
        return re.findall(r"^## (.+?)\s*$", cls.documentation(), flags=re.MULTILINE)
