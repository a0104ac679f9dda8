"""Values for ``forward``'s arguments after the input (worker side only).

Modern blocks take more than ``x``: a time embedding (``forward(x, temb)``),
a context to attend to (``attn(x, context)``), a mask, the feature map's
size.  Each argument gets a value from its name and from how ``forward``
uses it, read from forward's source with ``ast`` (never executed):
``self.time_emb_proj(temb)`` means a ``(B, in_features)`` tensor for that
Linear, ``self.attn2(x, context)`` a token tensor as wide as the attention's
key projection reads, ``position_embeddings: tuple[Tensor, Tensor]`` a
rotary ``(cos, sin)`` as wide as the attention's heads.  Optional arguments
(``None`` by default) are left out first, then the values made exactly
(rotary pairs, token positions) alone, then
everything gets a tensor; a required mask is ``None`` first.

:func:`forward_extras` returns alternatives, tried in order while the
previous one fails before the block's own computation.
"""
from __future__ import annotations

import ast
import inspect
import re
import textwrap
from typing import Any, Callable, Dict, List, Optional, Tuple

# `forward` arguments that are the spatial size of a token sequence.
SIZE_ARG = re.compile(r"^(size|hw|hw_shape|hw_size|feat_size|input_size|spatial_size|spatial_shape|shape|"
                      r"resolution|grid_size|x_size)$")
SIDE_ARG = re.compile(r"^(h|w|height|width|H|W)$")
# Arguments that are a sequence to attend to (tokens), not a vector.
CONTEXT_ARG = re.compile(r"context|encoder_hidden_states|memory|kv|enc|cross|text|^y$|^c$|cond_tokens")
# Arguments that are masks, biases, caches: None when required, before anything else.
MASK_ARG = re.compile(r"mask|bias|rope|freqs|position|pos_|cache|past|state|padding|attn_|output_")
# Integer positions of the input's tokens (`position_ids`, `cache_position`).
POSITION_IDS = re.compile(r"^(position_ids|pos_ids|cache_position|positions_ids)$")
# A submodule's layer that reads a context: the key projection.
KEY_LAYER = re.compile(r"(^|\.)(k|key|to_k|kv|to_kv|k_proj|wk|key_proj|k_linear|linear_k)$")
# An argument that is a rotary embedding's (cos, sin) pair when annotated as a tuple.
ROTARY_ARG = re.compile(r"position_embeddings|rotary|rope|freqs|cos_sin|pos_emb")
# Where attention modules keep the width of one head.
HEAD_WIDTH_ATTRS = ("head_dim", "head_size", "attention_head_size", "dim_head")
CONTEXT_TOKENS = 8
BATCH = 2

Maker = Callable[[int, List[int]], Any]  # (spatial size, the input's size) -> value


def forward_extras(block, device: str, width: int) -> List[Dict[str, Maker]]:
    """Alternatives for the arguments after the input, best guess first."""
    import torch

    try:
        params = list(inspect.signature(block.forward).parameters.values())[1:]
    except (TypeError, ValueError):
        return [{}]
    uses = _uses(block)
    first: Dict[str, Maker] = {}
    exact: Dict[str, Maker] = {}  # made to measure: rotary pairs, token positions
    second: Dict[str, Maker] = {}
    for param in params:
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        name = param.name
        if SIZE_ARG.match(name.lower()) and param.default is inspect.Parameter.empty:
            first[name] = second[name] = lambda s, size: (s, s)
            continue
        if SIDE_ARG.match(name) and param.default is inspect.Parameter.empty:
            first[name] = second[name] = lambda s, size: s
            continue
        if param.default is not inspect.Parameter.empty and param.default is not None:
            continue  # a flag or a number with a default: kept
        pair = rotary_pair_for(block, param, uses.get(name, []), device)
        if pair is not None:
            exact[name] = pair
            continue
        if POSITION_IDS.match(name.lower()):
            exact[name] = _positions(device)
            continue
        tensor = tensor_for(block, name, uses.get(name, []), device, width)
        if param.default is None:
            if tensor is not None:
                second[name] = tensor  # left out first, then a tensor
        elif MASK_ARG.search(name.lower()):
            first[name] = lambda s, size: None
            if tensor is not None:
                second[name] = tensor
        elif not uses.get(name) and tensor is not None:
            # Used by no layer of the block: as often as not a second input like the
            # first (`forward(x, y)` fusing two maps), else a vector of the width.
            first[name] = lambda s, size: torch.randn(*size, device=device)
            second[name] = tensor
        else:
            first[name] = tensor if tensor is not None else (lambda s, size: None)
            second[name] = lambda s, size: None
    alternatives = [first]
    if exact:
        # What the network hands every layer (a rotary pair, the positions): with them alone first.
        alternatives.append({**first, **exact})
    if second:
        alternatives.append({**first, **exact, **second})
    return alternatives


def _uses(block) -> Dict[str, List[Tuple[str, int]]]:
    """For each name in forward: the submodules it is passed to, ``(attribute
    path, argument position)``, in order (``self.proj(F.silu(temb))``
    counts as passing ``temb`` to ``proj``)."""
    try:
        source = textwrap.dedent(inspect.getsource(type(block).forward))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError, IndentationError):
        return {}
    found: Dict[str, List[Tuple[str, int]]] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        path = _self_path(node.func)
        if path is None:
            continue
        for position, arg in enumerate(list(node.args) + [k.value for k in node.keywords]):
            for name in _names_passed(arg):
                found.setdefault(name, []).append((path, position))
    return found


def _names_passed(arg: ast.AST) -> set:
    """The names an argument expression hands on, through plain functions
    (``F.silu(temb)``) but not through another submodule's call: in
    ``self.conv1(self.norm1(x, seg))`` the label map goes to ``norm1``."""
    if isinstance(arg, ast.Name):
        return {arg.id}
    if isinstance(arg, ast.Call) and _self_path(arg.func) is not None:
        return set()
    names = set()
    for child in ast.iter_child_nodes(arg):
        names |= _names_passed(child)
    return names


def _self_path(func: ast.AST) -> Optional[str]:
    parts = []
    while isinstance(func, ast.Attribute):
        parts.insert(0, func.attr)
        func = func.value
    if isinstance(func, ast.Name) and func.id == "self" and parts:
        return ".".join(parts)
    return None


def _resolve(block, path: str):
    target = block
    for part in path.split("."):
        target = getattr(target, part, None)
        if target is None:
            return None
    return target


def tensor_for(block, name: str, uses: List[Tuple[str, int]], device: str, width: int) -> Optional[Maker]:
    """A tensor for argument ``name``: shaped for the first submodule it is
    passed to that states a width, else by its name."""
    import torch
    import torch.nn as nn

    def randn(*shape):
        return torch.randn(*shape, device=device)

    for path, position in uses:
        module = _resolve(block, path)
        if not isinstance(module, nn.Module):
            continue
        if isinstance(module, nn.Embedding):
            count = module.num_embeddings
            return lambda s, size: torch.randint(0, count, (BATCH,), device=device)
        if position > 0:
            # A second argument of a submodule (attention's context): as wide as its key projection.
            keys = [m for key, m in module.named_modules() if KEY_LAYER.search(key) and isinstance(m, nn.Linear)]
            if keys:
                features = keys[0].in_features
                return lambda s, size: randn(BATCH, CONTEXT_TOKENS, features)
            # Else a conditioning input its first layer reads (SPADE's label map
            # beside the features, an adaptive norm's embedding): shaped for it.
        layer = _first_width_layer(module)
        if isinstance(layer, (nn.Linear, nn.LayerNorm)):
            features = layer.in_features if isinstance(layer, nn.Linear) else layer.normalized_shape[-1]
            if CONTEXT_ARG.search(name.lower()):
                return lambda s, size: randn(BATCH, CONTEXT_TOKENS, features)
            # Beside tokens, a second token sequence (`cross(x0, x1)`); beside an image, a vector (`temb`).
            return lambda s, size: randn(*size[:-1], features) if len(size) == 3 else randn(BATCH, features)
        if isinstance(layer, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            channels = layer.in_channels  # (a subclass, OctConv: ranked by its torch base)
            rank = next(r for kind, r in ((nn.Conv1d, 1), (nn.Conv2d, 2), (nn.Conv3d, 3)) if isinstance(layer, kind))
            return lambda s, size: randn(BATCH, channels, *([s] * rank))
    if MASK_ARG.search(name.lower()):
        return None
    if CONTEXT_ARG.search(name.lower()):
        return lambda s, size: randn(BATCH, CONTEXT_TOKENS, width)
    return lambda s, size: randn(BATCH, width)


def rotary_pair_for(block, param, uses: List[Tuple[str, int]], device: str) -> Optional[Maker]:
    """A rotary embedding's ``(cos, sin)`` for an argument annotated as a
    tuple (``position_embeddings: tuple[Tensor, Tensor]``, computed once by
    the network and handed to every layer): each ``(B, N, head width)`` for
    the input's N tokens, the head width read off the attention it is passed
    to (``self.head_dim``)."""
    import torch

    if not ROTARY_ARG.search(param.name.lower()) or "tuple" not in str(param.annotation).lower():
        return None
    receivers = [_resolve(block, path) for path, _ in uses]
    width = next((w for module in receivers + [block] if module is not None
                  for w in [_head_width(module)] if w), None)
    if width is None:
        return None

    def pair(s, size):
        tokens = size[1] if len(size) == 3 else s * s
        angles = torch.randn(BATCH, tokens, width, device=device)
        return torch.cos(angles), torch.sin(angles)

    return pair


def _positions(device: str) -> Maker:
    """The positions 0..N-1 of the input's tokens, for each sample."""
    import torch

    def positions(s, size):
        tokens = size[1] if len(size) == 3 else s * s
        return torch.arange(tokens, device=device).expand(BATCH, tokens)

    return positions


def _head_width(module) -> Optional[int]:
    """The width of one attention head, from the first (sub)module that states it."""
    for layer in module.modules():
        for attr in HEAD_WIDTH_ATTRS:
            value = getattr(layer, attr, None)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
    return None


def _first_width_layer(module):
    import torch.nn as nn

    kinds = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
    for layer in module.modules():
        if isinstance(layer, kinds) or (type(layer) is nn.LayerNorm and len(layer.normalized_shape) == 1):
            return layer  # (a plain LayerNorm states the width of the last dimension)
    return None
