# Contract of mmcv 2.x: mmcv/cnn/bricks/transformer.py, the feed-forward block.
import torch.nn as nn

from . import build_activation_layer
from .drop import build_dropout


class FFN(nn.Module):
    """Linear layers with an activation between them, and (by default) the
    identity added back: ``identity + dropout(layers(x))``."""

    def __init__(self, embed_dims=256, feedforward_channels=1024, num_fcs=2, act_cfg=dict(type="ReLU", inplace=True),
                 ffn_drop=0.0, dropout_layer=None, add_identity=True, init_cfg=None, layer_scale_init_value=0.0):
        super().__init__()
        self.embed_dims = embed_dims
        self.add_identity = add_identity
        self.layers = nn.Sequential(nn.Linear(embed_dims, feedforward_channels), build_activation_layer(act_cfg),
                                    nn.Dropout(ffn_drop), nn.Linear(feedforward_channels, embed_dims),
                                    nn.Dropout(ffn_drop))
        self.dropout_layer = nn.Identity()

    def forward(self, x, identity=None):
        out = self.layers(x)
        if not self.add_identity:
            return self.dropout_layer(out)
        if identity is None:
            identity = x
        return identity + self.dropout_layer(out)
