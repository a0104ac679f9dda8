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

from typing import Iterator, Optional

import libcst as cst

from resnetlint.model.query import BlockModel, FileAnalysis, walk
from resnetlint.rule import Invalid, Rule, Valid, Violation

STRIDE_PARAMETERS = ("stride", "strides")


class UnusedStride(Rule):
    code = "RL206"
    name = "unused-stride"
    summary = "The constructor takes a stride that no layer uses"

    def check(self, block: BlockModel, analysis: FileAnalysis) -> Iterator[Violation]:
        init = block.init.init
        if init is None or block.forward is None or block.init.init is None or not block.own_init:
            return
        if any(wf.world.dynamic for wf in block.worlds):
            return  # attributes set in ways we cannot read (a base call that does not fit): it may be used there
        for param in list(init.params.params) + list(init.params.kwonly_params):
            if param.name.value not in STRIDE_PARAMETERS:
                continue
            if _read_anywhere(init, param.name.value) or _self_attribute_read(block, param.name.value, init):
                continue
            if init.params.star_kwarg is not None or isinstance(init.params.star_arg, cst.Param):
                continue  # `**kwargs` may carry it on by another name
            yield Violation(
                param.name,
                f"`{param.name.value}` is accepted but no layer uses it: the block never changes the resolution its "
                "caller asks for",
                help=f"pass `stride={param.name.value}` to the layer that should downsample (usually the first 3x3 "
                     "conv of the main path)",
                expect={"kind": "shape-error", "dim": "spatial", "conditions": [f"{param.name.value} != 1"]},
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


def _read_anywhere(init: cst.FunctionDef, name: str) -> bool:
    """The parameter is read in ``__init__`` other than to be stored as
    ``self.<name>`` (``self.stride = stride``)."""
    stored = set()
    for node in walk(init.body):
        if isinstance(node, cst.Assign) and isinstance(node.value, cst.Name) and node.value.value == name and \
                all(isinstance(t.target, cst.Attribute) for t in node.targets):
            stored.add(id(node.value))
    return any(isinstance(node, cst.Name) and node.value == name and id(node) not in stored
               for node in walk(init.body))


def _self_attribute_read(block: BlockModel, name: str, init: cst.FunctionDef) -> bool:
    """``self.<attribute>`` holding the stride is read by some method (or by
    a subclass or an unknown base we cannot see)."""
    attributes = set()
    for node in walk(init.body):
        if isinstance(node, cst.Assign) and isinstance(node.value, cst.Name) and node.value.value == name:
            for target in node.targets:
                if isinstance(target.target, cst.Attribute):
                    attributes.add(target.target.attr.value)
    if not attributes:
        return False
    if _read_in(init, attributes):
        return True  # `self.use_down = self.stride == 2` chooses the layers
    if block.has_unknown_base or block.has_subclass:
        return True
    return any(attribute in facts.load_methods or attribute in facts.state_reads or facts.reflective
               for _, facts in block.lineage() for attribute in attributes)


def _read_in(init: cst.FunctionDef, attributes) -> bool:
    """``self.<attribute>`` is read in ``__init__`` itself (not only stored)."""
    targets = set()
    for node in walk(init.body):
        if isinstance(node, (cst.Assign, cst.AnnAssign, cst.AugAssign)):
            for target in (node.targets if isinstance(node, cst.Assign) else [node]):
                targets.add(id(target.target))
    return any(isinstance(node, cst.Attribute) and node.attr.value in attributes and id(node) not in targets
               and isinstance(node.value, cst.Name) and node.value.value == "self" for node in walk(init.body))

