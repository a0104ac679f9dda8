"""
## What it does
Finds a residual add that uses the raw block input although the block built a
shortcut projection (`skip`, `shortcut`, `downsample`, ...) for exactly that
case, or computed `identity = self.downsample(x)` and then added `x`.  The
input may be activated or normalised first (a pre-activation block's
shortcut starts from `act(norm(x))`), and the projection may come from a
helper that returns one only when the shapes change (`nn.Identity()` or
`None` otherwise): where it is a projection, the raw input bypasses it.

## Why is this bad?
A projection exists because the input does not fit the main path's output
(other channels or resolution). Adding the raw input instead either crashes
(`The size of tensor a (64) must match the size of tensor b (32)`) or, when
the shapes happen to agree, silently trains a projection that is never used.

The rule is path-sensitive: adding `x` on the branch where the projection is
`None` or `nn.Identity()` (the usual "no projection needed" case) is correct
and is not reported.

## Example
```python
class Block(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.shortcut = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x):
        out = self.conv(x)
        return torch.relu(out + x)
```

## Use instead
```python
        return torch.relu(out + self.shortcut(x))
```

## Fix safety
The fix adds the projected shortcut (`self.shortcut(x)`, or the variable that
already holds it) instead of the raw input. It is unsafe: the block's output
changes.

## References
- He et al., *Deep Residual Learning for Image Recognition* (2015), option (B) projection shortcuts
"""
from __future__ import annotations

from typing import Iterator, Optional

from resnetlint.model.query import (AddEvent, AltV, BlockModel, caller_projections, FileAnalysis, Flow, FVal,
    existing_projection, LayerV, overwritten_main_paths, pointwise_from, residual_adds, strip_elementwise)
import libcst as cst

from resnetlint.fixbuild import onto_shortcut
from resnetlint.fixes import UNSAFE, FixPlan, replace
from resnetlint.nodes import code_of, source_text
from resnetlint.rule import Invalid, Rule, Valid, Violation



class ShortcutBypassed(Rule):
    code = "RL103"
    name = "shortcut-bypassed"
    summary = "The residual add uses the raw input although a shortcut projection exists"
    fix_availability = "sometimes"
    fix_safety = "unsafe"

    def check(self, block: BlockModel, analysis: FileAnalysis) -> Iterator[Violation]:
        for world, flow in block.flows():
            for residual in residual_adds(flow):
                for operand, node in ((residual.skip, residual.skip_node), (residual.main, residual.main_node)):
                    if node is None or flow.input is None or not pointwise_from(operand, flow.input):
                        continue
                    shortcut = existing_projection(block, world, flow, residual)
                    if shortcut is None:
                        continue
                    other = residual.main if operand is residual.skip else residual.skip
                    if _is_the_main_path(other, shortcut, flow):
                        continue
                    raw = "raw input" if strip_elementwise(operand) is flow.input else "unprojected input"
                    built = f"the block builds the shortcut `self.{shortcut}`"
                    if shortcut in caller_projections(block):
                        built = f"the caller supplies the shortcut projection `self.{shortcut}`"
                    yield Violation(
                        node,
                        f"the residual add uses the {raw} `{code_of(node)}` although {built}: the projection "
                        f"is bypassed",
                        help=f"add `self.{shortcut}({code_of(node)})` (or the variable holding it) instead",
                        expect={"kind": "shape-or-dead", "layers": [shortcut]},
                        fix=_projected_fix(block, flow, residual.event, node, shortcut),
                    )

    VALID = (
        Valid(
            """
            class Block(nn.Module):
                def __init__(self, c_in, c_out, stride=1):
                    super().__init__()
                    self.conv = nn.Conv2d(c_in, c_out, 3, stride, 1)
                    self.shortcut = None
                    if stride != 1 or c_in != c_out:
                        self.shortcut = nn.Conv2d(c_in, c_out, 1, stride)

                def forward(self, x):
                    out = self.conv(x)
                    if self.shortcut is None:
                        return out + x
                    return out + self.shortcut(x)
            """,
            note="the raw input is added only where there is no projection",
        ),
        Valid(
            """
            class Block(nn.Module):
                def __init__(self, c_in, c_out):
                    super().__init__()
                    self.conv = nn.Conv2d(c_in, c_out, 3, padding=1)
                    self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

                def forward(self, x):
                    return self.conv(x) + self.skip(x)
            """,
        ),
        Valid(
            """
            class Attention(nn.Module):
                def __init__(self, dim):
                    super().__init__()
                    self.qkv = nn.Linear(dim, dim * 3)
                    self.proj = nn.Linear(dim, dim)

                def forward(self, x):
                    q, k, v = self.qkv(x).chunk(3, dim=-1)
                    return x + self.proj(torch.softmax(q @ k.transpose(-2, -1), -1) @ v)
            """,
            note="`proj` is the main path's last layer, not a shortcut",
        ),
        Valid(
            """
            class Stage(nn.Module):
                def __init__(self, c_in, c_out):
                    super().__init__()
                    self.downsample = nn.Conv2d(c_in, c_out, 2, stride=2)
                    self.conv = nn.Conv2d(c_out, c_out, 3, padding=1)

                def forward(self, x):
                    x = self.downsample(x)
                    return x + self.conv(x)
            """,
            note="a downsample at the start of the block feeds both paths",
        ),
    )
    INVALID = (
        Invalid(
            """
            class XceptionUnit(nn.Module):
                def __init__(self, in_channels, out_channels, stride, reps):
                    super().__init__()
                    self.resize_identity = in_channels != out_channels or stride != 1
                    if self.resize_identity:
                        self.identity_conv = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                                           nn.BatchNorm2d(out_channels))
                    self.body = nn.Sequential()
                    for i in range(reps):
                        channels = in_channels if i == 0 else out_channels
                        self.body.add_module(f"block{i + 1}", nn.Sequential(
                            nn.ReLU(), nn.Conv2d(channels, out_channels, 3, padding=1, bias=False),
                            nn.BatchNorm2d(out_channels)))
                    if stride != 1:
                        self.body.add_module("pool", nn.MaxPool2d(3, stride, 1))

                def forward(self, x):
                    if self.resize_identity:
                        identity = x
                    else:
                        identity = x
                    return self.body(x) + identity
            """,
            expect=((22, 31),),
            note="Xception's unit with its projection's call lost; the main path is built in a loop (its width is "
                 "unknown), but `identity_conv` is named for a shortcut and takes the input's width",
            fix=(
                ('                    if self.resize_identity:\n                        identity = x\n',
                 '                    if self.resize_identity:\n                        identity = self.identity_conv(x)\n'),
            ),
        ),
        Invalid(
            """
            class PreActBlock(nn.Module):
                def __init__(self, in_chs, out_chs, stride=1):
                    super().__init__()
                    self.norm1 = nn.BatchNorm2d(in_chs)
                    self.conv1 = nn.Conv2d(in_chs, out_chs, 3, stride, 1, bias=False)
                    self.norm2 = nn.BatchNorm2d(out_chs)
                    self.conv2 = nn.Conv2d(out_chs, out_chs, 3, 1, 1, bias=False)
                    self.downsample = None
                    if stride != 1 or in_chs != out_chs:
                        self.downsample = nn.Conv2d(in_chs, out_chs, 1, stride, bias=False)

                def forward(self, x):
                    x_preact = torch.relu(self.norm1(x))
                    shortcut = x
                    if self.downsample is not None:
                        shortcut = x_preact
                    out = self.conv1(x_preact)
                    out = self.conv2(torch.relu(self.norm2(out)))
                    return out + shortcut
            """,
            expect=((19, 22),),
            note="pre-activation (timm's ResNetV2, NF-Net): the shortcut starts from the activated input, and "
                 "`self.downsample(x_preact)` lost its call",
        ),
        Invalid(
            """
            class Block(nn.Module):
                def __init__(self, c_in, c_out):
                    super().__init__()
                    self.conv = nn.Conv2d(c_in, c_out, 3, padding=1)
                    self.shortcut = nn.Conv2d(c_in, c_out, 1)

                def forward(self, x):
                    out = self.conv(x)
                    return torch.relu(out + x)
            """,
            expect=((9, 33),),
            note="a projection that forward never uses",
        ),
        Invalid(
            """
            class Block(nn.Module):
                def __init__(self, c, downsample=None):
                    super().__init__()
                    self.conv = nn.Conv2d(c, c, 3, padding=1)
                    self.downsample = downsample

                def forward(self, x):
                    identity = x
                    if self.downsample is not None:
                        identity = self.downsample(x)
                    out = self.conv(x)
                    out += x
                    return out
            """,
            expect=((12, 16),),
            note="identity computed, raw input added",
        ),
        Invalid(
            """
            class Block(nn.Module):
                def __init__(self, c_in, c_out, stride=1):
                    super().__init__()
                    self.block = nn.Conv2d(c_in, c_out, 3, stride, 1)
                    if stride != 1 or c_in != c_out:
                        self.skip = nn.Conv2d(c_in, c_out, 1, stride)
                    else:
                        self.skip = None

                def forward(self, x):
                    out = self.block(x)
                    if self.skip is not None:
                        out = self.skip(x)
                    out += x
                    return out
            """,
            expect=((14, 16),),
            note="seed 003: out += x while self.skip exists",
        ),
    )


def _projected_fix(block: BlockModel, flow: Flow, add: AddEvent, node, shortcut: str) -> Optional[FixPlan]:
    """Add the projection instead of the raw input: the variable that already
    holds it when every assignment of that variable gives the input or the
    projection, else a call, guarded when the projection may be None."""
    raw = source_text(node)
    if raw is None or not isinstance(node, cst.Name):
        return None
    applied = onto_shortcut(block, shortcut)
    if applied is not None:
        # `identity = x` on the paths where the projection exists: project there.
        return applied
    calls = {id(v) for v in flow.values if v.is_layer and v.attr == shortcut}
    for event in flow.assignments:
        if id(event.new) in calls and event.new.order < add.result.order:
            assignments = [e for e in flow.assignments if e.var == event.var and e.new.order < add.result.order]
            if all(id(e.new) in calls or strip_elementwise(e.new) is flow.input for e in assignments):
                return FixPlan(f"add `{event.var}` (the projected input)", UNSAFE, [replace(node, event.var)])
    may_be_none = any(not _always_module(wf.world.attrs.get(shortcut)) for wf in block.worlds)
    text = f"self.{shortcut}({raw})"
    if may_be_none:
        text = f"({raw} if self.{shortcut} is None else self.{shortcut}({raw}))"
    return FixPlan(f"add `{text}`", UNSAFE, [replace(node, text)])


def _always_module(assigned) -> bool:
    if assigned is None:
        return False
    value = assigned.loc.value
    if isinstance(value, LayerV):
        return True
    if isinstance(value, AltV):
        return all(isinstance(option.value, LayerV) for _, option in value.options)
    return False


def _is_the_main_path(other: FVal, shortcut: str, flow: Flow) -> bool:
    """``x + self.skip1(x)`` where nothing else was computed: the module named
    like a shortcut *is* the main path."""
    core = strip_elementwise(other)
    if not (core.is_layer and core.attr == shortcut):
        return False
    return not any(event.new is other or event.new is core for event in overwritten_main_paths(flow))
