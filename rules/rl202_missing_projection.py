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
read (`make_divisible(...)`, a config value). Nor is an add the caller
chooses with a `bool` flag: one that switches the projection off
(`with_residual_conv=False`) or one that forward tests on the way to the add
without a default or set away from it (`shortcut: bool`, `downsample: bool`):
the caller that makes that choice promises equal widths. A flag that is on
by default promises nothing: the defaults must work.

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
`forward`; where `forward` takes the raw input under a flag `__init__` sets
(the `else:` of `if self.resize_identity:`), only when that branch runs, so
no module is built beside the block's own projection and never trained. The
projection strides by the main path's stride (where the model cannot read
it, by the block's `stride` when the main path's module is built with it).
It is safe for configurations that ran before (where the widths were equal
the shortcut stays the identity), but it adds parameters, so it is marked
unsafe.

Where a sibling block (in the same file, or a project module the file
imports from) builds its projection in one statement under the flag this
block's `forward` tests, for the same widths and stride, the fix writes
that statement instead, in the project's own words (pytorchcv's
`if self.resize_identity:` and `self.identity_conv = conv1x1_block(...,
activation=None)`), after the flag or the main path's last layer as the
sibling places it; a keyword argument that reads a name this block does not
have (the sibling's own `bias=bias`) is left to the callee's default.

## References
- He et al., *Deep Residual Learning for Image Recognition* (2015), §3.3 (projection shortcuts)
"""
from __future__ import annotations

import ast
import re
from typing import Iterator, List, Optional, Set, Tuple

import libcst as cst

from resnetlint.fixes import UNSAFE, FixPlan, insert_after, replace
from resnetlint.model.query import (
    assigned_names, BlockModel, caller_provides_projection, channels_of, projection_switched_off,
    add_chosen_by_caller, layers_reading_input, Facts, FileAnalysis, Flow, FVal, differ, existing_projection,
    as_num, iter_layers, LayerV, Loc, main_chain, Num, ProjectionIdiom, projection_idioms, residual_adds, stride_of,
    strip_elementwise, walk,
)
from resnetlint.nodes import code_of, parenthesize, source_of, torch_nn_alias
from resnetlint.rule import Invalid, Rule, Valid, Violation

class MissingProjection(Rule):
    code = "RL202"
    name = "missing-projection"
    summary = "The input is added to a main path of another width with no projection"
    fix_availability = "sometimes"
    fix_safety = "unsafe"

    def check(self, block: BlockModel, analysis: FileAnalysis) -> Iterator[Violation]:
        if caller_provides_projection(block):
            return
        for world, flow in block.flows():
            if projection_switched_off(block, world):
                continue  # the caller turned the projection off: equal widths are its promise
            for residual in residual_adds(flow):
                if residual.skip_node is None or strip_elementwise(residual.skip) is not flow.input:
                    continue
                if existing_projection(block, world, flow, residual) is not None:
                    continue  # a projection exists but is bypassed: RL103 says so
                facts = residual.event.facts
                if add_chosen_by_caller(block, world, facts):
                    continue  # the caller asked for this add: equal widths are its promise
                width_in = _input_width(flow, residual.main, facts)
                width_out = channels_of(flow, residual.main, facts)
                if not isinstance(width_out, Num) or width_in is None:
                    continue
                difference = differ(width_in, width_out, facts, block.numeric_defaults())
                if difference is None:
                    continue
                a, b = facts.norm(width_in).render(), facts.norm(width_out).render()
                when = difference.when or f" whenever {a} != {b}"
                yield Violation(
                    residual.skip_node,
                    f"the block input `{code_of(residual.skip_node)}` ({a} channels) is added to a main path producing "
                    f"{b} channels with no projection: the add fails{when}",
                    help=f"project the input with a 1x1 conv when {a} != {b} (or assert they are equal)",
                    expect={"kind": "shape-error", "dim": 1, "widths": [a, b], **difference.expect()},
                    fix=_projection_fix(block, analysis, flow, residual, facts.norm(width_in), facts.norm(width_out)),
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
        Valid(
            """
            class ConvBlock(nn.Module):
                def __init__(self, in_channels, out_channels, with_residual_conv=False):
                    super().__init__()
                    self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
                    self.bn = nn.BatchNorm2d(out_channels)
                    if with_residual_conv:
                        self.residual_conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
                        self.residual_bn = nn.BatchNorm2d(out_channels)
                    self.with_residual_conv = with_residual_conv

                def forward(self, x):
                    identity = x
                    x = self.bn(self.conv(x))
                    if self.with_residual_conv:
                        identity = self.residual_bn(self.residual_conv(identity))
                    return x + identity
            """,
            note="the caller switches the projection off only where the widths match (mmpretrain's Conformer)",
        ),
        Valid(
            """
            class ShuffleUnit(nn.Module):
                def __init__(self, in_channels: int, out_channels: int, downsample: bool):
                    super().__init__()
                    self.downsample = downsample
                    if downsample:
                        out_channels -= in_channels
                        self.pool = nn.AvgPool2d(3, stride=2, padding=1)
                    self.conv = nn.Conv2d(in_channels, out_channels, 3, stride=2 if downsample else 1, padding=1)

                def forward(self, x):
                    y = self.conv(x)
                    if self.downsample:
                        return torch.cat((y, self.pool(x)), dim=1)
                    return y + x
            """,
            note="the caller must choose: `downsample=False` promises equal widths (pytorchcv)",
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
        Invalid(
            """
            class BasicBlock(nn.Module):
                def __init__(self, in_planes, planes, stride=1):
                    super().__init__()
                    self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
                    self.bn1 = nn.BatchNorm2d(planes)
                    self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
                    self.bn2 = nn.BatchNorm2d(planes)
                    self.downsample = None
                    if stride != 1:
                        self.downsample = nn.Sequential(
                            nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

                def forward(self, x):
                    identity = x
                    out = F.relu(self.bn1(self.conv1(x)))
                    out = self.bn2(self.conv2(out))
                    if self.downsample is not None:
                        identity = self.downsample(x)
                    return F.relu(out + identity)
            """,
            expect=((19, 29),),
            note="the projection is built for a stride only: equal strides with other widths add unprojected",
        ),
        Invalid(
            """
            class ConvResidual(nn.Module):
                def __init__(self, in_channels, out_channels, residual=True):
                    super().__init__()
                    self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
                    self.residual = residual

                def forward(self, x):
                    out = self.conv(x)
                    if self.residual:
                        out = out + x
                    return out
            """,
            expect=((10, 25),),
            note="a switch that is on by default promises nothing: the defaults must work",
        ),
        Invalid(
            """
            class ConvNormAct(nn.Sequential):
                def __init__(self, in_channels: int, out_channels: int, norm_layer=None):
                    layers = [nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=norm_layer is None)]
                    if norm_layer is not None:
                        layers.append(norm_layer(out_channels))
                    layers.append(nn.ReLU(inplace=True))
                    super().__init__(*layers)
                    self.out_channels = out_channels


            class ResidualBlock(nn.Module):
                def __init__(self, in_channels, out_channels, *, norm_layer):
                    super().__init__()
                    self.conv1 = ConvNormAct(in_channels, out_channels, norm_layer=norm_layer)
                    self.conv2 = ConvNormAct(out_channels, out_channels, norm_layer=norm_layer)

                def forward(self, x):
                    y = self.conv2(self.conv1(x))
                    return x + y
            """,
            expect=((19, 16),),
            note="through a Sequential subclass that also keeps its width on self (torchvision's "
                 "Conv2dNormActivation, RAFT's blocks)",
        ),
        Invalid(
            """
            class SqueezeUnit(nn.Module):
                def __init__(self, in_channels, out_channels, stride):
                    super().__init__()
                    self.resize_identity = stride == 2 or in_channels > out_channels
                    if self.resize_identity:
                        self.identity_conv = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                                           nn.BatchNorm2d(out_channels))
                    self.conv1 = nn.Conv2d(in_channels, in_channels // 2, 1, stride, bias=False)
                    self.bn1 = nn.BatchNorm2d(in_channels // 2)
                    self.conv2 = nn.Conv2d(in_channels // 2, out_channels, 3, padding=1, bias=False)
                    self.bn2 = nn.BatchNorm2d(out_channels)

                def forward(self, x):
                    if self.resize_identity:
                        identity = self.identity_conv(x)
                    else:
                        identity = x
                    x = torch.relu(self.bn1(self.conv1(x)))
                    return torch.relu(self.bn2(self.conv2(x)) + identity)
            """,
            expect=((19, 53),),
            note="SqueezeNext's unit: its own projection covers a stride of 2 and a narrowing, not a widening at "
                 "stride 1; the projection the fix adds is built only where `forward` takes the raw input",
            fix=(
                ('                    self.bn2 = nn.BatchNorm2d(out_channels)\n',
                 '                    self.bn2 = nn.BatchNorm2d(out_channels)\n                    self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)) if not self.resize_identity and (in_channels != out_channels or stride != 1) else nn.Identity()\n'),
                ('                        identity = x\n',
                 '                        identity = self.shortcut(x)\n'),
            ),
        ),
        Invalid(
            """
            class Bottleneck(nn.Module):
                def __init__(self, cin, cout, stride, conv1_stride):
                    super().__init__()
                    self.conv1 = nn.Conv2d(cin, cout // 4, 1, stride=stride if conv1_stride else 1, bias=False)
                    self.conv2 = nn.Conv2d(cout // 4, cout // 4, 3, stride=1 if conv1_stride else stride, padding=1,
                                           bias=False)
                    self.conv3 = nn.Conv2d(cout // 4, cout, 1, bias=False)
                    self.bn = nn.BatchNorm2d(cout)

                def forward(self, x):
                    return self.bn(self.conv3(self.conv2(self.conv1(x))))


            class ResAUnit(nn.Module):
                def __init__(self, in_channels, out_channels, stride, bottleneck=True, conv1_stride=False):
                    super().__init__()
                    if bottleneck:
                        self.body = Bottleneck(in_channels, out_channels, stride, conv1_stride)
                    else:
                        self.body = nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False),
                                                  nn.BatchNorm2d(out_channels))

                def forward(self, x):
                    return torch.relu(self.body(x) + x)
            """,
            expect=((24, 42),),
            note="a unit whose bottleneck puts the stride on one conv or the next by a flag the caller passes: where "
                 "that way of building it cannot tell the main path's stride, the fix takes the one the other way "
                 "shows, so the projection it adds strides too",
            fix=(
                ('                                                  nn.BatchNorm2d(out_channels))\n',
                 '                                                  nn.BatchNorm2d(out_channels))\n                    self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)) if in_channels != out_channels or stride != 1 else nn.Identity()\n'),
                ('                    return torch.relu(self.body(x) + x)\n',
                 '                    return torch.relu(self.body(x) + self.shortcut(x))\n'),
            ),
        ),
        Invalid(
            """
            def conv1x1_block(in_channels, out_channels, stride=1, bias=False, activation=True):
                layers = [nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=bias), nn.BatchNorm2d(out_channels)]
                return nn.Sequential(*layers, nn.ReLU(inplace=True)) if activation else nn.Sequential(*layers)


            class ResUnit(nn.Module):
                def __init__(self, in_channels, out_channels, stride, bias=False):
                    super().__init__()
                    self.resize_identity = (in_channels != out_channels) or (stride != 1)
                    self.body = nn.Sequential(
                        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=bias),
                        nn.BatchNorm2d(out_channels),
                        nn.ReLU(inplace=True),
                    )
                    if self.resize_identity:
                        self.identity_conv = conv1x1_block(
                            in_channels=in_channels,
                            out_channels=out_channels,
                            stride=stride,
                            bias=bias,
                            activation=None)
                    self.activ = nn.ReLU(inplace=True)

                def forward(self, x):
                    if self.resize_identity:
                        identity = self.identity_conv(x)
                    else:
                        identity = x
                    return self.activ(self.body(x) + identity)


            class SEBlock(nn.Module):
                def __init__(self, channels):
                    super().__init__()
                    self.pool = nn.AdaptiveAvgPool2d(1)
                    self.fc = nn.Sequential(nn.Conv2d(channels, channels // 4, 1), nn.ReLU(inplace=True),
                                            nn.Conv2d(channels // 4, channels, 1), nn.Sigmoid())

                def forward(self, x):
                    return x * self.fc(self.pool(x))


            class SEResUnit(nn.Module):
                def __init__(self, in_channels, out_channels, stride):
                    super().__init__()
                    self.resize_identity = (in_channels != out_channels) or (stride != 1)
                    self.body = nn.Sequential(
                        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
                        nn.BatchNorm2d(out_channels),
                        nn.ReLU(inplace=True),
                    )
                    self.se = SEBlock(channels=out_channels)
                    self.activ = nn.ReLU(inplace=True)

                def forward(self, x):
                    if self.resize_identity:
                        identity = x
                    else:
                        identity = x
                    x = self.body(x)
                    x = self.se(x)
                    return self.activ(x + identity)
            """,
            expect=((62, 31),),
            note="pytorchcv's idiom: the fix builds the projection as the sibling `ResUnit` does, under the flag "
                 "forward tests, after the main path's last layer; `bias=bias` is left to the helper's default, "
                 "`SEResUnit` having no `bias`",
            fix=(
                ('                    self.se = SEBlock(channels=out_channels)\n',
                 '                    self.se = SEBlock(channels=out_channels)\n'
                 '                    if self.resize_identity:\n'
                 '                        self.identity_conv = conv1x1_block(\n'
                 '                            in_channels=in_channels,\n'
                 '                            out_channels=out_channels,\n'
                 '                            stride=stride,\n'
                 '                            activation=None)\n'),
                ('                        identity = x\n                    else:',
                 '                        identity = self.identity_conv(x)\n                    else:'),
            ),
        ),
        Invalid(
            """
            class SKConv(nn.Module):
                def __init__(self, cin, cout, stride):
                    super().__init__()
                    self.reduce = nn.Conv2d(cin, cout, 1, bias=False)
                    self.branches = nn.ModuleList()
                    for dilation in (1, 2):
                        self.branches.append(nn.Conv2d(cout, cout, 3, stride, padding=dilation, dilation=dilation, bias=False))
                    self.bn = nn.BatchNorm2d(cout)

                def forward(self, x):
                    x = self.reduce(x)
                    return self.bn(sum(branch(x) for branch in self.branches))


            class SKUnit(nn.Module):
                def __init__(self, in_channels, out_channels, stride):
                    super().__init__()
                    self.body = SKConv(in_channels, out_channels, stride=stride)
                    self.conv3 = nn.Conv2d(out_channels, out_channels, 1, bias=False)

                def forward(self, x):
                    identity = x
                    x = self.conv3(self.body(x))
                    return torch.relu(x + identity)
            """,
            expect=((24, 31),),
            note="a selective-kernel unit: its branches are built in a loop, so the model cannot tell the main "
                 "path's stride, but the module is built with the block's `stride=stride`, and so is the projection "
                 "the fix adds",
            fix=(
                ('                    self.conv3 = nn.Conv2d(out_channels, out_channels, 1, bias=False)\n',
                 '                    self.conv3 = nn.Conv2d(out_channels, out_channels, 1, bias=False)\n                    self.shortcut = nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False) if in_channels != out_channels or stride != 1 else nn.Identity()\n'),
                ('                    identity = x\n',
                 '                    identity = self.shortcut(x)\n'),
            ),
        ),
    )


def _projection_fix(block: BlockModel, analysis: FileAnalysis, flow: Flow, residual, width_in: Num,
                    width_out: Num) -> Optional[FixPlan]:
    """Build a 1x1 projection (with the block's BatchNorm, if it uses one)
    when the widths (or the stride) differ, nn.Identity otherwise, and add
    it instead of the raw input."""
    nn = torch_nn_alias(analysis.ctx)
    init = block.init.init
    name = next((n for n in ("shortcut", "projection", "proj_shortcut") if
                 all(n not in wf.world.attrs for wf in block.worlds) and block.interp_method(n) is None), None)
    if nn is None or init is None or not init.body.body or name is None:
        return None
    atoms = width_in.atoms() | width_out.atoms()
    stride = _main_stride(block, flow, residual)
    stride = None if stride is None or stride.const_value() == 1 else stride
    if stride is not None:
        atoms |= stride.atoms()
    reassigned, _ = assigned_names(init.body)
    if not width_in.is_opaque_free() or not width_out.is_opaque_free() or atoms & reassigned:
        return None  # the names would not mean the same at the end of __init__
    dims = _conv_dims(flow, residual.main)
    if dims is None:
        return None
    a, b = width_in.render(), width_out.render()
    conv = f"{nn}.Conv{dims}d({a}, {b}, kernel_size=1{f', stride={stride.render()}' if stride else ''}, bias=False)"
    uses_bn = any(spec.norm_kind == "batch" for wf in block.worlds for spec in block.layer_specs(wf.world))
    projection = f"{nn}.Sequential({conv}, {nn}.BatchNorm{dims}d({b}))" if uses_bn else conv
    condition = f"{parenthesize(a)} != {parenthesize(b)}" + (f" or {parenthesize(stride.render())} != 1" if stride else "")
    use = _use_projection(flow, residual.skip_node, name)
    if use is None:
        return None
    guard = _flag_guard(block, use.node)
    idiomatic = _project_idiom(block, analysis, flow, residual, (a, b, stride.render() if stride else "1"), guard)
    if idiomatic is not None:
        return idiomatic
    built = f"{guard} and ({condition})" if guard else condition
    operations = [insert_after(init.body.body[-1], f"self.{name} = {projection} if {built} else {nn}.Identity()"), use]
    return FixPlan(f"add a 1x1 projection `self.{name}` used when {built}", UNSAFE, operations)


def _project_idiom(block: BlockModel, analysis: FileAnalysis, flow: Flow, residual, widths: Tuple[str, str, str],
                   guard: Optional[str]) -> Optional[FixPlan]:
    """The projection as a sibling block of the project builds it, when one
    builds it for the same widths and stride under the flag this block's
    forward tests (pytorchcv: ``if self.resize_identity:`` then
    ``self.identity_conv = conv1x1_block(..., activation=None)``), from names
    this block has too: its text verbatim, placed as the sibling places it
    (after the flag, or after the main path's last layer)."""
    init = block.init.init
    if guard is None or not guard.startswith("self.") or init is None:
        return None
    flag = guard[len("self."):]
    statements = list(init.body.body)
    flag_index = _assigning(statements, flag)
    if flag_index is None:
        return None
    known = block.parameter_names() | set(analysis.ctx.imports) | set(analysis.ctx.functions) | \
        set(analysis.ctx.classes)
    taken = {attr for wf in block.worlds for attr in wf.world.attrs}
    for idiom in projection_idioms(analysis):
        if idiom.guard != flag or idiom.widths != widths or idiom.attr in taken:
            continue
        text = _adapted(idiom, known)
        if text is None:
            continue
        use = _use_projection(flow, residual.skip_node, idiom.attr)
        if use is None:
            return None
        index = flag_index if idiom.after == flag else max(flag_index, _last_main_layer(statements, residual))
        operations = [insert_after(statements[index], text.strip()), use]
        return FixPlan(f"add the projection `self.{idiom.attr}` as `{idiom.owner}` builds it, used when {guard}",
                       UNSAFE, operations)
    return None


def _adapted(idiom: ProjectionIdiom, known: Set[str]) -> Optional[str]:
    """The sibling's statement for this block: the keyword arguments that
    read names this block lacks (its own `bias=bias`, `normalization=...`)
    left out, so the callee's defaults apply; None when something else it
    reads is missing, or its text cannot be read or edited."""
    text = source_of(idiom.statement)
    if text is None:
        return None
    text = text.strip()
    for arg, reads in idiom.options:
        value = source_of(arg.value) if not reads <= known else None
        if value is None:
            continue
        argument = re.escape(arg.keyword.value) + r"\s*=\s*" + re.escape(value.strip())
        # the argument with the comma after it, or before it when it is the last
        shorter, count = re.subn(r"\s*" + argument + r"\s*,", "", text, count=1)
        if not count:
            shorter, count = re.subn(r",\s*" + argument, "", text, count=1)
        text = shorter
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return None
    reads = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}
    return text if reads - {"self"} <= known else None


def _assigning(statements, attr: str) -> Optional[int]:
    """The index of the top-level statement that sets ``self.<attr>``, or
    holds the ``if`` that does (``if bottleneck: self.body = ...``)."""
    for index, statement in enumerate(statements):
        for node in walk(statement):
            if isinstance(node, cst.Assign) and any(code_of(t.target) == f"self.{attr}" for t in node.targets):
                return index
    return None


def _last_main_layer(statements, residual) -> int:
    """The index of the last top-level statement building a layer of the
    main path (a projection is written after the path it bypasses); -1 when
    none is found."""
    indices = [_assigning(statements, layer.attr) for layer in main_chain(residual.main) if layer.attr]
    return max((i for i in indices if i is not None), default=-1)


def _main_stride(block: BlockModel, flow: Flow, residual) -> Optional[Num]:
    """The main path's stride at this add, or where this flow cannot tell
    (a bottleneck whose stride hangs on a flag), the one the other ways
    ``__init__`` ran agree on at the same add."""
    stride = stride_of(flow, residual.main)
    if stride is not None or residual.event is None:
        return stride
    known = {}
    for _, other in block.flows():
        for candidate in residual_adds(other):
            if candidate.event is not None and candidate.event.node is residual.event.node:
                found = stride_of(other, candidate.main)
                if found is not None:
                    known[found.render()] = found
    if len(known) == 1:
        return next(iter(known.values()))
    return _stride_parameter_of_main_path(block, residual.main) if not known else None


def _stride_parameter_of_main_path(block: BlockModel, main: FVal) -> Optional[Num]:
    """``stride``, when no way ``__init__`` ran tells the main path's stride
    but a layer on it is built with the block's own ``stride`` parameter (a
    selective-kernel conv the model cannot read through): the projection
    must stride as that layer does (the trace proves it or rejects the fix)."""
    if "stride" not in block.parameter_names():
        return None
    for layer in main_chain(main):
        if layer.spec is None:
            continue
        if _passes_stride(layer.spec.site):
            return Num.atom("stride")  # `SKNetBottleneck(..., stride=stride)`: a module we cannot read through
        for spec in iter_layers(Loc(LayerV(layer.spec))):
            num = as_num(spec.arg("stride"))
            if num is not None and "stride" in num.atoms():
                return Num.atom("stride")
    return None


def _passes_stride(site) -> bool:
    """The call that built a layer passes the block's ``stride`` on as ``stride=stride``."""
    return isinstance(site, cst.Call) and any(
        arg.keyword is not None and arg.keyword.value == "stride" and isinstance(arg.value, cst.Name)
        and arg.value.value == "stride" for arg in site.args)


def _flag_guard(block: BlockModel, node) -> Optional[str]:
    """Where forward takes the raw input under a flag ``__init__`` sets (the
    ``else:`` of ``if self.resize_identity: identity = self.identity_conv(x)``),
    that flag as a condition (``not self.resize_identity``): the projection is
    built only where it is used, not beside the block's own (a module built
    and never run gets no gradient). None when the input is taken outside
    such a branch, or under a test of anything else."""
    forward = block.forward
    if forward is None:
        return None
    path = _branches_to(forward.body, node)
    if not path:
        return None
    flags = set()
    for wf in block.worlds:
        flags |= set(wf.world.attrs)
    parts = []
    for test, taken in path:
        negated = isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not)
        flag = test.expression if negated else test
        if not (isinstance(flag, cst.Attribute) and isinstance(flag.value, cst.Name) and flag.value.value == "self"
                and flag.attr.value in flags):
            return None
        positive = taken != negated
        parts.append(f"self.{flag.attr.value}" if positive else f"not self.{flag.attr.value}")
    return " and ".join(parts)


def _branches_to(body, node) -> Optional[List[Tuple[cst.CSTNode, bool]]]:
    """The ``if`` tests on the way from a body to the statement holding
    ``node``, each with whether its body (True) or its ``else`` (False) is
    taken; [] when it is not under any, None when it is not there."""
    for statement in getattr(body, "body", ()):
        if isinstance(statement, cst.If):
            for block_body, taken in ((statement.body, True), (statement.orelse, False)):
                if isinstance(block_body, cst.If):  # an elif chain: its conditions are not one flag
                    if _holds(block_body, node):
                        return None
                    continue
                if block_body is None:
                    continue
                inner = _branches_to(block_body.body if isinstance(block_body, cst.Else) else block_body, node)
                if inner is not None:
                    return [(statement.test, taken)] + inner
        elif _holds(statement, node):
            return []
    return None


def _holds(statement, node) -> bool:
    return any(child is node for child in walk(statement))


def _use_projection(flow: Flow, node, name: str):
    """Apply the projection where the input is taken: at ``residual = x`` when
    the add uses such a variable, else at the operand itself."""
    if isinstance(node, cst.Name) and flow.input is not None:
        if node.value == flow.input.name:
            return replace(node, f"self.{name}({node.value})")
        for event in flow.assignments:
            if event.var == node.value and event.new is flow.input and isinstance(event.stmt, cst.Assign):
                return replace(event.stmt.value, f"self.{name}({flow.input.name})")
    return None


def _conv_dims(flow: Flow, main: FVal) -> Optional[int]:
    for layer in reversed(main_chain(main)):
        for spec in iter_layers(Loc(LayerV(layer.spec))) if layer.spec is not None else ():
            if spec.family == "conv" and spec.ltype is not None:
                return spec.ltype.dims
    return None


def _input_width(flow: Flow, main: FVal, facts: Facts) -> Optional[Num]:
    """The width the main path expects at its input: its first layer's."""
    for layer in reversed(main_chain(main)):
        if not layer.inputs or strip_elementwise(layer.inputs[0]) is not flow.input:
            continue
        summary = layer.spec.summary if layer.spec is not None else None
        if summary is None or summary.in_channels is None:
            return None
        width = facts.norm(summary.in_channels)
        if any(other != width for other in _widths_reading_input(flow, facts)):
            # Other layers read the input with another width: which one is fed
            # the wrong tensor is another rule's finding (RL101, RL201), and
            # the input's width is not this layer's to tell.
            return None
        return width
    return None


def _widths_reading_input(flow: Flow, facts: Facts) -> List[Num]:
    """The widths every layer that reads the block input directly states."""
    return [facts.norm(spec.summary.in_channels) for spec in layers_reading_input(flow)
            if spec.summary.in_channels is not None]
