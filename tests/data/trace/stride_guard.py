"""A stride guard the static model does not follow: the shortcut pools
exactly when the main path strides, decided by a helper method.  The static
model reports RL203 (stride-mismatch); every run at stride 2 passes, so the
trace refutes it."""
import torch.nn as nn


class HelperGuardedBlock(nn.Module):
    def __init__(self, channels, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.shortcut = nn.Identity()
        if self._downsamples(stride):
            # ceil_mode: odd sizes round like the padded strided conv
            self.shortcut = nn.AvgPool2d(stride, ceil_mode=True)

    @staticmethod
    def _downsamples(stride):
        return stride != 1

    def forward(self, x):
        out = self.bn2(self.conv2(self.bn1(self.conv1(x))))
        return out + self.shortcut(x)
