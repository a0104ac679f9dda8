"""A pre-norm transformer block whose MLP was dropped from forward: token
widths the static model does not follow, so only the trace can prove the
repair."""
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Linear(dim, dim)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        x = x + self.norm2(x)
        return x
