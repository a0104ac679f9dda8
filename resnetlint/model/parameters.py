"""Constructor parameters a block accepts and never uses.

A ``stride`` that no layer receives is a bug of its own (the caller asks for
a downsampling block and gets one that keeps the resolution), and when the
caller also builds the shortcut with that stride, it is what makes the add
fail: both the unused-stride and the stride-mismatch rules need to know it,
so that one bug gets one finding.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Set

import libcst as cst

from .syntax import walk

if TYPE_CHECKING:  # pragma: no cover
    from .block import BlockModel

STRIDE_PARAMETERS = ("stride", "strides")


def unused_stride_parameter(block: "BlockModel") -> Optional[cst.Param]:
    """The block's own ``stride`` (``strides``) parameter when nothing uses
    it: no layer is built with it, no test reads it, nothing it calls
    receives it (storing it as ``self.stride`` for nobody to read does not
    count).  None when it is used, or when the block could use it where we
    cannot see (``**kwargs``, attributes set in ways we cannot read)."""
    init = block.init.init
    if init is None or block.forward is None or not block.own_init:
        return None
    if any(wf.world.dynamic for wf in block.worlds):
        return None  # attributes set in ways we cannot read (a base call that does not fit): it may be used there
    if init.params.star_kwarg is not None or isinstance(init.params.star_arg, cst.Param):
        return None  # `**kwargs` may carry it on by another name
    for param in list(init.params.params) + list(init.params.kwonly_params):
        if param.name.value not in STRIDE_PARAMETERS:
            continue
        if _read_anywhere(init, param.name.value) or _self_attribute_read(block, param.name.value, init):
            continue
        return param
    return None


def _read_anywhere(init: cst.FunctionDef, name: str) -> bool:
    """The parameter is read in ``__init__`` other than to be stored as
    ``self.<name>`` (``self.stride = stride``)."""
    stored = set()
    for node in walk(init.body):
        if isinstance(node, cst.Assign) and isinstance(node.value, cst.Name) and node.value.value == name and \
                all(isinstance(t.target, cst.Attribute) for t in node.targets):
            stored.add(id(node.value))
    return any(isinstance(node, cst.Name) and node.value == name and id(node) not in stored
               for node in walk(init.body))


def _self_attribute_read(block: "BlockModel", name: str, init: cst.FunctionDef) -> bool:
    """``self.<attribute>`` holding the stride is read by some method (or by
    a subclass or an unknown base we cannot see)."""
    attributes = set()
    for node in walk(init.body):
        if isinstance(node, cst.Assign) and isinstance(node.value, cst.Name) and node.value.value == name:
            for target in node.targets:
                if isinstance(target.target, cst.Attribute):
                    attributes.add(target.target.attr.value)
    if not attributes:
        return False
    if _read_in(init, attributes):
        return True  # `self.use_down = self.stride == 2` chooses the layers
    if block.has_unknown_base or block.has_subclass:
        return True
    return any(attribute in facts.load_methods or attribute in facts.state_reads or facts.reflective
               for _, facts in block.lineage() for attribute in attributes)


def _read_in(init: cst.FunctionDef, attributes: Set[str]) -> bool:
    """``self.<attribute>`` is read in ``__init__`` itself (not only stored)."""
    targets = set()
    for node in walk(init.body):
        if isinstance(node, (cst.Assign, cst.AnnAssign, cst.AugAssign)):
            for target in (node.targets if isinstance(node, cst.Assign) else [node]):
                targets.add(id(target.target))
    return any(isinstance(node, cst.Attribute) and node.attr.value in attributes and id(node) not in targets
               and isinstance(node.value, cst.Name) and node.value.value == "self" for node in walk(init.body))
