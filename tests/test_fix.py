"""--fix / --unsafe-fixes / --diff: the right code comes back, nothing else
changes, and nothing is ever lost."""
import json
import os
import shutil
import stat
import textwrap
from pathlib import Path

import libcst as cst
import pytest
from typer.testing import CliRunner

from resnetlint.api import Settings, check_paths
from resnetlint.cli import app
from resnetlint.fixer import FileChanged, fix_file, fix_text, write_fixed
from resnetlint.fixes import FixPlan, replace
from resnetlint.rule import Rule, Violation
from resnetlint.trace import TraceOptions

from helpers import FIXTURES

runner = CliRunner()
FIXED = FIXTURES / "fixed"


def cli(*args):
    return runner.invoke(app, [str(a) for a in args], env={"NO_COLOR": "1"})


@pytest.fixture
def buggy(tmp_path):
    for folder in ("seeds", "bugs"):
        shutil.copytree(FIXTURES / folder, tmp_path / folder, ignore=shutil.ignore_patterns("*.expected"))
    return tmp_path


def test_fix_gives_the_checked_in_fixed_versions(buggy):
    found = len(check_paths([str(buggy)], Settings()).findings)
    result = cli(buggy, "--fix", "--unsafe-fixes", "--no-trace")
    assert result.exit_code == 0, result.output
    assert f"Found {found} problems in 7 files ({found} fixed, 0 remaining)." in result.output
    for path in sorted(buggy.rglob("*.py")):
        relative = path.relative_to(buggy)
        expected = FIXED / relative if (FIXED / relative).exists() else FIXTURES / relative
        assert path.read_bytes() == expected.read_bytes(), f"{relative} differs from {expected}"


def test_fixing_twice_changes_nothing(buggy):
    cli(buggy, "--fix", "--unsafe-fixes", "--no-trace")
    before = {p: p.read_bytes() for p in buggy.rglob("*.py")}
    result = cli(buggy, "--fix", "--unsafe-fixes", "--no-trace")
    assert result.exit_code == 0
    assert {p: p.read_bytes() for p in buggy.rglob("*.py")} == before
    assert cli(buggy, "--diff", "--unsafe-fixes", "--no-trace").exit_code == 0


def test_safe_fixes_only_without_unsafe_fixes(buggy):
    target = buggy / "seeds" / "seed003_block.py"
    original = target.read_text()
    # An unused `# noqa` (RL100): its removal is the one safe fix in the file.
    target.write_text(original.replace("        out = F.relu(out)", "        out = F.relu(out)  # noqa: RL301"))
    result = cli(target, "--fix", "--no-trace")
    assert target.read_text() == original  # the comment went, and nothing else changed
    assert "(1 fixed, 7 remaining)" in result.output
    assert "6 more fixable with --unsafe-fixes." in result.output  # RL201's fix changes a weight's shape: unsafe


def test_diff_shows_the_change_and_writes_nothing(buggy):
    target = buggy / "seeds" / "seed001_bottleneck.py"
    before = target.read_bytes()
    result = cli(target, "--diff", "--unsafe-fixes", "--no-trace")
    assert result.exit_code == 1
    assert "-        out = self.relu(self.bn2( self.conv2(x)))" in result.output
    assert "+        out = self.relu(self.bn2( self.conv2(out)))" in result.output
    assert target.read_bytes() == before
    same = cli(target, "--fix", "--diff", "--unsafe-fixes", "--no-trace")  # --fix --diff means --diff
    assert same.exit_code == 1 and target.read_bytes() == before


def test_json_reports_applied_fixes(buggy):
    result = cli(buggy / "seeds" / "seed003_block.py", "--fix", "--unsafe-fixes", "--no-trace", "--format", "json")
    doc = json.loads(result.output)
    applied = [f for f in doc["findings"] if f["fix"] and f["fix"]["applied"]]
    # four fixes make all seven problems disappear (RL103, RL104 and RL302 followed from RL102)
    assert len(applied) == 4
    assert doc["summary"]["findings"] == 0 and doc["summary"]["fixed"] == 7 and doc["summary"]["fixes_applied"] == 4
    assert set(applied[0]["fix"]) == {"safety", "applied", "description"}
    assert {f["fix"]["safety"] for f in applied} == {"unsafe"}  # RL201's fix changes a weight's shape


@pytest.mark.trace
def test_fixed_blocks_run_the_configurations_that_crashed(buggy):
    pytest.importorskip("torch")
    traced = check_paths([str(buggy)], Settings(trace=TraceOptions(mode="on")))
    crashed = {(Path(f.path).name, f.symbol, f.confirmation.detail.split(" on input")[0].split(": the constructor")[0])
               for f in traced.findings if f.confirmation.status == "confirmed" and "raised" in f.confirmation.detail}
    assert len(crashed) >= 8
    cli(buggy, "--fix", "--unsafe-fixes")
    from resnetlint.trace.runner import TraceRunner
    from resnetlint.trace import _request
    from resnetlint.api import check_file

    rules = Settings().rules()
    with TraceRunner() as trace_runner:
        trace_runner.start()
        for name, symbol, config in sorted(crashed):
            path = next(buggy.rglob(name))
            info = check_file(str(path), rules).blocks[symbol]
            response = trace_runner.run(_request(str(path), symbol, info, TraceOptions()))
            runs = [c for c in response["runs"] if c["config"] == config]
            assert runs, (name, symbol, config)
            assert "construct_error" not in runs[0], (name, symbol, config, runs[0])
            for run in runs[0]["runs"]:
                assert "forward_error" not in run and "backward_error" not in run, (name, symbol, config, run)


AWKWARD = (
    "import torch.nn as nn\r\n"
    "\r\n"
    "\r\n"
    "class Block(nn.Module):\r\n"
    "\tdef __init__(self, c):\r\n"
    "\t\tsuper().__init__()\r\n"
    "\t\tself.body = nn.Sequential(\r\n"
    "\t\t\tnn.Conv2d(c,  # input width\r\n"
    "\t\t\t          c * 2,   # doubled\r\n"
    "\t\t\t          3, padding=1),\r\n"
    "\t\t\tnn.BatchNorm2d(c * 2), \\\r\n"
    "\t\t)  # trailing comment\r\n"
    "\t\tself.conv = nn.Conv2d(c,\r\n"
    "\t\t\tc, 3, padding=1)  # second: takes c but gets c * 2\r\n"
    "\r\n"
    "\tdef forward(self, x):\r\n"
    "\t\treturn self.conv(self.body(x))\r\n"
)


def test_fixes_preserve_everything_outside_the_edit(tmp_path):
    path = tmp_path / "awkward.py"
    path.write_bytes(AWKWARD.replace("nn.BatchNorm2d(c * 2), \\\r\n", "nn.BatchNorm2d(c * 2),\r\n").encode())
    original = path.read_bytes()
    result = cli(path, "--fix", "--unsafe-fixes", "--no-trace", "--select", "RL201")
    assert "1 fixed" in result.output, result.output
    fixed = path.read_bytes()
    assert b"\r\n" in fixed and fixed.count(b"\r\n") == original.count(b"\r\n") and b"\n" not in fixed.replace(b"\r\n", b"")
    old_lines, new_lines = original.split(b"\r\n"), fixed.split(b"\r\n")
    changed = [(a, b) for a, b in zip(old_lines, new_lines) if a != b]
    assert changed == [(b"\t\tself.conv = nn.Conv2d(c,", b"\t\tself.conv = nn.Conv2d(c * 2,")]


def test_encoding_cookie_and_bom_survive(tmp_path):
    source = textwrap.dedent("""\
        # -*- coding: latin-1 -*-
        import torch.nn as nn


        class Blöck(nn.Module):
            \"\"\"Café\"\"\"

            def __init__(self, c):
                super().__init__()
                self.a = nn.Conv2d(c, c * 2, 1)
                self.b = nn.Conv2d(c, c, 1)

            def forward(self, x):
                return self.b(self.a(x))
    """)
    latin = tmp_path / "latin.py"
    latin.write_bytes(source.encode("latin-1"))
    bom = tmp_path / "bom.py"
    bom.write_bytes(b"\xef\xbb\xbf" + source.replace("# -*- coding: latin-1 -*-\n", "").encode("utf-8"))
    mode = stat.S_IMODE(os.stat(latin).st_mode) | stat.S_IXUSR
    os.chmod(latin, mode)
    cli(tmp_path, "--fix", "--unsafe-fixes", "--no-trace")
    assert "self.b = nn.Conv2d(c * 2, c, 1)" in latin.read_bytes().decode("latin-1")
    assert "Caf\xe9".encode("latin-1") in latin.read_bytes()
    assert stat.S_IMODE(os.stat(latin).st_mode) == mode
    assert bom.read_bytes().startswith(b"\xef\xbb\xbf") and b"nn.Conv2d(c * 2, c, 1)" in bom.read_bytes()


@pytest.mark.trace
def test_a_fix_the_trace_disproves_is_rolled_back(tmp_path):
    pytest.importorskip("torch")
    path = tmp_path / "helpers_block.py"
    path.write_text(textwrap.dedent("""\
        import torch.nn as nn


        def widen(c):
            return c * 2 if c > 0 else c


        class Block(nn.Module):
            def __init__(self, c):
                super().__init__()
                self.conv1 = nn.Conv2d(c, widen(c), 1)
                self.conv2 = nn.Conv2d(c, c, 3, padding=1)

            def forward(self, x):
                out = self.conv1(x)
                out = self.conv2(x)
                return out + x
    """))
    before = path.read_bytes()
    result = cli(path, "--fix", "--unsafe-fixes")
    assert path.read_bytes() == before  # feeding conv1's output to conv2 would crash: not written
    assert "fix rejected for RL101" in result.output and "Block(c=16)" in result.output


def test_a_file_changed_since_it_was_read_is_not_written(buggy):
    path = buggy / "seeds" / "seed001_bottleneck.py"
    outcome = fix_file(str(path), Settings(select=["ALL"]).rules(), unsafe=True)
    assert outcome.changed
    path.write_text(path.read_text() + "\n# edited by someone else\n")
    edited = path.read_bytes()
    with pytest.raises(FileChanged):
        write_fixed(outcome)
    assert path.read_bytes() == edited
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".resnetlint")]  # no temporary left


def test_read_only_files_are_reported_and_left_alone(buggy):
    path = buggy / "seeds" / "seed001_bottleneck.py"
    os.chmod(path, 0o444)
    before = path.read_bytes()
    try:
        result = cli(path, "--fix", "--unsafe-fixes", "--no-trace")
    finally:
        os.chmod(path, 0o644)
    assert path.read_bytes() == before
    assert "read-only" in result.output and result.exit_code == 1


class BreaksSyntax(Rule):
    code = "RL998"
    name = "breaks-syntax"
    summary = "test rule whose fix is broken"
    fix_availability = "always"
    fix_safety = "safe"

    def check(self, block, analysis):
        yield Violation(block.cls.name, "test", fix=FixPlan("break it", "safe", [replace(block.cls.name, "((")]))


def test_a_fix_that_breaks_the_syntax_is_never_applied():
    source = "import torch.nn as nn\n\n\nclass Block(nn.Module):\n    pass\n"
    outcome = fix_text(source, "x.py", [BreaksSyntax()], unsafe=False)
    assert outcome.fixed == source
    assert outcome.rejected and "does not parse" in outcome.rejected[0].rejected


class RenamesThenFails(Rule):
    """Renames ``Block`` to ``Block2`` (a first fix), then fails on the
    renamed class, as a rule with a bug would on a fixed text."""
    code = "RL997"
    name = "renames-then-fails"
    summary = "test rule that crashes on its own fix"
    fix_availability = "always"
    fix_safety = "safe"

    def check(self, block, analysis):
        if block.cls.name.value == "Block2":
            raise ValueError("a bug in a rule")
        yield Violation(block.cls.name, "test", fix=FixPlan("rename", "safe", [replace(block.cls.name, "Block2")]))


def test_a_fixed_text_the_analysis_fails_on_is_never_written():
    source = "import torch.nn as nn\n\n\nclass Block(nn.Module):\n    pass\n"
    outcome = fix_text(source, "x.py", [RenamesThenFails()], unsafe=False)
    assert outcome.fixed == source and not outcome.applied
    assert "internal error" in outcome.error


def test_an_interrupt_inside_the_analysis_is_not_reported_as_a_bug(monkeypatch):
    import resnetlint.engine as engine

    def interrupted(*args, **kwargs):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise ImportError("cannot import name 'x' (partially initialized module)")

    monkeypatch.setattr(engine, "FileAnalysis", interrupted)
    with pytest.raises(KeyboardInterrupt):
        engine.check_text("import torch.nn as nn\n\nclass B(nn.Module):\n    pass\n", "x.py", [RenamesThenFails()])


class MarksFirst(Rule):
    """A toy fix that turns the class's ``pass`` into ``a = 1``."""
    code = "RL996"
    name = "marks-first"
    summary = "test rule whose fix uncovers another rule's finding"
    fix_availability = "always"
    fix_safety = "unsafe"

    def check(self, block, analysis):
        statement = block.cls.body.body[0]
        if isinstance(statement.body[0], cst.Pass):
            yield Violation(statement, "first", fix=FixPlan("mark", "unsafe", [replace(statement, "a = 1")]))


class MarksSecond(Rule):
    """Then ``b = 2`` after ``a = 1`` (as restoring a main path uncovers a
    missing projection, whose fix comes in a later pass)."""
    code = "RL995"
    name = "marks-second"
    summary = "test rule for a finding another fix uncovers"
    fix_availability = "always"
    fix_safety = "unsafe"

    def check(self, block, analysis):
        statement = block.cls.body.body[0]
        if isinstance(statement.body[0], cst.Assign) and len(block.cls.body.body) == 1:
            yield Violation(statement, "second", fix=FixPlan("mark again", "unsafe",
                                                              [replace(statement, "a = 1\n    b = 2")]))


def test_of_fixes_rejected_together_only_the_last_pass_s_are_taken_back():
    """The trace rejects a class's fixes as one; the fix chosen last (for a
    finding the first fix uncovered) is taken back first, and the first is
    proven again on its own."""
    from resnetlint.fixer import fix_proven

    source = "import torch.nn as nn\n\n\nclass Block(nn.Module):\n    pass\n"
    seen = []

    def trace(outcome):
        seen.append(outcome.fixed)
        if "b = 2" in outcome.fixed:
            return {"Block": (sorted({a.finding.code for a in outcome.applied}), "breaks the block")}
        return {}

    outcome = fix_proven(source, "x.py", [MarksFirst(), MarksSecond()], unsafe=True, trace=trace)
    assert "a = 1" in outcome.fixed and "b = 2" not in outcome.fixed
    assert [a.finding.message for a in outcome.rejected] == ["second"]


def _config(name: str, origin: str, error: str = "", no_grad=()):
    run = {"forward_error": error, "no_grad": list(no_grad)}
    return {"config": name, "origin": origin, "runs": [run]}


def test_a_guessed_configuration_the_networks_never_build_does_not_reject_a_fix():
    """A unit the file's network builds only where it works (it strides when
    it doubles its width) ran in a guessed configuration only because the
    bug left its body dead; after the fix that configuration fails as the
    original code does. The networks' configurations vouch for the fix, as
    long as the fix added no finding and nothing trains less there."""
    from resnetlint.trace import regression

    guessed = "Unit(in_channels=16, out_channels=16, stride=2)"
    built = "Unit(in_channels=16, out_channels=32, stride=2)"
    size_error = "RuntimeError: The size of tensor a (8) must match the size of tensor b (4)"
    before = {"status": "ok", "runs": [_config(guessed, "stride 2", no_grad=["body"]),
                                       _config(built, "the network `wrn20()`", no_grad=["body"])]}
    after = {"status": "ok", "runs": [_config(guessed, "stride 2", error=size_error),
                                      _config(built, "the network `wrn20()`")]}
    assert regression(before, after, [], []) is None
    assert "ran before the fix and now fails" in regression(before, after, [], [], added_findings=True)
    no_network = {"status": "ok", "runs": after["runs"][:1]}
    assert "ran before the fix and now fails" in regression(before, no_network, [], [])
    network_fails = {"status": "ok", "runs": [after["runs"][0], _config(built, "the network `wrn20()`", size_error)]}
    assert regression(before, network_fails, [], []) is not None
    called = {"status": "ok", "runs": [_config(guessed, "the call on line 40", error=size_error), after["runs"][1]]}
    assert "ran before the fix and now fails" in regression(before, called, [], [])
    trained = {"status": "ok", "runs": [_config(guessed, "stride 2"), before["runs"][1]]}
    assert "ran before the fix and now fails" in regression(trained, after, [], [])  # it really ran before


def test_rl104_never_puts_a_main_path_layer_on_the_shortcut():
    # PyramidNet's unit with its body's calls gone: the layer built after
    # `body` and `bn` is the shortcut's pool, applied under
    # `if self.resize_identity:` to `identity`; placing `body` before that
    # `if` would apply it to the shortcut variable, so there is no fix.
    # In MnasNet's unit the layer built next is the main path's SE, and the
    # fix goes before its `if`.
    from resnetlint.api import check_text
    from rules.rl104_unused_submodule import UnusedSubmodule

    pyramid = textwrap.dedent("""
        import torch.nn as nn


        class PyrUnit(nn.Module):
            def __init__(self, in_channels, out_channels, stride):
                super().__init__()
                self.resize_identity = in_channels != out_channels or stride != 1
                self.body = nn.Sequential(nn.BatchNorm2d(in_channels),
                                          nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False))
                self.bn = nn.BatchNorm2d(out_channels)
                if self.resize_identity:
                    self.identity_pool = nn.AvgPool2d(2, stride, ceil_mode=True)

            def forward(self, x):
                identity = x
                x = x
                if self.resize_identity:
                    identity = self.identity_pool(identity)
                return x + identity
    """)
    mnas = textwrap.dedent("""
        import torch.nn as nn


        class Unit(nn.Module):
            def __init__(self, channels, use_se=False):
                super().__init__()
                self.use_se = use_se
                self.exp_conv = nn.Conv2d(channels, channels * 4, 1, bias=False)
                self.dw_conv = nn.Conv2d(channels * 4, channels * 4, 3, 1, 1, groups=channels * 4, bias=False)
                if use_se:
                    self.se = nn.Sequential(nn.Conv2d(channels * 4, channels * 4, 1), nn.Sigmoid())
                self.pw_conv = nn.Conv2d(channels * 4, channels, 1, bias=False)

            def forward(self, x):
                y = self.exp_conv(x)
                if self.use_se:
                    y = self.se(y)
                return x + self.pw_conv(y)
    """)
    fixes = {}
    for name, source in (("pyramid", pyramid), ("mnas", mnas)):
        result = check_text(source, f"{name}.py", [UnusedSubmodule()])
        fixes[name] = [f.fix.description if f.fix else None for f in result.findings if f.code == "RL104"]
    assert fixes["pyramid"] == [None, None]  # body, bn
    assert fixes["mnas"] == ["apply `self.dw_conv` before `if self.use_se:` (where `__init__` builds it)"]
