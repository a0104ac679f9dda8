# Contract of mmcv 2.x: mmcv/cnn/bricks (conv_module.py, wrappers, norm.py,
# activation.py, conv.py, drop.py, scale.py, depthwise_separable_conv_module.py).
import torch.nn as nn

import __resnetlint__ as contract

from .drop import DropPath, build_dropout


def build_conv_layer(cfg, *args, **kwargs):
    """``cfg`` None means nn.Conv2d; a named type picks the class, which
    takes nn.Conv2d's arguments (deformable and weight-standardised convs
    included)."""
    if cfg is None:
        return nn.Conv2d(*args, **kwargs)
    layer_type = cfg.get("type", "Conv2d")
    if layer_type == "Conv1d":
        return nn.Conv1d(*args, **kwargs)
    if layer_type == "Conv3d":
        return nn.Conv3d(*args, **kwargs)
    if layer_type == "Conv2d" or layer_type == "Conv":
        return nn.Conv2d(*args, **kwargs)
    return contract.conv(*args, **kwargs)


def build_norm_layer(cfg, num_features, postfix=""):
    """Returns (attribute name, layer): the name is the norm's abbreviation
    and the postfix (``bn1``), the layer normalises ``num_features``."""
    layer_type = cfg.get("type", "BN")
    if layer_type in ("BN", "BN2d", "SyncBN", "MMSyncBN"):
        layer = nn.BatchNorm2d(num_features)
    elif layer_type == "BN1d":
        layer = nn.BatchNorm1d(num_features)
    elif layer_type == "BN3d":
        layer = nn.BatchNorm3d(num_features)
    elif layer_type == "GN":
        layer = nn.GroupNorm(cfg.get("num_groups", 32), num_features)
    elif layer_type == "LN":
        layer = nn.LayerNorm(num_features)
    elif layer_type in ("IN", "IN2d"):
        layer = nn.InstanceNorm2d(num_features)
    else:
        layer = contract.norm(num_features)
    return "norm" + str(postfix), layer


def build_activation_layer(cfg):
    return contract.act(inplace=cfg.get("inplace", False))


def build_upsample_layer(cfg, *args, **kwargs):
    return nn.Upsample(*args, **kwargs)


class ConvModule(nn.Module):
    """conv / norm / activation, in ``order`` (the default, or the
    pre-activation order norm, act, conv); the conv has no bias when a norm
    follows it (``bias='auto'``)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias="auto", conv_cfg=None, norm_cfg=None, act_cfg=dict(type="ReLU"), inplace=True,
                 with_spectral_norm=False, padding_mode="zeros", order=("conv", "norm", "act")):
        super().__init__()
        self.with_norm = norm_cfg is not None
        self.with_activation = act_cfg is not None
        self.norm_first = order[0] == "norm"
        if bias == "auto":
            bias = not self.with_norm
        self.conv = build_conv_layer(conv_cfg, in_channels, out_channels, kernel_size, stride=stride,
                                     padding=padding, dilation=dilation, groups=groups, bias=bias)
        if self.with_norm:
            norm_channels = in_channels if self.norm_first else out_channels
            self.norm_name, norm = build_norm_layer(norm_cfg, norm_channels)
            self.add_module(self.norm_name, norm)
        if self.with_activation:
            self.activate = build_activation_layer(act_cfg)

    @property
    def norm(self):
        return getattr(self, self.norm_name)

    def forward(self, x):
        if self.norm_first:
            if self.with_norm:
                x = self.norm(x)
            if self.with_activation:
                x = self.activate(x)
            x = self.conv(x)
            return x
        x = self.conv(x)
        if self.with_norm:
            x = self.norm(x)
        if self.with_activation:
            x = self.activate(x)
        return x


class DepthwiseSeparableConvModule(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, norm_cfg=None,
                 act_cfg=dict(type="ReLU"), dw_norm_cfg="default", dw_act_cfg="default", pw_norm_cfg="default",
                 pw_act_cfg="default", **kwargs):
        super().__init__()
        self.depthwise_conv = ConvModule(in_channels, in_channels, kernel_size, stride=stride, padding=padding,
                                         dilation=dilation, groups=in_channels, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.pointwise_conv = ConvModule(in_channels, out_channels, 1, norm_cfg=norm_cfg, act_cfg=act_cfg)

    def forward(self, x):
        x = self.depthwise_conv(x)
        x = self.pointwise_conv(x)
        return x


class Scale(nn.Module):
    """A learnable scalar multiplier: the shape is kept."""

    def __init__(self, scale=1.0):
        super().__init__()
        self.scale = nn.Parameter(scale)

    def forward(self, x):
        return x * self.scale
