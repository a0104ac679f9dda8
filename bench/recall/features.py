"""Cheap syntactic features of a mutated block, to explain the misses.

Two kinds:

* ``site:<origin>`` -- where the callee of the layer the bug is planted in
  (or that the bug is about) comes from: ``torch``, ``same-file`` helper,
  ``other-module`` of the package, ``external`` library, ``param-class``
  (``norm_layer``), ``partial``, ``self-attr``, ``unknown``, or ``none``
  (the operator touches forward only, or the layer has no construction
  call: a caller-supplied module).
* block features -- what else the block uses that a class- and file-local
  model cannot see.

``primary_cause`` picks one label per missed mutant, by a fixed priority
(the first that applies): what the mutated layer is built by comes first,
because that is what the rule has to understand to report it -- except a
base class from another module or library, which comes first: resnetlint
does not analyse such a class at all today.
"""
from __future__ import annotations

import re
from typing import Dict, List, Optional, Sequence

import libcst as cst

from . import layers as L
from .blocks import Block
from .cstutil import code, dotted, last_name, self_attr, walk

FEATURE_TEXT: Dict[str, str] = {
    "site:other-module": "the layer is built by a helper/class from another module of the package",
    "site:external": "the layer is built by another library (mmcv/mmengine ConvModule, build_*_layer, timm ...)",
    "site:param-class": "the layer class is a parameter (norm_layer, conv_layer, act_layer, layers.*)",
    "site:partial": "the layer class is a functools.partial",
    "site:same-file": "the layer is built by a helper/class defined in the same file",
    "site:self-attr": "the layer is built by a callable stored on self",
    "site:unknown": "the layer's callee cannot be resolved",
    "cfg-builder": "layers built from config dicts (build_conv_layer/build_norm_layer/ConvModule, *_cfg)",
    "base-other-module": "a base class from another module of the package (GradientCheckpointingLayer, BaseBackbone...)",
    "base-external": "a base class from another library (not nn.Module or mmengine's BaseModule)",
    "base-same-file": "a base class defined in the same file",
    "no-own-init": "the class has no __init__ (inherits it)",
    "caller-projection": "the projection is supplied by the caller (downsample=None)",
    "projection-elsewhere": "the projection is built by a helper (create_shortcut, _make_layer, ...)",
    "kwargs": "__init__ takes **kwargs",
    "config-object": "widths come from a config object (config.hidden_size, cfg[...])",
    "modulelist-loop": "forward loops over a ModuleList/Sequential",
    "delegating-forward": "the residual add is in a nested function or a method forward calls",
    "checkpoint": "forward uses (gradient) checkpointing",
    "add-module/property": "layers registered with add_module/setattr or read through @property",
    "sequential-main-path": "the whole main path is one Sequential/submodule call",
    "conditional-layer": "the mutated layer is built under an if / conditional expression",
    "hasattr-guard": "hasattr/getattr guards on attributes",
    "nested-class": "the class is nested in another class",
    "non-conv-block": "no conv in the block (transformer/MLP style)",
}

PRIORITY: Sequence[str] = (
    "base-other-module", "base-external",  # a class whose base cannot be resolved is not analysed at all
    "site:other-module", "site:external", "site:param-class", "site:partial", "site:self-attr",
    "site:same-file", "site:unknown", "no-own-init",
    "caller-projection", "projection-elsewhere", "delegating-forward", "modulelist-loop", "add-module/property",
    "config-object", "kwargs", "sequential-main-path", "cfg-builder", "conditional-layer", "hasattr-guard",
    "nested-class", "non-conv-block",
)
PLAIN = "plain-torch"  # nothing above: plain torch.nn layers in one class


def block_features(block: Block) -> List[str]:
    out: List[str] = []
    index = block.index
    for base in block.bases:
        short = base.split(".")[-1]
        origin = index.origin(base.split(".")[0])
        if base in ("nn.Module", "torch.nn.Module", "object", "Module") or origin == "torch":
            continue
        if short in ("BaseModule",) and origin == "external":
            continue  # mmengine's nn.Module, known to resnetlint
        if origin == "same-file":
            out.append("base-same-file")
        elif origin == "other-module":
            out.append("base-other-module")
        elif origin in ("external", "unknown"):
            out.append("base-external")
    init = block.init
    if init is None:
        out.append("no-own-init")
    else:
        if init.has_kwargs:
            out.append("kwargs")
        init_text = "".join(code(f) for f in init.functions)  # small: __init__ and its helpers
        if re.search(r"\b(config|cfg)\.\w+|\bcfg\[|\bconfig\[", init_text):
            out.append("config-object")
        if re.search(r"\bbuild_\w+_layer\b|\bConvModule\b|_cfg\s*=", init_text):
            out.append("cfg-builder")
        if re.search(r"add_module\(|setattr\(self", init_text):
            out.append("add-module/property")
        projections = {attr for r in block.residuals for attr, _ in r.projections}
        for attr in projections:
            for value, _, _ in init.attr_values.get(attr, []):
                if isinstance(value, cst.Name) and value.value in init.params:
                    out.append("caller-projection")
                elif isinstance(value, cst.Call) and L.layer_kind(block, value) is None and last_name(
                        value.func) not in ("Sequential",):
                    out.append("projection-elsewhere")
        convs = [s for s in init.calls if L.layer_kind(block, s.call) == "conv"]
        if not convs:
            out.append("non-conv-block")
    if any(isinstance(node, cst.Decorator) and dotted(node.decorator) == "property"
           for node in walk(block.cls)) and "add-module/property" not in out:
        out.append("add-module/property")
    if block.residual_function != "forward":
        out.append("delegating-forward")
    forward_nodes = [node for name in block.functions
                     if name == "forward" or name == block.residual_function.split(".")[0]
                     for node in walk(block.functions[name])]
    if any(isinstance(n, cst.Name) and "checkpoint" in n.value for n in forward_nodes):
        out.append("checkpoint")
    if any(isinstance(n, cst.For) and any(self_attr(m) for m in walk(n.iter)) for n in forward_nodes):
        out.append("modulelist-loop")
    if any(isinstance(n, cst.Call) and dotted(n.func) in ("hasattr", "getattr") and n.args
           and isinstance(n.args[0].value, cst.Name) and n.args[0].value.value == "self" for n in walk(block.cls)):
        out.append("hasattr-guard")
    mains = [r.main_attrs for r in block.residuals if r.main_attrs]
    if mains and all(len(set(m)) <= 2 for m in mains):
        out.append("sequential-main-path")
    if "." in block.qualname:
        out.append("nested-class")
    return sorted(set(out))


def site_features(block: Block, site: Optional[cst.Call], layer: Optional[str]) -> List[str]:
    out: List[str] = []
    if site is not None:
        out.append(f"site:{L.callee_origin(block, site)}")
        if block.init is not None:
            for call_site in block.init.calls:
                if call_site.call is site and call_site.conditional:
                    out.append("conditional-layer")
    else:
        out.append("site:none")
    return out


def primary_cause(features: Sequence[str]) -> str:
    present = set(features)
    for label in PRIORITY:
        if label in present:
            return label
    return PLAIN
