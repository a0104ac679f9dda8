"""
## What it does
Finds a convolution whose `groups` does not divide its `in_channels` (or its
`out_channels`) as written: typically a depthwise conv with
`groups=hidden_dim` whose `in_channels` is `inp`.

## Why is this bad?
`nn.Conv2d` checks this at construction: *"in_channels must be divisible by
groups"*. The block cannot even be built for most arguments, and when it can
(an expansion ratio of 1) the conv silently is not the depthwise conv that was
meant. The rule only speaks when `groups` is itself a channel expression and
the division is provably not exact as written (`inp / (inp * ratio)`); a
cardinality such as `groups=32` or a `groups` argument is left to the caller,
and so is a conv grouped by one of its own widths next to an independent
other width: `groups=in_channels` is a depthwise conv with a channel
multiplier (the output is meant to be a multiple of the input), and a
helper that groups by `out_channels` states its own contract. Only
`groups=out_channels` written in the class beside an unrelated input width
is reported; and a conv from a width to itself (a depthwise conv, `hidden`
to `hidden`) grouped by another of the block's widths that shares no
parameter with it (`groups=out_channels` where `hidden` is
`int(in_channels * ratio)`), even where the hidden width is a call whose
divisibility cannot be worked out.

## Example
```python
hidden = inp * expand_ratio
self.dw = nn.Conv2d(inp, hidden, 3, padding=1, groups=hidden)
```

## Use instead
```python
self.dw = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
```

## Fix safety
The fix sets `groups` to the `in_channels` expression (a depthwise conv),
which divides both sides when the output is a multiple of the input. Unsafe:
the conv's parameter shape changes.

## References
- [`torch.nn.Conv2d`: groups](https://pytorch.org/docs/stable/generated/torch.nn.Conv2d.html)
"""
from __future__ import annotations

from typing import Iterator, List, Optional, Set

from resnetlint.model.query import (describe, find_configuration, as_num, AltV, BlockModel, Facts, FileAnalysis,
    LayerSpec, Num, parameters_of)
from resnetlint.fixes import CONV_SIGNATURE, UNSAFE, FixPlan, replace, set_argument
from resnetlint.nodes import local_call, report_node, source_text, written_argument
from resnetlint.rule import Invalid, Rule, Valid, Violation

GROUPS_INDEX = CONV_SIGNATURE.index("groups")
WIDTH_ARGS = ("in_channels", "out_channels", "num_features", "num_channels", "in_features", "out_features")


class GroupsMismatch(Rule):
    code = "RL205"
    name = "groups-mismatch"
    summary = "A conv's groups does not divide its channels"
    fix_availability = "sometimes"
    fix_safety = "unsafe"

    def check(self, block: BlockModel, analysis: FileAnalysis) -> Iterator[Violation]:
        for wf in block.worlds:
            world = wf.world
            layers = list(block.conditioned_layers(world))
            stated = _stated_widths([spec for spec, _ in layers], world.facts)
            channel_atoms = {atom for width in stated for atom in width.atoms()}
            widths = {width.render() for width in stated}
            defaults = block.numeric_defaults()
            for spec, facts in layers:
                for groups, narrowed in _groups_options(spec, facts):
                    found = _check(spec, narrowed, channel_atoms, defaults, groups) or \
                        _depthwise_slip(spec, narrowed, widths, groups)
                    if found is not None:
                        yield found
                        break

    VALID = (
        Valid(
            """
            class ConvFFN(nn.Module):
                def __init__(self, dim, hidden_dim, heads):
                    super().__init__()
                    self.fc1 = nn.Conv2d(dim, hidden_dim, 1)
                    self.dw = nn.Conv2d(hidden_dim, hidden_dim, 3, padding=1, groups=hidden_dim // 4)
                    self.pos = nn.Conv2d(dim, dim, 3, padding=1, groups=heads)
                    self.fc2 = nn.Conv2d(hidden_dim, dim, 1)

                def forward(self, x):
                    return x + self.fc2(self.dw(self.fc1(self.pos(x))))
            """,
            note="a conv from a width to itself grouped by a width derived from its own, or by a head count (no "
                 "layer's width): designs, not slips",
        ),
        Valid(
            """
            class Block(nn.Module):
                def __init__(self, inp, ratio, groups=1, cardinality=32):
                    super().__init__()
                    hidden = inp * ratio
                    self.dw = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
                    self.mult = nn.Conv2d(inp, inp * 2, 3, padding=1, groups=inp)
                    self.grouped = nn.Conv2d(inp, inp, 3, padding=1, groups=groups)
                    self.resnext = nn.Conv2d(inp, inp, 3, padding=1, groups=32)
                    self.card = nn.Conv2d(inp, inp, 3, padding=1, groups=cardinality)
            """,
        ),
        Valid(
            """
            class Bottleneck(nn.Module):
                def __init__(self, planes, groups=1, base_width=64):
                    super().__init__()
                    width = int(planes * (base_width / 64.0)) * groups
                    self.conv2 = nn.Conv2d(width, width, 3, padding=1, groups=groups)
            """,
            note="torchvision's ResNeXt width",
        ),
        Valid(
            """
            class SplitBlock(nn.Module):
                def __init__(self, c, e=0.5):
                    super().__init__()
                    half = int(c * e)
                    self.conv = nn.Conv2d(c, c, 3, padding=1, groups=half)
            """,
            note="a fractional ratio is taken at its default: half the width divides the width",
        ),
        Valid(
            """
            class SepConv(nn.Module):
                def __init__(self, cin, cout, stride):
                    super().__init__()
                    self.same = stride == 1 and cin == cout
                    self.conv = (nn.Conv2d(cin, cout, 3, padding=1, groups=cin) if self.same
                                 else nn.Conv2d(cin, cout, 3, stride=stride, padding=1))
            """,
            note="the grouped conv is built only when cin == cout",
        ),
        Valid(
            """
            class Pooling(nn.Module):
                def __init__(self, in_feature, out_feature, stride):
                    super().__init__()
                    self.conv = nn.Conv2d(in_feature, out_feature, stride + 1, stride=stride,
                                          padding=stride // 2, groups=in_feature)
            """,
            note="a depthwise conv with a channel multiplier: out_feature is meant to be a multiple of in_feature",
        ),
    )
    INVALID = (
        Invalid(
            """
            class InvertedResidual(nn.Module):
                def __init__(self, inp, oup, expand_ratio):
                    super().__init__()
                    hidden = inp * expand_ratio
                    self.dw = nn.Conv2d(inp, hidden, 3, padding=1, groups=hidden)
            """,
            expect=((5, 63),),
            note="groups=hidden but in_channels=inp",
        ),
        Invalid(
            """
            class Block(nn.Module):
                def __init__(self, in_channels, out_channels):
                    super().__init__()
                    self.dw = nn.Conv2d(in_channels, out_channels, 3, padding=1, groups=out_channels)
            """,
            expect=((4, 77),),
            note="groups follows the wrong side",
        ),
        Invalid(
            """
            class InvertedResidual(nn.Module):
                def __init__(self, in_channels, out_channels, expand_ratio):
                    super().__init__()
                    hidden = int(round(in_channels * expand_ratio))
                    self.expand = nn.Sequential(nn.Conv2d(in_channels, hidden, 1, bias=False), nn.BatchNorm2d(hidden),
                                                nn.ReLU6())
                    self.dw = nn.Sequential(nn.Conv2d(hidden, hidden, 3, padding=1, groups=out_channels, bias=False),
                                            nn.BatchNorm2d(hidden), nn.ReLU6())
                    self.project = nn.Sequential(nn.Conv2d(hidden, out_channels, 1, bias=False),
                                                 nn.BatchNorm2d(out_channels))
                    self.use_res = in_channels == out_channels

                def forward(self, x):
                    out = self.project(self.dw(self.expand(x)))
                    return x + out if self.use_res else out
            """,
            expect=((7, 80),),
            note="the depthwise conv of an inverted residual grouped by the block's output width; the hidden width is "
                 "a call (`int(round(...))`), so no divisibility can be worked out, but a conv from a width to "
                 "itself grouped by an unrelated width is the slip",
            fix=(
                ('                    self.dw = nn.Sequential(nn.Conv2d(hidden, hidden, 3, padding=1, groups=out_channels, bias=False),\n',
                 '                    self.dw = nn.Sequential(nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden, bias=False),\n'),
            ),
        ),
    )


def _stated_widths(specs, facts: Facts) -> List[Num]:
    """Every width a layer of the block states (normalised)."""
    return [facts.norm(num) for spec in specs for name in WIDTH_ARGS
            for num in [as_num(spec.arg(name))] if num is not None]


def _depthwise_slip(spec: LayerSpec, facts: Facts, widths: Set[str], groups_value=None) -> Optional[Violation]:
    """A conv from a width to itself (a depthwise conv: ``hidden`` to
    ``hidden``) grouped by another of the block's widths computed from
    other parameters (``groups=out_channels``, where ``hidden`` is
    ``int(in_channels * ratio)``): the width it was meant to group by is its
    own.  Found even where the hidden width is a call the model cannot
    evaluate, which keeps the divisibility test silent."""
    if spec.family != "conv":
        return None
    groups_loc = spec.arg("groups")
    groups = as_num(groups_value if groups_value is not None else groups_loc)
    in_channels, out_channels = as_num(spec.arg("in_channels")), as_num(spec.arg("out_channels"))
    if groups is None or in_channels is None or out_channels is None or groups.const_value() is not None:
        return None
    groups, width = facts.norm(groups), facts.norm(in_channels)
    if width != facts.norm(out_channels) or groups == width or groups.render() not in widths:
        return None  # not a conv from a width to itself, or grouped by something that is no layer's width
    own, other = parameters_of(width), parameters_of(groups)
    if not own or not other or own & other:
        return None  # grouped by a width derived from its own (`hidden // 4`, `in_channels` of `in_channels * 4`)
    node = report_node(spec, groups_loc)
    if node is None:
        return None
    in_text = source_text(written_argument(spec, "in_channels"))
    written_groups = written_argument(spec, "groups")
    fix = None
    if in_text is not None and written_groups is not None:
        fix = FixPlan(f"group by the conv's own width (`groups={in_text}`)", UNSAFE, [replace(written_groups, in_text)])
    return Violation(
        node,
        f"`groups={groups.render()}` on `{spec.label}` from `{width.render()}` to `{width.render()}` channels: a "
        f"conv from a width to itself groups by that width (a depthwise conv), and `{groups.render()}` is another "
        f"of the block's widths: the conv raises \"in_channels must be divisible by groups\" whenever it does not "
        f"divide `{width.render()}`",
        help=f"use groups = {width.render()} for a depthwise conv",
        expect={"kind": "construction-error", "text": "in_channels must be divisible by groups",
                "conditions": [f"({width.render()}) % ({groups.render()}) != 0"]},
        fix=fix,
    )


def _divides(divisor: Num, value: Num) -> Optional[bool]:
    """Whether ``divisor`` divides ``value`` as written: None when unknowable."""
    constant = divisor.const_value()
    if constant is not None:
        mine = value.const_value()
        if mine is None or constant == 0:
            return None
        return mine % constant == 0
    if len(divisor.terms) != 1:
        return None
    monomial, coefficient = dict(divisor.terms[0][0]), divisor.terms[0][1]
    whole = True
    for mono, factor in value.terms:
        powers = dict(mono)
        if any(powers.get(atom, 0) < power for atom, power in monomial.items()):
            return False
        whole = whole and (factor / coefficient).denominator == 1
    # ``dim * 2`` does not divide ``dim`` as written, though its atoms do:
    # which configurations it divides is for find_configuration to tell
    return True if whole else None


def _groups_options(spec: LayerSpec, facts: Facts):
    """``groups`` as written, or each value it may take (``dim if use_dwconv
    else 1``) with the facts under which it takes it."""
    loc = spec.arg("groups")
    if loc is None or not isinstance(loc.value, AltV):
        return [(loc, facts)]
    out = []
    for cond, option in loc.value.options:
        narrowed = facts.assume(cond, True)
        if narrowed is not None:
            out.append((option, narrowed))
    return out


def _check(spec: LayerSpec, facts: Facts, channel_atoms: Set[str], defaults, groups_value=None) -> Optional[Violation]:
    """``groups`` must divide both the input and the output width."""
    if spec.family != "conv":
        return None
    groups_loc = spec.arg("groups")
    groups = as_num(groups_value if groups_value is not None else groups_loc)
    if groups is None or groups.const_value() == 1:
        return None
    groups = facts.norm(groups)
    if not groups.is_opaque_free():
        return None
    if groups.const_value() is None and not groups.atoms() <= channel_atoms:
        return None  # a cardinality or a ``groups`` argument: the caller's business
    in_channels = as_num(spec.arg("in_channels"))
    if _grouped_by_a_free_width(spec, groups_loc, groups, facts):
        return None
    for name in ("in_channels", "out_channels"):
        width = as_num(spec.arg(name))
        if width is None:
            continue
        width = facts.norm(width)
        if not width.is_opaque_free():
            continue
        configuration = _not_divisible(groups, width, facts, defaults)
        if configuration is None:
            continue
        node = report_node(spec, groups_loc)
        if node is None:
            return None
        fix = None
        in_text = source_text(written_argument(spec, "in_channels"))
        out_channels = as_num(spec.arg("out_channels"))
        if in_text is not None and local_call(spec) is not None and name == "in_channels" and \
                in_channels is not None and out_channels is not None and \
                _divides(facts.norm(in_channels), facts.norm(out_channels)) is True:
            fix = FixPlan(f"group by the input width (`groups={in_text}`)", UNSAFE,
                          [set_argument(local_call(spec), "groups", in_text, GROUPS_INDEX)])
        when = f" (e.g. with {describe(configuration)})" if configuration else ""
        return Violation(
            node,
            f"`groups={groups.render()}` does not divide `{name}={width.render()}`{when}: `{spec.label}` raises "
            f"\"{name} must be divisible by groups\"",
            help=f"use groups = in_channels ({in_channels.render() if in_channels is not None else '?'}) "
                 "for a depthwise conv, or make the widths match",
            expect={"kind": "construction-error", "text": f"{name} must be divisible by groups",
                    "conditions": [f"({width.render()}) % ({groups.render()}) != 0"],
                    **({"config": configuration} if configuration else {})},
            fix=fix,
        )
    return None


def _grouped_by_a_free_width(spec: LayerSpec, groups_loc, groups: Num, facts: Facts) -> bool:
    """``groups`` is one of the conv's own widths and the other width is a
    free parameter of its own: a design, not a slip.  ``groups=in_channels``
    is a depthwise conv with a channel multiplier (PiT doubles the width
    that way; the output is meant to be a multiple of the input); a helper
    that groups by ``out_channels`` (pytorchcv's ``dwconv_block``) states
    its own contract.  Only ``groups=out_channels`` written in the class
    itself, next to an unrelated input width, is the slip the rule is for;
    and a width derived from the other (``inp`` and ``inp * ratio``) is
    never free."""
    widths = {}
    for name in ("in_channels", "out_channels"):
        width = as_num(spec.arg(name))
        if width is None:
            return False
        widths[name] = facts.norm(width)
    if widths["in_channels"].atoms() & widths["out_channels"].atoms():
        return False
    if groups == widths["in_channels"]:
        return True
    written_here = local_call(spec) is not None and groups_loc is not None and groups_loc.local
    return groups == widths["out_channels"] and not written_here


def _not_divisible(groups: Num, width: Num, facts: Facts, defaults) -> Optional[dict]:
    """A configuration in which ``groups`` does not divide ``width`` (``{}``
    when neither depends on a parameter), or None.  Not a multiple as a
    polynomial is not enough: ``in_channels`` divides
    ``out_channels * ratio`` for some arguments, so the message names a
    configuration where it does not."""
    divides = _divides(groups, width)
    if divides is True or (divides is None and groups.const_value() is not None):
        return None  # a constant count of groups: the caller picks widths it divides
    return find_configuration([groups, width], lambda g, w: g > 0 and w > 0 and w % g != 0, facts, defaults)
