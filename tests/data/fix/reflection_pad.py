"""CycleGAN-style residual block: the padding is a layer or the conv's,
depending on `padding_type` (RL204 for the types that pad neither way)."""
import torch.nn as nn


class ResnetBlock(nn.Module):
    def __init__(self, dim, padding_type="reflect"):
        super().__init__()
        conv_block = []
        p = 0
        if padding_type == "reflect":
            conv_block += [nn.ReflectionPad2d(1)]
        elif padding_type == "zero":
            p = 1
        conv_block += [nn.Conv2d(dim, dim, kernel_size=3, padding=p), nn.BatchNorm2d(dim), nn.ReLU(True)]
        self.conv_block = nn.Sequential(*conv_block)

    def forward(self, x):
        return x + self.conv_block(x)
