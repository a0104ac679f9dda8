"""
## What it does
Finds an in-place operation that mutates a tensor still needed later:
`nn.ReLU(inplace=True)`, `F.relu(x, inplace=True)`, `.relu_()`, `.add_()` or an
in-place activation at the head of an `nn.Sequential` applied to the block
input while it is also kept as the identity (the pre-activation bug), and
`x += ...` on the block input itself.  An in-place method written inside an
argument (`self.conv1(x.relu_())`) changes `x` for every later read too: the
identity added at the end is the activated input.

## Why is this bad?
The saved identity is the same tensor, so the residual add sees the mutated
values: the block computes something else than written. Autograd usually
notices and backward fails with *"one of the variables needed for gradient
computation has been modified by an inplace operation"*; `x += ...` on the
input also mutates the caller's tensor. `out += identity` on a freshly
computed `out` is fine and is not reported.

## Example
```python
def forward(self, x):
    identity = x
    out = self.relu(x)          # nn.ReLU(inplace=True): identity is now relu(x)
    out = self.conv(out)
    return out + identity
```

## Use instead
```python
self.relu = nn.ReLU(inplace=False)
```

## Fix safety
The fix makes the operation out-of-place (`inplace=False`, `x = x + ...`,
`x.relu()`). It is unsafe only in that it uses a little more memory; the
result becomes what the code says.

## References
- [Autograd mechanics: in-place operations](https://pytorch.org/docs/stable/notes/autograd.html#in-place-operations-with-autograd)
- He et al., *Identity Mappings in Deep Residual Networks* (2016) (pre-activation blocks)
"""
from __future__ import annotations

from typing import Iterator, Optional

import libcst as cst

from resnetlint.fixes import UNSAFE, FixPlan, delete, replace, set_argument
from resnetlint.model.query import BlockModel, FileAnalysis, Flow, FVal, InplaceEvent, LayerV, walk
from resnetlint.nodes import code_of, layer_name, local_call, parenthesize, position_of, source_text
from resnetlint.rule import Invalid, Rule, Valid, Violation


class InplaceIdentity(Rule):
    code = "RL302"
    name = "inplace-identity"
    summary = "An in-place op mutates a tensor still needed later (e.g. the identity)"
    severity = "warning"
    fix_availability = "sometimes"
    fix_safety = "unsafe"

    def check(self, block: BlockModel, analysis: FileAnalysis) -> Iterator[Violation]:
        for _, flow in block.flows():
            for event in flow.inplace:
                found = _check(flow, event, block)
                if found is not None:
                    yield found

    VALID = (
        Valid(
            """
            class PreActBlock(nn.Module):
                def __init__(self, c):
                    super().__init__()
                    self.conv = nn.Conv2d(c, c, 3, padding=1)

                def forward(self, x):
                    x = x.relu_()
                    return x + self.conv(x)
            """,
            note="the assignment says `x` holds the activated input from here on",
        ),
        Valid(
            """
            from inspect import isfunction


            def create_activation_layer(activation):
                if isfunction(activation):
                    return activation()
                elif isinstance(activation, str):
                    if activation == "relu":
                        return nn.ReLU(inplace=True)
                    elif activation == "relu6":
                        return nn.ReLU6(inplace=True)
                    raise NotImplementedError()
                return activation


            class TwoBranchBlock(nn.Module):
                def __init__(self, channels, activation="relu"):
                    super().__init__()
                    self.h_bn = nn.BatchNorm2d(channels)
                    self.l_bn = nn.BatchNorm2d(channels)
                    self.activ = create_activation_layer(activation)

                def forward(self, hx, lx):
                    hx = self.activ(self.h_bn(hx))
                    lx = self.l_bn(lx)
                    lx = self.activ(lx)
                    return hx, lx
            """,
            note="one call of an activation that may be one of several layers: not a later use (pytorchcv's octave blocks)",
        ),
        Valid(
            """
            class Block(nn.Module):
                def __init__(self, c):
                    super().__init__()
                    self.conv = nn.Conv2d(c, c, 3, padding=1)
                    self.bn = nn.BatchNorm2d(c)
                    self.relu = nn.ReLU(inplace=True)

                def forward(self, x):
                    identity = x
                    out = self.bn(self.conv(x))
                    out += identity
                    return self.relu(out)
            """,
            note="in-place add on a BatchNorm output (its backward does not need it), then an in-place ReLU",
        ),
        Valid(
            """
            class PreAct(nn.Module):
                def __init__(self, c):
                    super().__init__()
                    self.bn = nn.BatchNorm2d(c)
                    self.relu = nn.ReLU(inplace=True)
                    self.conv = nn.Conv2d(c, c, 3, padding=1)

                def forward(self, x):
                    out = self.relu(self.bn(x))
                    return x + self.conv(out)
            """,
            note="the in-place activation acts on the norm's output",
        ),
    )
    INVALID = (
        Invalid(
            """
            class DenseResidual(nn.Module):
                def __init__(self, c):
                    super().__init__()
                    self.conv1 = nn.Conv2d(c, c, 3, padding=1)
                    self.conv2 = nn.Conv2d(2 * c, c, 3, padding=1)

                def forward(self, x):
                    x1 = self.conv1(x.relu_())
                    x2 = self.conv2(torch.cat((x, x1), 1))
                    return x2 * 0.2 + x
            """,
            expect=((8, 25),),
            note="an in-place activation inside an argument (ESRGAN's dense block): the concatenation and the "
                 "identity read the activated values",
        ),
        Invalid(
            """
            class PreAct(nn.Module):
                def __init__(self, c):
                    super().__init__()
                    self.relu = nn.ReLU(inplace=True)
                    self.conv = nn.Conv2d(c, c, 3, padding=1)

                def forward(self, x):
                    identity = x
                    out = self.relu(x)
                    out = self.conv(out)
                    return out + identity
            """,
            expect=((9, 25),),
            note="the pre-activation bug",
        ),
        Invalid(
            """
            class Block(nn.Module):
                def __init__(self, c):
                    super().__init__()
                    self.conv = nn.Conv2d(c, c, 3, padding=1)

                def forward(self, x):
                    x += self.conv(x)
                    return x
            """,
            expect=((7, 9),),
            note="x += ... on the block input",
        ),
        Invalid(
            """
            class Block(nn.Module):
                def __init__(self, c):
                    super().__init__()
                    self.body = nn.Sequential(nn.ReLU(inplace=True), nn.Conv2d(c, c, 3, padding=1))

                def forward(self, x):
                    return x + self.body(x)
            """,
            expect=((7, 30),),
            note="an in-place activation first in a Sequential main path",
        ),
        Invalid(
            """
            class ResSkip(nn.Module):
                def __init__(self, c_in, c_out):
                    super().__init__()
                    self.conv = nn.Conv2d(c_in, c_out, 3, padding=1)
                    self.relu = nn.ReLU(inplace=True)
                    self.shortcut = nn.Conv2d(c_in, c_out, 1)

                def forward(self, x):
                    out = self.relu(self.conv(x))
                    out += self.shortcut(x)
                    return out
            """,
            expect=((10, 9),),
            note="adding in place to the ReLU output that backward needs (seed 000)",
        ),
        Invalid(
            """
            class Block(nn.Module):
                def __init__(self, c):
                    super().__init__()
                    self.conv = nn.Conv2d(c, c, 3, padding=1)

                def forward(self, x):
                    shortcut = x
                    out = self.conv(x)
                    out = F.relu(x, inplace=True)
                    return out + shortcut
            """,
            expect=((9, 22),),
            note="F.relu(..., inplace=True) on the saved input",
        ),
    )


def _used_later(flow: Flow, event: InplaceEvent) -> bool:
    """The mutated value is read again after the in-place op (by an aliasing
    variable or directly), other than through the op's own result."""
    target = event.target
    for consumer in flow.consumers(target):
        if consumer is event.result or consumer.order <= event.result.order:
            continue
        if consumer.node is not None and consumer.node is event.result.node:
            continue  # the same call for another layer the attribute may hold: not a later use
        if _sees_mutated_values(consumer, event):
            return True
    return False


def _sees_mutated_values(consumer: FVal, event: InplaceEvent) -> bool:
    """A read after the op that depends on the values it changed: on the same
    path (not the other side of a fork), and not just ``x.shape``/``x.size()``."""
    return (consumer.facts is None or consumer.facts.extends(event.facts)) and \
        (consumer.tensor or not consumer.is_call)


def _read_again_after_inline_op(flow: Flow, event: InplaceEvent) -> bool:
    """``self.conv1(x.relu_())``, then ``x`` read again: the method changed
    ``x`` inside an argument, and the later read (the identity of the add)
    sees the mutated values although the code never assigned them to ``x``.
    ``x = x.relu_()`` and a bare ``x.relu_()`` say so, and are left alone."""
    if event.kind != "method":
        return False
    rebound = [a for a in flow.assignments if a.new is event.result]
    if not any(a.stmt is event.node for a in rebound):
        return False  # not a variable the method rebound (`torch.diagonal(c).add_(-1)`)
    if any(a.stmt is not event.node for a in rebound):
        return False  # `x = x.relu_()`: from here on `x` is meant to hold the result
    later = [c for c in flow.consumers(event.result)
             if c.order > event.result.order and c.node is not None and c.node is not event.node]
    encloses = [any(n is event.node for n in walk(c.node)) for c in later]
    if not any(encloses):
        return False  # a bare `x.relu_()` statement: it says what it does
    return any(_sees_mutated_values(c, event) for c, inside in zip(later, encloses) if not inside)


# Operations whose backward reads their *output*: changing that output in place
# makes backward fail.  (Measured: LeakyReLU and ELU save their output only
# when they ran in place; GELU, SiLU, Hardswish, BatchNorm read their input.)
SAVES_OUTPUT_LAYERS = {"ReLU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax"}
SAVES_OUTPUT_IF_INPLACE = {"LeakyReLU", "ELU", "CELU", "SELU"}
SAVES_OUTPUT_CALLS = {"relu", "sigmoid", "tanh", "softmax", "log_softmax", "exp", "relu_", "sigmoid_", "tanh_", "exp_"}


def _saved_output_of(value: FVal) -> Optional[str]:
    """The operation that saved ``value`` for its backward, if any."""
    if value.is_layer and value.spec is not None and value.spec.ltype is not None:
        name = value.spec.ltype.name
        if name in SAVES_OUTPUT_LAYERS or (name in SAVES_OUTPUT_IF_INPLACE and value.spec.inplace_first):
            return layer_name(value.attr, value.spec)
    if value.is_call and value.name in SAVES_OUTPUT_CALLS:
        return f"{value.name}()"
    return None


def _check(flow: Flow, event: InplaceEvent, block: Optional[BlockModel] = None):
    target = event.target
    node = event.target_node
    if node is None or not target.tensor:
        return None
    saver = _saved_output_of(target)
    if saver is not None and flow.input is not None and target is not flow.input:
        return Violation(
            node,
            f"`{code_of(event.node)}` changes in place the output of `{saver}`, which autograd saved for the backward "
            "pass: backward() raises \"one of the variables needed for gradient computation has been modified by an "
            "inplace operation\"",
            help="make this operation out-of-place (`out = out + ...`)",
            expect={"kind": "mutation"},
            fix=_augmented_fix(event.node, flow, event, block) if event.kind == "augassign" else _out_of_place_fix(flow, event),
        )
    is_input = flow.input is not None and target is flow.input
    if event.kind == "augassign":
        if not is_input:
            return None
        target_text = code_of(node)
        subject = (f"the block input `{target_text}`" if target_text == flow.input.name
                   else f"`{target_text}` (which holds the block input here)")
        return Violation(
            node,
            f"`{code_of(event.node)}` adds in place to {subject}: it mutates the caller's tensor "
            "(and the values autograd saved for backward)",
            help=f"write `{target_text} = {target_text} + ...`",
            expect={"kind": "mutation"},
            fix=_augmented_fix(event.node, flow, event, block),
        )
    if event.result.is_layer and flow.is_dead(event.result) and not flow.consumers(event.result):
        return None  # called for its side effect on purpose
    if not _used_later(flow, event) and not _read_again_after_inline_op(flow, event):
        return None
    what = f"`{layer_name(event.result.attr, event.result.spec)}`" if event.kind == "layer" else f"`{code_of(event.node)}`"
    subject = f"the block input `{code_of(node)}`" if is_input else f"`{code_of(node)}`"
    return Violation(
        node,
        f"{what} works in place on {subject}, which is still used afterwards (e.g. as the identity): "
        "the later use sees the mutated values",
        help="make this operation out-of-place (inplace=False)",
        expect={"kind": "mutation"},
        fix=_out_of_place_fix(flow, event),
    )


OPERATORS = {"AddAssign": "+", "SubtractAssign": "-", "MultiplyAssign": "*", "DivideAssign": "/"}


def _augmented_fix(node, flow: Optional[Flow] = None, event: Optional[InplaceEvent] = None,
                   block: Optional[BlockModel] = None) -> Optional[FixPlan]:
    """``x += y`` -> ``x = x + y``: a new tensor instead of a mutation.  The
    add written on the identity and handed back (``identity += out; out =
    identity``) becomes ``out = out + identity``: the sum, out of place,
    where the code wanted it."""
    if not isinstance(node, cst.AugAssign) or type(node.operator).__name__ not in OPERATORS:
        return None
    target, value = source_text(node.target), source_text(node.value)
    if target is None or value is None:
        return None
    operator = OPERATORS[type(node.operator).__name__]
    handed = _handed_back(flow, event, block) if flow is not None and event is not None and block is not None \
        and operator == "+" else None
    if handed is not None:
        text = f"{handed.var} = {_operand(node.value, value, operator)} + {target}"
        return FixPlan(f"write `{text}` (no `{handed.var} = {target}`)", UNSAFE,
                       [replace(node, text), delete(handed.stmt)])
    text = f"{target} = {target} {operator} {_operand(node.value, value, operator)}"
    return FixPlan(f"write `{text}`", UNSAFE, [replace(node, text)])


def _operand(node, text: str, operator: str) -> str:
    """``text`` as the right operand of ``operator``: in parentheses only
    where Python needs them (``x + y * s``, ``x + (a - b)``)."""
    if isinstance(node, (cst.Name, cst.Attribute, cst.Call, cst.Subscript, cst.Integer, cst.Float)):
        return text
    tighter = (cst.Multiply, cst.Divide, cst.MatrixMultiply, cst.FloorDivide, cst.Modulo, cst.Power)
    if isinstance(node, cst.BinaryOperation) and operator in "+-" and isinstance(node.operator, tighter):
        return text
    return parenthesize(text)


def _handed_back(flow: Flow, event: InplaceEvent, block: BlockModel):
    """``a += b`` then, next, ``c = a`` (a plain name), with ``a`` never
    mentioned again in ``forward``: the assignment that takes the sum out
    of ``a``."""
    node = event.node
    if not isinstance(node.target, cst.Name) or block.forward is None:
        return None
    name = node.target.value
    later = sorted((e for e in flow.assignments if e.new.order >= event.result.order and e.stmt is not node),
                   key=lambda e: e.new.order)
    if not later:
        return None
    first = later[0]
    stmt = first.stmt
    if not (isinstance(stmt, cst.Assign) and isinstance(stmt.value, cst.Name) and stmt.value.value == name
            and first.var != name and len(stmt.targets) == 1):
        return None
    where = position_of(stmt)
    if where is None:
        return None
    for other in walk(block.forward):
        if isinstance(other, cst.Name) and other.value == name and other is not stmt.value:
            position = position_of(other)
            if position is None or position > where:
                return None  # `a` is read again: it must keep the sum
    return first


def _inplace_layer(spec) -> Optional[object]:
    """The activation whose ``inplace=True`` makes this layer call mutate."""
    if spec is None:
        return None
    if spec.family == "act" and spec.inplace_first:
        return spec
    if spec.family == "container" and spec.children:
        first = spec.children[0].loc.value
        return _inplace_layer(first.spec) if isinstance(first, LayerV) else None
    return None


def _out_of_place_fix(flow: Flow, event: InplaceEvent) -> Optional[FixPlan]:
    if event.kind == "layer":
        act = _inplace_layer(event.result.spec)
        call = local_call(act) if act is not None else None
        if call is None or act.ltype is None:
            return None
        index = act.ltype.params.index("inplace")
        return FixPlan(f"make `{act.label}` out-of-place (`inplace=False`)", UNSAFE,
                       [set_argument(call, "inplace", "False", index)])
    if event.kind == "function" and isinstance(event.node, cst.Call):
        if any(a.keyword is not None and a.keyword.value == "inplace" for a in event.node.args):
            return FixPlan("pass `inplace=False`", UNSAFE, [set_argument(event.node, "inplace", "False")])
        return None
    if event.kind == "method" and isinstance(event.node, cst.Call) and isinstance(event.node.func, cst.Attribute):
        if not flow.consumers(event.result) and id(event.result) not in flow.sinks:
            return None  # called for its effect: an out-of-place call would be discarded
        receiver = source_text(event.node.func.value)
        name = event.node.func.attr.value
        if receiver is None:
            return None
        return FixPlan(f"call `{name[:-1]}` instead of `{name}`", UNSAFE,
                       [replace(event.node.func, f"{receiver}.{name[:-1]}")])
    return None
