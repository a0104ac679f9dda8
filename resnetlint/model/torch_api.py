"""What the model knows about ``torch.nn`` without importing torch.

Each entry gives a layer's positional parameter order and the defaults that
matter to the rules (``bias=True`` on convolutions is the whole point of
RL301).  A layer that is not in this table is an *unknown* module: it may be
called and tracked, but nothing is assumed about its channels or strides.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

# Families decide how a layer transforms a tensor:
#   conv            channels in -> out, spatial by stride/padding
#   conv_transpose  channels in -> out, spatial upsampled (stride is unknown for us)
#   norm            channels preserved and checked (num_features)
#   linear          last dimension in -> out
#   act, dropout    elementwise: shape preserved
#   identity        shape preserved
#   pool            channels preserved, spatial by stride
#   adaptive_pool   channels preserved, spatial fixed by output_size
#   pad             channels preserved, spatial size grown by the padding
#   container       Sequential / ModuleList / ModuleDict
#   other           known torch module with an effect we do not model
FAMILIES = (
    "conv",
    "conv_transpose",
    "norm",
    "linear",
    "act",
    "dropout",
    "identity",
    "pool",
    "adaptive_pool",
    "pad",
    "container",
    "other",
)


@dataclass(frozen=True)
class LayerType:
    name: str  # class name inside torch.nn, e.g. "Conv2d"
    family: str
    params: Tuple[str, ...]  # positional order
    defaults: Dict[str, object] = field(default_factory=dict)
    norm_kind: Optional[str] = None  # "batch", "instance", "group", "layer", "other"
    dims: int = 0  # spatial rank for conv/pool/norm, 0 when not spatial
    has_weights: bool = False
    inplace_param: bool = False

    @property
    def qualname(self) -> str:
        return f"torch.nn.{self.name}"


_CONV = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "bias", "padding_mode", "device", "dtype")
_CONV_DEFAULTS = {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, "bias": True, "padding_mode": "zeros"}
_CONV_T = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "output_padding", "groups", "bias", "dilation", "padding_mode", "device", "dtype")
_CONV_T_DEFAULTS = {"stride": 1, "padding": 0, "output_padding": 0, "groups": 1, "bias": True, "dilation": 1}
_BN = ("num_features", "eps", "momentum", "affine", "track_running_stats", "device", "dtype")
_POOL_MAX = ("kernel_size", "stride", "padding", "dilation", "return_indices", "ceil_mode")
_POOL_AVG = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override")

_TABLE: Dict[str, LayerType] = {}


def _add(layer: LayerType) -> None:
    _TABLE[layer.name] = layer


for _d in (1, 2, 3):
    _add(LayerType(f"Conv{_d}d", "conv", _CONV, _CONV_DEFAULTS, dims=_d, has_weights=True))
    _add(LayerType(f"ConvTranspose{_d}d", "conv_transpose", _CONV_T, _CONV_T_DEFAULTS, dims=_d, has_weights=True))
    _add(LayerType(f"LazyConv{_d}d", "conv", _CONV[1:], _CONV_DEFAULTS, dims=_d, has_weights=True))
    _add(LayerType(f"BatchNorm{_d}d", "norm", _BN, {"affine": True}, norm_kind="batch", dims=_d, has_weights=True))
    _add(LayerType(f"LazyBatchNorm{_d}d", "norm", _BN[1:], {"affine": True}, norm_kind="batch", dims=_d, has_weights=True))
    _add(LayerType(f"InstanceNorm{_d}d", "norm", _BN, {"affine": False}, norm_kind="instance", dims=_d, has_weights=True))
    _add(LayerType(f"MaxPool{_d}d", "pool", _POOL_MAX, {"stride": None, "padding": 0, "dilation": 1}, dims=_d))
    _add(LayerType(f"AvgPool{_d}d", "pool", _POOL_AVG, {"stride": None, "padding": 0}, dims=_d))
    _add(LayerType(f"AdaptiveAvgPool{_d}d", "adaptive_pool", ("output_size",), dims=_d))
    _add(LayerType(f"AdaptiveMaxPool{_d}d", "adaptive_pool", ("output_size", "return_indices"), dims=_d))
    _add(LayerType(f"Dropout{_d}d", "dropout", ("p", "inplace"), {"inplace": False}, dims=_d, inplace_param=True))

_add(LayerType("SyncBatchNorm", "norm", _BN[:5] + ("process_group",), {"affine": True}, norm_kind="batch", has_weights=True))
_add(LayerType("GroupNorm", "norm", ("num_groups", "num_channels", "eps", "affine"), {"affine": True}, norm_kind="group", has_weights=True))
_add(LayerType("LayerNorm", "norm", ("normalized_shape", "eps", "elementwise_affine", "bias"), {}, norm_kind="layer", has_weights=True))
_add(LayerType("RMSNorm", "norm", ("normalized_shape", "eps", "elementwise_affine"), {}, norm_kind="layer", has_weights=True))
_add(LayerType("LocalResponseNorm", "other", ("size", "alpha", "beta", "k")))
_add(LayerType("Linear", "linear", ("in_features", "out_features", "bias"), {"bias": True}, has_weights=True))
_add(LayerType("LazyLinear", "linear", ("out_features", "bias"), {"bias": True}, has_weights=True))
_add(LayerType("Identity", "identity", ()))
_add(LayerType("Dropout", "dropout", ("p", "inplace"), {"inplace": False}, inplace_param=True))
_add(LayerType("AlphaDropout", "dropout", ("p", "inplace"), {"inplace": False}, inplace_param=True))
_add(LayerType("FeatureAlphaDropout", "dropout", ("p", "inplace"), {"inplace": False}, inplace_param=True))
_add(LayerType("Sequential", "container", ()))
_add(LayerType("ModuleList", "container", ("modules",)))
_add(LayerType("ModuleDict", "container", ("modules",)))
_add(LayerType("ParameterList", "other", ("values",), has_weights=True))
_add(LayerType("ParameterDict", "other", ("parameters",), has_weights=True))

# Elementwise activations; those with an ``inplace`` flag record it.
for _name, _params in {
    "ReLU": ("inplace",),
    "ReLU6": ("inplace",),
    "LeakyReLU": ("negative_slope", "inplace"),
    "ELU": ("alpha", "inplace"),
    "CELU": ("alpha", "inplace"),
    "SELU": ("inplace",),
    "SiLU": ("inplace",),
    "Mish": ("inplace",),
    "Hardswish": ("inplace",),
    "Hardsigmoid": ("inplace",),
    "Hardtanh": ("min_val", "max_val", "inplace"),
    "RReLU": ("lower", "upper", "inplace"),
    "Threshold": ("threshold", "value", "inplace"),
}.items():
    _add(LayerType(_name, "act", _params, {"inplace": False}, inplace_param=True))
for _name in ("GELU", "Sigmoid", "Tanh", "Softplus", "Softsign", "Tanhshrink", "LogSigmoid", "Hardshrink", "Softshrink"):
    _add(LayerType(_name, "act", ()))
_add(LayerType("PReLU", "act", ("num_parameters", "init"), has_weights=True))
for _name in ("Softmax", "LogSoftmax", "Softmin", "Softmax2d"):
    _add(LayerType(_name, "act", ("dim",)))
# Explicit padding layers: the size grows by what they add (a `padding=0`
# convolution after one keeps it).
for _d in (1, 2, 3):
    for _kind in ("Zero", "Reflection", "Replication", "Circular"):
        _add(LayerType(f"{_kind}Pad{_d}d", "pad", ("padding",), dims=_d))
    _add(LayerType(f"ConstantPad{_d}d", "pad", ("padding", "value"), dims=_d))
for _name in ("Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d", "PixelShuffle", "PixelUnshuffle",
              "Flatten", "Unflatten", "GLU", "Embedding", "Bilinear",
              "MultiheadAttention", "TransformerEncoderLayer", "TransformerDecoderLayer", "LSTM", "GRU", "RNN"):
    _add(LayerType(_name, "other", (), has_weights=_name in {
        "Embedding", "Bilinear", "MultiheadAttention", "TransformerEncoderLayer",
        "TransformerDecoderLayer", "LSTM", "GRU", "RNN"}))
_add(LayerType("ChannelShuffle", "act", ("groups",)))  # a permutation: shape kept

# Quantization-friendly add/mul modules: calling ``.add`` on them is a residual add.
FLOAT_FUNCTIONAL = {"FloatFunctional", "QFunctional"}

# Module base classes that make a class an ``nn.Module`` besides torch.nn's own.
THIRD_PARTY_MODULE_BASES = {
    "mmengine.model.BaseModule",
    "mmengine.model.base_module.BaseModule",
    "mmengine.model.Sequential",
    "mmengine.model.ModuleList",
    "mmcv.runner.BaseModule",
    "mmcv.runner.base_module.BaseModule",
}


def layer_type(qualname: str) -> Optional[LayerType]:
    """The torch.nn layer for a qualified name such as ``torch.nn.Conv2d`` or
    ``torch.nn.modules.conv.Conv2d``; None when it is not a known layer."""
    if not qualname.startswith("torch.nn."):
        return None
    last = qualname.rsplit(".", 1)[-1]
    if last in FLOAT_FUNCTIONAL:
        return None
    head = qualname[: -len(last) - 1]
    if head in ("torch.nn", "torch.nn.modules") or head.startswith("torch.nn.modules."):
        return _TABLE.get(last)
    return None


def is_module_base(qualname: str) -> bool:
    """Whether subclassing ``qualname`` makes an ``nn.Module``."""
    if qualname in THIRD_PARTY_MODULE_BASES:
        return True
    if qualname in ("torch.nn.Module", "torch.nn.modules.module.Module"):
        return True
    return layer_type(qualname) is not None or qualname.rsplit(".", 1)[-1] in FLOAT_FUNCTIONAL and qualname.startswith("torch.")


# ----------------------------------------------------------------------------
# Functional API and tensor methods as seen by the forward dataflow
# ----------------------------------------------------------------------------

# Elementwise functions: output has the input's shape (channels and spatial).
ELEMENTWISE_FUNCTIONS = {
    "relu", "relu6", "gelu", "silu", "elu", "selu", "celu", "leaky_relu", "hardswish", "hardsigmoid",
    "hardtanh", "mish", "sigmoid", "tanh", "softplus", "softsign", "dropout", "dropout1d", "dropout2d",
    "dropout3d", "alpha_dropout", "rrelu", "threshold", "logsigmoid", "prelu", "clamp", "clip", "abs",
    "exp", "log", "sqrt", "rsqrt", "neg", "square", "erf", "sign", "hardshrink", "softshrink", "normalize",
    "relu_", "elu_", "leaky_relu_", "hardtanh_", "threshold_", "rrelu_", "celu_", "selu_",
}
# Functions that mutate their first argument.
INPLACE_FUNCTIONS = {"relu_", "elu_", "leaky_relu_", "hardtanh_", "threshold_", "rrelu_", "celu_", "selu_"}
ADD_FUNCTIONS = {"add"}  # torch.add(a, b)

# Tensor methods that keep the receiver's shape.
ELEMENTWISE_METHODS = {
    "relu", "sigmoid", "tanh", "clamp", "clip", "abs", "exp", "neg", "sqrt", "rsqrt", "contiguous",
    "clone", "float", "half", "double", "bfloat16", "to", "type_as", "detach", "cuda", "cpu", "square",
    "relu_", "sigmoid_", "tanh_", "clamp_", "clip_", "abs_", "exp_", "neg_", "sqrt_", "mul", "mul_",
    "div", "div_", "add", "add_", "sub", "sub_", "pow", "pow_", "requires_grad_", "hardswish", "gelu",
    "silu", "sign", "erf", "softmax", "log_softmax", "masked_fill", "masked_fill_",
}
NON_TENSOR_ATTRIBUTES = {"shape", "dtype", "device", "ndim", "is_cuda", "requires_grad", "layout", "T", "mT"}
NON_TENSOR_METHODS = {"size", "dim", "numel", "element_size", "data_ptr", "nelement", "is_contiguous", "stride", "item", "tolist", "get_device"}


def is_inplace_method(name: str) -> bool:
    """``x.add_(y)``, ``x.relu_()``: mutate the receiver (dunder methods excluded)."""
    return name.endswith("_") and not name.endswith("__") and not name.startswith("_") and name != "requires_grad_"
