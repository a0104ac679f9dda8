import sys

import torch.nn as nn

print("x" * 1_000_000)
sys.stderr.write("y" * 1_000_000)


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3)  # RL204
        print("constructing", c)

    def forward(self, x):
        print("forward", x.shape)
        return x + self.conv(x)
