"""What checking one file produces (plain data, no libcst at import time).

These classes live apart from :mod:`resnetlint.engine` so that code that
only passes results around (the process pool, the result cache, the API on
a run whose files all come from the cache) does not import libcst and the
block model.  ``resnetlint.engine`` re-exports both names.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Dict, List, Optional

from .findings import Finding

if TYPE_CHECKING:  # pragma: no cover
    import libcst as cst


@dataclass
class BlockInfo:
    """What the trace needs to know about a module class (plain data)."""

    name: str
    line: int
    residual: bool  # forward has a residual add
    input_hint: Optional[str]  # the attribute of the layer that first consumes the input
    call_sites: List[dict]  # literal calls in the file: {"args", "kwargs", "origin"}
    # Constructor parameters the model saw used as widths (those feeding the
    # input layer listed separately) and as strides.
    width_params: List[str] = field(default_factory=list)
    input_params: List[str] = field(default_factory=list)
    stride_params: List[str] = field(default_factory=list)
    # Widths under which the block's residual add of its raw input is well
    # formed (``inplanes == planes * 4``): its natural configuration.
    natural: Dict[str, int] = field(default_factory=dict)
    # The input reaches its first layer with its axes moved (tokens
    # transposed into a Conv1d): the block takes its channels last.
    channels_last: bool = False
    # Width parameters equal in every way ``__init__`` can run (every call
    # site in the project passes the same expression for both, or the block
    # asserts it): configurations that make them differ are no one's.
    equal_widths: List[List[str]] = field(default_factory=list)


@dataclass
class FileResult:
    """One file checked: its findings, and what the trace and the fixer need."""

    path: str
    findings: List[Finding] = field(default_factory=list)
    tracebacks: List[str] = field(default_factory=list)  # details of RL999 findings
    classes: int = 0  # module classes analysed
    # For the trace and the fixer: which classes have findings and the module.
    module: Optional[cst.Module] = None
    text: str = ""
    error: Optional[str] = None  # the file could not be read at all
    blocks: Dict[str, BlockInfo] = field(default_factory=dict)
    cached: bool = False  # came from the result cache (no module, no blocks)
    # Modules the analysis read besides the file itself (helpers, base
    # classes): path -> content hash; the cache re-checks the file when one changes.
    dependencies: Dict[str, str] = field(default_factory=dict)
    # With ``prove``: per class, None when its widths and strides check out
    # symbolically, else why not (the static proof of an unsafe fix).
    proofs: Dict[str, Optional[str]] = field(default_factory=dict)
