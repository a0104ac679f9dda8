"""
## What it does
Finds a submodule (or `nn.Parameter`) created in `__init__` that `forward`
never reaches on any path (testing it, `if self.downsample is not None:`,
does not apply it), or whose only use in `forward` is a value that is
itself never used (the `conv1`/`bn1` of a block whose next layer was fed `x`).

## Why is this bad?
Its parameters never receive a gradient. Beyond the wasted memory and
compute, this breaks `DistributedDataParallel`, which fails with *"Expected to
have finished reduction in the prior iteration before starting a new one"*
and lists the *"Parameters which did not receive grad"* (unless
`find_unused_parameters=True` hides the problem at a cost). Usually it is the
visible symptom of another bug: a layer that was meant to be on the path.

Modules reached indirectly are not reported: through `getattr`,
`self.modules()`/`children()`, a container iterated in `forward`, a hook, a
helper method `forward` calls, another object that reads the attribute (a
module that imports the class and reads `block.norm2`, or a module this one
imports from, whose helpers may be handed the block), or a subclass.  A
module with a class of the same name of its own (every timm model file has
a `Block`) reads that class's attributes, not this one's. Parameter-free layers (`nn.ReLU()`, pooling) are not reported either:
nothing is lost.

## Example
```python
class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)
        self.bn = nn.BatchNorm2d(c)

    def forward(self, x):
        return x + self.conv(x)   # self.bn is never used
```

## Use instead
```python
    def forward(self, x):
        return x + self.bn(self.conv(x))
```

## Fix safety
When the layer's place is plain, the fix puts it back on the path: a
projection (`downsample`, `shortcut`, `identity_conv`...) onto the shortcut
that adds the raw input; any other layer where `__init__` order puts it
(layers are built in the order they run), before the layer built after it,
or after the one built before it (`bn2` between `conv2` and `relu`); when
the layer built after it is applied under a condition of `forward`'s
(`if self.use_se: x = self.se(x)`), before that `if`, never inside it. It is
unsafe: it changes what the block computes, and the place is a reading of
the code that the trace (or, without it, the static model's check of the
widths) must confirm. Otherwise there is no fix: removing the layer would
change the `state_dict` keys, and where it goes only the author knows.

## References
- [DistributedDataParallel: `find_unused_parameters`](https://pytorch.org/docs/stable/generated/torch.nn.parallel.DistributedDataParallel.html)
"""
from __future__ import annotations

from typing import Dict, Iterator, Optional, Set

import libcst as cst

from resnetlint.fixbuild import wire_in
from resnetlint.model.query import (AltV, AttrAssign, BlockModel, FileAnalysis, LayerV, Loc, SHORTCUT_ATTRIBUTE,
                                    present_module, residual_adds)
from resnetlint.rule import Invalid, Rule, Valid, Violation

NO_WEIGHT_FAMILIES = ("act", "dropout", "identity", "pool", "adaptive_pool", "float_functional", "container",
                      "buffer")


class UnusedSubmodule(Rule):
    code = "RL104"
    name = "unused-submodule"
    summary = "A submodule or parameter that forward never uses (no gradient; DDP errors)"
    fix_availability = "sometimes"
    fix_safety = "unsafe"

    def check(self, block: BlockModel, analysis: FileAnalysis) -> Iterator[Violation]:
        if block.forward is None or not block.complete or not block.worlds:
            return
        facts = block.facts
        if facts.reflective or any(w.world.dynamic for w in block.worlds):
            return
        if _has_subclass(block, analysis) or block.has_unknown_base:
            return
        assignments = _weighted_attributes(block)
        external = analysis.ctx.facts.external_attribute_loads
        lineage = [facts for _, facts in block.lineage()]
        if any(f.reflective for f in lineage):
            return
        in_forward = _forward_methods(lineage)
        # A forward that can end without returning (a template, a module
        # kept for its side effects) leaves every value dead: no evidence.
        returns_nothing = any(flow.falls_off_end for _, flow in block.flows())
        aliases = _aliases(block)
        strings = analysis.ctx.facts.string_constants
        for name, assigned in assignments.items():
            names = aliases.get(name, (name,))
            if any(n in external or n in strings or any(n in f.literal_getattr or n in f.init_attribute_loads
                                                          for f in lineage) for n in names):
                continue
            readers = frozenset().union(*(_readers(f, n, in_forward) for f in lineage for n in names))
            node = _target_node(assigned)
            if node is None:
                continue
            if not readers or (_only_tested(block, name, readers) and not _bypassed_shortcut(block, name)):
                if block.attribute_read_elsewhere(name):
                    continue  # another module of the package applies it (a parent, a helper given the module)
                fix = wire_in(block, name)
                yield Violation(
                    node,
                    f"`self.{name}` is created in `__init__` but never used: its parameters never receive a gradient",
                    help=f"{fix.description}?" if fix is not None else
                    "use it in `forward` (was it meant to be on the path?) or remove it",
                    expect={"kind": "no-grad", "layers": [name]},
                    fix=fix,
                )
            elif not returns_nothing and _only_dead_uses(block, name, readers):
                yield Violation(
                    node,
                    f"`self.{name}` is only used to compute values that `forward` never uses: its parameters never "
                    "receive a gradient",
                    help="feed its output to the next layer (see the stale-input or residual-overwritten finding)",
                    expect={"kind": "no-grad", "layers": [name]},
                )

    VALID = (
        Valid(
            """
            class Block(nn.Module):
                def __init__(self, c):
                    super().__init__()
                    self.conv = nn.Conv2d(c, c, 3, padding=1)
                    self.head = nn.Linear(c, 10)

                def forward(self, x):
                    return self.forward_head(x + self.conv(x))

                def forward_head(self, x):
                    return self.head(x.mean((2, 3)))
            """,
            note="used through a helper method forward calls",
        ),
        Valid(
            """
            class Block(nn.Module):
                def __init__(self, c, n):
                    super().__init__()
                    for i in range(n):
                        setattr(self, f"conv{i}", nn.Conv2d(c, c, 1))
                    self.n = n

                def forward(self, x):
                    for i in range(self.n):
                        x = getattr(self, f"conv{i}")(x)
                    return x
            """,
            note="reached through getattr",
        ),
        Valid(
            """
            class Block(nn.Module):
                def __init__(self, c):
                    super().__init__()
                    self.conv = nn.Conv2d(c, c, 1)
                    self.extra = nn.Conv2d(c, c, 1)
                    self.act = nn.ReLU()

                def forward(self, x):
                    for module in self.children():
                        x = module(x)
                    return x
            """,
            note="iterated through children()",
        ),
        Valid(
            """
            class Block(nn.Module):
                def __init__(self, c, aux=False):
                    super().__init__()
                    self.conv = nn.Conv2d(c, c, 1)
                    self.aux_head = nn.Conv2d(c, 1, 1)
                    self.aux = aux

                def forward(self, x):
                    out = self.conv(x)
                    if self.aux:
                        return out, self.aux_head(out)
                    return out
            """,
            note="used on one path",
        ),
        Valid(
            """
            class Block(nn.Module):
                def __init__(self, c):
                    super().__init__()
                    self.conv = nn.Conv2d(c, c, 1)
                    self.unused_act = nn.ReLU()

                def forward(self, x):
                    return self.conv(x)
            """,
            note="a parameter-free layer loses nothing",
        ),
    )
    INVALID = (
        Invalid(
            """
            class LayerScale(nn.Module):
                def __init__(self, dim, init_values=1e-5):
                    super().__init__()
                    self.gamma = nn.Parameter(init_values * torch.ones(dim))

                def forward(self, x):
                    return x * self.gamma


            class Block(nn.Module):
                def __init__(self, dim):
                    super().__init__()
                    self.norm = nn.LayerNorm(dim)
                    self.fc = nn.Linear(dim, dim)
                    self.ls = LayerScale(dim)

                def forward(self, x):
                    return x + self.fc(self.norm(x))
            """,
            expect=((15, 9),),
            note="a LayerScale (timm, ultralytics): its only weight is an `nn.Parameter` its forward reads",
        ),
        Invalid(
            """
            class Block(nn.Module):
                def __init__(self, c):
                    super().__init__()
                    self.conv = nn.Conv2d(c, c, 3, padding=1)
                    self.bn = nn.BatchNorm2d(c)

                def forward(self, x):
                    return x + self.conv(x)
            """,
            expect=((5, 9),),
            note="never called",
        ),
        Invalid(
            """
            class Block(nn.Module):
                def __init__(self, c):
                    super().__init__()
                    self.conv1 = nn.Conv2d(c, c, 1)
                    self.conv2 = nn.Conv2d(c, c, 3, padding=1)

                def forward(self, x):
                    out = self.conv1(x)
                    out = self.conv2(x)
                    return out + x
            """,
            expect=((4, 9),),
            note="only use is a dead value",
        ),
        Invalid(
            """
            class Block(nn.Module):
                def __init__(self, dim):
                    super().__init__()
                    self.fc = nn.Linear(dim, dim)
                    self.gamma = nn.Parameter(torch.ones(dim))

                def forward(self, x):
                    return x + self.fc(x)
            """,
            expect=((5, 9),),
            note="an unused parameter",
        ),
        Invalid(
            """
            class NormFreeBlock(nn.Module):
                def __init__(self, in_chs, out_chs, stride=1, alpha=0.2, beta=1.0):
                    super().__init__()
                    self.alpha, self.beta = alpha, beta
                    if in_chs != out_chs or stride != 1:
                        self.downsample = nn.Sequential(nn.AvgPool2d(2, stride) if stride > 1 else nn.Identity(),
                                                        nn.Conv2d(in_chs, out_chs, 1))
                    else:
                        self.downsample = None
                    self.act1 = nn.GELU()
                    self.conv1 = nn.Conv2d(in_chs, out_chs, 3, stride, 1)
                    self.act2 = nn.GELU()
                    self.conv2 = nn.Conv2d(out_chs, out_chs, 3, 1, 1)

                def forward(self, x):
                    out = self.act1(x) * self.beta
                    shortcut = x
                    if self.downsample is not None:
                        shortcut = out
                    out = self.conv2(self.act2(self.conv1(out)))
                    return out * self.alpha + shortcut
            """,
            expect=((6, 13),),
            note="NFNet's block with the projection's call dropped: forward still tests `self.downsample`, "
                 "but a module only tested is never applied",
        ),
        Invalid(
            """
            def dw_conv3x3(channels, stride):
                return nn.Sequential(nn.Conv2d(channels, channels, 3, stride, 1, groups=channels, bias=False),
                                     nn.BatchNorm2d(channels), nn.ReLU(inplace=True))


            def dw_conv5x5(channels, stride):
                return nn.Sequential(nn.Conv2d(channels, channels, 5, stride, 2, groups=channels, bias=False),
                                     nn.BatchNorm2d(channels), nn.ReLU(inplace=True))


            class SEBlock(nn.Module):
                def __init__(self, channels):
                    super().__init__()
                    self.fc = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, channels // 4, 1), nn.ReLU(),
                                            nn.Conv2d(channels // 4, channels, 1), nn.Sigmoid())

                def forward(self, x):
                    return x * self.fc(x)


            class InvertedUnit(nn.Module):
                def __init__(self, channels, exp_factor, use_kernel3=True, use_se=False):
                    super().__init__()
                    mid = channels * exp_factor
                    self.use_se = use_se
                    self.exp_conv = nn.Conv2d(channels, mid, 1, bias=False)
                    dw_conv = dw_conv3x3 if use_kernel3 else dw_conv5x5
                    self.dw_conv = dw_conv(mid, 1)
                    if use_se:
                        self.se = SEBlock(mid)
                    self.pw_conv = nn.Conv2d(mid, channels, 1, bias=False)

                def forward(self, x):
                    y = self.exp_conv(x)
                    if self.use_se:
                        y = self.se(y)
                    y = self.pw_conv(y)
                    return x + y
            """,
            expect=((28, 9),),
            note="MnasNet's unit with its depthwise conv left out of forward: the conv is one of two helpers, and "
                 "the layer built after it is applied only with `use_se`, so the fix puts it before that `if`, "
                 "never inside it",
            fix=(
                ('                    y = self.exp_conv(x)\n',
                 '                    y = self.exp_conv(x)\n                    y = self.dw_conv(y)\n'),
            ),
        ),
    )


def _has_weights(loc: Loc) -> Optional[bool]:
    value = loc.value
    if isinstance(value, LayerV):
        spec = value.spec
        if spec.family == "parameter":
            return True
        if spec.family in NO_WEIGHT_FAMILIES or spec.family == "other":
            if spec.family == "container":
                return any(_has_weights(c.loc) for c in spec.children) or not spec.children_complete
            return bool(spec.ltype is not None and spec.ltype.has_weights)
        if spec.family == "unknown":
            return None  # an external class: maybe not even a module (an enum, a config)
        if spec.family == "composite" and spec.summary.known:
            return spec.summary.has_weights  # a module class whose forward runs no layer holds none
        return True  # convs, norms, linear, module classes
    if isinstance(value, AltV):
        return any(_has_weights(option) for _, option in value.options)
    return None


def _weighted_attributes(block: BlockModel) -> Dict[str, AttrAssign]:
    """Attributes that hold a module with parameters in some world."""
    out: Dict[str, AttrAssign] = {}
    for wf in block.worlds:
        for name, assigned in wf.world.attrs.items():
            if _has_weights(assigned.loc) and name not in out:
                out[name] = assigned
    return out


def _readers(facts, name: str, in_forward) -> frozenset:
    """Methods that use ``self.<name>``: any read, except that reading only
    its state (``self.conv.weight`` in a re-parameterisation or an
    initialisation method) counts only in methods forward reaches."""
    state = facts.state_reads.get(name, frozenset()) & in_forward
    return facts.load_methods.get(name, frozenset()) | state


def _forward_methods(lineage) -> frozenset:
    """``forward`` and every method it mentions as ``self.<method>``, transitively."""
    mentions = {}
    methods = set()
    for facts in lineage:
        methods |= facts.methods
        for method, names in facts.mentions.items():
            mentions.setdefault(method, set()).update(names)
    reached, queue = set(), ["forward"]
    while queue:
        method = queue.pop()
        if method in reached:
            continue
        reached.add(method)
        queue.extend(n for n in mentions.get(method, ()) if n in methods)
    return frozenset(reached)


def _aliases(block: BlockModel) -> Dict[str, tuple]:
    """Attributes that hold the very same module (``self.downsample =
    self.shortcut = ...``, ``self.mixer = self.attn``): using one uses all."""
    out: Dict[str, tuple] = {}
    for wf in block.worlds:
        holders: Dict[int, list] = {}
        for name, assigned in wf.world.attrs.items():
            value = assigned.loc.value
            if isinstance(value, (LayerV, AltV)):
                holders.setdefault(id(value), []).append(name)
        for names in holders.values():
            if len(names) > 1:
                for name in names:
                    out[name] = tuple(sorted(set(out.get(name, ())) | set(names)))
    return out


def _target_node(assigned: AttrAssign) -> Optional[cst.CSTNode]:
    stmt = assigned.stmt
    if isinstance(stmt, cst.Assign):
        for target in stmt.targets:
            if isinstance(target.target, cst.Attribute):
                return target.target
    if isinstance(stmt, cst.AnnAssign):
        return stmt.target
    return None  # built through setattr/add_module or a helper: do not guess


def _has_subclass(block: BlockModel, analysis: FileAnalysis) -> bool:
    name = block.name
    return any(name in bases for bases in analysis.ctx.facts.subclass_bases.values())


def _only_tested(block: BlockModel, name: str, readers) -> bool:
    """``forward`` (and the methods it inlines) only tests ``self.<name>``
    (``if self.downsample is not None:`` with its call gone) in every world:
    the module is never applied."""
    inlined: Set[str] = {"forward"}
    seen = False
    for _, flow in block.flows():
        inlined |= flow.methods_inlined
        read = flow.attr_read_nodes.get(name, set())
        if read - flow.attr_tested_nodes.get(name, set()):
            return False
        seen = seen or bool(read)
    return seen and set(readers) <= inlined


def _bypassed_shortcut(block: BlockModel, name: str) -> bool:
    """A projection named for the shortcut, tested in forward, beside an add
    that takes the raw input itself: RL103's finding (the shortcut bypassed)
    says it, with the configuration that breaks; the missing gradient this
    rule predicts is not what a run shows there (the add fails first)."""
    if not SHORTCUT_ATTRIBUTE.search(name):
        return False
    return any(residual.skip is flow.input for world, flow in block.flows()
               if present_module(world, name, world.facts) for residual in residual_adds(flow))


def _only_dead_uses(block: BlockModel, name: str, readers) -> bool:
    """Every read of ``self.<name>`` is a call in forward (or a method it
    inlines) and every such call's result is dead, in every world."""
    calls = 0
    inlined: Set[str] = {"forward"}
    for _, flow in block.flows():
        inlined |= flow.methods_inlined
        if flow.attr_read_nodes.get(name, set()) - flow.attr_called_nodes.get(name, set()):
            return False  # read without being called (passed on, .weight, ...)
        for value in flow.values:
            if value.is_layer and value.attr == name:
                calls += 1
                if not flow.is_dead(value):
                    return False
    return calls > 0 and set(readers) <= inlined
