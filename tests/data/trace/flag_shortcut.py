"""A shortcut conv built and used only under a flag (`conv_shortcut=True`,
as VQ-VAE blocks write it) and only when the widths differ.  A static model
that misses the flag says the add bypasses it (RL103); a run with different
widths and the flag on reaches it, so the trace refutes that claim."""
import torch
import torch.nn as nn


class FlagShortcutBlock(nn.Module):
    def __init__(self, in_channels, out_channels=None, conv_shortcut=False):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = in_channels if out_channels is None else out_channels
        self.use_conv_shortcut = conv_shortcut
        self.norm1 = nn.GroupNorm(32, in_channels)
        self.conv1 = nn.Conv2d(in_channels, self.out_channels, 3, padding=1)
        self.conv2 = nn.Conv2d(self.out_channels, self.out_channels, 3, padding=1)
        if self.in_channels != self.out_channels:
            if self.use_conv_shortcut:
                self.conv_shortcut = nn.Conv2d(in_channels, self.out_channels, 3, padding=1)
            else:
                self.nin_shortcut = nn.Conv2d(in_channels, self.out_channels, 1)

    def forward(self, hidden_states):
        residual = hidden_states
        hidden_states = self.conv2(torch.relu(self.conv1(torch.relu(self.norm1(hidden_states)))))
        if self.in_channels != self.out_channels:
            if self.use_conv_shortcut:
                residual = self.conv_shortcut(residual)
            else:
                residual = self.nin_shortcut(residual)
        return residual + hidden_states
