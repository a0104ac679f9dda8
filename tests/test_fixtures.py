"""The bundled fixtures: each file's findings are exactly those recorded in
its ``.expected`` file (an empty one means the file must be clean)."""
from pathlib import Path

import pytest

from resnetlint.api import Settings, check_paths

from helpers import FIXTURES, read_expected

FIXTURE_FILES = sorted(p for p in FIXTURES.rglob("*.py"))


def test_every_fixture_has_expectations():
    missing = [str(p) for p in FIXTURE_FILES if not p.with_suffix(".expected").exists()]
    assert not missing, f"fixtures without a .expected file: {missing}"


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_fixture_findings_match_expectations(path: Path):
    run = check_paths([str(path)], Settings())
    assert not run.errors
    got = {(f.code, f.line, f.column, f.symbol) for f in run.findings}
    expected = read_expected(path.with_suffix(".expected"))
    assert got == expected, (
        f"\nunexpected: {sorted(got - expected)}\nmissing:    {sorted(expected - got)}"
    )


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_fast_path_agrees_with_full_parse(path: Path):
    fast = check_paths([str(path)], Settings(select=["ALL"], fast=True))
    full = check_paths([str(path)], Settings(select=["ALL"], fast=False))
    as_tuples = lambda run: [(f.code, f.line, f.column, f.end_line, f.end_column, f.message) for f in run.findings]
    assert as_tuples(fast) == as_tuples(full)


def test_correct_blocks_have_no_expected_findings():
    """Corrected seeds, seed 002 and the clean idiom files must stay silent:
    their expectation files may not list anything."""
    for path in FIXTURE_FILES:
        if path.stem.endswith("_corrected") or path.stem == "seed002_irblock" or path.parent.name == "clean":
            assert read_expected(path.with_suffix(".expected")) == set(), path


def test_every_buggy_seed_has_findings():
    for path in sorted((FIXTURES / "seeds").glob("seed*.py")):
        if path.stem.endswith("_corrected") or path.stem == "seed002_irblock":
            continue
        assert read_expected(path.with_suffix(".expected")), f"{path.name} is a buggy seed with no expected finding"
