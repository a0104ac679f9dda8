"""What a layer construction call is: its kind (conv, norm, ...), where its
callee comes from, and where its width / kernel / stride / padding / groups
/ bias arguments are.

Only signatures that are certain are read positionally: ``torch.nn``'s
``ConvNd``, ``BatchNormNd``, ``GroupNorm``, mmcv's ``build_conv_layer`` /
``build_norm_layer``, and helpers defined in the same file (their own
parameter list).  For any other callee only keyword arguments with the
usual names are used, plus the first two positionals as in/out widths of a
conv-like helper (``conv3x3_block(in_channels, out_channels)``,
``ConvNormAct(in_chs, out_chs, 3)``, ``ConvModule(in, out, 3)``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import libcst as cst

from .blocks import Block, CallSite, PARAM_FREE
from .cstutil import argument, code, dotted, keyword, last_name, positional

CONV_NAME = re.compile(r"conv|Conv", re.IGNORECASE)
NORM_NAME = re.compile(r"(BatchNorm|GroupNorm|LayerNorm|InstanceNorm|SyncBatchNorm|FrozenBatchNorm|^BN|^bn$|"
                       r"norm_layer|^norm$|Norm2d|Norm1d|Norm3d|build_norm_layer|^get_norm|create_norm)")
BN_NAME = re.compile(r"^(BatchNorm[123]d|SyncBatchNorm|InstanceNorm[123]d|FrozenBatchNorm2d|BatchNorm2d)$")
TORCH_CONV = re.compile(r"^(Conv[123]d|ConvTranspose[123]d|LazyConv[123]d)$")
TORCH_NORM_FIRST = re.compile(r"^(BatchNorm[123]d|SyncBatchNorm|InstanceNorm[123]d|LayerNorm|FrozenBatchNorm2d|"
                              r"LazyBatchNorm[123]d|RMSNorm|LocalResponseNorm)$")

IN_NAMES = ("in_channels", "in_chs", "inplanes", "in_planes", "inp", "c1", "in_ch", "in_dim", "cin", "ch_in",
            "in_c", "in_chans", "input_channels", "in_filters", "n_in", "nin", "in_size", "channels", "num_channels",
            "num_features", "normalized_shape", "dim", "chs")
OUT_NAMES = ("out_channels", "out_chs", "planes", "outplanes", "out_planes", "oup", "c2", "out_ch", "out_dim",
             "cout", "ch_out", "out_c", "output_channels", "out_filters", "n_out", "nout", "out_size")
KERNEL_NAMES = ("kernel_size", "k", "ksize", "kernel")
STRIDE_NAMES = ("stride", "s", "strides")
PADDING_NAMES = ("padding", "pad", "p")
GROUPS_NAMES = ("groups", "g")
DILATION_NAMES = ("dilation", "d")


@dataclass
class Signature:
    """Where the arguments of one kind of callee are (positional index or
    None when only the keyword is certain)."""

    in_index: Optional[int]
    out_index: Optional[int]
    kernel_index: Optional[int] = None
    stride_index: Optional[int] = None
    padding_index: Optional[int] = None
    groups_index: Optional[int] = None
    bias_index: Optional[int] = None
    certain: bool = False  # a torch/mmcv/same-file signature (positional indexes exact)
    stride_required: bool = False  # a helper whose stride has no default: dropping it plants a TypeError


def callee_origin(block: Block, call: cst.Call) -> str:
    """Where a layer's callee comes from: ``torch``, ``same-file``,
    ``other-module`` (elsewhere in the package), ``external`` (mmcv,
    mmengine, timm, ...), ``param-class`` (a constructor parameter such as
    ``norm_layer``), ``partial``, ``self-attr`` or ``unknown``."""
    name = dotted(call.func)
    if name is None:
        return "unknown"
    root = name.split(".")[0]
    if root == "self":
        return "self-attr"
    init = block.init
    if init is not None:
        if root in init.params:
            return "param-class"
        values = init.local_values.get(root, [])
        for value in values:
            text = code(value)
            if "partial(" in text:
                return "partial"
            if any(p in text.split(".")[0].replace("(", " ").split() for p in init.params):
                return "param-class"
            if isinstance(value, (cst.BooleanOperation, cst.IfExp)):
                return "param-class"
    origin = block.index.origin(root)
    if origin == "torch" or root in ("nn", "torch"):
        return "torch"
    return origin


def layer_kind(block: Block, call: cst.Call) -> Optional[str]:
    """``conv``, ``norm``, ``free`` (parameter-free) or None (something else)."""
    name = last_name(call.func) or ""
    if name == "Sequential" or name in ("ModuleList", "ModuleDict", "partial", "dict", "list", "tuple", "int",
                                        "getattr", "setattr", "super", "isinstance", "range", "len"):
        return None
    if NORM_NAME.search(name):
        return "norm"
    if CONV_NAME.search(name) and not name.lower().startswith(("convert", "get_conv_cfg")):
        return "conv"
    if PARAM_FREE.search(name):
        return "free"
    if any(a.keyword is not None and a.keyword.value in IN_NAMES for a in call.args) and name[:1].isupper():
        return "module"  # SEModule(channels=...), Attention(dim=...): a layer with a width keyword
    return None


def signature(block: Block, call: cst.Call) -> Optional[Signature]:
    kind = layer_kind(block, call)
    name = last_name(call.func) or ""
    origin = callee_origin(block, call)
    if kind == "conv":
        if origin == "torch" and TORCH_CONV.match(name):
            return Signature(0, 1, 2, 3, 4, 6, 7, certain=True)
        if name == "build_conv_layer":
            return Signature(1, 2, 3, 4, 5, 7, 8, certain=True)
        if origin == "same-file" and name in _same_file_functions(block):
            return _signature_from_def(_same_file_functions(block)[name])
        return Signature(0, 1)
    if kind == "module":
        return Signature(None, None)
    if kind == "norm":
        if name == "GroupNorm":
            return Signature(1, None, certain=origin == "torch")
        if name == "build_norm_layer":
            return Signature(1, None, certain=True)
        if origin == "torch" and TORCH_NORM_FIRST.match(name):
            return Signature(0, None, certain=True)
        if origin in ("param-class", "partial", "same-file", "other-module", "external", "unknown"):
            return Signature(0, None)
    return None


def _same_file_functions(block: Block) -> Dict[str, cst.FunctionDef]:
    cache = getattr(block.index, "_function_defs", None)
    if cache is None:
        cache = {}
        for stmt in block.module.body:
            if isinstance(stmt, cst.FunctionDef):
                cache[stmt.name.value] = stmt
        block.index._function_defs = cache  # type: ignore[attr-defined]
    return cache


def _signature_from_def(function: cst.FunctionDef) -> Signature:
    names = [p.name.value for p in list(function.params.posonly_params) + list(function.params.params)]

    def find(options: Sequence[str]) -> Optional[int]:
        for index, name in enumerate(names):
            if name in options:
                return index
        return None

    in_index = find(IN_NAMES)
    out_index = find(OUT_NAMES)
    stride_index = find(STRIDE_NAMES)
    positional = list(function.params.posonly_params) + list(function.params.params)
    stride_required = stride_index is not None and positional[stride_index].default is None
    return Signature(in_index if in_index is not None else 0, out_index if out_index is not None else 1,
                     find(KERNEL_NAMES), stride_index, find(PADDING_NAMES), find(GROUPS_NAMES),
                     find(("bias",)), certain=True, stride_required=stride_required)


def arg_in(call: cst.Call, sig: Signature) -> Optional[cst.Arg]:
    return argument(call, sig.in_index, IN_NAMES)


def arg_out(call: cst.Call, sig: Signature) -> Optional[cst.Arg]:
    return argument(call, sig.out_index, OUT_NAMES)


def arg_named(call: cst.Call, sig: Signature, what: str) -> Optional[cst.Arg]:
    index = {"kernel": sig.kernel_index, "stride": sig.stride_index, "padding": sig.padding_index,
             "groups": sig.groups_index, "bias": sig.bias_index}[what]
    names = {"kernel": KERNEL_NAMES, "stride": STRIDE_NAMES, "padding": PADDING_NAMES, "groups": GROUPS_NAMES,
             "bias": ("bias",)}[what]
    if not sig.certain:
        found = keyword(call, names[0]) or (keyword(call, *names[1:]) if what != "padding" else None)
        return found
    return argument(call, index, names)


def bn_config(block: Block, cfg: cst.BaseExpression) -> bool:
    """An mmcv norm config that is a BatchNorm: ``dict(type='BN')``, or a
    constructor parameter whose default is one."""
    text = code(cfg)
    if isinstance(cfg, cst.Name) and block.init is not None and block.init.params.get(cfg.value) is not None:
        text = code(block.init.params[cfg.value])
    return bool(re.search(r"type\s*=\s*['\"](BN|SyncBN|BN2d|BN1d|BN3d|IN|IN2d)['\"]|['\"]type['\"]\s*:\s*['\"](BN|SyncBN)['\"]",
                          text))


def is_bn_like(block: Block, call: cst.Call) -> bool:
    """A BatchNorm/InstanceNorm (the norms a conv bias is dead before):
    ``nn.BatchNorm2d``, ``norm_layer(...)`` whose default is one,
    ``build_norm_layer(cfg, ...)`` with a BN config by default."""
    name = last_name(call.func) or ""
    origin = callee_origin(block, call)
    if BN_NAME.match(name) and origin in ("torch", "other-module", "external", "same-file"):
        return True
    init = block.init
    if init is None:
        return False
    if origin == "param-class":
        root = (dotted(call.func) or "").split(".")[0]
        candidates: List[cst.BaseExpression] = []
        if init.params.get(root) is not None:
            candidates.append(init.params[root])
        candidates += init.local_values.get(root, [])
        return any(re.search(r"\bBatchNorm[123]d\b|\bSyncBatchNorm\b|InstanceNorm", code(c)) for c in candidates)
    if name == "build_norm_layer":
        args = positional(call)
        if not args:
            return False
        return bn_config(block, args[0].value)
    return False


def int_literal(node: Optional[cst.BaseExpression]) -> Optional[int]:
    if isinstance(node, cst.Integer):
        return int(node.value, 0)
    return None


def kernel_bigger_than_one(block: Block, call: cst.Call, sig: Signature) -> Optional[bool]:
    arg = arg_named(call, sig, "kernel")
    if arg is None:
        name = last_name(call.func) or ""
        match = re.search(r"(\d)x(\d)", name)
        if match:
            return int(match.group(1)) > 1 or int(match.group(2)) > 1
        return None
    value = arg.value
    if isinstance(value, cst.Integer):
        return int(value.value, 0) > 1
    if isinstance(value, cst.Tuple):
        sizes = [int_literal(e.value) for e in value.elements]
        if all(s is not None for s in sizes):
            return any(s > 1 for s in sizes)
        return None
    if isinstance(value, cst.Name) and block.init is not None:
        default = block.init.params.get(value.value)
        literal = int_literal(default)
        if literal is not None:
            return literal > 1
    return None


def constructions(block: Block, attr: str) -> List[cst.BaseExpression]:
    if block.init is None:
        return []
    return [value for value, _, _ in block.init.attr_values.get(attr, [])]


def site_for_attr(block: Block, attr: str) -> Optional[CallSite]:
    """The (first) call that builds ``self.<attr>``, mmcv's
    ``self.norm1_name, norm1 = build_norm_layer(...)`` + ``norm1`` property
    included."""
    if block.init is None:
        return None
    for site in block.init.calls:
        if site.attr == attr and site.sequential is None:
            return site
    for site in block.init.calls:
        if site.local and attr in (site.local, f"{site.local}_name") or (site.tuple_names and any(
                name == f"self.{attr}_name" for name in site.tuple_names)):
            return site
    return None


def parameter_free(block: Block, attr: str) -> bool:
    """Whether ``self.<attr>`` holds no parameters as built (activation,
    dropout, pooling, identity, None)."""
    values = constructions(block, attr)
    if not values:
        return True
    for value in values:
        if isinstance(value, cst.Call):
            if _has_parameters(value):
                return False
        elif isinstance(value, cst.IfExp):
            for branch in (value.body, value.orelse):
                if isinstance(branch, cst.Call) and _has_parameters(branch):
                    return False
        elif isinstance(value, cst.Name) and block.init is not None and value.value in block.init.params:
            return False  # a module the caller passes in
    return True


def _has_parameters(call: cst.Call) -> bool:
    name = last_name(call.func) or ""
    if name == "Identity":
        return False
    return bool(CONV_NAME.search(name) or NORM_NAME.search(name)) or not PARAM_FREE.search(name)


# --------------------------------------------------------------------------
# Conv-norm-activation helpers whose defaults were read in the corpus
# sources (a bias before their norm is dead; their padding keeps the size by
# default).  Only these are mutated through their arguments by RL301/RL204:
# for any other helper the harness cannot know what a missing argument means.


@dataclass(frozen=True)
class Helper:
    family: str  # the package whose helper this is (torchvision, timm, pytorchcv)
    kernel: Optional[int]  # fixed by the helper (conv3x3_block), else None: read kernel_size
    kernel_index: Optional[int]  # positional index of kernel_size (None: keyword only)
    kernel_default: Optional[int]
    stride_index: Optional[int]
    padding_index: Optional[int]
    bias_index: Optional[int]
    norm_keywords: Tuple[str, ...]  # keywords that can turn the norm off (None / False)


_TV = Helper("torchvision", None, 2, 3, 3, 4, 10, ("norm_layer",))
_TIMM = Helper("timm", None, 2, 1, 3, 4, 7, ("norm_layer", "apply_norm"))


def _pcv(kernel: int) -> Helper:
    # pytorchcv's convK_block(padding=K // 2, **kwargs): read by keyword only
    return Helper("pytorchcv", kernel, None, None, None, None, None, ("normalization",))


KNOWN_HELPERS: Dict[str, Helper] = {
    "Conv2dNormActivation": _TV, "Conv3dNormActivation": _TV, "Conv1dNormActivation": _TV,
    "ConvNormAct": _TIMM, "ConvBnAct": _TIMM,
    "conv1x1_block": _pcv(1), "conv3x3_block": _pcv(3), "conv5x5_block": _pcv(5), "conv7x7_block": _pcv(7),
    "dwconv3x3_block": _pcv(3), "dwconv5x5_block": _pcv(5),
}


def known_helper(block: Block, call: cst.Call) -> Optional[Helper]:
    """The :class:`Helper` a call uses, when its origin is that family's
    package (imported from it, or defined in it)."""
    name = last_name(call.func) or ""
    helper = KNOWN_HELPERS.get(name)
    if helper is None:
        return None
    root = (dotted(call.func) or "").split(".")[0]
    module = block.index.imports.get(root, ("", None))[0]
    if module.split(".")[0] == helper.family:
        return helper
    if block.index.package == helper.family and (module.startswith(".") or root in block.index.functions
                                                  or root in block.index.classes):
        return helper
    return None


def helper_argument(call: cst.Call, helper: Helper, what: str) -> Optional[cst.Arg]:
    index = {"kernel": helper.kernel_index, "stride": helper.stride_index, "padding": helper.padding_index,
             "bias": helper.bias_index}[what]
    names = {"kernel": ("kernel_size",), "stride": ("stride",), "padding": ("padding",), "bias": ("bias",)}[what]
    return argument(call, index, names)


def helper_norm_is_on(call: cst.Call, helper: Helper) -> bool:
    """The helper's default BatchNorm is not turned off by an argument
    (any value given to its norm keywords counts as 'maybe off')."""
    return not any(keyword(call, name) for name in helper.norm_keywords) and not has_star_kwargs(call)


def has_star_kwargs(call: cst.Call) -> bool:
    return any(a.star == "**" for a in call.args)
