"""Small helpers over libcst nodes and layer specs that several rules share."""
from __future__ import annotations

import contextlib
import contextvars
from typing import Callable, Iterator, Optional, Tuple

import libcst as cst

from .model.syntax import SourceIndex
from .model.values import LayerSpec, Loc

# The index of the file whose rules are running (set by the engine), so that
# messages can quote source text whichever front end built the nodes.
_INDEX: contextvars.ContextVar[Optional[SourceIndex]] = contextvars.ContextVar("resnetlint_index", default=None)
# Text of nodes from other modules (a layer a helper builds): None if unknown.
_ELSEWHERE: contextvars.ContextVar[Optional[Callable[[cst.CSTNode], Optional[str]]]] = \
    contextvars.ContextVar("resnetlint_elsewhere", default=None)


@contextlib.contextmanager
def using_index(index: SourceIndex, elsewhere: Optional[Callable[[cst.CSTNode], Optional[str]]] = None) -> Iterator[None]:
    token = _INDEX.set(index)
    other = _ELSEWHERE.set(elsewhere)
    try:
        yield
    finally:
        _ELSEWHERE.reset(other)
        _INDEX.reset(token)


def _text(node: cst.CSTNode) -> str:
    index = _INDEX.get()
    if index is not None and index.position(node) is not None:
        return index.text(node)
    elsewhere = _ELSEWHERE.get()
    found = elsewhere(node) if elsewhere is not None else None
    if found is not None:
        return found
    try:  # a node built by a rule: libcst can still print it
        return index.text(node) if index is not None else "?"
    except (AttributeError, TypeError):  # a lite node, which libcst cannot print
        return "?"


def source_of(node: cst.CSTNode) -> Optional[str]:
    """A node's source text as written, over several lines (the lines after
    its first with the indentation of its file), or None when unknown."""
    index = _INDEX.get()
    if index is not None and index.position(node) is not None:
        return index.source_text(node)
    text = _text(node)
    return None if text == "?" else text


def code_of(node: Optional[cst.CSTNode], limit: int = 60) -> str:
    """Source text of a node on one line, shortened for messages."""
    if node is None:
        return "?"
    text = " ".join(_text(node).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def call_arg(call: Optional[cst.CSTNode], index: int = 0) -> Optional[cst.BaseExpression]:
    """The ``index``-th positional argument of a call, if written."""
    if not isinstance(call, cst.Call):
        return None
    positional = [a for a in call.args if a.keyword is None and not a.star]
    return positional[index].value if index < len(positional) else None


WIDTH_ARGUMENT = {
    "conv": "in_channels",
    "conv_transpose": "in_channels",
    "linear": "in_features",
}
NORM_WIDTH_ARGUMENT = {"batch": "num_features", "instance": "num_features", "group": "num_channels", "layer": "normalized_shape"}


def width_argument_name(spec: LayerSpec) -> Optional[str]:
    """Which constructor argument states the width a layer expects."""
    if spec.family == "norm":
        # a norm whose class is a contract states its width as num_features
        return NORM_WIDTH_ARGUMENT.get(spec.norm_kind or "", "num_features" if spec.ltype is None else None)
    return WIDTH_ARGUMENT.get(spec.family)


def report_node(spec: LayerSpec, arg: Optional[Loc]) -> Optional[cst.CSTNode]:
    """Where to point for an argument of a layer: the argument as written in
    the class, else the call in the class that built the layer (a helper)."""
    if arg is not None and arg.local and arg.node is not None:
        return arg.node
    return spec.site


def layer_name(attr: Optional[str], spec: Optional[LayerSpec]) -> str:
    if attr and not attr.startswith("<"):
        return f"self.{attr}"
    return spec.label if spec is not None else "the layer"


def layer_phrase(attr: Optional[str], spec: Optional[LayerSpec], call: Optional[cst.CSTNode] = None) -> str:
    """A layer call named for a message, quotes included: `` `self.conv2` ``;
    a layer taken from a container (``for layer in self.layers``) by the name
    it is called with: `` `layer` (an element of `self.layers`) ``."""
    if isinstance(call, cst.Call) and attr and attr.startswith("<element of "):
        return f"`{code_of(call.func)}` (an element of `self.{attr[len('<element of '):-1]}`)"
    return f"`{layer_name(attr, spec)}`"


def position_of(node: Optional[cst.CSTNode]) -> Optional[Tuple[int, int]]:
    """(line, column) of a node of the file being checked, or None."""
    index = _INDEX.get()
    position = index.position(node) if node is not None and index is not None else None
    return (position[0], position[1]) if position is not None else None


def source_text(node: Optional[cst.CSTNode]) -> Optional[str]:
    """The exact source text of a node (for fixes), or None."""
    index = _INDEX.get()
    if node is None or index is None or index.position(node) is None:
        return None
    return index.text(node)


def written_argument(spec: LayerSpec, name: str) -> Optional[cst.CSTNode]:
    """The expression written for a layer argument in this class, or None
    when it is a default or was written inside a helper."""
    arg = spec.arg(name)
    if arg is not None and arg.local and arg.node is not None:
        return arg.node
    return None


def local_call(spec: LayerSpec) -> Optional[cst.Call]:
    """The constructor call when it is written in the class itself (not in a
    helper), so a fix may edit it."""
    call = spec.call
    if isinstance(call, cst.Call) and spec.site is call:
        return call
    return None


def torch_nn_alias(ctx) -> Optional[str]:
    """How the file refers to ``torch.nn`` (``nn``, ``torch.nn``), if at all."""
    for name, qualified in ctx.imports.items():
        if qualified == "torch.nn":
            return name
    for name, qualified in ctx.imports.items():
        if qualified == "torch":
            return f"{name}.nn"
    return None


def parenthesize(text: str) -> str:
    """``text`` safe to put next to an operator."""
    stripped = text.strip()
    if stripped.isidentifier() or stripped.replace(".", "").isidentifier():
        return stripped
    return f"({stripped})"
