"""
## What it does
Finds an inverted residual block (1x1 expansion, depthwise conv, 1x1
projection, input added back) that applies an activation after the final 1x1
projection.

## Why is this bad?
MobileNetV2 showed that the narrow projection must stay linear: a ReLU there
destroys information in the low-dimensional bottleneck and costs accuracy.
This is a design rule, not a crash, so it is **off by default**; enable it
with `--select RL303`.

## Example
```python
self.conv = nn.Sequential(
    nn.Conv2d(inp, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True),
    nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True),
    nn.Conv2d(hidden, oup, 1, bias=False), nn.BatchNorm2d(oup), nn.ReLU6(inplace=True),
)
```

## Use instead
```python
    nn.Conv2d(hidden, oup, 1, bias=False), nn.BatchNorm2d(oup),
)
```

## Fix safety
No automatic fix: removing the activation changes what a trained model
computes.

## References
- Sandler et al., *MobileNetV2: Inverted Residuals and Linear Bottlenecks* (2018), §3.2
"""
from __future__ import annotations

from typing import Iterator, List, Optional, Tuple

import libcst as cst

from resnetlint.model.query import (as_int_pair, as_num, BlockModel, FileAnalysis, LayerSpec, LayerV, main_chain,
    residual_adds, strip_elementwise)
from resnetlint.rule import Invalid, Rule, Valid, Violation


class NonlinearBottleneck(Rule):
    code = "RL303"
    name = "nonlinear-bottleneck"
    summary = "An activation after the final 1x1 projection of an inverted residual"
    severity = "warning"
    default_enabled = False

    def check(self, block: BlockModel, analysis: FileAnalysis) -> Iterator[Violation]:
        for world, flow in block.flows():
            for residual in residual_adds(flow):
                if strip_elementwise(residual.skip) is not flow.input:
                    continue
                layers = _flatten(residual.main, world.facts)
                found = _trailing_activation(layers)
                if found is not None:
                    spec, node = found
                    yield Violation(
                        node,
                        f"`{spec.label}` follows the final 1x1 projection of an inverted residual: the bottleneck "
                        "should stay linear",
                        help="drop the activation after the projection (MobileNetV2's linear bottleneck)",
                        expect={"kind": "design"},
                    )

    VALID = (
        Valid(
            """
            class InvertedResidual(nn.Module):
                def __init__(self, inp, hidden):
                    super().__init__()
                    self.conv = nn.Sequential(
                        nn.Conv2d(inp, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True),
                        nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden, bias=False), nn.BatchNorm2d(hidden),
                        nn.ReLU6(inplace=True),
                        nn.Conv2d(hidden, inp, 1, bias=False), nn.BatchNorm2d(inp))

                def forward(self, x):
                    return x + self.conv(x)
            """,
        ),
        Valid(
            """
            class Basic(nn.Module):
                def __init__(self, c):
                    super().__init__()
                    self.conv = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.ReLU(), nn.Conv2d(c, c, 1), nn.ReLU())

                def forward(self, x):
                    return x + self.conv(x)
            """,
            note="no depthwise conv: not an inverted residual",
        ),
    )
    INVALID = (
        Invalid(
            """
            class InvertedResidual(nn.Module):
                def __init__(self, inp, hidden):
                    super().__init__()
                    self.conv = nn.Sequential(
                        nn.Conv2d(inp, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True),
                        nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden, bias=False), nn.BatchNorm2d(hidden),
                        nn.ReLU6(inplace=True),
                        nn.Conv2d(hidden, inp, 1, bias=False), nn.BatchNorm2d(inp), nn.ReLU6(inplace=True))

                def forward(self, x):
                    return x + self.conv(x)
            """,
            expect=((8, 73),),
        ),
    )


def _flatten(value, facts) -> List[Tuple[LayerSpec, Optional[cst.CSTNode]]]:
    """The main path's layers, input to output, containers expanded."""
    out: List[Tuple[LayerSpec, Optional[cst.CSTNode]]] = []
    for layer in reversed(main_chain(value)):
        if layer.spec is not None:
            out.extend(_expand(layer.spec, layer.node))
        else:
            out.append((None, layer.node))  # type: ignore[arg-type]
    return out


def _expand(spec: LayerSpec, node):
    if spec.family == "container":
        items = []
        for child in spec.children:
            if isinstance(child.loc.value, LayerV):
                items.extend(_expand(child.loc.value.spec, child.loc.value.spec.site))
            else:
                items.append((None, None))
        return items
    return [(spec, spec.site or node)]


def _is_depthwise(spec: LayerSpec) -> bool:
    groups = as_num(spec.arg("groups"))
    width = as_num(spec.arg("in_channels"))
    return groups is not None and width is not None and groups == width and groups.const_value() != 1


def _trailing_activation(layers) -> Optional[Tuple[LayerSpec, cst.CSTNode]]:
    if not layers or any(spec is None for spec, _ in layers):
        return None
    convs = [i for i, (spec, _) in enumerate(layers) if spec.family == "conv"]
    if len(convs) < 2:
        return None
    last = layers[convs[-1]][0]
    kernel = as_int_pair(last.arg("kernel_size"))
    if kernel is None or kernel.const_value() != 1:
        return None
    if not any(_is_depthwise(layers[i][0]) for i in convs[:-1]):
        return None
    for spec, node in layers[convs[-1] + 1:]:
        if spec.family == "act" and node is not None:
            return spec, node
    return None
