"""Every rule's VALID examples are silent and its INVALID examples fire where
the rule's docs say (Fixit-style: the examples live on the rule)."""
import pytest

from resnetlint.engine import check_text
from resnetlint.rule import PRELUDE_LINES, REQUIRED_SECTIONS, example_source
from resnetlint.rules import ALL_RULES


def _cases(kind):
    for rule in ALL_RULES:
        for index, example in enumerate(getattr(rule, kind)):
            yield pytest.param(rule, example, id=f"{rule.code}-{kind.lower()}-{index}")


def _findings(rule, source):
    # A rule judged against the others (RL100) runs with the whole catalog.
    rules = [r() for r in ALL_RULES] if getattr(rule, "examples_need_all_rules", False) else [rule()]
    result = check_text(example_source(source), "example.py", rules)
    return [f for f in result.findings if f.code == rule.code], result


@pytest.mark.parametrize("rule,example", list(_cases("VALID")))
def test_valid_examples_are_silent(rule, example):
    found, result = _findings(rule, example.source)
    assert not [f for f in result.findings if f.code in ("RL000", "RL999")], result.findings
    assert found == [], f"{rule.code} flagged valid code ({example.note}): {[(f.line, f.message) for f in found]}"


@pytest.mark.parametrize("rule,example", list(_cases("INVALID")))
def test_invalid_examples_fire_at_the_documented_place(rule, example):
    found, result = _findings(rule, example.source)
    assert not [f for f in result.findings if f.code in ("RL000", "RL999")], result.findings
    got = sorted((f.line - PRELUDE_LINES, f.column) for f in found)
    expected = sorted(example.expect)
    assert len(got) == len(expected), f"{rule.code} ({example.note}): expected {expected}, got {got}"
    for (line, col), (want_line, want_col) in zip(got, expected):
        assert line == want_line and (want_col is None or col == want_col), \
            f"{rule.code} ({example.note}): expected {expected}, got {got}"


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda r: r.code)
def test_rule_metadata_and_docs(rule):
    assert rule.code.startswith("RL") and len(rule.code) == 5
    assert rule.name == rule.name.lower() and " " not in rule.name
    assert rule.severity in ("error", "warning")
    assert rule.fix_availability in ("none", "sometimes", "always")
    assert (rule.fix_safety is None) == (rule.fix_availability == "none")
    sections = rule.sections()
    for section in REQUIRED_SECTIONS:
        assert section in sections, f"{rule.code} docs lack '## {section}'"
    assert rule.VALID and rule.INVALID, f"{rule.code} needs VALID and INVALID examples"


def test_codes_and_names_are_unique():
    assert len({r.code for r in ALL_RULES}) == len(ALL_RULES)
    assert len({r.name for r in ALL_RULES}) == len(ALL_RULES)


def test_each_rule_file_name_is_its_code_and_name():
    """A run reads codes and names from the file names in rules/ (without
    importing the rules): each module's class must agree."""
    from resnetlint.registry import rule_files

    files = rule_files()
    assert [(f.code, f.name) for f in files] == [(r.code, r.name) for r in ALL_RULES]
    assert [f"resnetlint.rules.{f.module}" for f in files] == [r.__module__ for r in ALL_RULES]


def _fixable_cases():
    for rule in ALL_RULES:
        if rule.fix_availability == "none":
            continue
        for index, example in enumerate(rule.INVALID):
            yield pytest.param(rule, example, id=f"{rule.code}-fix-{index}")


@pytest.mark.parametrize("rule,example", list(_fixable_cases()))
def test_fixes_of_invalid_examples_do_what_the_docs_say(rule, example):
    """Where the rule's fix applies to its own example, the fixed code parses,
    no longer has the finding, fixing again changes nothing, and, when the
    example spells out the fixed text, it is exactly that."""
    from resnetlint.fixer import fix_text

    rules = [r() for r in ALL_RULES] if getattr(rule, "examples_need_all_rules", False) else [rule()]
    source = example_source(example.source)
    outcome = fix_text(source, "example.py", rules, unsafe=True)
    if example.fixed_source() is not None:
        assert outcome.fixed == example_source(example.fixed_source())
    if not outcome.changed:
        assert example.fixed_source() is None
        return
    compile(outcome.fixed, "example.py", "exec")
    fixed_codes = {a.finding.code for a in outcome.applied}
    assert not [f for f in outcome.remaining if f.code in fixed_codes and f.code == rule.code]
    assert fix_text(outcome.fixed, "example.py", rules, unsafe=True).fixed == outcome.fixed


@pytest.mark.parametrize("rule", [r for r in ALL_RULES if r.fix_availability != "none"], ids=lambda r: r.code)
def test_every_fixable_rule_fixes_one_of_its_examples(rule):
    from resnetlint.fixer import fix_text

    rules = [r() for r in ALL_RULES] if getattr(rule, "examples_need_all_rules", False) else [rule()]
    assert any(fix_text(example_source(e.source), "example.py", rules, unsafe=True).changed for e in rule.INVALID)
