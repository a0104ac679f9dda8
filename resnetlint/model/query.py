"""The questions rules ask of the block model: the one module they import.

Rules never reach into the interpreters: they see

* the block (:class:`Block`): its worlds (the ways ``__init__`` can run),
  the layers each world builds, their contracts (:class:`LayerSpec` with its
  :class:`Summary`: widths, stride, what the model assumed), the forward
  dataflow of each world (:class:`Flow` of :class:`FVal` tensors);
* the residual adds and their operands (:func:`residual_adds`,
  :func:`intended_residuals`), the shortcut found by structure
  (:func:`projection_chain`, :func:`shortcut_kind`, :func:`caller_projections`);
* how the project writes a projection a fix must add
  (:func:`projection_idioms`);
* what a tensor carries (:func:`channels_of`, :func:`stride_of`,
  :func:`forward_chain`) and whether two widths can differ, and in which
  configuration (:func:`differ`).

Everything here is re-exported from the model's modules, so that the model
can be reorganised without touching a rule, and a rule is one file that
reads like a question.  ``tests/test_model.py`` checks that rules import
nothing else from the model.
"""
from __future__ import annotations

from typing import Set, Tuple

from .block import (
    GLOBAL,
    SAME_AS_INPUT,
    BlockModel,
    ChainStep,
    Difference,
    FileAnalysis,
    channels_of,
    consumes_directly,
    differ,
    forward_chain,
    forward_chains,
    input_channels,
    layers_reading_input,
    stride_of,
)
from .concrete import describe, find_configuration, parameters_of
from .forward_exec import AddEvent, AssignEvent, Flow, FVal, InplaceEvent, ancestors, tensor_ancestors
from .idioms import ProjectionIdiom, projection_idioms
from .init_exec import AttrAssign, World
from .init_exec import _assigned_in
from .layers import chain_links, iter_layers, sequential_children
from .parameters import unused_stride_parameter
from .residual import (
    Residual,
    caller_projections,
    caller_provides_projection,
    intended_residuals,
    is_main_path,
    is_projection,
    main_chain,
    overwritten_main_paths,
    present_module,
    add_chosen_by_caller,
    caller_flag,
    projection_chain,
    projection_switched_off,
    existing_projection,
    projects,
    residual_adds,
    shortcut_kind,
    strip_elementwise,
    pointwise_from,
    options_under,
    SHORTCUT_ATTRIBUTE,
)
from .symbolic import Cond, Facts, Num, mentions, provably_different, unless
from .syntax import walk
from .values import (
    AltV,
    BoolV,
    Item,
    LayerSpec,
    LayerV,
    Loc,
    NoneV,
    ParamV,
    StrV,
    Summary,
    TupleV,
    as_int,
    as_int_pair,
    as_num,
    possible_values,
)

Block = BlockModel


def assigned_names(node) -> Tuple[Set[str], Set[str]]:
    """Local names and ``self`` attributes a piece of code assigns
    (``setattr``/``add_module`` included), nested functions left out."""
    return _assigned_in(node)


__all__ = [
    "GLOBAL", "SAME_AS_INPUT", "AddEvent", "AltV", "AssignEvent", "AttrAssign", "Block", "BlockModel", "BoolV",
    "ChainStep", "Cond", "Difference", "FVal", "Facts", "FileAnalysis", "Flow", "InplaceEvent", "Item", "LayerSpec",
    "LayerV", "Loc", "NoneV", "Num", "ParamV", "Residual", "StrV", "Summary", "TupleV", "World", "ancestors",
    "tensor_ancestors",
    "as_int", "as_int_pair", "as_num", "assigned_names", "caller_projections", "caller_provides_projection",
    "chain_links", "channels_of", "consumes_directly", "differ", "forward_chain", "forward_chains",
    "input_channels", "intended_residuals", "is_main_path", "layers_reading_input", "is_projection", "iter_layers",
    "main_chain", "overwritten_main_paths", "present_module", "add_chosen_by_caller", "caller_flag",
    "projection_chain", "projection_switched_off", "provably_different", "residual_adds", "sequential_children",
    "shortcut_kind", "stride_of", "strip_elementwise", "unless", "walk", "existing_projection", "projects",
    "pointwise_from",
    "SHORTCUT_ATTRIBUTE", "options_under", "mentions", "describe", "find_configuration", "parameters_of", "unused_stride_parameter",
    "possible_values", "ProjectionIdiom", "projection_idioms",
]
