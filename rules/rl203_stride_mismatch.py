"""
## What it does
Finds residual blocks whose main path and shortcut change the spatial
resolution differently:

* the shortcut strides (or pools) and the main path never does;
* the main path strides and the shortcut is the identity or a stride-1
  projection;
* the main path strides twice (the stride applied to two convs);
* the guard that builds the projection tests only the channels
  (`if in_channels != out_channels:`), so a block with equal widths and
  `stride=2` keeps an identity shortcut at full resolution.

A guard that is a `bool` constructor flag (`shortcut: bool`,
`should_apply_shortcut`) is the caller's switch, set together with the
stride it passes: not reported, as a projection the caller supplies is not.
An add of the raw input while the block holds a projection for it is
RL103's finding (the projection is bypassed), not reported again here.

## Why is this bad?
The add fails with *"The size of tensor a (8) must match the size of tensor b
(16) at non-singleton dimension 3"*, but only for `stride != 1`, so tests with
the default stride pass. Strides are compared symbolically (`stride` vs `1`,
`stride * stride` vs `stride`); a layer the model cannot read (an
anti-aliasing module, `F.interpolate`) keeps the rule silent.

## Example
```python
self.skip = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))
self.block = nn.Sequential(
    nn.Conv2d(c_in, c_out, 3, padding=1, stride=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
    nn.Conv2d(c_out, c_out, 3, padding=1, stride=1, bias=False), nn.BatchNorm2d(c_out))
```

## Use instead
```python
    nn.Conv2d(c_in, c_out, 3, padding=1, stride=stride, bias=False), ...
```

## Fix safety
The fix moves the stride where it belongs: onto the first 3x3 conv of the main
path when only the shortcut strides, onto the shortcut when only the main path
does, off the second conv when the main path strides twice, and adds
`stride != 1` to a guard that tests only the channels. Unsafe: the output
resolution of configurations that ran before may change.

## References
- He et al., *Deep Residual Learning for Image Recognition* (2015), §3.3
"""
from __future__ import annotations

from typing import Iterator, List, Optional, Tuple

import libcst as cst

from resnetlint.model.query import (
    mentions, NoneV, unused_stride_parameter, GLOBAL, AltV, as_int_pair, BlockModel, caller_provides_projection,
    FileAnalysis, projection_switched_off, add_chosen_by_caller, caller_flag, possible_values, Facts, Flow,
    FVal, intended_residuals, projects, LayerSpec, LayerV, main_chain, Num, differ, Residual, stride_of,
    strip_elementwise, World, existing_projection,
)
from resnetlint.fixes import CONV_SIGNATURE, UNSAFE, FixPlan, replace, set_argument
from resnetlint.nodes import code_of, local_call, parenthesize, report_node, source_text, written_argument
from resnetlint.rule import Invalid, Rule, Valid, Violation

ONE = Num.const(1)


class StrideMismatch(Rule):
    code = "RL203"
    name = "stride-mismatch"
    summary = "The main path and the shortcut change the resolution differently"
    fix_availability = "sometimes"
    fix_safety = "unsafe"

    def check(self, block: BlockModel, analysis: FileAnalysis) -> Iterator[Violation]:
        caller_projects = caller_provides_projection(block)
        for world, flow in block.flows():
            for residual in intended_residuals(flow):
                if strip_elementwise(residual.skip) is flow.input:
                    if caller_projects:
                        continue  # the caller passes a projection when the shapes change
                    if projection_switched_off(block, world) or add_chosen_by_caller(block, world, residual.facts):
                        continue  # the caller chose this add or turned the projection off: equal shapes are its promise
                    if residual.event is not None and existing_projection(block, world, flow, residual) is not None:
                        continue  # a projection exists but is bypassed: RL103 says so
                found = _check(block, world, flow, residual)
                if found is not None:
                    yield found

    VALID = (
        Valid(
            """
            class BasicBlockD(nn.Module):
                def __init__(self, in_channels: int, out_channels: int, stride: int, shortcut: bool):
                    super().__init__()
                    self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
                    self.bn1 = nn.BatchNorm2d(out_channels)
                    self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
                    self.bn2 = nn.BatchNorm2d(out_channels)
                    self.short = nn.Identity() if shortcut else nn.Sequential(
                        nn.AvgPool2d(stride, stride), nn.Conv2d(in_channels, out_channels, 1, bias=False))

                def forward(self, x):
                    out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
                    return torch.relu(out + self.short(x))
            """,
            note="`shortcut: bool` is the caller's switch, set with the stride it passes (ResNet-D in kornia, "
                 "RT-DETR's `should_apply_shortcut`): not a test of the widths that forgot the stride",
        ),
        Valid(
            """
            class Block(nn.Module):
                def __init__(self, c_in, c_out, stride=1):
                    super().__init__()
                    self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1)
                    self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1)
                    if stride != 1 or c_in != c_out:
                        self.shortcut = nn.Conv2d(c_in, c_out, 1, stride)
                    else:
                        self.shortcut = nn.Identity()

                def forward(self, x):
                    return self.conv2(torch.relu(self.conv1(x))) + self.shortcut(x)
            """,
        ),
        Valid(
            """
            class AvgDown(nn.Module):
                def __init__(self, c_in, c_out, stride=1):
                    super().__init__()
                    self.conv = nn.Conv2d(c_in, c_out, 3, stride, 1)
                    self.down = nn.Sequential(nn.AvgPool2d(stride, stride), nn.Conv2d(c_in, c_out, 1))

                def forward(self, x):
                    return self.conv(x) + self.down(x)
            """,
            note="ResNet-D: the shortcut pools then projects at stride 1",
        ),
        Valid(
            """
            class SE(nn.Module):
                def __init__(self, c, stride=1):
                    super().__init__()
                    self.conv = nn.Conv2d(c, c, 3, stride, 1)
                    self.pool = nn.AdaptiveAvgPool2d(1)
                    self.fc = nn.Conv2d(c, c, 1)
                    self.shortcut = nn.Conv2d(c, c, 1, stride)

                def forward(self, x):
                    out = self.conv(x)
                    out = out * torch.sigmoid(self.fc(self.pool(out)))
                    return out + self.shortcut(x)
            """,
            note="a globally pooled gate broadcasts",
        ),
        Valid(
            """
            class Block(nn.Module):
                def __init__(self, c, stride=1):
                    super().__init__()
                    self.aa = make_blur_pool(c, stride)
                    self.conv = nn.Conv2d(c, c, 3, 1, 1)
                    self.shortcut = nn.Conv2d(c, c, 1, stride)

                def forward(self, x):
                    return self.aa(self.conv(x)) + self.shortcut(x)
            """,
            note="the stride moved to a layer we cannot read",
        ),
    )
    INVALID = (
        Invalid(
            """
            class SqueezeExcite(nn.Module):
                def __init__(self, channels, reduced):
                    super().__init__()
                    self.pool = nn.AdaptiveAvgPool2d(1)
                    self.fc = nn.Sequential(nn.Conv2d(channels, reduced, 1), nn.ReLU(), nn.Conv2d(reduced, channels, 1), nn.Sigmoid())

                def forward(self, x):
                    return x * self.fc(self.pool(x))


            class YBlock(nn.Module):
                def __init__(self, in_channels, out_channels, stride=1):
                    super().__init__()
                    self.shortcut = nn.Identity()
                    if in_channels != out_channels or stride != 1:
                        self.shortcut = nn.Conv2d(in_channels, out_channels, 1, bias=False)
                    self.layer = nn.Sequential(
                        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
                        SqueezeExcite(out_channels, in_channels // 4),
                        nn.Conv2d(out_channels, out_channels, 1, bias=False),
                    )

                def forward(self, x):
                    return self.layer(x) + self.shortcut(x)
            """,
            expect=((18, 60),),
            note="RegNet's Y layer with the shortcut's stride lost; the squeeze-and-excitation gate in the main path "
                 "keeps the width (`x * gate`)",
        ),
        Invalid(
            """
            class ConvLayer(nn.Module):
                def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, activation=True):
                    super().__init__()
                    self.convolution = nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2,
                                                 bias=False)
                    self.normalization = nn.BatchNorm2d(out_channels)
                    self.activation = nn.ReLU() if activation else nn.Identity()

                def forward(self, x):
                    return self.activation(self.normalization(self.convolution(x)))


            class BottleNeckLayer(nn.Module):
                def __init__(self, in_channels, out_channels, stride=1, reduction=4, downsample_in_bottleneck=False):
                    super().__init__()
                    reduced = out_channels // reduction
                    self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                                  nn.BatchNorm2d(out_channels))
                    self.layer = nn.Sequential(
                        ConvLayer(in_channels, reduced, kernel_size=1),
                        ConvLayer(reduced, reduced, stride=stride if not downsample_in_bottleneck else 1),
                        ConvLayer(reduced, out_channels, kernel_size=1, activation=False),
                    )

                def forward(self, x):
                    return torch.relu(self.layer(x) + self.shortcut(x))
            """,
            expect=((17, 79),),
            note="Hugging Face's ResNet bottleneck with the first conv's `stride=stride if "
                 "downsample_in_bottleneck else 1` lost: the flag that places the stride in an argument splits "
                 "the configurations, and with `downsample_in_bottleneck` no layer of the main path strides",
        ),
        Invalid(
            """
            def drop_path(x, drop_prob: float = 0.0, training: bool = False):
                if drop_prob == 0.0 or not training:
                    return x
                keep = 1 - drop_prob
                mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
                return x * mask.div_(keep)


            class DropPath(nn.Module):
                def __init__(self, drop_prob=0.0):
                    super().__init__()
                    self.drop_prob = drop_prob

                def forward(self, x):
                    return drop_path(x, self.drop_prob, self.training)


            class NextBlock(nn.Module):
                def __init__(self, in_chs, out_chs, stride=1, drop_path_rate=0.0):
                    super().__init__()
                    self.conv_dw = nn.Conv2d(in_chs, out_chs, 7, padding=3, groups=in_chs)
                    self.norm = nn.LayerNorm(out_chs)
                    self.fc = nn.Linear(out_chs, out_chs)
                    self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0.0 else nn.Identity()
                    self.shortcut = nn.Conv2d(in_chs, out_chs, 1, stride=stride)

                def forward(self, x):
                    shortcut = x
                    x = self.conv_dw(x).permute(0, 2, 3, 1)
                    x = self.fc(self.norm(x)).permute(0, 3, 1, 2)
                    return self.drop_path(x) + self.shortcut(shortcut)
            """,
            expect=((25, 62),),
            note="ConvNeXt's depthwise conv with its stride lost: the main path goes channels-last and back "
                 "(`permute` keeps the sizes) and through a stochastic-depth module whose helper returns its "
                 "input or the input times a mask made from it",
        ),
        Invalid(
            """
            class Block(nn.Module):
                def __init__(self, c_in, c_out, stride=1):
                    super().__init__()
                    self.skip = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))
                    self.block = nn.Sequential(
                        nn.Conv2d(c_in, c_out, 3, padding=1, stride=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
                        nn.Conv2d(c_out, c_out, 3, padding=1, stride=1, bias=False), nn.BatchNorm2d(c_out))

                def forward(self, x):
                    return self.block(x) + self.skip(x)
            """,
            expect=((4, 68),),
            note="seed 003: only the shortcut strides",
        ),
        Invalid(
            """
            class Block(nn.Module):
                def __init__(self, c, stride=2):
                    super().__init__()
                    self.conv1 = nn.Conv2d(c, c, 3, stride=stride, padding=1)
                    self.conv2 = nn.Conv2d(c, c, 3, stride=stride, padding=1)
                    self.down = nn.Conv2d(c, c, 1, stride=stride)

                def forward(self, x):
                    return self.conv2(self.conv1(x)) + self.down(x)
            """,
            expect=((5, 48),),
            note="the main path strides twice",
        ),
        Invalid(
            """
            class Block(nn.Module):
                def __init__(self, c_in, c_out, stride=1):
                    super().__init__()
                    self.conv = nn.Conv2d(c_in, c_out, 3, stride, 1)
                    if c_in != c_out:
                        self.shortcut = nn.Conv2d(c_in, c_out, 1, stride)
                    else:
                        self.shortcut = nn.Identity()

                def forward(self, x):
                    return self.conv(x) + self.shortcut(x)
            """,
            expect=((5, 12),),
            note="the guard tests only the channels",
        ),
        Invalid(
            """
            class Block(nn.Module):
                def __init__(self, c, stride=1):
                    super().__init__()
                    self.conv = nn.Conv2d(c, c, 3, stride, 1)

                def forward(self, x):
                    return x + self.conv(x)
            """,
            expect=((4, 40),),
            note="the main path strides and the shortcut is the raw input",
        ),
        Invalid(
            """
            def conv1x1_block(in_channels, out_channels, stride=1, bias=False):
                return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=bias),
                                     nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


            class SpatialGate(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.conv = nn.Conv2d(2, 1, 7, padding=3)

                def forward(self, x):
                    pooled = torch.cat((x.max(dim=1)[0].unsqueeze(1), x.mean(dim=1).unsqueeze(1)), dim=1)
                    return x * torch.sigmoid(self.conv(pooled))


            class SqueezeUnit(nn.Module):
                def __init__(self, in_channels, out_channels, stride):
                    super().__init__()
                    self.reduce = conv1x1_block(
                        in_channels=in_channels,
                        out_channels=in_channels // 2,
                        bias=True)
                    self.expand = conv1x1_block(
                        in_channels=in_channels // 2,
                        out_channels=out_channels,
                        bias=True)
                    self.gate = SpatialGate()
                    self.identity_conv = conv1x1_block(
                        in_channels=in_channels,
                        out_channels=out_channels,
                        stride=stride)

                def forward(self, x):
                    return self.gate(self.expand(self.reduce(x))) + self.identity_conv(x)
            """,
            expect=((31, 20),),
            note="SqueezeNext's unit with its stride lost from the first 1x1 conv (a path without a 3x3 conv: the "
                 "stride goes onto the first conv, where the keywords put it); the spatial gate `x * gate(x)` keeps "
                 "the resolution of what it scales",
            fix=(
                ('                        out_channels=in_channels // 2,\n',
                 '                        out_channels=in_channels // 2,\n                        stride=stride,\n'),
            ),
        ),
        Invalid(
            """
            class BasicBody(nn.Module):
                def __init__(self, in_channels, out_channels, stride):
                    super().__init__()
                    self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
                    self.bn1 = nn.BatchNorm2d(out_channels)
                    self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
                    self.bn2 = nn.BatchNorm2d(out_channels)

                def forward(self, x):
                    return self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))


            class ResDropUnit(nn.Module):
                def __init__(self, in_channels, out_channels, stride, life_prob=0.9):
                    super().__init__()
                    self.life_prob = life_prob
                    self.body = BasicBody(
                        in_channels=in_channels,
                        out_channels=out_channels,
                        stride=1)
                    self.identity_conv = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                                       nn.BatchNorm2d(out_channels))

                def forward(self, x):
                    identity = self.identity_conv(x)
                    x = self.body(x)
                    if self.training:
                        b = torch.bernoulli(torch.full((1,), self.life_prob, dtype=x.dtype, device=x.device))
                        x = float(b) / self.life_prob * x
                    return torch.relu(x + identity)
            """,
            expect=((21, 84),),
            note="a stochastic-depth unit (`float(b) / p * x` scales the main path) whose body module was built "
                 "with `stride=1`: the fix strides it where it is built",
            fix=(("stride=1)", "stride=stride)"),),
        ),
    )


def _check(block: BlockModel, world: World, flow: Flow, residual: Residual) -> Optional[Violation]:
    s_main, s_skip = stride_of(flow, residual.main), stride_of(flow, residual.skip)
    if s_main is None or s_skip is None or GLOBAL in (s_main, s_skip):
        return None
    facts = residual.facts
    main, skip = facts.norm(s_main), facts.norm(s_skip)
    difference = differ(main, skip, facts, block.numeric_defaults())
    if difference is None:
        return None
    expect = _with_argument_choices({"kind": "shape-error", "dim": "spatial", **difference.expect()}, block, world,
                                    (main, skip))
    main_strided = _strided_sites(residual.main, facts)
    skip_strided = _strided_sites(residual.skip, facts)
    detail = f"the main path reduces the resolution by `{main.render()}` and the shortcut by `{skip.render()}`"
    if main == ONE and skip_strided:
        if skip_strided[-1][0].family == "caller" and unused_stride_parameter(block) is not None:
            return None  # the block ignores its stride: unused-stride reports it, with no assumption about the caller
        assumed = skip_strided[-1][0].assumption
        note = f" (assuming {assumed})" if skip_strided[-1][0].family == "caller" and assumed else ""
        return Violation(skip_strided[-1][1], f"{detail}: the shortcut strides but the main path never does, so the "
                         f"add fails {_fails_when(skip, world, skip_strided[-1][0])}{note}",
                         help="apply the stride to the first 3x3 conv of the main path as well",
                         expect={**expect, "stride": skip.render()},
                         fix=_stride_onto_main_path(residual, skip_strided[-1][0], world))
    if skip == ONE and main_strided:
        guard = _channels_only_guard(block, world, residual, main)
        if guard is CALLER_SWITCH:
            return None  # the caller chooses the identity, with the stride it passes (`shortcut: bool`)
        if guard is not None:
            return Violation(guard, f"{detail}: the projection is built only when `{code_of(guard)}`, so with equal "
                             f"widths and {main.render()} != 1 the identity shortcut keeps the full resolution",
                             help=f"also build the projection when {main.render()} != 1",
                             expect={**expect, "stride": main.render()},
                             fix=_widen_guard(guard, main_strided[0][0]) if len(main_strided) == 1 else None)
        return Violation(main_strided[-1][1], f"{detail}: the main path strides but the shortcut does not, so the add "
                         f"fails {_fails_when(main, world, main_strided[-1][0])}",
                         help="give the shortcut the same stride (a strided 1x1 projection or pooling)",
                         expect={**expect, "stride": main.render()},
                         fix=_stride_onto_shortcut(residual, main_strided[0][0]) if len(main_strided) == 1 else None)
    if len(main_strided) >= 2:
        return Violation(main_strided[-1][1], f"{detail}: the stride is applied twice on the main path",
                         help="keep the stride on the first strided conv only",
                         expect={**expect, "stride": main.render()},
                         # the same layer applied twice: unstriding it would unstride both
                         fix=None if any(spec is main_strided[-1][0] for spec, _ in main_strided[:-1])
                         else _unstride(main_strided[-1][0]))
    return None


STRIDE_INDEX = CONV_SIGNATURE.index("stride")


def _fails_when(stride: Num, world: World, strided: LayerSpec) -> str:
    """When the add fails, for the message: ``whenever stride != 1``; for a
    constant stride, the conditions under which ``__init__`` builds the
    strided layer (timm's ``s2d == 1`` space-to-depth conv), not the
    nonsense ``whenever 2 != 1``."""
    if stride.const_value() is None:
        # a layer argument chosen by a flag (`stride if downsample_in_bottleneck else 1`) split the world
        chosen = [_decision_text(d.node.test, d.taken) for d in world.decisions if isinstance(d.node, cst.IfExp)]
        return f"whenever {stride.render()} != 1" + "".join(f" and {c}" for c in chosen)
    for assigned in world.attrs.values():
        if assigned.decisions and _holds(assigned.loc.value, strided):
            tests = []
            for decision in assigned.decisions:
                text = code_of(getattr(decision.node, "test", decision.node))
                tests.append(f"`{text}`" if decision.taken else f"not `{text}`")
            return "when " + " and ".join(tests)
    return "always"


def _with_argument_choices(expect: dict, block: BlockModel, world: World, strides) -> dict:
    """The world's choices of a layer argument by a flag (``stride=stride if
    downsample_in_bottleneck else 1``) are conditions of the failure too: a
    run with the flag the other way proves nothing (the trace must not
    refute the finding with it), and the configuration to try sets it."""
    chosen = [(d.node.test, d.taken) for d in world.decisions if isinstance(d.node, cst.IfExp)]
    if not chosen:
        return expect
    conditions = list(expect.get("conditions") or [])
    config = dict(expect.get("config") or {})
    parameters = block.parameter_names()
    for test, taken in chosen:
        text = code_of(test)
        conditions.append(f"({text})" if taken else f"not ({text})")
        if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
            test, taken = test.expression, not taken
        if isinstance(test, cst.Name) and test.value in parameters:
            config[test.value] = int(taken)
    for stride in strides:
        name = stride.render()
        if name in parameters and name not in config:
            config[name] = 2
    expect = {**expect, "conditions": conditions}
    if config:
        expect["config"] = config
    return expect


def _decision_text(test, taken: bool) -> str:
    """A test as decided, for a message: `flag`, or not `flag` (`not flag`
    taken false reads `flag`)."""
    if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
        test, taken = test.expression, not taken
    return f"`{code_of(test)}`" if taken else f"not `{code_of(test)}`"


def _holds(value, spec: LayerSpec) -> bool:
    """An attribute's value is that layer, or may be (one of its alternatives,
    the same object or built by the same expression)."""
    return any(isinstance(o, LayerV) and (o.spec is spec or spec.site is not None and o.spec.site is spec.site)
               for o in possible_values(value))


def _stride_text(spec: LayerSpec) -> Optional[str]:
    """The stride as the class writes it for this layer (for a module class
    or a container: for the first of its convs that has one written)."""
    text = source_text(written_argument(spec, "stride"))
    if text is None and spec.family in ("container", "composite"):
        for child in spec.children:
            if isinstance(child.loc.value, LayerV):
                text = _stride_text(child.loc.value.spec)
                if text is not None:
                    break
    return text


def _stride_onto_main_path(residual: Residual, strided_shortcut: LayerSpec, world: World) -> Optional[FixPlan]:
    """Give the main path's conv the shortcut's stride: one whose stride is
    written as a literal 1 (`conv3x3(planes, planes, 1)`, or the call that
    builds a main-path module, `body_class(..., stride=1)`), else the first
    spatial one, else (a path of 1x1 and 1xk convs: SqueezeNext) the first."""
    stride = _stride_text(strided_shortcut)
    if stride is None:
        return None
    for layer in main_chain(residual.main):
        built = world.attrs.get(layer.attr) if layer.attr else None
        call = built.stmt.value if built is not None and isinstance(built.stmt, cst.Assign) else None
        written = [arg for arg in call.args if arg.keyword is not None and arg.keyword.value == "stride"] \
            if isinstance(call, cst.Call) else []
        if len(written) == 1 and (source_text(written[0].value) or "").strip() == "1":
            return FixPlan(f"stride `self.{layer.attr}` of the main path by `{stride}`", UNSAFE,
                           [replace(written[0].value, stride)])
    convs = _main_path_convs(residual.main)
    spatial = []
    for spec in convs:
        kernel = as_int_pair(spec.arg("kernel_size"))
        if kernel is not None and kernel.const_value() is not None and kernel.const_value() > 1:
            spatial.append((spec, kernel))
    written_one = [(spec, kernel) for spec, kernel in spatial
                   if (source_text(written_argument(spec, "stride")) or "").strip() == "1"]
    first = [(spec, as_int_pair(spec.arg("kernel_size"))) for spec in convs[:1]]
    for spec, kernel in (written_one or spatial or first)[:1]:
        if sum(other is spec for other in convs) > 1:
            return None  # (a layer applied twice would stride twice)
        operation = _set_stride(spec, stride)
        if operation is None:
            return None
        shape = f"{kernel.render()}x{kernel.render()} " if kernel is not None else ""
        return FixPlan(f"stride the {shape}conv `{spec.label}` of the main path by `{stride}`", UNSAFE, [operation])
    return None


def _stride_onto_shortcut(residual: Residual, strided_main: LayerSpec) -> Optional[FixPlan]:
    """Give the shortcut's one conv (a projection built with stride 1) the
    main path's stride."""
    stride = _stride_text(strided_main)
    convs = _main_path_convs(residual.skip)
    if stride is None or len(convs) != 1:
        return None
    operation = _set_stride(convs[0], stride)
    if operation is None:
        return None
    return FixPlan(f"stride the shortcut's `{convs[0].label}` by `{stride}`", UNSAFE, [operation])


def _set_stride(spec: LayerSpec, stride: str):
    """The edit that gives a conv this stride, where the code states it: its
    stride argument as written (also at a helper's call), its constructor
    call, or the call of the helper or module class that builds it and
    passes its own `stride` on."""
    written = written_argument(spec, "stride")
    if written is not None:
        return replace(written, stride)
    call = local_call(spec)
    if call is not None:
        return set_argument(call, "stride", stride, STRIDE_INDEX)
    passed = spec.arg("stride")
    if isinstance(spec.site, cst.Call) and spec.site is not spec.call and passed is not None and not passed.local:
        # Built by a helper or module class with its default stride: pass it one
        # (the re-analysis, or the trace, shows whether it reaches the conv).
        return set_argument(spec.site, "stride", stride)
    return None


def _main_path_convs(value: FVal) -> List[LayerSpec]:
    out: List[LayerSpec] = []

    def expand(spec: LayerSpec) -> None:
        if spec.family in ("container", "composite"):
            for child in spec.children:
                if isinstance(child.loc.value, LayerV):
                    expand(child.loc.value.spec)
        elif spec.family == "conv":
            out.append(spec)

    for layer in reversed(main_chain(value)):
        if layer.spec is not None:
            expand(layer.spec)
    return out


def _widen_guard(guard: cst.CSTNode, strided: LayerSpec) -> Optional[FixPlan]:
    stride, test = _stride_text(strided), source_text(guard)
    if stride is None or test is None or f"{parenthesize(stride)} != 1" in test:
        return None  # the guard already tests it: the stride comes from elsewhere
    text = f"{parenthesize(stride)} != 1 or {parenthesize(test) if ' and ' in test or ' or ' in test else test}"
    return FixPlan(f"also build the projection when `{stride} != 1`", UNSAFE, [replace(guard, text)])


def _unstride(spec: LayerSpec) -> Optional[FixPlan]:
    call = local_call(spec)
    if call is None or written_argument(spec, "stride") is None:
        return None
    return FixPlan("keep the stride on the first strided conv only", UNSAFE,
                   [set_argument(call, "stride", "1", STRIDE_INDEX)])


def _strided_sites(value: FVal, facts: Facts) -> List[Tuple[LayerSpec, cst.CSTNode]]:
    """Layers on a path that change the resolution, input to output, with the
    node to point at (their ``stride`` argument where written).  A stride
    the path's facts make 1 (``stride`` where ``has_skip`` assumed
    ``stride == 1``) changes nothing."""
    out: List[Tuple[LayerSpec, cst.CSTNode]] = []
    for layer in reversed(main_chain(value)):
        if layer.spec is not None and layer.spec.family == "caller":
            if layer.spec.summary.stride is not None and layer.node is not None:
                out.append((layer.spec, layer.node))  # the caller's projection, where forward calls it
        elif layer.spec is not None:
            out.extend(_strided_in(layer.spec, facts))
    return out


def _strided_in(spec: LayerSpec, facts: Facts) -> List[Tuple[LayerSpec, cst.CSTNode]]:
    stride = spec.summary.stride
    if stride is None or facts.norm(stride) == ONE:
        return []
    if spec.family == "container":
        found = []
        for child in spec.children:
            if isinstance(child.loc.value, LayerV):
                found.extend(_strided_in(child.loc.value.spec, facts))
        return found
    node = report_node(spec, spec.arg("stride")) if spec.family in ("conv", "pool") else spec.site
    if spec.family == "pool" and (spec.arg("stride") is None or spec.arg("stride").node is None):
        node = report_node(spec, spec.arg("kernel_size"))
    return [(spec, node)] if node is not None else []


CALLER_SWITCH = cst.Name("caller_switch")  # a guard that is the caller's flag, not a test of the widths


def _channels_only_guard(block: BlockModel, world: World, residual: Residual, main_stride: Num) -> Optional[cst.CSTNode]:
    """The test that chose an identity shortcut without looking at the stride
    (CALLER_SWITCH when that test is a constructor flag the caller sets)."""
    stride_atoms = main_stride.atoms()
    for layer in main_chain(residual.skip) or []:
        assigned = world.attrs.get(layer.attr or "")
        if assigned is not None and isinstance(assigned.loc.value, AltV) and assigned.loc.value.test is not None:
            cond = assigned.loc.value.options[0][0]
            if caller_flag(block, cond):
                return CALLER_SWITCH
            if not mentions(cond, stride_atoms):
                return assigned.loc.value.test
    for name, assigned in world.attrs.items():
        if not _identity_like(assigned.loc.value) or not _projects_elsewhere(block, name):
            continue
        calls_it = any(layer.attr == name for layer in main_chain(residual.skip))
        if not calls_it and main_chain(residual.skip):
            continue
        for decision in assigned.decisions:
            if caller_flag(block, decision.cond):
                return CALLER_SWITCH
            if not mentions(decision.cond, stride_atoms):
                return decision.node
    return None


def _projects_elsewhere(block: BlockModel, name: str) -> bool:
    """In some other world ``self.<name>`` is a projection: the attribute is
    a shortcut that a test chose to leave as the identity here."""
    for wf in block.worlds:
        value = wf.world.attrs.get(name)
        if value is not None and isinstance(value.loc.value, LayerV) and projects(value.loc.value.spec):
            return True
    return False


def _identity_like(value) -> bool:
    if isinstance(value, NoneV):
        return True
    return isinstance(value, LayerV) and (value.spec.family == "identity" or (
        value.spec.family == "container" and value.spec.children_complete and not value.spec.children))
