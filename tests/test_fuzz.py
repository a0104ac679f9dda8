"""Property-based fuzzing, bounded for CI (the long run: scripts/fuzz.py).

On programs from hypothesmith's grammar, mutated fixtures and random residual
blocks: the analyzer never raises nor reports RL999, both front ends agree,
every fix parses, fixing is idempotent, and what a fix claimed to remove is
gone.  Deterministic (``derandomize=True``); about a minute in all.
"""
import importlib.util
import sys

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from helpers import ROOT

_spec = importlib.util.spec_from_file_location("resnetlint_fuzz", ROOT / "scripts" / "fuzz.py")
fuzz = importlib.util.module_from_spec(_spec)
sys.modules["resnetlint_fuzz"] = fuzz
_spec.loader.exec_module(fuzz)

RULES = fuzz.all_rules()
# No shrinking: a failure is reported as generated (shrinking a slow property
# can take many minutes); scripts/fuzz.py saves failing programs.
BOUNDED = dict(deadline=None, derandomize=True, database=None, phases=[Phase.explicit, Phase.generate],
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])


@settings(max_examples=40, **BOUNDED)
@given(fuzz.mutants())
def test_mutated_fixtures(text):
    fuzz.check_properties(text, RULES)


@settings(max_examples=60, **BOUNDED)
@given(fuzz.blocks())
def test_random_residual_blocks(text):
    fuzz.check_properties(text, RULES)


def test_grammar_programs():
    strategy = fuzz.grammar_programs()
    if strategy is None:
        pytest.skip("hypothesmith is not installed")

    @settings(max_examples=60, **BOUNDED)
    @given(strategy)
    def check(text):
        fuzz.check_properties(text, RULES)

    check()


def test_the_fixtures_themselves():
    for name, text in sorted(fuzz.FIXTURES.items()):
        fuzz.check_properties(text, RULES)


# Programs the long run found (each broke a property before its fix).
REGRESSIONS = {
    "rl204-kernel-0-padding-minus-1": """\
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, kernel_size=0)
        self.even = nn.Conv2d(c, c, kernel_size=4, padding=1)

    def forward(self, x):
        return x + self.even(self.conv(x))
""",
    "rl103-refused-then-valid": """\
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.layer2 = nn.Conv2d(out_channels * 4, out_channels * 4, 1, stride=2, padding=0)
        self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                      nn.BatchNorm2d(out_channels))

    def forward(self, x):
        y = self.layer2(x)
        identity = self.layer2(y)
        x += identity
        return x + self.shortcut(x)
""",
    "rl203-guard-already-tests-stride": """\
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        if stride != 1 or in_channels != out_channels:
            self.skip = nn.Conv2d(in_channels, out_channels, 1, stride=stride)
        else:
            self.skip = None
        self.block = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, stride=stride),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, stride=4))

    def forward(self, x):
        identity = x
        out = self.block(x)
        if self.skip is not None:
            identity = self.skip(x)
        return out + identity
""",
    "rl203-one-layer-twice": """\
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.skip = nn.Conv2d(in_channels, out_channels, 1, stride=stride)
        self.block = nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1, stride=1))

    def forward(self, x):
        out = self.block(x)
        out = self.block(out)
        return out + self.skip(x)
""",
    "rl201-layer-fed-two-widths": """\
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.layer0 = nn.Conv2d(32, out_channels, 3, padding=1)
        self.layer1 = nn.Conv2d(in_channels * 2, out_channels * 4, 1)

    def forward(self, x):
        y = self.layer1(x)
        out = self.layer1(y)
        x = self.layer0(y)
        identity = self.layer1(x)
        return identity + out
""",
    "rl203-two-paths-disagree": """\
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.layer0 = nn.Conv2d(16, 16, 5, stride=2, padding=2)
        self.layer1 = nn.Conv2d(16, 16, 5, stride=2, padding=2)
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride=stride)

    def forward(self, x):
        if self.training:
            out = self.layer1(x)
        else:
            out = x
        y = self.layer0(out)
        return F.relu(y + self.shortcut(x))
""",
    "many-fixes-in-one-class": """\
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.layer0 = nn.Conv2d(in_channels, in_channels, 1)
        self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                      nn.BatchNorm2d(out_channels))

    def forward(self, x):
        out = self.layer0(x)
        out = self.layer0(x)
        if self.training:
            out = self.layer0(x)
        else:
            out = x
        x += x
        out = x
        out = self.layer0(x)
        return x + x
""",
}


@pytest.mark.parametrize("name", sorted(REGRESSIONS))
def test_regressions(name):
    fuzz.check_properties(REGRESSIONS[name], RULES)


def test_one_edit_reached_from_two_paths_is_applied_once():
    """RL102's fix rewrote `y = x` twice (once per path through forward):
    `shortcut = xcut = x`, valid Python that means something else."""
    from resnetlint.fixer import fix_text

    text = """\
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layer3 = nn.Conv2d(c, c, 3, padding=1)
        self.layer4 = nn.ReLU()

    def forward(self, x):
        if self.training:
            y = self.layer3(x)
        else:
            y = x
        y = self.layer4(y)
        out = self.layer3(x)
        y = x
        return F.relu(y + x)
"""
    fixed = fix_text(text, "x.py", RULES, unsafe=True).fixed
    # the overwrite is deleted (the add already has the shortcut), once: the
    # `y = x` of the else branch stays, and nothing is rewritten twice
    assert "xcut" not in fixed and fixed.count("y = x\n") == 1, fixed
    assert "            y = x\n        y = self.layer4(y)" in fixed and "y = x\n        return" not in fixed, fixed
    compile(fixed, "x.py", "exec")
