"""
## What it does
Finds a layer in `forward` that is applied to a stale value (usually the block
input `x`) while the output of the previous layer of the same chain is dead:
overwritten before anything reads it, or never read at all.

## Why is this bad?
The previous layers still run and still hold parameters, but their output
never reaches the result: they get no gradient, the block computes something
much shallower than written, and it only crashes when the widths happen to
disagree. A parallel branch that reads `x` and *is* used later (Inception
branches, attention `q`/`k`/`v`) is not a finding: what separates a real stale
input is the dead previous output. A dead placeholder (`torch.zeros_like(x)`,
filled only under a flag) is no layer's output, and a value a loop carries
to its next iteration is not dead because the last iteration's goes unused.
Nor is a dead value that continues a chain of its own: a mask rebuilt from
the mask it was, a length read off a tensor's shape, a tuple of sizes grown
per stage.

## Example
```python
class Bottleneck(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        out = self.bn1(self.conv1(x))
        out = self.bn2(self.conv2(x))  # conv2 should take `out`
        return out + x
```

## Use instead
```python
    def forward(self, x):
        out = self.bn1(self.conv1(x))
        out = self.bn2(self.conv2(out))
        return out + x
```

## Fix safety
The fix feeds the previous output to the layer (`self.conv2(out)`), unless
what the rest of `forward` uses says the stale line itself is the mistake:
`h = self.block(x); h = self.skip(x); return h + self.skip(x)` adds the
shortcut already, so the fix deletes `h = self.skip(x)`. It is unsafe: it
changes what the block computes (that is the point), and a checkpoint
trained with the bug will behave differently.

## References
- He et al., *Deep Residual Learning for Image Recognition* (2015), Fig. 5
- [`torch.nn.Module`](https://pytorch.org/docs/stable/generated/torch.nn.Module.html)
"""
from __future__ import annotations

from typing import Callable, Iterator, List, Optional, Set

from resnetlint.model.query import (ancestors, BlockModel, FileAnalysis, Flow, FVal, main_chain, overwritten_main_paths,
                                    projection_chain, residual_adds, shortcut_kind, strip_elementwise,
                                    SHORTCUT_ATTRIBUTE, tensor_ancestors)
from resnetlint.fixbuild import redundant_overwrite
from resnetlint.fixes import UNSAFE, FixPlan, delete, replace
from resnetlint.nodes import call_arg, code_of, layer_name, layer_phrase
from resnetlint.rule import Invalid, Rule, Valid, Violation


class StaleInput(Rule):
    code = "RL101"
    name = "stale-input"
    summary = "A layer is fed a stale value while the previous layer's output is dead"
    fix_availability = "always"
    fix_safety = "unsafe"

    def check(self, block: BlockModel, analysis: FileAnalysis) -> Iterator[Violation]:
        flows = [flow for _, flow in block.flows()]
        found: List[Set[tuple]] = []

        def dead_everywhere() -> Set[tuple]:  # only worked out once a flow has a dead candidate (rarely)
            if not found:
                found.append(_dead_in_every_world(flows))
            return found[0]

        for flow in flows:
            yield from _overwritten_chains(flow, dead_everywhere)
            yield from _unread_chains(flow, dead_everywhere)

    VALID = (
        Valid(
            """
            class Embeddings(nn.Module):
                def __init__(self, dim, position_biased_input=False):
                    super().__init__()
                    self.position_biased_input = position_biased_input
                    self.position = nn.Linear(dim, dim)
                    self.norm = nn.LayerNorm(dim)

                def forward(self, inputs_embeds):
                    embeddings = inputs_embeds
                    position_embeddings = torch.zeros_like(inputs_embeds)
                    if self.position_biased_input:
                        position_embeddings = self.position(inputs_embeds)
                        embeddings = embeddings + position_embeddings
                    return self.norm(embeddings)
            """,
            note="a zeros placeholder, filled only under a flag, is no layer's output (DeBERTa's embeddings)",
        ),
        Valid(
            """
            class Decoder(nn.Module):
                def __init__(self, dim, depth):
                    super().__init__()
                    self.layers = nn.ModuleList([nn.Linear(dim, dim) for _ in range(depth)])
                    self.ref = nn.Linear(dim, dim)
                    self.post_norm = nn.LayerNorm(dim)

                def forward(self, query, reference):
                    output = query
                    for layer in self.layers:
                        output = layer(output + reference)
                        reference = self.ref(output).sigmoid().detach()
                    return self.post_norm(output)
            """,
            note="loop-carried: the next iteration reads the reference, the last iteration's goes unused "
                 "(DAB-DETR's decoder)",
        ),
        Valid(
            """
            class Bottleneck(nn.Module):
                def __init__(self, c):
                    super().__init__()
                    self.conv1 = nn.Conv2d(c, c, 1)
                    self.conv2 = nn.Conv2d(c, c, 3, padding=1)
                    self.relu = nn.ReLU(inplace=True)

                def forward(self, x):
                    out = self.relu(self.conv1(x))
                    out = self.relu(self.conv2(out))
                    return out + x
            """,
            note="the chain is followed",
        ),
        Valid(
            """
            class Inception(nn.Module):
                def __init__(self, c):
                    super().__init__()
                    self.b1 = nn.Conv2d(c, c, 1)
                    self.b2 = nn.Conv2d(c, c, 3, padding=1)
                    self.b3 = nn.Conv2d(c, c, 5, padding=2)

                def forward(self, x):
                    a = self.b1(x)
                    b = self.b2(x)
                    c = self.b3(x)
                    return torch.cat([a, b, c], dim=1)
            """,
            note="parallel branches all read x and all are used",
        ),
        Valid(
            """
            class Attention(nn.Module):
                def __init__(self, dim):
                    super().__init__()
                    self.q = nn.Linear(dim, dim)
                    self.k = nn.Linear(dim, dim)
                    self.v = nn.Linear(dim, dim)
                    self.proj = nn.Linear(dim, dim)

                def forward(self, x):
                    q, k, v = self.q(x), self.k(x), self.v(x)
                    attn = (q @ k.transpose(-2, -1)).softmax(dim=-1)
                    return x + self.proj(attn @ v)
            """,
            note="q/k/v read the same input",
        ),
        Valid(
            """
            class Block(nn.Module):
                def __init__(self, c):
                    super().__init__()
                    self.conv1 = nn.Conv2d(c, c, 3, padding=1)
                    self.conv2 = nn.Conv2d(c, c, 3, padding=1)

                def forward(self, x):
                    shortcut = x
                    x = self.conv1(x)
                    x = self.conv2(x)
                    return x + shortcut
            """,
            note="timm style: x reused for the main path, shortcut saved first",
        ),
        Valid(
            """
            class Dense(nn.Module):
                def __init__(self, c, n):
                    super().__init__()
                    self.layers = nn.ModuleList([nn.Conv2d(c * (i + 1), c, 3, padding=1) for i in range(n)])

                def forward(self, x):
                    features = [x]
                    for layer in self.layers:
                        features.append(layer(torch.cat(features, 1)))
                    return torch.cat(features, 1)
            """,
            note="a loop that accumulates",
        ),
        Valid(
            """
            class Gated(nn.Module):
                def __init__(self, c):
                    super().__init__()
                    self.conv = nn.Conv2d(c, c, 3, padding=1)
                    self.gate = nn.Conv2d(c, c, 1)

                def forward(self, x):
                    out = self.conv(x)
                    if self.training:
                        out = x
                    return out * torch.sigmoid(self.gate(x))
            """,
            note="overwritten on one path only",
        ),
        Valid(
            """
            class SelfAttention(nn.Module):
                def __init__(self, dim):
                    super().__init__()
                    self.q_proj = nn.Linear(dim, dim)
                    self.k_proj = nn.Linear(dim, dim)
                    self.k_norm = nn.LayerNorm(dim)

                def forward(self, hidden_states, past_length=0):
                    query = self.q_proj(hidden_states)
                    key = self.k_proj(hidden_states)
                    key_length = key.shape[-2]
                    key_length += past_length
                    key = self.k_norm(key)
                    return torch.softmax(query @ key.transpose(-2, -1), -1) @ key
            """,
            note="a length read off a tensor's shape is no output the next layer should take (IDEFICS' kv_seq_len)",
        ),
        Valid(
            """
            class Encoder(nn.Module):
                def __init__(self, dim, depth):
                    super().__init__()
                    self.rotary = RotaryEmbedding(dim)
                    self.layers = nn.ModuleList([EncoderLayer(dim) for _ in range(depth)])

                def forward(self, inputs_embeds, attention_mask=None):
                    hidden_states = inputs_embeds
                    attention_mask = make_bidirectional_mask(inputs_embeds=inputs_embeds, attention_mask=attention_mask)
                    position_embeddings = self.rotary(hidden_states)
                    for layer in self.layers:
                        hidden_states = layer(hidden_states, position_embeddings=position_embeddings)
                    return hidden_states
            """,
            note="the mask updated from the mask it was and left unused belongs to its own chain (PaddleOCR-VL's encoder)",
        ),
        Valid(
            """
            class Encoder(nn.Module):
                def __init__(self, dim, depth):
                    super().__init__()
                    self.stages = nn.ModuleList([SwinStage(dim) for _ in range(depth)])

                def forward(self, hidden_states, size, output_hidden_states=False):
                    all_sizes = ()
                    all_hidden_states = () if output_hidden_states else None
                    for i, stage in enumerate(self.stages):
                        outputs = stage(hidden_states, size)
                        hidden_states = outputs[0]
                        new_size = outputs[1]
                        size = (new_size[-2], new_size[-1])
                        all_sizes += (size,)
                        if output_hidden_states:
                            all_hidden_states += (hidden_states,)
                    return hidden_states, all_hidden_states
            """,
            note="a tuple of sizes grown per stage is neither a tensor nor a residual add (Swin2SR's encoder)",
        ),
    )
    INVALID = (
        Invalid(
            """
            class Bottleneck(nn.Module):
                def __init__(self, c):
                    super().__init__()
                    self.conv1 = nn.Conv2d(c, c, 1, bias=False)
                    self.bn1 = nn.BatchNorm2d(c)
                    self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
                    self.bn2 = nn.BatchNorm2d(c)

                def forward(self, x):
                    out = self.bn1(self.conv1(x))
                    out = self.bn2(self.conv2(x))
                    return out + x
            """,
            expect=((11, 35),),
            note="seed 001: conv2 takes x",
        ),
        Invalid(
            """
            class Block(nn.Module):
                def __init__(self, c):
                    super().__init__()
                    self.conv1 = nn.Conv2d(c, c, 3, padding=1)
                    self.bn1 = nn.BatchNorm2d(c)
                    self.conv2 = nn.Conv2d(c, c, 3, padding=1)

                def forward(self, x):
                    shortcut = x
                    x = self.conv1(x)
                    x = self.bn1(x)
                    x = self.conv2(shortcut)
                    return x + shortcut
            """,
            expect=((12, 24),),
            note="the saved shortcut fed to the main path",
        ),
        Invalid(
            """
            class Stack(nn.Module):
                def __init__(self, c, n):
                    super().__init__()
                    self.layers = nn.ModuleList([nn.Conv2d(c, c, 3, padding=1) for _ in range(n)])

                def forward(self, x):
                    out = x
                    for layer in self.layers:
                        out = layer(x)
                    return out
            """,
            expect=((9, 25),),
            note="each iteration overwrites the previous one",
        ),
        Invalid(
            """
            class Block(nn.Module):
                def __init__(self, c):
                    super().__init__()
                    self.conv1 = nn.Conv2d(c, c, 3, padding=1)
                    self.conv2 = nn.Conv2d(c, c, 3, padding=1)
                    self.act = nn.ReLU()

                def forward(self, x):
                    y = self.act(self.conv1(x))
                    z = self.act(self.conv2(x))
                    return z + x
            """,
            expect=((10, 33),),
            note="the first output is never read",
        ),
    )


def _is_computed(value: FVal) -> bool:
    """A tensor produced by an operation (or an element of one: ``x, _ =
    self.attn(x)``): through a layer, or by tensor
    functions (``x_t = x.flatten(2).transpose(1, 2)`` then
    ``x_t = self.norm(x)``: the norm skipped the reshape)."""
    current = value
    while current.is_element and current.inputs:  # ``x1, x2 = torch.chunk(x, 2, dim=1)``
        current = current.inputs[0]
    return current.is_computed and current.tensor and value.tensor


def _producer(value: FVal) -> FVal:
    """What computed ``value``, past elementwise functions and unpacking."""
    current = strip_elementwise(value)
    while current.is_element and current.inputs:
        current = strip_elementwise(current.inputs[0])
    return current


def _stale_call(new: FVal, dead: FVal, flow: Flow) -> Optional[FVal]:
    """The first layer call in ``new``'s chain that reads a strict ancestor of
    the dead value (the point where the chain restarted from a stale value)."""
    if any(event.new is new and event.old is dead for event in overwritten_main_paths(flow)):
        return None  # the shortcut replaced the main path: residual-overwritten says so
    dead_ancestors = ancestors(dead)
    for layer in reversed(main_chain(new)):
        if layer.order <= dead.order or not layer.inputs:
            continue
        source = layer.inputs[0]
        if source is not dead and id(source) in dead_ancestors and source.tensor:
            return layer
        return None
    return None


def _violation(layer: FVal, dead: FVal, holder: str, how: str, flow: Flow, event=None) -> Optional[Violation]:
    arg = call_arg(layer.node)
    if arg is None:
        return None
    fix = None
    projection = bool(layer.attr and SHORTCUT_ATTRIBUTE.search(layer.attr))
    help_text = f"did you mean `{code_of(layer.node.func)}({holder})`?"
    if projection:
        # Feeding the main path to the shortcut's projection is never the repair.
        help_text = f"keep the main path in `{holder}` and the shortcut `{code_of(layer.node)}` in its own variable"
    elif _bound_before(flow, holder, layer):
        fix = FixPlan(f"feed `{holder}` (the previous output) to `{layer_name(layer.attr, layer.spec)}`", UNSAFE,
                      [replace(arg, holder)])
    if event is not None and redundant_overwrite(flow, event.new):
        # `h = self.skip(x)` before `h + self.skip(x)`: what the rest of forward
        # uses says the line is the mistake, not the layer's input.
        fix = FixPlan(f"delete `{code_of(event.stmt)}` (the add computes it already; `{holder}` keeps the main path)",
                      UNSAFE, [delete(event.stmt)], fallback=fix)
        help_text = f"delete `{code_of(event.stmt)}`: the add computes `{code_of(layer.node)}` already"
    chain = main_chain(dead)
    previous = chain[0] if chain else None
    if previous is not None and previous.node is layer.node:
        earlier = "the previous iteration"
    elif previous is not None and _producer(dead).is_layer:
        earlier = layer_phrase(previous.attr, previous.spec, previous.node)
    else:  # a combination of layer outputs (``torch.cat((x0, x1), 1)``), a reshape: quote it
        earlier = f"`{code_of(_producer(dead).node)}`"
    what = "the output of " if chain else "the value "
    message = (f"{layer_phrase(layer.attr, layer.spec, layer.node)} is applied to `{code_of(arg)}`, but {what}"
               f"{earlier} held in `{holder}` is {how}")
    return Violation(
        arg,
        message,
        help=help_text,
        expect={"kind": "dead-chain", "stale_layer": layer.attr, "dead_layers": [_module_path(v.attr) for v in main_chain(dead)]},
        fix=fix,
    )


def _module_path(attr: Optional[str]) -> Optional[str]:
    """The submodule whose parameters a dead call leaves without gradient:
    ``conv1``; for ``self.layers[i]`` or an element taken by a loop, the
    container (some of its children get none)."""
    if attr and attr.startswith("<element of ") and attr.endswith(">"):
        return attr[len("<element of "):-1]
    if attr and "[" in attr:
        return attr.split("[")[0]
    return attr


def _bound_before(flow: Flow, name: str, layer: FVal) -> bool:
    """``name`` is assigned before the first evaluation of the stale call (a
    loop's first iteration included), so the fix does not read an unbound
    variable."""
    first = min((v.order for v in flow.values if v.node is layer.node), default=layer.order)
    return any(event.var == name and event.new.order < first for event in flow.assignments)


def _evaluation(value: FVal):
    """A syntactic evaluation: the node, and which unrolled loop iteration."""
    return (id(value.node), value.iteration)


def _dead_in_every_world(flows: List[Flow]) -> Set[tuple]:
    """Evaluations whose result is dead in every world that computes them.

    An output used only in some configurations (an auxiliary head, a flag)
    is not a stale chain: the layer after it reading ``x`` may be right."""
    live_somewhere: Set[tuple] = set()
    seen: Set[tuple] = set()
    for flow in flows:
        for value in flow.values:
            if value.node is None or not (value.is_computed or value.is_element):
                continue
            seen.add(_evaluation(value))
            if not flow.is_dead(value):
                live_somewhere.add(_evaluation(value))
    return seen - live_somewhere


def _overwritten_chains(flow: Flow, dead_everywhere: Callable[[], Set[tuple]]) -> Iterator[Violation]:
    for event in flow.assignments:
        dead = event.old
        if dead is None or not _is_computed(dead) or not flow.is_dead(dead) or _is_placeholder(dead):
            continue
        if _evaluation(dead) not in dead_everywhere():
            continue
        layer = _stale_call(event.new, dead, flow)
        if layer is not None:
            found = _violation(layer, dead, event.var, "overwritten before it is used", flow, event)
            if found is not None:
                yield found


def _unread_chains(flow: Flow, dead_everywhere: Callable[[], Set[tuple]]) -> Iterator[Violation]:
    """``y = f(x); z = g(x)`` with ``y`` never read: ``g`` should take ``y``."""
    killed: Set[int] = {id(e.old) for e in flow.assignments if e.old is not None}
    for event in flow.assignments:
        dead = event.new
        if id(dead) in killed or not flow.is_dead(dead) or flow.consumers(dead):
            continue
        if event.var.startswith("_"):
            continue  # ``x, _ = self.backbone(x)``: discarded on purpose
        if not _is_computed(dead) or _evaluation(dead) not in dead_everywhere():
            continue
        if _is_placeholder(dead):
            continue
        if dead.iteration and event.old is not None and not flow.is_dead(event.old):
            continue  # loop-carried: the next iteration reads it (DAB-DETR's reference points), the last one need not
        following = _next_stale_call(flow, dead)
        if following is None:
            continue
        source = following.inputs[0]
        if _feeds_a_shortcut(flow, following, source) or _is_a_shortcut(flow, dead, source):
            continue  # a shortcut reads the stale value, or the dead value is a bypassed shortcut
        if flow.is_dead(following):
            continue
        if _continues_another_chain(event, source):
            continue
        found = _violation(following, dead, event.var, "never used", flow)
        if found is not None:
            yield found


def _continues_another_chain(event, source: FVal) -> bool:
    """``mask = make_mask(mask, inputs_embeds=x)``: the dead value updates
    what its variable held before, a value the stale input never fed (a
    mask, a cache length, a tuple of sizes), so it is that chain's end, not
    the output the layer reading ``source`` should have taken."""
    old = event.old
    if old is None or old is source or id(source) in ancestors(old):
        return False
    return id(old) in ancestors(event.new)


# Tensors made fresh from another's shape, whose values owe nothing to it.
FRESH_TENSORS = frozenset({"zeros_like", "ones_like", "empty_like", "full_like", "rand_like", "randn_like",
                           "randint_like", "new_zeros", "new_ones", "new_empty", "new_full", "new_tensor"})


def _is_placeholder(value: FVal) -> bool:
    """``torch.zeros_like(x)``: a tensor made from another's shape, not a
    layer's output a later layer should have taken (DeBERTa's position
    embeddings, zeros until a flag fills them)."""
    return _producer(value).name in FRESH_TENSORS


def _feeds_a_shortcut(flow: Flow, layer: FVal, source: FVal) -> bool:
    """``layer`` projects ``source`` into the shortcut operand of an add."""
    for residual in residual_adds(flow):
        chain = projection_chain(flow, residual.skip, source)
        if chain and any(step is layer for step in chain):
            return True
    return False


def _is_a_shortcut(flow: Flow, dead: FVal, source: FVal) -> bool:
    """The dead value projects ``source`` to the width of an add's main path
    that uses ``source`` raw: a bypassed shortcut (shortcut-bypassed)."""
    chain = projection_chain(flow, strip_elementwise(dead), source)
    if not chain:
        return False
    for residual in residual_adds(flow):
        if strip_elementwise(residual.skip) is source and shortcut_kind(dead, residual.main, flow) is not None:
            return True
    return False


def _next_stale_call(flow: Flow, dead: FVal) -> Optional[FVal]:
    """The first layer call evaluated after ``dead`` on the same path (a call
    made later on a sibling path, the other side of an ``if``, says nothing
    about this one) that reads a tensor ``dead`` was computed from: where
    the chain restarted.  Calls in between that read other tensors (the
    twin branch of ``x_h``/``x_w`` strip pooling) are passed over, and so
    are tensors ``dead`` owes only a shape or a length to (``n =
    k.shape[-2] + cache_len`` is no output a later layer should take)."""
    dead_ancestors = tensor_ancestors(dead)
    calls: List[FVal] = sorted((v for v in flow.values if v.is_layer and v.order > dead.order
                                and _same_path(dead, v)), key=lambda v: v.order)
    for call in calls:
        source = call.inputs[0] if call.inputs else None
        if source is not None and source is not dead and id(source) in dead_ancestors and source.tensor:
            return call
    return None


def _same_path(earlier: FVal, later: FVal) -> bool:
    if earlier.facts is None or later.facts is None:
        return True
    return later.facts.extends(earlier.facts)
