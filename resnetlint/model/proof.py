"""The static proof of a fixed block: its widths and strides check out.

Without torch (``--no-trace``, the pre-commit hook) an unsafe fix is kept only
when the static model can show the fixed block is well formed: on every path
of every way ``__init__`` can run, each layer ``forward`` calls is fed the
width it states, and the two operands of each residual add have provably
equal widths and resolutions.  Provably: both sides are known symbolic
expressions of the constructor's parameters and equal under the path's facts.
Anything the model does not know (a layer it cannot read, a width it cannot
follow) leaves the block unproven: unknown never proves anything, just as it
never produces a finding.  The one contract it takes as given is the
caller's projection (``downsample=None``, see
:func:`~resnetlint.model.block.caller_projection_contract`): it brings the
block input to the main path's width, at the block's stride, and when the
caller passes none, the input has the main path's shape already (what every
``_make_layer`` does).
"""
from __future__ import annotations

from typing import Optional

from .block import SAME_AS_INPUT, BlockModel, channels_of, input_channels, stride_of
from .forward_exec import Flow, FVal
from .residual import caller_provides_projection, residual_adds, strip_elementwise
from .symbolic import Facts, Num


def shapes_check_out(block: BlockModel) -> Optional[str]:
    """None when the block is proven well formed, else why it is not."""
    flows = list(block.flows())
    if not flows:
        return "the model has no forward for this class"
    for world, flow in flows:
        if flow.input is None:
            return "forward's input is not a single tensor the model follows"
        why = _layers_fed_right(flow, world.facts) or _adds_agree(flow, world.facts, caller_provides_projection(block))
        if why is not None:
            return why
    return None


def _width(flow: Flow, value: FVal, facts: Facts) -> Optional[Num]:
    width = channels_of(flow, value, facts)
    if width is SAME_AS_INPUT:
        width = input_channels(flow, facts)
    return facts.norm(width) if isinstance(width, Num) else None


def _label(value: FVal) -> str:
    if value.attr:
        return f"`self.{value.attr}`"
    return f"`{value.spec.label}`" if value.spec is not None else "a layer"


def _by_the_caller(value: FVal) -> bool:
    """A call of the projection the caller passed in."""
    return value.is_layer and value.spec is not None and value.spec.family == "caller"


def _layers_fed_right(flow: Flow, world_facts: Facts) -> Optional[str]:
    for value in flow.values:
        if not value.is_layer:
            continue
        summary = value.spec.summary if value.spec is not None else None
        if _by_the_caller(value):
            continue  # its widths are the caller's (checked at the add, by contract)
        if summary is None or not summary.known:
            return f"the model does not know what {_label(value)} computes"
        if summary.in_channels is None or not value.inputs:
            continue  # keeps its input's width without stating one (an activation, a pad)
        facts = value.facts or world_facts
        got = _width(flow, value.inputs[0], facts)
        if got is None:
            return f"the width fed to {_label(value)} is not known"
        if got != facts.norm(summary.in_channels):
            return f"{_label(value)} expects `{facts.norm(summary.in_channels).render()}` channels, gets " \
                   f"`{got.render()}`"
    return None


def _adds_agree(flow: Flow, world_facts: Facts, caller_contract: bool) -> Optional[str]:
    for residual in residual_adds(flow):
        facts = residual.facts or world_facts
        if caller_contract and strip_elementwise(residual.skip) is flow.input:
            continue  # no projection passed: by contract the input has the main path's shape
        main, skip = _width(flow, residual.main, facts), _width(flow, residual.skip, facts)
        if skip is None and _by_the_caller(strip_elementwise(residual.skip)):
            skip = main  # by contract: the caller's projection takes the input to the main path's width
        if main is None or skip is None:
            return "the widths of a residual add are not known"
        if main != skip:
            return f"a residual add has widths `{main.render()}` and `{skip.render()}`"
        main_stride, skip_stride = stride_of(flow, residual.main), stride_of(flow, residual.skip)
        if main_stride is None or skip_stride is None:
            return "the strides of a residual add are not known"
        if facts.norm(main_stride) != facts.norm(skip_stride):
            return f"a residual add has strides `{main_stride.render()}` and `{skip_stride.render()}`"
    return None
