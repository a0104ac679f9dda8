import torch.nn as nn
import a_package_that_does_not_exist  # noqa: F401


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3)  # RL204: no padding

    def forward(self, x):
        return x + self.conv(x)
