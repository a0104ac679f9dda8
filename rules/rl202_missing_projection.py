"""
## What it does
Finds a residual add of the block input to a main path whose output channels
can differ from the input's (`in_channels` vs `out_channels`, `inplanes` vs
`planes * expansion`) when nothing reconciles them: no projection shortcut, no
`assert in_channels == out_channels`, no flag such as
`use_res_connect = stride == 1 and inp == oup` guarding the add.

## Why is this bad?
`out + x` then fails with *"The size of tensor a (32) must match the size of
tensor b (16) at non-singleton dimension 1"* for every block whose widths
differ, which is every block that changes width: a test with equal widths
passes and the first real network crashes.

Blocks that take a projection from their caller (`downsample=None`), build
one under any name the rule knows (`skip`, `shortcut`, `downsample`, ...), or
guard the add are not reported, and neither is a width the model cannot
read (`make_divisible(...)`, a config value).

## Example
```python
class ResSkip(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        residual = x
        out = self.relu(self.conv(x))
        out += residual
        return out
```

## Use instead
```python
        self.shortcut = (nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False),
                                       nn.BatchNorm2d(out_channels))
                         if in_channels != out_channels else nn.Identity())
    ...
        residual = self.shortcut(x)
```

## Fix safety
The fix inserts a 1x1 projection (with `bias=False` and the block's norm when
it has one) built only when the widths (or the stride) differ, and uses it in
`forward`. It is safe for configurations that ran before (where the widths
were equal the shortcut stays the identity), but it adds parameters, so it is
marked unsafe.

## References
- He et al., *Deep Residual Learning for Image Recognition* (2015), §3.3 (projection shortcuts)
"""
from __future__ import annotations

from typing import Iterator, Optional

import libcst as cst

from resnetlint.model.block import (BlockModel, FileAnalysis, caller_provides_projection, channels_of,
                                    is_shortcut_name, main_chain, residual_adds, strip_elementwise)
from resnetlint.model.forward_exec import Flow, FVal
from resnetlint.model.symbolic import Facts, Num, provably_different
from resnetlint.nodes import code_of
from resnetlint.rule import Invalid, Rule, Valid, Violation

class MissingProjection(Rule):
    code = "RL202"
    name = "missing-projection"
    summary = "The input is added to a main path of another width with no projection"
    fix_availability = "sometimes"
    fix_safety = "unsafe"

    def check(self, block: BlockModel, analysis: FileAnalysis) -> Iterator[Violation]:
        if _has_projection_mechanism(block):
            return
        for _, flow in block.flows():
            for residual in residual_adds(flow):
                if residual.skip_node is None or strip_elementwise(residual.skip) is not flow.input:
                    continue
                facts = residual.event.facts
                width_in = _input_width(flow, residual.main, facts)
                width_out = channels_of(flow, residual.main, facts)
                if not isinstance(width_out, Num) or width_in is None:
                    continue
                if not provably_different(facts.norm(width_in), facts.norm(width_out)):
                    continue
                a, b = facts.norm(width_in).render(), facts.norm(width_out).render()
                yield Violation(
                    residual.skip_node,
                    f"the block input `{code_of(residual.skip_node)}` ({a} channels) is added to a main path producing "
                    f"{b} channels with no projection: the add fails whenever {a} != {b}",
                    help=f"project the input with a 1x1 conv when {a} != {b} (or assert they are equal)",
                    expect={"kind": "shape-error", "dim": 1, "widths": [a, b]},
                )

    VALID = (
        Valid(
            """
            class BasicBlock(nn.Module):
                def __init__(self, inplanes, planes, stride=1, downsample=None):
                    super().__init__()
                    self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
                    self.bn1 = nn.BatchNorm2d(planes)
                    self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
                    self.bn2 = nn.BatchNorm2d(planes)
                    self.downsample = downsample

                def forward(self, x):
                    identity = x
                    out = torch.relu(self.bn1(self.conv1(x)))
                    out = self.bn2(self.conv2(out))
                    if self.downsample is not None:
                        identity = self.downsample(x)
                    return torch.relu(out + identity)
            """,
            note="torchvision: the caller provides the projection",
        ),
        Valid(
            """
            class InvertedResidual(nn.Module):
                def __init__(self, inp, oup, stride, ratio):
                    super().__init__()
                    hidden = inp * ratio
                    self.use_res_connect = stride == 1 and inp == oup
                    self.conv = nn.Sequential(
                        nn.Conv2d(inp, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True),
                        nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False), nn.BatchNorm2d(hidden),
                        nn.ReLU6(inplace=True), nn.Conv2d(hidden, oup, 1, bias=False), nn.BatchNorm2d(oup))

                def forward(self, x):
                    if self.use_res_connect:
                        return x + self.conv(x)
                    return self.conv(x)
            """,
            note="the add is guarded by inp == oup",
        ),
        Valid(
            """
            class Block(nn.Module):
                def __init__(self, c_in, c_out):
                    super().__init__()
                    assert c_in == c_out
                    self.conv = nn.Conv2d(c_in, c_out, 3, padding=1)

                def forward(self, x):
                    return x + self.conv(x)
            """,
            note="an assert in __init__",
        ),
        Valid(
            """
            class Block(nn.Module):
                def __init__(self, dim):
                    super().__init__()
                    self.fc1 = nn.Linear(dim, dim * 4)
                    self.fc2 = nn.Linear(dim * 4, dim)

                def forward(self, x):
                    return x + self.fc2(torch.relu(self.fc1(x)))
            """,
            note="the width comes back to dim",
        ),
    )
    INVALID = (
        Invalid(
            """
            class ResSkip(nn.Module):
                def __init__(self, in_channels, out_channels):
                    super().__init__()
                    self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1)
                    self.relu = nn.ReLU(inplace=True)

                def forward(self, x):
                    residual = x
                    out = self.conv(x)
                    out = self.relu(out)
                    out += residual
                    return out
            """,
            expect=((11, 16),),
            note="seed 000",
        ),
        Invalid(
            """
            class Bottleneck(nn.Module):
                expansion = 4

                def __init__(self, inplanes, planes):
                    super().__init__()
                    self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
                    self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
                    self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)

                def forward(self, x):
                    out = self.conv3(self.conv2(self.conv1(x)))
                    return out + x
            """,
            expect=((12, 22),),
            note="inplanes vs planes * 4",
        ),
    )


def _input_width(flow: Flow, main: FVal, facts: Facts) -> Optional[Num]:
    """The width the main path expects at its input: its first layer's."""
    for layer in reversed(main_chain(main)):
        if not layer.inputs or strip_elementwise(layer.inputs[0]) is not flow.input:
            continue
        summary = layer.spec.summary if layer.spec is not None else None
        if summary is None or summary.in_channels is None:
            return None
        return facts.norm(summary.in_channels)
    return None


def _has_projection_mechanism(block: BlockModel) -> bool:
    """A projection under a shortcut-like name, or one the caller provides."""
    if any(is_shortcut_name(name) for wf in block.worlds for name in wf.world.attrs):
        return True
    return caller_provides_projection(block)
