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
style of the surrounding code. It is safe when the model saw every step between
the last operation that sets the size and the conv (a step it cannot see
into keeps the rule silent) and no explicit pad comes after the conv on the
main path; it is unsafe when a pad follows the conv (padding the conv could
pad twice once that pad is meant to restore the size), and when the conv is
built by a helper or a module class (`FireConv(..., padding=0)`): the padding
is then set at that call, which is right only if the helper hands it to this
conv. No fix is offered for
a conv that an explicit pad layer (or `F.pad`) feeds in some way `__init__`
can run: the right fix is then the pad's, or the condition's.

## References
- [`torch.nn.Conv2d`: output shape](https://pytorch.org/docs/stable/generated/torch.nn.Conv2d.html)
"""
from __future__ import annotations

from typing import Iterator, List, Optional, Tuple

import libcst as cst

from resnetlint.model.query import (as_num, BlockModel, ChainStep, FileAnalysis, forward_chains, intended_residuals,
    LayerSpec, Loc, Num, provably_different, StrV, TupleV, unless)
from resnetlint.fixes import CONV_SIGNATURE, SAFE, UNSAFE, FixPlan, replace, set_argument
from resnetlint.nodes import local_call, parenthesize, report_node, source_text, written_argument
from resnetlint.rule import Invalid, Rule, Valid, Violation


class PaddingShapeChange(Rule):
    code = "RL204"
    name = "padding-shape-change"
    summary = "A stride-1 conv on the main path whose padding changes the spatial size"
    fix_availability = "sometimes"
    fix_safety = "safe"

    def check(self, block: BlockModel, analysis: FileAnalysis) -> Iterator[Violation]:
        for _, flow in block.flows():
            for residual in intended_residuals(flow):
                if any(problem is not None for chain in forward_chains(residual.skip)
                       for _, problem in _size_changes(chain)):
                    continue  # both paths lose the border: they may still agree
                yield from _report_main(block, residual.main)

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
        Invalid(
            """
            class FireConv(nn.Module):
                def __init__(self, in_channels, out_channels, kernel_size, padding):
                    super().__init__()
                    self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=kernel_size, padding=padding)
                    self.activ = nn.ReLU(inplace=True)

                def forward(self, x):
                    return self.activ(self.conv(x))


            class FireUnit(nn.Module):
                def __init__(self, in_channels, squeeze_channels, expand_channels):
                    super().__init__()
                    self.squeeze = FireConv(in_channels, squeeze_channels, kernel_size=1, padding=0)
                    self.expand1x1 = FireConv(squeeze_channels, expand_channels // 2, kernel_size=1, padding=0)
                    self.expand3x3 = FireConv(
                        in_channels=squeeze_channels,
                        out_channels=expand_channels // 2,
                        kernel_size=3,
                        padding=0)

                def forward(self, x):
                    y = self.squeeze(x)
                    return x + torch.cat((self.expand1x1(y), self.expand3x3(y)), dim=1)
            """,
            expect=((20, 21),),
            note="SqueezeNet's fire unit with the 3x3 expand built by a module class: the padding is set at "
                 "that call (unsafe: right only if the class hands it to its conv)",
            fix=(
                ('                        padding=0)\n',
                 '                        padding=1)\n'),
            ),
        ),
        Invalid(
            """
            def make_activation(activation):
                if activation == "relu":
                    return nn.ReLU(inplace=True)
                if activation == "swish":
                    return nn.SiLU()
                return activation


            class ConvBlock(nn.Module):
                def __init__(self, in_channels, out_channels, kernel_size, padding=0, activation="relu"):
                    super().__init__()
                    self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, bias=False)
                    self.bn = nn.BatchNorm2d(out_channels)
                    self.activ = make_activation(activation)

                def forward(self, x):
                    return self.activ(self.bn(self.conv(x)))


            def conv3x3_block(padding=1, **kwargs):
                return ConvBlock(kernel_size=3, padding=padding, **kwargs)


            class DarkUnit(nn.Module):
                def __init__(self, channels, activation="relu"):
                    super().__init__()
                    self.conv1 = ConvBlock(channels, channels // 2, 1, activation=activation)
                    self.conv2 = conv3x3_block(in_channels=channels // 2, out_channels=channels, padding=0, activation=activation)

                def forward(self, x):
                    return x + self.conv2(self.conv1(x))
            """,
            expect=((28, 94),),
            note="pytorchcv's DarkUnit with its 3x3 conv unpadded; the conv's module class applies one of several "
                 "activations (`make_activation`), each of which keeps the size",
            fix=(
                ('                    self.conv2 = conv3x3_block(in_channels=channels // 2, out_channels=channels, padding=0, activation=activation)\n',
                 '                    self.conv2 = conv3x3_block(in_channels=channels // 2, out_channels=channels, padding=1, activation=activation)\n'),
            ),
        ),
    )


PADDING_INDEX = CONV_SIGNATURE.index("padding")


def _report_main(block: BlockModel, main) -> Iterator[Violation]:
    """Each conv that changes the size on some chain into the main path's
    output (once, however many chains it is on)."""
    reported = set()
    for chain in forward_chains(main):
        for spec, problem in _size_changes(chain):
            if problem is None or id(spec) in reported:
                continue
            reported.add(id(spec))
            node, text, condition = problem
            when = f" whenever {condition}" if condition else ""
            yield Violation(
                node,
                f"`{spec.label}` with {text} changes the spatial size on the main path of a residual "
                f"block{when}: the add fails",
                help="use padding = dilation * (kernel_size - 1) // 2 (or padding=\"same\")",
                expect={"kind": "shape-error", "conditions": [condition] if condition else []},
                fix=_padding_fix(spec, safe=not _padded_after(main, spec))
                if not _padded_anywhere(block, spec) else None,
            )


def _padding_fix(spec: LayerSpec, safe: bool) -> Optional[FixPlan]:
    """``padding = dilation * (kernel_size - 1) // 2``, as a number when the
    kernel and dilation are literals, else as an expression of what is written."""
    edit = _padding_edit(spec)
    if edit is None:
        return None
    dims = spec.ltype.dims if spec.ltype is not None else 0
    kernel = _int_dims(spec.arg("kernel_size"), dims)
    dilation = _int_dims(spec.arg("dilation"), dims)
    kernel_text = source_text(written_argument(spec, "kernel_size"))
    dilation_text = source_text(written_argument(spec, "dilation"))
    literal = lambda text: text is None or text.replace(" ", "").strip("()").replace(",", "").isdigit()
    if kernel is not None and dilation is not None and literal(kernel_text) and literal(dilation_text):
        if any(d * (k - 1) % 2 for k, d in zip(kernel, dilation)):
            return None  # an even kernel: no symmetric padding keeps the size
        values = [d * (k - 1) // 2 for k, d in zip(kernel, dilation)]
        text = str(values[0]) if len(set(values)) == 1 else "(" + ", ".join(map(str, values)) + ")"
    elif kernel is not None and len(set(kernel)) == 1 and kernel[0] % 2 == 1 and dilation_text is not None \
            and literal(kernel_text):
        # A literal kernel and a dilation the caller chooses (`padding=dilation` for a 3x3).
        half = (kernel[0] - 1) // 2
        text = dilation_text.strip() if half == 1 else f"{half} * {parenthesize(dilation_text)}"
    elif kernel_text is not None and kernel is None:
        text = f"{parenthesize(kernel_text)} // 2"
        if dilation_text is not None and dilation_text.strip() != "1":
            text = f"{parenthesize(dilation_text)} * ({kernel_text} - 1) // 2"
    else:
        return None
    # A finding means every step between the last operation that sets the
    # size and this conv is known (an unknown one makes _size_changes
    # silent), and a conv an explicit pad feeds in any world gets no fix.
    # A padding given at a helper's call is right only if the helper passes it to this conv: unsafe.
    safe = safe and local_call(spec) is not None
    return FixPlan(f"pad with `{text}` so the size is kept", SAFE if safe else UNSAFE, [edit(text)])


def _padding_edit(spec: LayerSpec):
    """How to give the conv a padding, where the class states it: its
    constructor call, the padding argument as written at a helper's or
    module class's call (``FireConv(..., padding=0)``), or that call when
    it passes its ``padding`` on and relies on the default."""
    call = local_call(spec)
    if call is not None:
        return lambda text: set_argument(call, "padding", text, PADDING_INDEX)
    written = written_argument(spec, "padding")
    if written is not None:
        return lambda text: replace(written, text)
    passed = spec.arg("padding")
    if isinstance(spec.site, cst.Call) and spec.site is not spec.call and passed is not None and not passed.local:
        # the helper forwards its own `padding` parameter, left at its default
        return lambda text: set_argument(spec.site, "padding", text)
    return None


def _size_changes(chain: List[ChainStep]) -> List[Tuple[LayerSpec, Optional[Tuple[cst.CSTNode, str, str]]]]:
    """Each stride-1 convolution of a chain (forward order) with what is
    wrong with its size, given the explicit padding (pad layers, ``F.pad``)
    right before it."""
    out = []
    pending: Optional[List[Num]] = []  # padding added since the last conv, innermost last; None: unknown
    for step in chain:
        if step.reshapes:
            # a view, a slice or a pooling function: what the convs before it
            # did to the sizes is not what the add compares
            out, pending = [], None
            continue
        if step.is_pad:
            pending = _add_padding(pending, step.padding)
            continue
        spec = step.spec
        if spec is None or spec.family in ("pool", "adaptive_pool", "conv_transpose", "other", "unknown", "composite"):
            pending = [] if spec is not None and spec.family in ("pool", "adaptive_pool") else None
            continue
        if spec.family != "conv" or spec.subclass_forward:
            continue
        out.append((spec, _shrinking(spec, pending) if pending is not None else None))
        pending = []
    return out


def _add_padding(pending: Optional[List[Num]], padding: Optional[Tuple[Num, ...]]) -> Optional[List[Num]]:
    if pending is None or padding is None:
        return None
    longer, shorter = (list(pending), list(padding)) if len(pending) >= len(padding) else (list(padding), list(pending))
    offset = len(longer) - len(shorter)
    return [a + shorter[i - offset] if i >= offset else a for i, a in enumerate(longer)]


def _padded_before(chain: List[ChainStep], conv: LayerSpec) -> bool:
    """An explicit padding feeds this conv: the right fix may be the pad's."""
    previous = None
    for step in chain:
        if step.spec is conv or (conv.call is not None and step.spec is not None and step.spec.call is conv.call):
            return previous is not None and previous.is_pad
        if step.spec is None or step.spec.family not in ("act", "norm", "dropout", "identity"):
            previous = step
    return False


def _padded_after(main, conv: LayerSpec) -> bool:
    """An explicit pad follows this conv on a chain into the add (it may be
    meant to restore the size the conv takes away)."""
    for chain in forward_chains(main):
        at = next((i for i, step in enumerate(chain) if step.spec is conv), None)
        if at is not None and any(step.is_pad for step in chain[at + 1:]):
            return True
    return False


def _padded_anywhere(block: BlockModel, conv: LayerSpec) -> bool:
    """In some way ``__init__`` can run (each world builds its own layers
    from the same calls), an explicit padding feeds this conv: padding the
    conv would pad twice there (``if padding_type == "reflect":
    layers += [nn.ReflectionPad2d(1)]`` ... ``nn.Conv2d(..., padding=p)``)."""
    for _, flow in block.flows():
        for residual in intended_residuals(flow):
            if any(_padded_before(chain, conv) for chain in forward_chains(residual.main)):
                return True
    return False


def _per_dim(loc: Optional[Loc], dims: int) -> Optional[List[Num]]:
    if loc is None:
        return None
    value = loc.value
    if isinstance(value, TupleV):
        values = [as_num(i) for i in value.items]
        return values if all(v is not None for v in values) and len(values) == dims else None
    single = as_num(loc)
    return [single] * dims if single is not None else None


def _int_dims(loc: Optional[Loc], dims: int) -> Optional[List[int]]:
    nums = _per_dim(loc, dims)
    values = [n.int_value() for n in nums] if nums is not None else None
    return values if values is not None and all(v is not None for v in values) else None


def _shrinking(spec: LayerSpec, before: List[Num]) -> Optional[Tuple[cst.CSTNode, str, str]]:
    """(node, description, condition) when the conv changes the size at
    stride 1 (``condition`` says when, for a size written in terms of the
    block's parameters; "" when always)."""
    dims = spec.ltype.dims if spec.ltype is not None else 0
    if dims == 0 or len(before) > dims:
        return None
    before = [Num.const(0)] * (dims - len(before)) + list(before)
    stride = _per_dim(spec.arg("stride"), dims)
    kernel = _per_dim(spec.arg("kernel_size"), dims)
    dilation = _per_dim(spec.arg("dilation"), dims)
    if stride is None or any(s.const_value() != 1 for s in stride) or kernel is None or dilation is None:
        return None
    padding_loc = spec.arg("padding")
    if padding_loc is not None and isinstance(padding_loc.value, StrV):
        if padding_loc.value.text == "same":
            return None
        padding = [Num.const(0)] * dims if padding_loc.value.text == "valid" else None
    else:
        padding = _per_dim(padding_loc, dims)
    if padding is None or not all(n.is_opaque_free() for n in kernel + dilation + padding + before):
        return None
    if any(_negative(n) for n in kernel + dilation + padding) or any(_negative(k - Num.const(1)) for k in kernel):
        return None  # not a valid conv at all: constructing it raises
    for k, p, d, extra in zip(kernel, padding, dilation, before):
        total, needed = p + p + extra, d * (k - Num.const(1))
        if not provably_different(total, needed) or not total.atoms() <= needed.atoms():
            continue  # equal, or a padding the caller chooses (a parameter of its own)
        k_text = _text(kernel)
        p_text = _text(padding)
        text = f"kernel_size={k_text}, padding={p_text}" + (f", dilation={d.render()}" if d != Num.const(1) else "")
        if any(n != Num.const(0) for n in before):
            text += f" after an explicit pad adding {_text(before)} per dimension"
        written = padding_loc is not None and padding_loc.node is not None
        node = report_node(spec, padding_loc if written else spec.arg("kernel_size"))
        return (node, text, unless(total, needed)) if node is not None else None
    return None


def _negative(num: Num) -> bool:
    value = num.const_value()
    return value is not None and value < 0


def _text(values: List[Num]) -> str:
    rendered = [v.render() for v in values]
    return rendered[0] if len(set(rendered)) == 1 else "(" + ", ".join(rendered) + ")"
