"""Fixed blocks, run: what issue 15 asks of ``--fix``, checked with torch.

* every fix marked ``safe`` keeps what correct code computes and every
  ``state_dict`` key and shape (run before and after in the same
  configurations);
* with the trace, the fixtures' and every rule's INVALID examples come out of
  ``--fix --unsafe-fixes`` as blocks that run cleanly;
* without it (``--no-trace``, the pre-commit hook) a fix never makes a block
  crash where it did not, on the fixtures, the examples and on mutants of
  real blocks in other styles (``tests/data/fix/``);
* the two fixes issue 15 caught being marked safe are not applied as safe.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from resnetlint.api import Settings
from resnetlint.engine import check_text
from resnetlint.fixer import fix_file, fix_proven, fix_text
from resnetlint.rule import example_source
from resnetlint.rules import ALL_RULES
from resnetlint.trace import TraceOptions, _request, prove_fixes, run_source

from helpers import FIXTURES

DATA = Path(__file__).parent / "data" / "fix"
RULES = [rule() for rule in ALL_RULES]  # every rule: fixes interact (one rule's fix is another's finding)


def _examples() -> List[Tuple[str, str]]:
    out = []
    for rule in ALL_RULES:
        for index, example in enumerate(rule.INVALID):
            out.append((f"{rule.code}-{index}", example_source(example.source)))
    for path in sorted(list((FIXTURES / "seeds").glob("*.py")) + list((FIXTURES / "bugs").glob("*.py"))):
        out.append((path.name, path.read_text()))
    for path in sorted(DATA.glob("*.py")):
        out.append((f"data/{path.name}", path.read_text()))
    return out


EXAMPLES = _examples()


@pytest.fixture(scope="module")
def runner():
    pytest.importorskip("torch")
    from resnetlint.trace.runner import TraceRunner

    with TraceRunner(total_timeout=3600) as started:
        started.start()
        yield started


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / (name.replace("/", "_").replace("-", "_").removesuffix(".py") + ".py")
    path.write_text(text)
    return path


def _configs(runner, path: Path, text: str, name: str, info) -> Dict[str, dict]:
    """Configuration -> its run, for the class ``name`` of ``text`` (built
    with the original's request, so both texts try the same arguments)."""
    request = _request(str(path), name, info, TraceOptions())
    request["source"] = text
    response = run_source(runner, request)
    if response.get("status") != "ok":
        return {}
    return {c["config"]: c for c in response["runs"] if not c.get("stochastic")}


def _error(config: dict) -> str:
    if config.get("construct_error"):
        return config["construct_error"]
    for run in config.get("runs", []):
        if run.get("forward_error") or run.get("backward_error"):
            return run.get("forward_error") or run.get("backward_error")
    return ""


def _starved(config: dict) -> set:
    return {name for run in config.get("runs", []) for name in run.get("no_grad", [])}


def _classes(original: str, fixed: str, path: Path):
    """The classes a fix changed, with the original's trace request."""
    before = check_text(original, str(path), RULES).blocks
    after = check_text(fixed, str(path), RULES).blocks
    for name, info in before.items():
        if name in after and info.line and _class_source(original, name) != _class_source(fixed, name):
            yield name, info


def _class_source(text: str, name: str) -> str:
    import ast

    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ClassDef) and node.name == name:
            return ast.unparse(node)
    return ""


@pytest.mark.trace
def test_every_safe_fix_keeps_the_state_dict_and_what_correct_code_computes(tmp_path, runner):
    checked = 0
    for name, source in EXAMPLES:
        outcome = fix_text(source, "example.py", RULES, unsafe=False)
        if not outcome.changed:
            continue
        assert all(a.finding.fix.safety == "safe" for a in outcome.applied)
        path = _write(tmp_path, name, source)
        for symbol, info in _classes(source, outcome.fixed, path):
            before = _configs(runner, path, source, symbol, info)
            after = _configs(runner, path, outcome.fixed, symbol, info)
            for config, run in before.items():
                if "state" not in run:
                    continue  # it does not build: no checkpoint of it exists
                assert after[config].get("state") == run["state"], (name, symbol, config)
                if not _error(run):
                    sums = [r.get("output_sum") for r in run["runs"]]
                    assert [r.get("output_sum") for r in after[config]["runs"]] == sums, (name, symbol, config)
                checked += 1
    # Comments are all a safe fix touches today (RL100): the classes are the same code.
    assert checked >= 0


@pytest.mark.trace
def test_a_safe_fix_that_changed_a_shape_would_fail_the_check(tmp_path, runner):
    """The check above catches what issue 15 saw: RL201's width fix changes a
    weight's shape in a configuration that builds."""
    rule = next(r for r in ALL_RULES if r.code == "RL201")
    source = example_source(rule.INVALID[0].source)
    outcome = fix_text(source, "example.py", [rule()], unsafe=True)
    assert outcome.changed and {a.finding.fix.safety for a in outcome.applied} == {"unsafe"}
    path = _write(tmp_path, "rl201", source)
    (symbol, info), = _classes(source, outcome.fixed, path)
    before = _configs(runner, path, source, symbol, info)
    after = _configs(runner, path, outcome.fixed, symbol, info)
    assert any("state" in run and after[config].get("state") != run["state"] for config, run in before.items())


def _prover(runner):
    options = TraceOptions(total_timeout=3600)
    return lambda outcome: prove_fixes(outcome, runner, options, RULES)


@pytest.mark.trace
@pytest.mark.parametrize("name,source", EXAMPLES, ids=[n for n, _ in EXAMPLES])
def test_fixed_with_the_trace_the_blocks_run_cleanly(name, source, tmp_path, runner):
    """Each class ``--fix --unsafe-fixes`` changed runs cleanly afterwards,
    with every parameter receiving a gradient, in every configuration where
    it runs at all (a configuration can stay out of reach for reasons that
    are no finding's: a caller who must pass a projection for other widths)."""
    path = _write(tmp_path, name, source)
    outcome = fix_file(str(path), RULES, True, trace=_prover(runner))
    assert outcome.error is None
    for symbol, info in _classes(source, outcome.fixed, path):
        after = _configs(runner, path, outcome.fixed, symbol, info)
        ran = [(config, run) for config, run in after.items() if not _error(run)]
        assert ran, (name, symbol, {c: _error(r) for c, r in after.items()})
        for config, run in ran:
            assert not _starved(run), (name, symbol, config, _starved(run))


@pytest.mark.trace
@pytest.mark.parametrize("name,source", EXAMPLES, ids=[n for n, _ in EXAMPLES])
def test_without_the_trace_a_fix_never_makes_a_block_crash(name, source, tmp_path, runner):
    path = _write(tmp_path, name, source)
    outcome = fix_proven(source, str(path), RULES, unsafe=True)
    for symbol, info in _classes(source, outcome.fixed, path):
        before = _configs(runner, path, source, symbol, info)
        after = _configs(runner, path, outcome.fixed, symbol, info)
        for config, run in before.items():
            if not _error(run):
                assert not _error(after[config]), (name, symbol, config, _error(after[config]))


# -- the two fixes issue 15 caught marked safe --------------------------------

def test_rl204_does_not_pad_a_conv_an_explicit_pad_feeds(tmp_path):
    """CycleGAN's ResnetBlock: with `padding_type="reflect"` a ReflectionPad2d
    feeds the conv and `p` stays 0; padding the conv would pad twice there."""
    path = tmp_path / "cyclegan.py"
    shutil.copy(DATA / "reflection_pad.py", path)
    original = path.read_text()
    found = [f for f in check_text(original, str(path), RULES).findings if f.code == "RL204"]
    assert found and all(f.fix is None for f in found)
    assert fix_file(str(path), RULES, unsafe=False).fixed == original  # --fix (the pre-commit hook)
    unsafe = fix_proven(original, str(path), RULES, unsafe=True)  # --fix --unsafe-fixes --no-trace
    assert "kernel_size=3, padding=p" in unsafe.fixed and "RL204" not in {a.finding.code for a in unsafe.applied}


def test_rl201_changing_a_weight_shape_is_not_applied_as_safe(tmp_path):
    path = tmp_path / "block.py"
    source = (FIXTURES / "seeds" / "seed003_block.py").read_text()
    path.write_text(source)
    finding = next(f for f in check_text(source, str(path), RULES).findings if f.code == "RL201")
    assert finding.fix is not None and finding.fix.safety == "unsafe"
    assert fix_file(str(path), RULES, unsafe=False).fixed == source
    assert "nn.Conv2d(in_channels=out_channels" in fix_proven(source, str(path), RULES, unsafe=True).fixed


def test_static_proof_lists_what_needs_the_trace(tmp_path):
    """An unsafe fix the static model cannot prove is not applied without the
    trace, and the report says so."""
    path = tmp_path / "mlp.py"
    shutil.copy(DATA / "unused_mlp.py", path)
    outcome = fix_proven(path.read_text(), str(path), Settings().rules(), unsafe=True)
    assert not outcome.changed
    assert outcome.unproven and outcome.unproven[0].rejected.startswith("needs the trace to prove: ")
