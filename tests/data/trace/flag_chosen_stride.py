"""A bottleneck whose stride is placed by a flag in a layer argument
(`stride=stride if not downsample_in_bottleneck else 1`), the other
conv's choice lost: it fails only with the flag set and a stride of 2."""
import torch
import torch.nn as nn
import torch.nn.functional as F
class ConvLayer(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, activation=True):
        super().__init__()
        self.convolution = nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2,
                                     bias=False)
        self.normalization = nn.BatchNorm2d(out_channels)
        self.activation = nn.ReLU() if activation else nn.Identity()

    def forward(self, x):
        return self.activation(self.normalization(self.convolution(x)))


class BottleNeckLayer(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1, reduction=4, downsample_in_bottleneck=False):
        super().__init__()
        reduced = out_channels // reduction
        self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                      nn.BatchNorm2d(out_channels))
        self.layer = nn.Sequential(
            ConvLayer(in_channels, reduced, kernel_size=1),
            ConvLayer(reduced, reduced, stride=stride if not downsample_in_bottleneck else 1),
            ConvLayer(reduced, out_channels, kernel_size=1, activation=False),
        )

    def forward(self, x):
        return torch.relu(self.layer(x) + self.shortcut(x))
