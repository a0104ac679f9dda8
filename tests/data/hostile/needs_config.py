import torch.nn as nn


class Block(nn.Module):
    def __init__(self, config):
        super().__init__()
        c = config.width
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        out = self.conv1(x)
        out = self.conv2(x)  # RL101
        return out + x
