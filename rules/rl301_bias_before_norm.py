"""
## What it does
Finds a convolution with a bias (the default: `bias=True`) whose output goes
straight into a `BatchNorm` or `InstanceNorm`, in an `nn.Sequential` or in
`forward`.

## Why is this bad?
Batch and instance normalisation subtract the per-channel mean, so a
per-channel bias added just before is cancelled exactly: dead parameters that
cost memory and optimizer state and never change the output. GroupNorm and
LayerNorm are not reported (GroupNorm's mean spans several channels; a
LayerNorm is not per-channel over the conv's output), nor is a norm given as a
parameter (`norm_layer`) that may be either, nor a bias written as an
expression (`bias=not use_bn`).

Note that removing the bias changes the module's `state_dict`: checkpoints
saved with the bias stop loading with `strict=True`.

## Example
```python
self.pointwise = nn.Sequential(nn.Conv2d(c_in, c_out, 1), nn.BatchNorm2d(c_out), nn.ReLU())
```

## Use instead
```python
self.pointwise = nn.Sequential(nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())
```

## Fix safety
The fix adds `bias=False`. It is unsafe: the outputs are unchanged, but
existing checkpoints that contain the bias no longer load strictly.

## References
- Ioffe & Szegedy, *Batch Normalization* (2015), §3.2
- [`torch.nn.BatchNorm2d`](https://pytorch.org/docs/stable/generated/torch.nn.BatchNorm2d.html)
"""
from __future__ import annotations

from typing import Iterator, Optional

from resnetlint.model.query import AltV, BlockModel, BoolV, FileAnalysis, LayerV
from resnetlint.fixes import CONV_SIGNATURE, UNSAFE, FixPlan, set_argument
from resnetlint.nodes import local_call, report_node
from resnetlint.rule import Invalid, Rule, Valid, Violation

MEAN_SUBTRACTING = ("batch", "instance")
BIAS_INDEX = CONV_SIGNATURE.index("bias")


class BiasBeforeNorm(Rule):
    code = "RL301"
    name = "bias-before-norm"
    summary = "A conv bias feeding BatchNorm/InstanceNorm is dead weight"
    severity = "warning"
    fix_availability = "always"
    fix_safety = "unsafe"

    def check(self, block: BlockModel, analysis: FileAnalysis) -> Iterator[Violation]:
        for wf in block.worlds:
            for path, children in block.sequential_bodies(wf.world):
                for index, (before, after) in enumerate(zip(children, children[1:])):
                    if before.segment != after.segment and after.segment is not None:
                        continue
                    module = f"{path}.{index}" if path else str(index)
                    for conv in _options(before.loc.value):  # a layer, or each one it may be
                        for norm in _options(after.loc.value):
                            found = _check(conv, norm, module if before.segment is None else None)
                            if found is not None:
                                yield found
        for _, flow in block.flows():
            for value in flow.values:
                if not value.is_layer or value.spec is None or not value.inputs:
                    continue
                source = value.inputs[0]
                if source.is_layer and source.spec is not None:
                    module = source.attr if source.attr and source.attr.isidentifier() else None
                    found = _check(LayerV(source.spec), LayerV(value.spec), module)
                    if found is not None:
                        yield found

    VALID = (
        Valid(
            """
            class Block(nn.Module):
                def __init__(self, c, norm_layer=None, use_bn=True):
                    super().__init__()
                    self.a = nn.Sequential(nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
                    self.b = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.GroupNorm(8, c))
                    self.c = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), norm_layer(c))
                    self.d = nn.Sequential(nn.Conv2d(c, c, 3, padding=1, bias=not use_bn), nn.BatchNorm2d(c))
                    self.e = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(c))
            """,
            note="a norm_layer without a default may be any norm: its kind is unknown",
        ),
        Valid(
            """
            class Block(nn.Module):
                def __init__(self, c):
                    super().__init__()
                    self.conv = nn.Conv2d(c, c, 1)
                    self.norm = nn.LayerNorm(c)

                def forward(self, x):
                    return self.norm(self.conv(x).permute(0, 2, 3, 1))
            """,
        ),
    )
    INVALID = (
        Invalid(
            """
            class DepthwiseSeparableConv(nn.Module):
                def __init__(self, in_channels, out_channels):
                    super().__init__()
                    self.pointwise = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1),
                                                   nn.BatchNorm2d(out_channels),
                                                   nn.LeakyReLU(0.1, inplace=True))
            """,
            expect=((4, 40),),
            note="seed 004",
        ),
        Invalid(
            """
            class Block(nn.Module):
                def __init__(self, c_in, c_out):
                    super().__init__()
                    self.pointwise = nn.Conv2d(c_in, c_out, 1, bias=True)
                    self.norm = nn.InstanceNorm2d(c_out)

                def forward(self, x):
                    return self.norm(self.pointwise(x))
            """,
            expect=((4, 57),),
            note="explicit bias=True, in forward, before InstanceNorm",
        ),
        Invalid(
            """
            class ConvNorm(nn.Module):
                def __init__(self, in_chs, out_chs, stride=2, norm_layer=nn.BatchNorm2d):
                    super().__init__()
                    self.conv = nn.Conv2d(in_chs, out_chs, 3, stride=stride, padding=1)
                    self.norm = norm_layer(out_chs)

                def forward(self, x):
                    return self.norm(self.conv(x))
            """,
            expect=((4, 21),),
            note="timm style: the default norm_layer is BatchNorm (a caller may pass another norm)",
        ),
    )


def _options(value):
    """The layers a Sequential position may hold: itself, or each
    alternative (a conv whose class a config picks)."""
    if isinstance(value, AltV):
        return [layer for _, option in value.options for layer in _options(option.value)]
    return [value]


def _assumed(norm) -> str:
    """Where the norm's class comes from when it is not written at the call."""
    return f" ({norm.assumption})" if norm.assumption else ""


def _check(before, after, module: Optional[str]) -> Optional[Violation]:
    if not (isinstance(before, LayerV) and isinstance(after, LayerV)):
        return None
    conv, norm = before.spec, after.spec
    if conv.family != "conv" or norm.family != "norm" or norm.norm_kind not in MEAN_SUBTRACTING:
        return None
    bias = conv.arg("bias")
    if bias is None or not isinstance(bias.value, BoolV) or bias.value.cond is not True:
        return None
    written = bias.node is not None
    node = report_node(conv, bias) if written else conv.site
    if node is None:
        return None
    how = "`bias=True`" if written else "a bias (the default)"
    call = local_call(conv)
    fix = None
    if call is not None:
        fix = FixPlan("pass `bias=False` (checkpoints saved with the bias will no longer load strictly)", UNSAFE,
                      [set_argument(call, "bias", "False", BIAS_INDEX)])
    return Violation(
        node,
        f"`{conv.label}` has {how} but feeds `{norm.label}`{_assumed(norm)}, which subtracts the per-channel mean: "
        "the bias is dead weight",
        help="pass `bias=False` (note: checkpoints saved with the bias will no longer load strictly)",
        expect={"kind": "dead-bias", "module": module},
        fix=fix,
    )
