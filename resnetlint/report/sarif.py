"""SARIF 2.1.0 output, for GitHub code scanning and other SARIF viewers.

Format decisions:

* One ``run``.  ``tool.driver.rules`` lists every rule passed in plus the two
  pseudo-rules that are not rule classes, ``RL000`` (syntax-error) and
  ``RL999`` (internal-error), sorted by code; each result points at its rule by
  ``ruleId`` and ``ruleIndex``.  A finding whose code is in neither gets a
  minimal descriptor appended, so ``ruleIndex`` is always valid.
* Paths become URIs relative to the current directory under the
  ``%SRCROOT%`` base (what code scanning expects from a run at the repository
  root); a path outside it becomes an absolute ``file:`` URI.
* Our columns count characters (code points), end exclusive, which is
  SARIF's region model once ``run.columnKind`` says ``unicodeCodePoints``
  (SARIF's default would be UTF-16 code units).
* ``message.text`` is the finding's message, then its ``help:`` and, when the
  dynamic trace ran, its ``trace:`` verdict, one per line.
* ``partialFingerprints["resnetlint/v1"]`` hashes code, path, class and
  message, plus the occurrence number among identical ones (the same message
  twice in one class must stay two alerts): stable when lines move.
* A fix with edits becomes a SARIF ``fixes`` entry (one replacement per edit).
  A fix already applied by this run is not offered again (its edits refer to
  the text before the fix); ``properties.fixApplied`` says it happened.
* Unreadable files (``run.errors``) and internal errors (``RL999``) are
  ``toolExecutionNotifications`` of level ``error``, and make
  ``executionSuccessful`` false: the tool did not check everything it was
  asked to.  Findings alone never do (SARIF 2.1.0 §3.20.14).

The helpers :func:`display_path` and :func:`full_message` are shared with the
``github`` and ``junit`` reporters.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path, PurePath
from typing import IO, Any, Dict, List, Optional, Sequence
from urllib.parse import quote

from .. import __version__

SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
INFORMATION_URI = "https://github.com/resnetlint/resnetlint"
SRCROOT = "%SRCROOT%"
FINGERPRINT_KEY = "resnetlint/v1"


class PseudoRule:
    """Metadata for a code that has no rule class (RL000, RL999)."""

    default_enabled = True
    fix_availability = "none"
    fix_safety = None
    severity = "error"

    def __init__(self, code: str, name: str, summary: str, doc: str):
        self.code, self.name, self.summary, self._doc = code, name, summary, doc

    def documentation(self) -> str:
        return self._doc


PSEUDO_RULES = [
    PseudoRule("RL000", "syntax-error", "The file does not parse; it is reported and the run goes on.",
               "## What it does\nReports a file that Python (or libcst) cannot parse. Nothing else is checked "
               "in that file.\n\n## Fix\nMake the file parse; if it does under your Python, upgrade libcst."),
    PseudoRule("RL999", "internal-error", "resnetlint itself failed on a file.",
               "## What it does\nReports that resnetlint raised an exception while checking a file, so the "
               "file was not (fully) checked.\n\n## Fix\nPlease report it at "
               f"{INFORMATION_URI}/issues with the file if you can."),
]


def _rel(path: str) -> Optional[str]:
    """``path`` relative to the current directory in POSIX form, or None
    when it lies outside it (or on another drive)."""
    try:
        rel = os.path.relpath(os.path.abspath(path), os.getcwd())
    except ValueError:
        return None
    if rel == ".." or rel.startswith(".." + os.sep):
        return None
    return PurePath(rel).as_posix()


def display_path(path: str) -> str:
    """The path to show CI: relative POSIX when possible, else as given."""
    return _rel(path) or path


def artifact_location(path: str) -> Dict[str, str]:
    rel = _rel(path)
    if rel is not None:
        return {"uri": quote(rel), "uriBaseId": SRCROOT}
    return {"uri": Path(os.path.abspath(path)).as_uri()}


def full_message(finding) -> str:
    """Message, then ``help:`` and the trace verdict (when the trace ran)."""
    lines = [finding.message]
    if finding.help:
        lines.append(f"help: {finding.help}")
    confirmation = finding.confirmation
    if confirmation.status != "not-run":
        lines.append(f"trace: {confirmation.status}" + (f": {confirmation.detail}" if confirmation.detail else ""))
    return "\n".join(lines)


def _plain(markdown: str) -> str:
    """The "What it does" section of a rule's documentation, one paragraph."""
    match = re.search(r"^## What it does\s*\n(.*?)(?=^## |\Z)", markdown, flags=re.MULTILINE | re.DOTALL)
    return " ".join((match.group(1) if match else markdown).split())


def _descriptor(rule) -> Dict[str, Any]:
    doc = rule.documentation() or rule.summary
    properties: Dict[str, Any] = {"fixAvailability": rule.fix_availability}
    if rule.fix_safety is not None:
        properties["fixSafety"] = rule.fix_safety
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": _plain(doc) or rule.summary},
        "help": {"text": doc, "markdown": doc},
        "helpUri": f"{INFORMATION_URI}#rules",
        "defaultConfiguration": {"level": _level(rule.severity), "enabled": bool(rule.default_enabled)},
        "properties": properties,
    }


def _level(severity: str) -> str:
    return "warning" if severity == "warning" else "error"


def _region(line: int, column: int, end_line: int, end_column: int) -> Dict[str, int]:
    line, column = max(line, 1), max(column, 1)
    end_line = max(end_line, line)
    end_column = max(end_column, 1 if end_line > line else column)
    return {"startLine": line, "startColumn": column, "endLine": end_line, "endColumn": end_column}


def fingerprint(finding, occurrence: int = 0) -> str:
    key = "\0".join((finding.code, display_path(finding.path), finding.symbol, finding.message, str(occurrence)))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def _result(finding, index: int, occurrence: int) -> Dict[str, Any]:
    location = artifact_location(finding.path)
    result: Dict[str, Any] = {
        "ruleId": finding.code,
        "ruleIndex": index,
        "level": _level(finding.severity),
        "message": {"text": full_message(finding)},
        "locations": [{
            "physicalLocation": {
                "artifactLocation": location,
                "region": _region(finding.line, finding.column, finding.end_line, finding.end_column),
            },
        }],
        "partialFingerprints": {FINGERPRINT_KEY: fingerprint(finding, occurrence)},
    }
    properties: Dict[str, Any] = {"confirmation": finding.confirmation.status}
    if finding.symbol:
        result["locations"][0]["logicalLocations"] = [{"name": finding.symbol, "kind": "type"}]
    fix = finding.fix
    if fix is not None:
        properties.update(fixSafety=fix.safety, fixApplied=fix.applied)
        if fix.edits and not fix.applied:
            result["fixes"] = [{
                "description": {"text": f"{fix.description} ({fix.safety} fix)"},
                "artifactChanges": [{
                    "artifactLocation": dict(location),
                    "replacements": [
                        {"deletedRegion": _region(e.line, e.column, e.end_line, e.end_column),
                         "insertedContent": {"text": e.text}}
                        for e in fix.edits
                    ],
                }],
            }]
    if finding.confirmation.status == "refuted":
        # Kept for the record (--show-refuted): suppressed, with the runs as the reason.
        result["level"] = "none"
        result["suppressions"] = [{"kind": "external", "status": "accepted",
                                   "justification": f"refuted by the trace: {finding.confirmation.detail}"}]
        properties["refutingRuns"] = finding.confirmation.runs
    result["properties"] = properties
    return result


def _notification(path: str, message: str, rule_id: Optional[str] = None) -> Dict[str, Any]:
    note: Dict[str, Any] = {
        "level": "error",
        "message": {"text": message},
        "locations": [{"physicalLocation": {"artifactLocation": artifact_location(path)}}],
    }
    if rule_id is not None:
        note["associatedRule"] = {"id": rule_id}
    return note


def document(run, rules: Optional[Sequence[Any]] = None) -> Dict[str, Any]:
    """The SARIF log (a JSON-ready dict) for ``run``."""
    if rules is None:
        from ..rules import ALL_RULES

        rules = ALL_RULES
    catalog = {rule.code: rule for rule in PSEUDO_RULES}
    catalog.update({rule.code: rule for rule in rules})
    descriptors: List[Dict[str, Any]] = [_descriptor(catalog[code]) for code in sorted(catalog)]
    index = {d["id"]: i for i, d in enumerate(descriptors)}
    results = []
    seen: Dict[tuple, int] = {}
    findings = list(run.findings)
    trace = getattr(run, "trace", None)
    if trace is not None and getattr(trace, "show_refuted", False):
        findings = sorted(findings + list(getattr(run, "refuted", ())), key=lambda f: f.sort_key())
    for finding in findings:
        same = (finding.code, display_path(finding.path), finding.symbol, finding.message)
        seen[same] = seen.get(same, -1) + 1
        if finding.code not in index:
            index[finding.code] = len(descriptors)
            descriptors.append({"id": finding.code, "name": finding.rule,
                                "defaultConfiguration": {"level": _level(finding.severity)}})
        results.append(_result(finding, index[finding.code], seen[same]))
    notifications = [_notification(e.path, e.message) for e in run.errors]
    notifications += [_notification(f.path, f.message, "RL999") for f in run.findings if f.code == "RL999"]
    return {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "resnetlint",
                "version": __version__,
                "semanticVersion": __version__,
                "informationUri": INFORMATION_URI,
                "rules": descriptors,
            }},
            "invocations": [{
                "executionSuccessful": not notifications,
                "toolExecutionNotifications": notifications,
            }],
            "originalUriBaseIds": {SRCROOT: {"uri": Path(os.getcwd()).as_uri().rstrip("/") + "/"}},
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    }


def render(run, stream: IO[str], rules: Optional[Sequence[Any]] = None) -> None:
    json.dump(document(run, rules), stream, indent=2, ensure_ascii=False)
    stream.write("\n")
