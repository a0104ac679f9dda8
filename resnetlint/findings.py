"""Plain data passed from the engine to the reporters (and to API users)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

CONFIRMATION_STATUSES = ("confirmed", "refuted", "not-confirmed", "unverified", "not-run")


@dataclass
class Confirmation:
    """What the dynamic shape-trace said about a finding.  A ``refuted``
    finding carries the runs that met its conditions and passed (``runs``:
    ``{"config", "origin", "input"}``)."""

    status: str = "not-run"
    detail: str = ""
    runs: List[Dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> Dict[str, Any]:
        data: Dict[str, Any] = {"status": self.status, "detail": self.detail}
        if self.runs:
            data["runs"] = self.runs
        return data


@dataclass(frozen=True)
class Edit:
    """Replace the text from (line, column) to (end_line, end_column) by
    ``text``; lines and columns 1-based, end exclusive, columns in characters."""

    line: int
    column: int
    end_line: int
    end_column: int
    text: str


@dataclass
class FixInfo:
    """A fix a finding offers: ``safety`` is ``safe`` (cannot change what
    correct code computes) or ``unsafe``; ``applied`` says whether this run
    wrote it; ``edits`` are the text changes (empty when the fix is only
    described)."""

    safety: str
    description: str
    applied: bool = False
    edits: List[Edit] = field(default_factory=list)

    def to_json(self) -> Dict[str, Any]:
        return {"safety": self.safety, "applied": self.applied, "description": self.description}


@dataclass
class Finding:
    code: str
    rule: str
    severity: str  # "error" | "warning"
    path: str
    line: int  # 1-based
    column: int  # 1-based, in characters
    end_line: int
    end_column: int
    symbol: str  # the class the finding is in ("" for file-level findings)
    message: str
    help: str = ""
    confirmation: Confirmation = field(default_factory=Confirmation)
    fix: Optional[FixInfo] = None
    # What the trace should look for (layer names, kind of evidence); internal.
    expect: Dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def sort_key(self):
        return (self.path, self.line, self.column, self.code)

    def to_json(self) -> Dict[str, Any]:
        return {
            "code": self.code,
            "rule": self.rule,
            "severity": self.severity,
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "end_line": self.end_line,
            "end_column": self.end_column,
            "symbol": self.symbol,
            "message": self.message,
            "help": self.help,
            "confirmation": self.confirmation.to_json(),
            "fix": self.fix.to_json() if self.fix is not None else None,
        }


@dataclass
class FileError:
    """A file we could not check at all (unreadable, undecodable)."""

    path: str
    message: str

    def to_json(self) -> Dict[str, str]:
        return {"path": self.path, "message": self.message}
