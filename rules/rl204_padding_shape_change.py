"""
## What it does
Finds a stride-1 convolution on a residual block's main path whose padding
does not preserve the spatial size: `kernel_size=3` without `padding=1`,
`padding=k // 2` with an even `k`, a dilation without the matching padding.
A size-preserving padding is `dilation * (kernel_size - 1) / 2` on each side;
`padding="same"` is fine.

## Why is this bad?
The main path comes out smaller (or larger) than the shortcut and the add
fails with *"The size of tensor a (14) must match the size of tensor b (16) at
non-singleton dimension 3"*. Paddings written as expressions the model cannot
evaluate (`get_padding(...)`, a `padding` argument) keep the rule silent.

## Example
```python
self.conv = nn.Conv2d(c, c, kernel_size=3)  # padding=0: 16x16 -> 14x14
```

## Use instead
```python
self.conv = nn.Conv2d(c, c, kernel_size=3, padding=1)
```

## Fix safety
The fix sets `padding=kernel_size // 2` (times the dilation), written in the
style of the surrounding code. It is safe: configurations whose add ran
before could only be ones where this conv was not on the path.

## References
- [`torch.nn.Conv2d`: output shape](https://pytorch.org/docs/stable/generated/torch.nn.Conv2d.html)
"""
from __future__ import annotations

from typing import Iterator, List, Optional, Tuple

import libcst as cst

from resnetlint.model.block import BlockModel, FileAnalysis, intended_residuals, main_chain
from resnetlint.model.values import LayerSpec, LayerV, Loc, StrV, TupleV, as_int
from resnetlint.fixes import SAFE, FixPlan, set_argument
from resnetlint.nodes import local_call, parenthesize, report_node, source_text, written_argument
from resnetlint.rule import Invalid, Rule, Valid, Violation


class PaddingShapeChange(Rule):
    code = "RL204"
    name = "padding-shape-change"
    summary = "A stride-1 conv on the main path whose padding changes the spatial size"
    fix_availability = "always"
    fix_safety = "safe"

    def check(self, block: BlockModel, analysis: FileAnalysis) -> Iterator[Violation]:
        for _, flow in block.flows():
            for residual in intended_residuals(flow):
                if any(_shrinking(spec) for spec in _path_convs(residual.skip)):
                    continue  # both paths lose the border: they may still agree
                for spec in _path_convs(residual.main):
                    problem = _shrinking(spec)
                    if problem is None:
                        continue
                    node, text = problem
                    yield Violation(
                        node,
                        f"`{spec.label}` with {text} changes the spatial size on the main path of a residual block: "
                        "the add fails",
                        help="use padding = dilation * (kernel_size - 1) // 2 (or padding=\"same\")",
                        expect={"kind": "shape-error"},
                        fix=_padding_fix(spec),
                    )

    VALID = (
        Valid(
            """
            class Block(nn.Module):
                def __init__(self, c, k=3, dilation=1):
                    super().__init__()
                    self.a = nn.Conv2d(c, c, 3, padding=1)
                    self.b = nn.Conv2d(c, c, 5, padding=4, dilation=2)
                    self.c = nn.Conv2d(c, c, 7, padding="same")
                    self.d = nn.Conv2d(c, c, k, padding=k // 2 * dilation, dilation=dilation)
                    self.e = nn.Conv2d(c, c, (1, 7), padding=(0, 3))

                def forward(self, x):
                    return x + self.e(self.d(self.c(self.b(self.a(x)))))
            """,
        ),
        Valid(
            """
            class Stem(nn.Module):
                def __init__(self, c):
                    super().__init__()
                    self.conv = nn.Conv2d(c, c, 3)

                def forward(self, x):
                    return self.conv(x)
            """,
            note="not a residual block",
        ),
    )
    INVALID = (
        Invalid(
            """
            class Block(nn.Module):
                def __init__(self, c):
                    super().__init__()
                    self.conv = nn.Conv2d(c, c, kernel_size=3)

                def forward(self, x):
                    return x + self.conv(x)
            """,
            expect=((4, 49),),
            note="no padding",
        ),
        Invalid(
            """
            class Block(nn.Module):
                def __init__(self, c):
                    super().__init__()
                    k = 4
                    self.body = nn.Sequential(nn.Conv2d(c, c, k, padding=k // 2), nn.ReLU())

                def forward(self, x):
                    return x + self.body(x)
            """,
            expect=((5, 62),),
            note="even kernel",
        ),
        Invalid(
            """
            class Block(nn.Module):
                def __init__(self, c):
                    super().__init__()
                    self.conv = nn.Conv2d(c, c, 3, padding=1, dilation=2)

                def forward(self, x):
                    return x + self.conv(x)
            """,
            expect=((4, 48),),
            note="dilation without matching padding",
        ),
    )


PADDING_INDEX = 4  # in_channels, out_channels, kernel_size, stride, padding


def _padding_fix(spec: LayerSpec) -> Optional[FixPlan]:
    """``padding = dilation * (kernel_size - 1) // 2``, as a number when the
    kernel and dilation are literals, else as an expression of what is written."""
    call = local_call(spec)
    if call is None:
        return None
    dims = spec.ltype.dims if spec.ltype is not None else 0
    kernel = _per_dim(spec.arg("kernel_size"), dims)
    dilation = _per_dim(spec.arg("dilation"), dims)
    kernel_text = source_text(written_argument(spec, "kernel_size"))
    dilation_text = source_text(written_argument(spec, "dilation"))
    literal = lambda text: text is None or text.replace(" ", "").strip("()").replace(",", "").isdigit()
    if kernel is not None and dilation is not None and literal(kernel_text) and literal(dilation_text):
        if any(d * (k - 1) % 2 for k, d in zip(kernel, dilation)):
            return None  # an even kernel: no symmetric padding keeps the size
        values = [d * (k - 1) // 2 for k, d in zip(kernel, dilation)]
        text = str(values[0]) if len(set(values)) == 1 else "(" + ", ".join(map(str, values)) + ")"
    elif kernel_text is not None and kernel is None:
        text = f"{parenthesize(kernel_text)} // 2"
        if dilation_text is not None and dilation_text.strip() != "1":
            text = f"{parenthesize(dilation_text)} * ({kernel_text} - 1) // 2"
    else:
        return None
    return FixPlan(f"pad with `{text}` so the size is kept", SAFE, [set_argument(call, "padding", text, PADDING_INDEX)])


def _path_convs(value) -> List[LayerSpec]:
    out = []
    for layer in main_chain(value):
        if layer.spec is not None:
            out.extend(_convs_in(layer.spec))
    return out


def _convs_in(spec: LayerSpec) -> List[LayerSpec]:
    if spec.family == "conv" and not spec.subclass_forward:
        return [spec]
    if spec.family == "container":
        found = []
        for child in spec.children:
            if isinstance(child.loc.value, LayerV):
                found.extend(_convs_in(child.loc.value.spec))
        return found
    return []


def _per_dim(loc: Optional[Loc], dims: int) -> Optional[List[int]]:
    if loc is None:
        return None
    value = loc.value
    if isinstance(value, TupleV):
        values = [as_int(i) for i in value.items]
        return values if all(v is not None for v in values) and len(values) == dims else None
    single = as_int(loc)
    return [single] * dims if single is not None else None


def _shrinking(spec: LayerSpec) -> Optional[Tuple[cst.CSTNode, str]]:
    """(node, description) when the conv certainly changes the size at stride 1."""
    dims = spec.ltype.dims if spec.ltype is not None else 0
    if dims == 0:
        return None
    stride = _per_dim(spec.arg("stride"), dims)
    kernel = _per_dim(spec.arg("kernel_size"), dims)
    dilation = _per_dim(spec.arg("dilation"), dims)
    if stride is None or any(s != 1 for s in stride) or kernel is None or dilation is None:
        return None
    padding_loc = spec.arg("padding")
    if padding_loc is not None and isinstance(padding_loc.value, StrV):
        if padding_loc.value.text == "same":
            return None
        padding = [0] * dims if padding_loc.value.text == "valid" else None
    else:
        padding = _per_dim(padding_loc, dims)
    if padding is None or min(kernel) < 1 or min(dilation) < 1 or min(padding) < 0:
        return None  # not a valid conv at all: constructing it raises
    for k, p, d in zip(kernel, padding, dilation):
        if 2 * p != d * (k - 1):
            k_text = kernel[0] if len(set(kernel)) == 1 else tuple(kernel)
            p_text = padding[0] if len(set(padding)) == 1 else tuple(padding)
            text = f"kernel_size={k_text}, padding={p_text}" + (f", dilation={d}" if d != 1 else "")
            written = padding_loc is not None and padding_loc.node is not None
            node = report_node(spec, padding_loc if written else spec.arg("kernel_size"))
            return (node, text) if node is not None else None
    return None
