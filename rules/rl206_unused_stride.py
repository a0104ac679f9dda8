"""
## What it does
Finds a block whose constructor takes a `stride` but never uses it: no layer
is built with it, no test reads it, nothing it calls receives it (storing it
as `self.stride` for nobody to read does not count).

## Why is this bad?
The caller asks for a block that halves the resolution and gets one that
does not. When the caller also builds the shortcut with that stride (a
`downsample` from `_make_layer`), the add fails with *"The size of tensor a
(16) must match the size of tensor b (8) at non-singleton dimension 3"*;
when the shortcut is the identity, every later stage silently runs at twice
the resolution it was designed for (four times the compute) and the network
trains, just worse. It is what is left when `stride=stride` drops out of a
conv call during an edit.

## Example
```python
class BasicBlock(nn.Module):
    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, padding=1, bias=False)   # stride lost
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride
```

## Use instead
```python
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
```

## Fix safety
No automatic fix: which layer should stride (the first 3x3 conv, a pooling,
the depthwise conv) is a design decision the rule cannot make.

## References
- He et al., *Deep Residual Learning for Image Recognition* (2015), §3.3: the first convolution of a stage strides
"""
from __future__ import annotations

from typing import Iterator

from resnetlint.model.query import BlockModel, caller_projections, FileAnalysis, unused_stride_parameter
from resnetlint.rule import Invalid, Rule, Valid, Violation


class UnusedStride(Rule):
    code = "RL206"
    name = "unused-stride"
    summary = "The constructor takes a stride that no layer uses"

    def check(self, block: BlockModel, analysis: FileAnalysis) -> Iterator[Violation]:
        param = unused_stride_parameter(block)
        if param is None:
            return
        consequence = "the block never changes the resolution its caller asks for"
        projections = sorted(caller_projections(block))
        # Nothing fails without the caller's projection: the run shows the resolution kept instead.
        expect = {"kind": "kept-resolution", "conditions": [f"{param.name.value} != 1"]}
        if projections:
            expect = {"kind": "shape-error", "dim": "spatial", "conditions": [f"{param.name.value} != 1"]}
            # The stride-mismatch this causes is reported here, once, without assuming how the caller builds it.
            consequence = (f"the block never changes the resolution its caller asks for, and the caller's "
                           f"`self.{projections[0]}` (built with that stride) makes the add fail whenever "
                           f"{param.name.value} != 1")
        yield Violation(
            param.name,
            f"`{param.name.value}` is accepted but no layer uses it: {consequence}",
            help=f"pass `stride={param.name.value}` to the layer that should downsample (usually the first 3x3 "
                 "conv of the main path)",
            expect=expect,
        )

    VALID = (
        Valid(
            """
            class BasicBlock(nn.Module):
                def __init__(self, inplanes, planes, stride=1, downsample=None):
                    super().__init__()
                    self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
                    self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
                    self.downsample = downsample
                    self.stride = stride

                def forward(self, x):
                    identity = x if self.downsample is None else self.downsample(x)
                    return self.conv2(torch.relu(self.conv1(x))) + identity
            """,
        ),
        Valid(
            """
            class PoolBlock(nn.Module):
                def __init__(self, c, stride=1):
                    super().__init__()
                    self.stride = stride
                    self.conv = nn.Conv2d(c, c, 3, padding=1)

                def forward(self, x):
                    if self.stride > 1:
                        x = F.avg_pool2d(x, self.stride)
                    return x + self.conv(x)
            """,
            note="the stride is used in forward",
        ),
        Valid(
            """
            class Unit(nn.Module):
                def __init__(self, c, stride=1):
                    super().__init__()
                    self.body = make_body(c, stride)

                def forward(self, x):
                    return x + self.body(x)
            """,
            note="handed on to a helper",
        ),
        Valid(
            """
            class Fusion(nn.Module):
                def __init__(self, c, stride):
                    super().__init__()
                    self.stride = stride
                    self.down = self.stride == 2
                    self.pre = nn.Conv2d(c, c, 1)
                    if self.down:
                        self.dw = nn.Conv2d(c, c, 3, stride=2, padding=1, groups=c)
                        self.skip = nn.Conv2d(c, c, 3, stride=2, padding=1)

                def forward(self, x):
                    y = self.pre(x)
                    return self.skip(x) + self.dw(y) if self.down else y
            """,
            note="the stored stride chooses the strided layers",
        ),
    )
    INVALID = (
        Invalid(
            """
            class BasicBlock(nn.Module):
                def __init__(self, inplanes, planes, stride=1, downsample=None):
                    super().__init__()
                    self.conv1 = nn.Conv2d(inplanes, planes, 3, padding=1, bias=False)
                    self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
                    self.downsample = downsample
                    self.stride = stride

                def forward(self, x):
                    identity = x if self.downsample is None else self.downsample(x)
                    return self.conv2(torch.relu(self.conv1(x))) + identity
            """,
            expect=((2, 42),),
            note="torchvision style, with the stride dropped from conv1",
        ),
    )

