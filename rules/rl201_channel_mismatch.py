"""
## What it does
Finds consecutive layers whose channel counts do not chain: a conv whose
`in_channels` differs from the `out_channels` of the layer before it, or a
norm whose `num_features` (`num_channels` for GroupNorm) differs from the width
it receives. Layers are chained in `nn.Sequential` order and in `forward`
order (never in `__init__` order, where branches and shortcuts interleave).

## Why is this bad?
The block crashes with `expected input[...] to have C channels` for most
constructor arguments, and only for some: with `in_channels == out_channels`
the mistake is invisible, so a test with equal widths passes and the bug ships.

The rule compares symbolic expressions of the constructor's parameters and
only reports expressions that are provably different (`in_channels` vs
`out_channels`, `planes` vs `planes * 4`). An unknown helper or a dynamic width
(`make_divisible(...)`, a config lookup) keeps it silent.

## Example
```python
self.block = nn.Sequential(
    nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
    nn.BatchNorm2d(out_channels),
    nn.ReLU(),
    nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
    nn.BatchNorm2d(out_channels),
)
```

## Use instead
```python
    nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
```

## Fix safety
The fix replaces the offending argument with the width the previous layer
produces, where it is written: in the layer's constructor call, or in the
call of the helper or layer-class parameter that builds it
(`conv3x3(inplanes, planes)` -> `conv3x3(planes, planes)`,
`norm_layer(inplanes)` -> `norm_layer(planes)`). It is unsafe: in every
configuration where the two widths differ the layer's weight changes shape
(those configurations crashed in `forward`, but they build, and a
`state_dict` saved from one no longer loads), and the width it writes is the
model's reading of the layers before it, which may rest on a contract (a
`norm_layer` parameter, a helper from another module).

## References
- [`torch.nn.Conv2d`](https://pytorch.org/docs/stable/generated/torch.nn.Conv2d.html)
- [`torch.nn.BatchNorm2d`](https://pytorch.org/docs/stable/generated/torch.nn.BatchNorm2d.html)
"""
from __future__ import annotations

from typing import Dict, Iterator, List, Optional, Set, Tuple

import libcst as cst

from resnetlint.model.query import (AltV, BlockModel, chain_links, channels_of, differ, Facts, FileAnalysis, Flow, FVal,
    Item, LayerSpec, LayerV, Loc, Num, strip_elementwise)
from resnetlint.fixes import UNSAFE, FixPlan, replace
from resnetlint.nodes import code_of, report_node, source_text, width_argument_name, written_argument
from resnetlint.rule import Invalid, Rule, Valid, Violation


class ChannelMismatch(Rule):
    code = "RL201"
    name = "channel-mismatch"
    summary = "Consecutive layers disagree on the number of channels"
    fix_availability = "sometimes"
    fix_safety = "unsafe"

    def check(self, block: BlockModel, analysis: FileAnalysis) -> Iterator[Violation]:
        for wf in block.worlds:
            for _, children in block.sequential_bodies(wf.world):
                yield from _sequential_links(children, wf.world.facts, block.numeric_defaults())
        fed = _widths_fed(block)
        defaults = block.numeric_defaults()
        for _, flow in block.flows():
            for found in _forward_links(flow, defaults):
                if len(fed.get(id(found.node), ())) > 1:
                    found.fix = None  # fed different widths in different places: no one value fits them all
                yield found

    VALID = (
        Valid(
            """
            class Block(nn.Module):
                def __init__(self, c_in, c_out):
                    super().__init__()
                    self.body = nn.Sequential(
                        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                        nn.BatchNorm2d(c_out),
                        nn.ReLU(),
                        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
                        nn.BatchNorm2d(c_out),
                    )
                    self.shortcut = nn.Conv2d(c_in, c_out, 1)

                def forward(self, x):
                    return self.body(x) + self.shortcut(x)
            """,
        ),
        Valid(
            """
            class Bottleneck(nn.Module):
                expansion = 4

                def __init__(self, inplanes, planes):
                    super().__init__()
                    self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
                    self.bn1 = nn.BatchNorm2d(planes)
                    self.shortcut = nn.Conv2d(inplanes, planes * self.expansion, 1, bias=False)
                    self.conv2 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
                    self.bn2 = nn.BatchNorm2d(planes * self.expansion)

                def forward(self, x):
                    out = self.bn1(self.conv1(x))
                    out = self.bn2(self.conv2(out))
                    return out + self.shortcut(x)
            """,
            note="the shortcut built between main-path layers is not chained",
        ),
        Valid(
            """
            class Stack(nn.Module):
                def __init__(self, c_in, c_out, n):
                    super().__init__()
                    layers = []
                    for i in range(n):
                        layers.append(nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=1))
                        layers.append(nn.BatchNorm2d(c_out))
                    self.body = nn.Sequential(*layers)
            """,
            note="widths that change from one loop iteration to the next",
        ),
        Valid(
            """
            class Block(nn.Module):
                def __init__(self, c_in, c_out):
                    super().__init__()
                    width = c_in
                    self.conv1 = nn.Conv2d(c_in, width, 1)
                    width = c_out
                    self.conv2 = nn.Conv2d(c_in, width, 1)

                def forward(self, x):
                    return torch.cat([self.conv1(x), self.conv2(x)], dim=1)
            """,
            note="a reassigned width variable and parallel branches",
        ),
        Valid(
            """
            class Block(nn.Module):
                def __init__(self, c_in, c_out):
                    super().__init__()
                    self.conv = nn.Conv2d(c_in, make_divisible(c_out), 1)
                    self.bn = nn.BatchNorm2d(c_out)

                def forward(self, x):
                    return self.bn(self.conv(x))
            """,
            note="an unknown helper: maybe equal, so silent",
        ),
    )
    INVALID = (
        Invalid(
            """
            class Block(nn.Module):
                def __init__(self, in_channels, out_channels):
                    super().__init__()
                    self.block = nn.Sequential(
                        nn.Conv2d(in_channels=in_channels, out_channels=out_channels, kernel_size=3, padding=1),
                        nn.BatchNorm2d(out_channels),
                        nn.ReLU(),
                        nn.Conv2d(in_channels=in_channels, out_channels=out_channels, kernel_size=3, padding=1),
                        nn.BatchNorm2d(out_channels))
            """,
            expect=((8, 35),),
            note="seed 003: the second conv takes in_channels",
        ),
        Invalid(
            """
            class Bottleneck(nn.Module):
                expansion = 4

                def __init__(self, inplanes, planes):
                    super().__init__()
                    self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
                    self.bn1 = nn.BatchNorm2d(planes)
                    self.conv2 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
                    self.bn2 = nn.BatchNorm2d(planes)

                def forward(self, x):
                    out = self.bn1(self.conv1(x))
                    return self.bn2(self.conv2(out))
            """,
            expect=((9, 35),),
            note="a norm sized for the narrow width after the expansion conv",
        ),
        Invalid(
            """
            class Block(nn.Module):
                def __init__(self, c_in, c_out):
                    super().__init__()
                    self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
                    self.conv2 = nn.Conv2d(c_in, c_out, 3, padding=1)
                    self.act = nn.ReLU()

                def forward(self, x):
                    return self.conv2(self.act(self.conv1(x)))
            """,
            expect=((5, 32),),
            note="a forward chain through an activation",
        ),
        Invalid(
            """
            class ConvBlock(nn.Module):
                def __init__(self, in_channels, out_channels, kernel_size, padding, stride=1):
                    super().__init__()
                    self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False)
                    self.bn = nn.BatchNorm2d(out_channels)

                def forward(self, x):
                    return torch.relu(self.bn(self.conv(x)))


            class SqueezeUnit(nn.Module):
                def __init__(self, in_channels, out_channels, stride):
                    super().__init__()
                    reduction = 1 if stride == 2 else 2
                    self.conv1 = ConvBlock(in_channels, in_channels // reduction, 1, 0, stride=stride)
                    self.conv2 = ConvBlock(
                        in_channels=in_channels // reduction,
                        out_channels=in_channels // reduction,
                        kernel_size=(1, 3),
                        padding=(0, 1))
                    self.conv3 = ConvBlock(
                        in_channels=out_channels,
                        out_channels=out_channels,
                        kernel_size=1,
                        padding=0)

                def forward(self, x):
                    return self.conv3(self.conv2(self.conv1(x)))
            """,
            expect=((21, 22),),
            note="SqueezeNext's unit, a module class fed the wrong width; the width the fix writes is the one the "
                 "previous layer states, the same expression whichever way `reduction` was chosen",
            fix=(
                ('                        in_channels=out_channels,\n',
                 '                        in_channels=in_channels // reduction,\n'),
            ),
        ),
        Invalid(
            """
            class ConvBlock(nn.Module):
                def __init__(self, in_channels, out_channels, padding=1, dilation=1):
                    super().__init__()
                    self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=padding, dilation=dilation)
                    self.activ = nn.ReLU(inplace=True)

                def forward(self, x):
                    return self.activ(self.conv(x))


            class RefinementBlock(nn.Module):
                def __init__(self, in_channels, out_channels):
                    super().__init__()
                    self.pre_conv = nn.Conv2d(in_channels, out_channels, 1)
                    self.body = nn.Sequential()
                    self.body.add_module("block1", ConvBlock(
                        in_channels=in_channels,
                        out_channels=out_channels))
                    self.body.add_module("block2", ConvBlock(
                        in_channels=out_channels,
                        out_channels=out_channels,
                        padding=2,
                        dilation=2))

                def forward(self, x):
                    x = self.pre_conv(x)
                    return x + self.body(x)
            """,
            expect=((15, 21),),
            note="lightweight OpenPose's refinement block: a Sequential of module classes fed the wrong width; the "
                 "fix edits the width its first layer takes, at the module class's call",
            fix=(("in_channels=in_channels,\n", "in_channels=out_channels,\n"),),
        ),
    )


def _mismatch(consumer: LayerSpec, width: Num, facts: Facts, producer_label: str,
              width_text: Optional[str] = None, defaults: Optional[Dict[str, int]] = None) -> Optional[Violation]:
    expected = summary_of_spec(consumer).in_channels
    if expected is None:
        return None
    got, want = facts.norm(width), facts.norm(expected)
    difference = differ(got, want, facts, defaults)
    if difference is None:
        return None
    arg_name = width_argument_name(consumer)
    arg = consumer.arg(arg_name) if arg_name else None
    node = report_node(consumer, arg)
    if node is None:
        return None
    what = f"`{arg_name}`" if arg_name else "its input width"
    fix = None
    written = _written_width(consumer)
    if written is not None:
        text = width_text or got.render()
        fix = FixPlan(f"use `{text}` for `{written[0]}`", UNSAFE, [replace(written[1], text)])
    assumed = f" (assuming {consumer.assumption})" if consumer.assumption and not consumer.ltype else ""
    return Violation(
        node,
        f"`{consumer.label}` expects {what} = `{want.render()}` but {producer_label} produces `{got.render()}` "
        f"channels{difference.when}{assumed}",
        help=f"use `{got.render()}` (the width the previous layer produces)",
        expect={"kind": "channel-error", "expected": want.render(), "got": got.render(), **difference.expect()},
        fix=fix,
    )


def _written_width(consumer: LayerSpec) -> Optional[Tuple[str, cst.CSTNode]]:
    """The argument, written in this class, that states the width a layer
    expects: its own (``nn.Conv2d(c_in, ...)``, also through a helper's call),
    or for a module class (``ConvBlock(in_channels=...)``) or a Sequential
    the one its first layer's width comes from."""
    site = None
    while consumer is not None:
        if consumer.family == "composite":
            site = consumer.site  # the innermost module class's call names the argument
        name = width_argument_name(consumer)
        written = written_argument(consumer, name) if name else None
        if written is not None:
            return (name, written) if site is None else _at_site(site, name, written)
        sequential = consumer.family == "container" and consumer.ltype is not None and consumer.ltype.name == "Sequential"
        if not (consumer.family == "composite" or sequential) or not consumer.children:
            return None
        first = consumer.children[0].loc.value
        consumer = first.spec if isinstance(first, LayerV) else None
    return None


INPUT_WIDTH_KEYWORDS = ("in_channels", "in_chs", "in_planes", "inplanes", "inp", "in_features", "in_dim")


def _at_site(site, name: str, written: cst.CSTNode) -> Optional[Tuple[str, cst.CSTNode]]:
    """The argument of a module class's call that gives its first layer the
    width: the one written there, unless the call writes the same text for
    another argument too (``ConvBlock(in_channels=c, out_channels=c)``:
    then the one named for the input width, or none)."""
    if not isinstance(site, cst.Call):
        return None
    text = source_text(written)
    same = [arg for arg in site.args if source_text(arg.value) == text]
    if len(same) == 1:
        keyword = same[0].keyword.value if same[0].keyword is not None else name
        return keyword, same[0].value
    named = [arg for arg in same if arg.keyword is not None and arg.keyword.value in INPUT_WIDTH_KEYWORDS]
    return (named[0].keyword.value, named[0].value) if len(named) == 1 else None


def _width_text(producer) -> Optional[str]:
    """The source text of the width the producer states (``out_channels``),
    so the fix reads like the code around it."""
    value = producer.loc.value
    if not isinstance(value, LayerV):
        return None
    spec = value.spec
    for name in ("out_channels", "out_features", "num_features", "num_channels"):
        text = source_text(written_argument(spec, name))
        if text is not None:
            return text
    if spec.family == "composite":  # a module class (`ConvBlock(out_channels=...)`): its last layer's width
        for child in reversed(spec.children):
            text = _width_text(child)
            if text is not None:
                return text
    return None


def summary_of_spec(spec: LayerSpec):
    return spec.summary


def _sequential_links(children, facts: Facts, defaults: Dict[str, int]) -> Iterator[Violation]:
    for producer, consumer, width in chain_links(children):
        producer_value = producer.loc.value
        label = f"the previous layer `{producer_value.spec.label}`" if isinstance(producer_value, LayerV) else "the previous layer"
        seen = set()
        for spec in _layer_options(consumer.loc.value):  # a layer, or each one it may be (all expect one width)
            found = _mismatch(spec, width, facts, label, _width_text(producer), defaults)
            if found is not None and id(found.node) not in seen:
                seen.add(id(found.node))
                yield found


def _layer_options(value) -> List[LayerSpec]:
    if isinstance(value, LayerV):
        return [value.spec]
    if isinstance(value, AltV):
        return [spec for _, option in value.options for spec in _layer_options(option.value)]
    return []


def _forward_links(flow: Flow, defaults: Dict[str, int]) -> Iterator[Violation]:
    for value in flow.values:
        if not value.is_layer or value.spec is None or not value.inputs:
            continue
        summary = value.spec.summary
        if summary.in_channels is None:
            continue
        facts = value.facts or flow.world.facts
        source = strip_elementwise(value.inputs[0])
        width = channels_of(flow, value.inputs[0], facts)
        if not isinstance(width, Num):
            continue
        producer = _producer(source)
        label = f"`{code_of(producer.node.func)}`" if producer is not None and producer.node is not None else "the previous layer"
        found = _mismatch(value.spec, width, facts, label, _producer_width_text(source), defaults)
        if found is not None:
            yield found


def _widths_fed(block: BlockModel) -> Dict[int, Set[str]]:
    """For each layer ``forward`` calls (by its reported node): the widths of
    the inputs it gets, wherever it is called ("?" when unknown), as the fix
    would write them: the producer's width argument as written where it has
    one (``in_channels // reduction_den`` is one width in every world, though
    each world's facts give it another value)."""
    fed: Dict[int, Set[str]] = {}
    for _, flow in block.flows():
        for value in flow.values:
            if not value.is_layer or value.spec is None or not value.inputs:
                continue
            arg_name = width_argument_name(value.spec)
            node = report_node(value.spec, value.spec.arg(arg_name) if arg_name else None)
            if node is None:
                continue
            facts = value.facts or flow.world.facts
            width = channels_of(flow, value.inputs[0], facts)
            text = _producer_width_text(strip_elementwise(value.inputs[0])) if isinstance(width, Num) else None
            fed.setdefault(id(node), set()).add(text or (facts.norm(width).render() if isinstance(width, Num) else "?"))
    return fed


def _producer_width_text(source: FVal) -> Optional[str]:
    producer = _producer(source)
    if producer is None or producer.spec is None:
        return None
    return _width_text(Item(Loc(LayerV(producer.spec))))


def _producer(value: FVal) -> Optional[FVal]:
    """The layer whose output width ``value`` carries."""
    current: Optional[FVal] = value
    while current is not None:
        if current.is_layer:
            summary = current.spec.summary if current.spec is not None else None
            if summary is not None and not summary.keeps_channels:
                return current
        if current.inputs and (current.is_layer or current.is_call):
            current = current.inputs[0]
        else:
            return None
    return None
