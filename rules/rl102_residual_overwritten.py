"""
## What it does
Finds a residual block whose main-path result is overwritten by the shortcut
(or by the raw input) before the residual add, and residual adds whose two
operands are the same value (`x + x`).

## Why is this bad?
One branch of the block is lost. Reusing one variable for both branches is the
classic way to get there:

    out = self.block(x)
    if self.skip is not None:
        out = self.skip(x)   # the main path is gone
    out += x

The layers of the main path then never receive a gradient, the block degrades
to (a projection of) its input, and nothing crashes to tell you.

## Example
```python
class Block(nn.Module):
    def __init__(self, c_in, c_out, stride=1):
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out))
        self.skip = nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        out = self.block(x)
        out = self.skip(x)
        return out + x
```

## Use instead
```python
    def forward(self, x):
        identity = self.skip(x)
        out = self.block(x)
        return out + identity
```

## Fix safety
The fix keeps the main-path result and puts the shortcut in its own variable
(`identity`) that the add uses; when the add already has the shortcut
(`x = identity` before `x + identity`), it deletes the line that overwrote
the main path. For `x + x` it adds the main path back: the value the add's
statement overwrites (`out = x + x` after `out = self.conv(out)` becomes
`out = out + x`), else the layers `forward` never uses, in `__init__` order
(one such layer before an add written as its own step, `x = x + identity`,
goes back as the step before it: `x = self.body(x)`).
It is unsafe: it changes what the block computes.

## References
- [Stack Overflow: Implementing a simple ResNet block with PyTorch](https://stackoverflow.com/questions/60817390)
- He et al., *Identity Mappings in Deep Residual Networks* (2016)
"""
from __future__ import annotations

from typing import Iterator, Optional

import libcst as cst

from resnetlint.fixbuild import redundant_overwrite, unused_layers
from resnetlint.fixes import UNSAFE, FixPlan, delete, insert_before, replace
from resnetlint.model.query import (BlockModel, FileAnalysis, Flow, main_chain, overwritten_main_paths,
    shortcut_kind, strip_elementwise, walk)
from resnetlint.nodes import code_of, source_text
from resnetlint.rule import Invalid, Rule, Valid, Violation

class ResidualOverwritten(Rule):
    code = "RL102"
    name = "residual-overwritten"
    summary = "The main-path result or the saved identity is overwritten before the residual add"
    fix_availability = "sometimes"
    fix_safety = "unsafe"

    def check(self, block: BlockModel, analysis: FileAnalysis) -> Iterator[Violation]:
        for _, flow in block.flows():
            yield from _overwritten_main_path(flow, block)
            yield from _self_adds(flow, block)

    VALID = (
        Valid(
            """
            class Block(nn.Module):
                def __init__(self, c_in, c_out, stride=1):
                    super().__init__()
                    self.block = nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1), nn.BatchNorm2d(c_out))
                    self.skip = None
                    if stride != 1 or c_in != c_out:
                        self.skip = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride), nn.BatchNorm2d(c_out))

                def forward(self, x):
                    identity = x
                    out = self.block(x)
                    if self.skip is not None:
                        identity = self.skip(x)
                    out += identity
                    return out
            """,
            note="seed 003's answer: identity reassigned, not the main path",
        ),
        Valid(
            """
            class Transformer(nn.Module):
                def __init__(self, dim):
                    super().__init__()
                    self.norm1 = nn.LayerNorm(dim)
                    self.attn = nn.Linear(dim, dim)
                    self.norm2 = nn.LayerNorm(dim)
                    self.mlp = nn.Linear(dim, dim)

                def forward(self, x):
                    x = x + self.attn(self.norm1(x))
                    x = x + self.mlp(self.norm2(x))
                    return x
            """,
            note="sequential adds reassign x legitimately",
        ),
        Valid(
            """
            class Block(nn.Module):
                def __init__(self, c, downsample=None):
                    super().__init__()
                    self.conv = nn.Conv2d(c, c, 3, padding=1)
                    self.downsample = downsample

                def forward(self, x):
                    shortcut = x
                    if self.downsample is not None:
                        shortcut = self.downsample(x)
                    x = self.conv(x)
                    return x + shortcut
            """,
            note="conditional identity = downsample(x)",
        ),
    )
    INVALID = (
        Invalid(
            """
            class Block(nn.Module):
                def __init__(self, c_in, c_out, stride=1):
                    super().__init__()
                    self.block = nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1), nn.BatchNorm2d(c_out))
                    if stride != 1 or c_in != c_out:
                        self.skip = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride), nn.BatchNorm2d(c_out))
                    else:
                        self.skip = None

                def forward(self, x):
                    out = self.block(x)
                    if self.skip is not None:
                        out = self.skip(x)
                    else:
                        out = x
                    out += x
                    return out
            """,
            expect=((13, 13), (15, 13)),
            note="seed 003: both branches overwrite out",
        ),
        Invalid(
            """
            class BasicBlock(nn.Module):
                def __init__(self, inplanes, planes, stride=1, downsample=None):
                    super().__init__()
                    self.conv = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
                    self.bn = nn.BatchNorm2d(planes)
                    self.downsample = downsample

                def forward(self, x):
                    identity = x
                    out = self.bn(self.conv(x))
                    if self.downsample is not None:
                        out = self.downsample(x)
                    out += identity
                    return out
            """,
            expect=((12, 13),),
            note="overwritten only on the path where the caller passed a projection",
        ),
        Invalid(
            """
            class Block(nn.Module):
                def __init__(self, c):
                    super().__init__()
                    self.conv = nn.Conv2d(c, c, 3, padding=1)

                def forward(self, x):
                    identity = x
                    out = self.conv(x)
                    identity = out
                    return out + identity
            """,
            expect=((9, 9),),
            note="the saved identity replaced by the main path",
        ),
        Invalid(
            """
            class Block(nn.Module):
                def __init__(self, c):
                    super().__init__()
                    self.conv = nn.Conv2d(c, c, 3, padding=1)

                def forward(self, x):
                    out = self.conv(x)
                    out = x
                    return out + x
            """,
            expect=((8, 9),),
            note="out = x, then x + x",
        ),
        Invalid(
            """
            class XceptionUnit(nn.Module):
                def __init__(self, in_channels, out_channels, stride):
                    super().__init__()
                    self.resize_identity = in_channels != out_channels or stride != 1
                    if self.resize_identity:
                        self.identity_conv = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                                           nn.BatchNorm2d(out_channels))
                    self.body = nn.Sequential(
                        nn.ReLU(), nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                        nn.BatchNorm2d(out_channels), nn.MaxPool2d(3, stride, 1))

                def forward(self, x):
                    if self.resize_identity:
                        identity = self.identity_conv(x)
                    else:
                        identity = x
                    x = x + identity
                    return x
            """,
            expect=((17, 13),),
            note="Xception's unit with its body call dropped: `x + identity` adds the input to itself where "
                 "`identity` is `x`; the body goes onto `x`, the operand that is the input on every path",
            fix=(
                ('                    x = x + identity\n',
                 '                    x = self.body(x)\n                    x = x + identity\n'),
            ),
        ),
    )


def _overwritten_main_path(flow: Flow, block: BlockModel) -> Iterator[Violation]:
    events = overwritten_main_paths(flow)
    for event in events:
        kind = shortcut_kind(event.new, event.old, flow)
        same_var = [e for e in events if e.var == event.var]
        if _all_redundant(block, event.var):
            # `x = identity` before `x + identity`: the add already has the
            # shortcut, so the line is the mistake and the main path comes back.
            fix = FixPlan(f"delete `{code_of(event.stmt)}` (the add already has the shortcut)", UNSAFE,
                          [delete(event.stmt)], fallback=_identity_fix(flow, block, same_var))
        else:
            fix = _identity_fix(flow, block, same_var)
        yield Violation(
            event.stmt,
            f"`{event.var}` holds the main-path result and is overwritten with {kind} before the residual add; "
            "the main path is lost",
            help=f"keep the main path in `{event.var}` and put the shortcut in its own variable (e.g. `identity`)",
            expect={"kind": "dead-chain", "dead_layers": [v.attr for v in main_chain(event.old)]},
            fix=fix,
        )


def _all_redundant(block: BlockModel, var: str) -> bool:
    """Every overwrite of ``var``'s main path, on every path, writes what
    the add then adds anyway: the overwriting lines are the mistake."""
    found = False
    for _, flow in block.flows():
        for event in overwritten_main_paths(flow):
            if event.var == var:
                found = True
                if not redundant_overwrite(flow, event.new):
                    return False
    return found


def _identity_fix(flow: Flow, block: BlockModel, events) -> Optional[FixPlan]:
    """Put the shortcut in its own variable wherever it overwrote the main
    path.  Reuse the variable that already holds the block input when the
    add uses it (``identity = x`` ... ``out += identity``); otherwise start a
    fresh ``identity = x`` at the top of forward (so every path defines it)
    and add it where the raw input was added."""
    if flow.input is None or block.forward is None or not block.forward.body.body:
        return None
    values = []
    for event in events:
        if not isinstance(event.stmt, cst.Assign) or len(event.stmt.targets) != 1:
            return None
        value = source_text(event.stmt.value)
        if value is None:
            return None
        values.append((event, value))
    existing = _identity_variable(flow, events)
    name = existing or _fresh_name(block.forward, ("identity", "shortcut", "residual", "skip_out"))
    if name is None:
        return None
    operations = [replace(event.stmt, f"{name} = {value}") for event, value in values]
    if existing is None:
        operations.insert(0, insert_before(_first_statement(block.forward.body.body), f"{name} = {flow.input.name}"))
        for add in flow.adds:
            for operand, node in ((add.left, add.left_node), (add.right, add.right_node)):
                if operand is flow.input and isinstance(node, cst.Name) and node.value == flow.input.name \
                        and all(op.node is not node for op in operations):
                    operations.append(replace(node, name))
    return FixPlan(f"keep the main path and put the shortcut in `{name}`", UNSAFE, operations)


def _identity_variable(flow: Flow, events) -> Optional[str]:
    """A variable assigned the block input before the overwrite and added later."""
    first = min(event.new.order for event in events)
    for event in flow.assignments:
        if event.new is flow.input and event.new.order <= first and event.var not in {e.var for e in events}:
            for add in flow.adds:
                if any(isinstance(n, cst.Name) and n.value == event.var for n in (add.left_node, add.right_node)):
                    return event.var
    return None


def _fresh_name(function: cst.FunctionDef, candidates) -> Optional[str]:
    taken = {node.value for node in walk(function) if isinstance(node, cst.Name)}
    return next((name for name in candidates if name not in taken), None)


def _first_statement(body):
    first = body[0]
    # A docstring stays first.
    if isinstance(first, cst.SimpleStatementLine) and len(body) > 1 and isinstance(first.body[0], cst.Expr) \
            and isinstance(first.body[0].value, (cst.SimpleString, cst.ConcatenatedString)):
        return body[1]
    return first


def _self_add_fix(flow: Flow, block: BlockModel, add, culprit) -> Optional[FixPlan]:
    """``a + a``: give the add its main path back.  The value the add's
    own statement overwrites, when it was computed and is now dead
    (``out = self.conv2d(out); out = x + x`` -> ``out = out + x``); else the
    layers ``forward`` never uses, in ``__init__`` order, applied to ``a``
    (``x + x`` -> ``x + self.drop_path(self.mlp(x))``; one layer, before
    ``x = x + identity``, as a statement of its own: ``x = self.body(x)``)."""
    if culprit is not None and isinstance(culprit.stmt, cst.Assign) and isinstance(culprit.stmt.value, cst.Name):
        return None  # `identity = out`: which value was meant is not plain
    left, right = add.left_node, add.right_node
    if not isinstance(left, cst.Name) or not isinstance(right, cst.Name):
        return None
    for event in flow.assignments:
        old = event.old
        if event.new is add.result and old is not None and old.is_computed and main_chain(old) \
                and flow.is_dead(old):
            return FixPlan(f"add `{event.var}` (the main path the add overwrites) to `{right.value}`", UNSAFE,
                           [replace(left, event.var)])
    unused = unused_layers(block)
    if not unused:
        return None
    fed, other = (left, right) if _always_input(block, add, "left") and not _always_input(block, add, "right") \
        else (right, left)
    text = fed.value
    for name in unused:
        text = f"self.{name}({text})"
    description = f"add `{text}` (the layers forward never uses) to `{other.value}`"
    statement = _rebinding_statement(flow, add, fed.value)
    if statement is not None and len(unused) == 1:
        # `x = x + identity` written as a step of its own: the layer goes back
        # as the step before it (`x = self.body(x)`), as such code writes it
        return FixPlan(description, UNSAFE, [insert_before(statement, f"{fed.value} = {text}")])
    return FixPlan(description, UNSAFE, [replace(fed, text)])


def _rebinding_statement(flow: Flow, add, name: str) -> Optional[cst.Assign]:
    """The add's statement when it is ``name = ...`` and reads ``name`` only
    as this operand: the layers can then be applied to ``name`` just before."""
    for event in flow.assignments:
        stmt = event.stmt
        if event.new is add.result and isinstance(stmt, cst.Assign) and stmt.value is add.node \
                and len(stmt.targets) == 1 and isinstance(stmt.targets[0].target, cst.Name) \
                and stmt.targets[0].target.value == name:
            reads = [node for node in walk(stmt.value) if isinstance(node, cst.Name) and node.value == name]
            return stmt if len(reads) == 1 else None
    return None


def _always_input(block: BlockModel, add, side: str) -> bool:
    """This operand of the add is the block input wherever forward reaches
    it: the main path starts there (``identity`` may be a projection's output
    on other paths: `x + identity` -> `self.body(x) + identity`)."""
    seen = False
    for _, flow in block.flows():
        for other in flow.adds:
            if other.node is not add.node:
                continue
            seen = True
            if flow.input is None or strip_elementwise(getattr(other, side)) is not flow.input:
                return False
    return seen


def _self_add_evidence(flow: Flow) -> dict:
    """What a run shows when ``a + a`` drops the main path: the layers whose
    output nothing reads get no gradient."""
    dead = sorted({v.attr for v in flow.values if v.is_layer and v.attr and flow.is_dead(v)})
    return {"kind": "dead-chain", "dead_layers": dead} if dead else {"kind": "self-add"}


def _self_adds(flow: Flow, block: BlockModel) -> Iterator[Violation]:
    """``a + a``: report where one operand's variable was made to hold the
    other's value (``identity = out``), or at the add itself."""
    main_path_overwrites = {id(e.new) for e in overwritten_main_paths(flow)}
    for add in flow.adds:
        value = add.left
        if add.right is not value or not value.tensor:
            continue
        if id(value) in main_path_overwrites:
            continue  # reported at the overwrite by _overwritten_main_path
        names = {n.value for n in (add.left_node, add.right_node) if isinstance(n, cst.Name)}
        culprit = None
        for event in flow.assignments if len(names) == 2 else ():  # ``x + x``: the add itself is the mistake
            if event.var in names and event.new is value and event.old is not None and event.old is not value:
                culprit = event
        node = culprit.stmt if culprit is not None else add.node
        where = f" since `{code_of(culprit.stmt)}`" if culprit is not None else ""
        yield Violation(
            node,
            f"both operands of the residual add are the same value{where}; the block adds a value to itself",
            help="add the main-path result to the shortcut (the block input or its projection)",
            expect=_self_add_evidence(flow),
            fix=_self_add_fix(flow, block, add, culprit),
        )
