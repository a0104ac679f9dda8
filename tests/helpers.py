"""Shared test helpers."""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import List, Set, Tuple

from resnetlint.api import Settings, check_source
from resnetlint.findings import Finding

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"

PRELUDE = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"


def lint(source: str, select=None, dedent: bool = True) -> List[Finding]:
    text = textwrap.dedent(source) if dedent else source
    return check_source(text, "example.py", Settings(select=select))


def codes(findings) -> List[str]:
    return [f.code for f in findings]


def read_expected(path: Path) -> Set[Tuple[str, int, int, str]]:
    out = set()
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        code, position, symbol = line.split()
        row, col = position.split(":")
        out.add((code, int(row), int(col), symbol))
    return out
