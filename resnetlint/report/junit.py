"""JUnit XML, for CI systems that show test reports (GitLab, Jenkins, Azure...).

Layout: ``<testsuites>`` holding one ``<testsuite name="resnetlint">``, with
**one testcase per finding** (a run does not record the names of the clean
files it checked, only their number, so per-file testcases are not possible):

* a finding: ``<testcase classname="PATH" name="CODE [rule] at LINE:COL">``
  with ``<failure type="CODE" message="MESSAGE">`` whose text is the
  ``path:line:col: CODE [rule] message`` headline, then ``help:``, the trace
  verdict and the fix, one per line;
* an ``RL999`` internal error: the same, but ``<error>`` (the check itself
  broke, it did not find a bug);
* a file that could not be checked: ``<testcase classname="PATH"
  name="file-error">`` with ``<error type="file-error" message="...">``;
* a run with none of these: one passing ``<testcase classname="resnetlint"
  name="N files checked">``, so the report shows a green test, not nothing.

``tests``/``failures``/``errors`` count those testcases.  Characters that
XML 1.0 cannot carry at all (control characters other than tab and newline)
are written as ``\\xNN``; ElementTree escapes everything else.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import IO, Any, Optional, Sequence

from .sarif import display_path, full_message

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _clean(text: str) -> str:
    return _NOT_XML.sub(lambda m: "\\x%02x" % ord(m.group()) if ord(m.group()) < 256 else "\\u%04x" % ord(m.group()),
                        text)


def _case(suite: ET.Element, classname: str, name: str, kind: str, type_: str, message: str, text: str) -> None:
    case = ET.SubElement(suite, "testcase", classname=_clean(classname), name=_clean(name))
    outcome = ET.SubElement(case, kind, type=type_, message=_clean(message))
    outcome.text = _clean(text)


def _details(finding) -> str:
    path = display_path(finding.path)
    lines = [f"{path}:{finding.line}:{finding.column}: {finding.code} [{finding.rule}] {full_message(finding)}"]
    if finding.fix is not None:
        state = "applied" if finding.fix.applied else f"available ({finding.fix.safety})"
        lines.append(f"fix {state}: {finding.fix.description}")
    return "\n".join(lines)


def document(run, rules: Optional[Sequence[Any]] = None) -> ET.Element:
    """The ``<testsuites>`` element for ``run`` (``rules`` is accepted for a
    uniform interface; the report needs nothing from it)."""
    root = ET.Element("testsuites")
    suite = ET.SubElement(root, "testsuite", name="resnetlint")
    failures = errors = 0
    for f in run.findings:
        kind = "error" if f.code == "RL999" else "failure"
        _case(suite, display_path(f.path), f"{f.code} [{f.rule}] at {f.line}:{f.column}", kind, f.code,
              f.message, _details(f))
        failures += kind == "failure"
        errors += kind == "error"
    for e in run.errors:
        path = display_path(e.path)
        _case(suite, path, "file-error", "error", "file-error", e.message, f"{path}: {e.message}")
        errors += 1
    tests = failures + errors
    if tests == 0:
        ET.SubElement(suite, "testcase", classname="resnetlint",
                      name=f"{run.files} file{'' if run.files == 1 else 's'} checked")
        tests = 1
    counts = {"tests": str(tests), "failures": str(failures), "errors": str(errors), "skipped": "0"}
    suite.attrib.update(counts)
    root.attrib.update(counts)
    return root


def render(run, stream: IO[str], rules: Optional[Sequence[Any]] = None) -> None:
    root = document(run, rules)
    ET.indent(root)
    stream.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    stream.write(ET.tostring(root, encoding="unicode"))
    stream.write("\n")
