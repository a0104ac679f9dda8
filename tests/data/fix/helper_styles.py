"""Blocks in the styles of other code bases, each with one planted bug:
helper-built convs, a module class for conv-norm-act, a projection built
only when the shape changes, the identity added in place."""
import torch.nn as nn


def conv3x3(in_planes, out_planes, stride=1, groups=1, dilation=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=dilation, groups=groups,
                     bias=False, dilation=dilation)


def conv1x1(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class Bottleneck(nn.Module):
    """The stride of the 3x3 conv was dropped (`1` instead of `stride`)."""

    expansion = 4

    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        self.conv1 = conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, 1)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = nn.Sequential(conv1x1(inplanes, planes * self.expansion, stride),
                                        nn.BatchNorm2d(planes * self.expansion))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + self.downsample(x))


class ConvNormAct(nn.Module):
    def __init__(self, in_chs, out_chs, kernel_size=3, stride=1):
        super().__init__()
        self.conv = nn.Conv2d(in_chs, out_chs, kernel_size, stride, kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_chs)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class ResUnit(nn.Module):
    """The projection is built but the shortcut adds the raw input."""

    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        self.resize_identity = (in_channels != out_channels) or (stride != 1)
        self.conv1 = ConvNormAct(in_channels, out_channels, stride=stride)
        self.conv2 = ConvNormAct(out_channels, out_channels)
        if self.resize_identity:
            self.identity_conv = nn.Sequential(conv1x1(in_channels, out_channels, stride),
                                               nn.BatchNorm2d(out_channels))
        self.activ = nn.ReLU()

    def forward(self, x):
        if self.resize_identity:
            identity = x
        else:
            identity = x
        x = self.conv2(self.conv1(x))
        x = x + identity
        return self.activ(x)


class PlainBlock(nn.Module):
    """`bn1` is built and never applied; the sum is written into the identity."""

    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        identity = x
        out = self.conv1(x)
        out = self.relu(out)
        out = self.conv2(out)
        out = self.bn2(out)
        identity += out
        out = identity
        return self.relu(out)


class ScaledBlock(nn.Module):
    """Inception-ResNet style: the scaled branch was replaced by the input."""

    def __init__(self, channels, scale=0.2):
        super().__init__()
        self.scale = scale
        self.branch = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2d = nn.Conv2d(channels, channels, 1)
        self.relu = nn.ReLU()

    def forward(self, x):
        out = self.branch(x)
        out = self.conv2d(out)
        out = x + x
        return self.relu(out)
