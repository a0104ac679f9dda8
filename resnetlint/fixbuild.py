"""Building blocks for repairs that several rules share: where an unused
layer goes, which line overwrote a value by mistake.

Rules use these through the same model questions they ask for detection
(:mod:`resnetlint.model.query` only).  Every repair built here is ``unsafe``
(it changes what the block computes); the fixer proves it with the trace, or
with the static model when there is no trace.
"""
from __future__ import annotations

import re
from typing import Dict, List, Optional, Sequence, Tuple

import libcst as cst

from .fixes import UNSAFE, FixPlan, insert_after, insert_before, replace
from .model.query import (BlockModel, Flow, FVal, LayerSpec, LayerV, SHORTCUT_ATTRIBUTE, channels_of, options_under,
                          present_module, projects, residual_adds, strip_elementwise, walk)
from .nodes import code_of, position_of, source_text

# Attribute names that hold a shortcut's projection are the model's
# SHORTCUT_ATTRIBUTE; `proj` alone is also an attention block's output layer,
# so it counts only for a strided or 1x1 conv.
MAYBE_PROJECTION_NAME = re.compile(r"proj", re.IGNORECASE)
# Containers that cannot be called.
NOT_CALLABLE = re.compile(r"Module(List|Dict)|Parameter(List|Dict)")


def same_computation(a: FVal, b: FVal) -> bool:
    """The same value, or the same layer applied to the same inputs (two
    calls of ``self.skip`` on ``x``)."""
    a, b = strip_elementwise(a), strip_elementwise(b)
    if a is b:
        return True
    return (a.is_layer and b.is_layer and a.attr is not None and a.attr == b.attr and len(a.inputs) == len(b.inputs)
            and all(x is y for x, y in zip(a.inputs, b.inputs)))


def redundant_overwrite(flow: Flow, new: FVal) -> bool:
    """The value an assignment wrote is then added to the same computation:
    ``h = self.skip(x); return h + self.skip(x)`` or ``x = identity`` before
    ``x + identity``.  The assignment is the mistake; the value it replaced
    was the main path."""
    for add in flow.adds:
        for mine, other in ((add.left, add.right), (add.right, add.left)):
            if strip_elementwise(mine) is strip_elementwise(new) and same_computation(other, new):
                return True
    return False


def init_positions(block: BlockModel) -> Dict[str, Tuple[int, int]]:
    """Where ``__init__`` first assigns each attribute (line, column), for the
    attributes assigned in this file."""
    out: Dict[str, Tuple[int, int]] = {}
    for wf in block.worlds:
        for name, assigned in wf.world.attrs.items():
            position = position_of(assigned.stmt) if assigned.stmt is not None else None
            if position is not None and (name not in out or position < out[name]):
                out[name] = position
    return out


def layer_spec(block: BlockModel, name: str) -> Optional[LayerSpec]:
    """The layer ``self.<name>`` holds in the first world where it is one
    (of alternatives, ``dwconv3x3_block if use_kernel3 else dwconv5x5_block``,
    the first, when every alternative is a layer)."""
    for wf in block.worlds:
        assigned = wf.world.attrs.get(name)
        options = options_under(assigned.loc.value, wf.world.facts) if assigned is not None else []
        if options and all(isinstance(option, LayerV) for option in options):
            return options[0].spec
    return None


def _calls(block: BlockModel) -> Dict[str, List[Tuple[Flow, FVal]]]:
    """Each attribute forward calls: its calls (one per distinct call node)."""
    out: Dict[str, List[Tuple[Flow, FVal]]] = {}
    seen = set()
    for _, flow in block.flows():
        for value in flow.values:
            if value.is_layer and value.attr and value.attr.isidentifier() and value.node is not None:
                if (value.attr, id(value.node)) not in seen:
                    seen.add((value.attr, id(value.node)))
                    out.setdefault(value.attr, []).append((flow, value))
    return out


def _statement_of(flow: Flow, call: FVal):
    """The assignment whose whole value is this call: (statement, target)."""
    for event in flow.assignments:
        stmt = event.stmt
        if event.new is call and isinstance(stmt, cst.Assign) and stmt.value is call.node and len(stmt.targets) == 1 \
                and isinstance(stmt.targets[0].target, cst.Name):
            return stmt, stmt.targets[0].target.value
    return None


def _fits(spec: LayerSpec, flow: Flow, feed: FVal) -> bool:
    """The layer does not provably refuse the width it would be fed."""
    wanted = spec.summary.in_channels
    if wanted is None:
        return True
    facts = feed.facts or flow.world.facts
    width = channels_of(flow, feed, facts)
    return not (hasattr(width, "terms") and facts.norm(width) != facts.norm(wanted))


def wire_in(block: BlockModel, name: str) -> Optional[FixPlan]:
    """Put an unused layer back where it obviously goes, or None:

    * a projection (``downsample``, ``identity_conv``...) onto the shortcut
      of the add that adds the raw input;
    * otherwise by ``__init__`` order (layers are built in the order they
      run): before the layer built next, else after the layer built just
      before it (``bn2`` between ``conv2`` and ``relu``), as a statement of
      its own where the code writes one layer per line, else as a call
      around the value; before the ``if`` under which forward applies the
      layer built next (see :func:`_before_guarded_neighbour`)."""
    spec = layer_spec(block, name)
    if spec is None or spec.family == "parameter" or NOT_CALLABLE.search(spec.label or ""):
        return None
    if SHORTCUT_ATTRIBUTE.search(name) or (MAYBE_PROJECTION_NAME.search(name) and projects(spec) and _has_conv(spec)):
        return onto_shortcut(block, name)
    positions = init_positions(block)
    if name not in positions:
        return None
    calls = _calls(block)
    # Only a neighbour forward calls whenever the layer exists: the layer built
    # after an unconditional one may be applied under `if self.use_se:`.
    always = _called_wherever(block, name)
    used = sorted((positions[attr], attr) for attr in calls if attr in positions and attr != name and attr in always)
    after = [attr for position, attr in used if position > positions[name]]
    before = [attr for position, attr in used if position < positions[name]]
    guarded = _before_guarded_neighbour(block, name, spec, positions, calls)
    if guarded is not None:
        return guarded
    if after and len(calls[after[0]]) == 1:
        flow, call = calls[after[0]][0]
        plan = _before_call(flow, call, spec, name)
        if plan is not None:
            return plan
    if before and len(calls[before[-1]]) == 1:
        flow, call = calls[before[-1]][0]
        return _after_call(flow, call, spec, name)
    return None


def _before_guarded_neighbour(block: BlockModel, name: str, spec: LayerSpec, positions, calls) -> Optional[FixPlan]:
    """The layer built next is applied under a condition of forward's own
    (``if self.use_se: x = self.se(x)``) as ``x = self.<next>(x)``: the
    unused layer goes just before that ``if``, as ``x = self.<name>(x)``
    (MnasNet's ``dw_conv`` between an optional expansion and an optional SE),
    never inside it."""
    built_after = sorted((positions[attr], attr) for attr in calls if attr in positions and positions[attr] > positions[name])
    if not built_after or len(calls[built_after[0][1]]) != 1 or block.forward is None:
        return None
    if not all(present_module(wf.world, name, wf.world.facts) for wf in block.worlds):
        return None  # built only in some worlds: applying it unconditionally would fail in the others
    flow, call = calls[built_after[0][1]][0]
    found = _statement_of(flow, call)
    node = call.node
    if found is None or not isinstance(node, cst.Call) or not node.args or not call.inputs or \
            not isinstance(node.args[0].value, cst.Name) or node.args[0].value.value != found[1] or \
            not _fits(spec, flow, call.inputs[0]) or not _on_main_paths_only(flow, call):
        return None
    enclosing = next((statement for statement in block.forward.body.body
                      if any(child is found[0] for child in walk(statement))), None)
    if not isinstance(enclosing, cst.If):
        return None
    var = found[1]
    return FixPlan(f"apply `self.{name}` before `if {code_of(enclosing.test)}:` (where `__init__` builds it)", UNSAFE,
                   [insert_before(enclosing, f"{var} = self.{name}({var})")])


def _on_main_paths_only(flow: Flow, value: FVal) -> bool:
    """``value`` feeds the main path of the block's residual adds and none of
    their shortcuts: the layer built after the unused one may be the
    shortcut's (PyramidNet's `identity = self.identity_pool(identity)` under
    `if self.resize_identity:`), and its variable is then not the one the
    unused main-path layer transforms."""
    node = value.node
    variable = node.args[0].value.value if isinstance(node, cst.Call) and node.args and \
        isinstance(node.args[0].value, cst.Name) else ""
    if SHORTCUT_ATTRIBUTE.search(value.attr or "") or SHORTCUT_ATTRIBUTE.search(variable):
        return False  # named for the shortcut (where the bug left no main path, the model cannot tell them apart)
    residuals = residual_adds(flow)

    def feeds(target: FVal) -> bool:
        return target is value or id(value) in flow.ancestors(target)
    return not any(feeds(r.skip) for r in residuals) and \
        (not residuals or any(feeds(r.main) for r in residuals))


def _called_wherever(block: BlockModel, name: str) -> set:
    """The attributes forward calls in every world where ``__init__`` builds ``self.<name>``."""
    called = None
    for world, flow in block.flows():
        if name not in world.attrs:
            continue
        here = {value.attr for value in flow.values if value.is_layer and value.attr}
        called = here if called is None else called & here
    return called or set()


def _has_conv(spec: LayerSpec) -> bool:
    if spec.family == "conv":
        return True
    return any(isinstance(child.loc.value, LayerV) and _has_conv(child.loc.value.spec) for child in spec.children)


def _before_call(flow: Flow, call: FVal, spec: LayerSpec, name: str) -> Optional[FixPlan]:
    node = call.node
    if not isinstance(node, cst.Call) or not node.args or node.args[0].keyword is not None or not call.inputs:
        return None
    if not _fits(spec, flow, call.inputs[0]):
        return None
    arg = node.args[0].value
    text = source_text(arg)
    if text is None:
        return None
    described = f"apply `self.{name}` before `{code_of(node.func)}` (where `__init__` builds it)"
    found = _statement_of(flow, call)
    if found is not None and isinstance(arg, cst.Name) and found[1] == arg.value:
        return FixPlan(described, UNSAFE, [insert_before(found[0], f"{text} = self.{name}({text})")])
    return FixPlan(described, UNSAFE, [replace(arg, f"self.{name}({text})")])


def _after_call(flow: Flow, call: FVal, spec: LayerSpec, name: str) -> Optional[FixPlan]:
    node = call.node
    if not isinstance(node, cst.Call) or not _fits(spec, flow, call):
        return None
    text = source_text(node)
    if text is None:
        return None
    described = f"apply `self.{name}` after `{code_of(node.func)}` (where `__init__` builds it)"
    found = _statement_of(flow, call)
    if found is not None:
        return FixPlan(described, UNSAFE, [insert_after(found[0], f"{found[1]} = self.{name}({found[1]})")])
    return FixPlan(described, UNSAFE, [replace(node, f"self.{name}({text})")])


def onto_shortcut(block: BlockModel, name: str) -> Optional[FixPlan]:
    """Apply the projection where the shortcut takes the raw input: in
    ``identity = x`` (on the paths where the projection exists) or at the
    add's operand."""
    targets: Dict[int, Tuple[cst.CSTNode, set]] = {}
    for world, flow in block.flows():
        if flow.input is None:
            continue
        assigned = world.attrs.get(name)
        present = assigned is not None and isinstance(assigned.loc.value, LayerV)
        for residual in _raw_input_adds(flow):
            node = residual.skip_node
            if not isinstance(node, cst.Name):
                continue
            target = node if node.value == flow.input.name else None
            for event in flow.assignments:
                if event.var == node.value and event.new is flow.input and isinstance(event.stmt, cst.Assign):
                    target = event.stmt.value
            if target is not None:
                targets.setdefault(id(target), (target, set()))[1].add(present)
    if any(len(presence) > 1 for _, presence in targets.values()):
        return None  # the same code runs where the projection exists and where it does not
    operations = []
    for target, presence in targets.values():
        if presence != {True}:
            continue
        text = source_text(target)
        if text is None:
            return None
        operations.append(replace(target, f"self.{name}({text})"))
    if not operations:
        return None
    return FixPlan(f"apply `self.{name}` to the shortcut", UNSAFE, operations)


def _raw_input_adds(flow: Flow) -> Sequence:
    from .model.query import residual_adds

    return [r for r in residual_adds(flow) if strip_elementwise(r.skip) is flow.input]


def unused_layers(block: BlockModel) -> List[str]:
    """Attributes holding a callable layer that ``forward`` never reads, in
    ``__init__`` order."""
    read = set()
    for _, flow in block.flows():
        read |= set(flow.attr_read_nodes)
    positions = init_positions(block)
    out = []
    for name in sorted(positions, key=positions.get):
        spec = layer_spec(block, name)
        if spec is None or name in read or spec.family == "parameter" or NOT_CALLABLE.search(spec.label or ""):
            continue
        out.append(name)
    return out
