"""RL203 predicts a failure whenever stride != 1, but the constructor refuses
any other stride: no run can meet the finding's condition, so the trace
cannot refute it (it stays not-confirmed, naming the condition)."""
import torch.nn as nn


class OnlyStrideOne(nn.Module):
    def __init__(self, channels, stride=1):
        super().__init__()
        if stride not in (1,):
            raise ValueError("this block does not downsample")
        self.conv1 = nn.Conv2d(channels, channels, 3, stride=stride, padding=1, bias=False)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)

    def forward(self, x):
        return self.conv2(self.conv1(x)) + x
