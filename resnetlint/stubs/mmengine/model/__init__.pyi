# Contract of mmengine 0.x: mmengine/model/base_module.py.
import torch.nn as nn
from torch.nn import ModuleDict, ModuleList, Sequential


class BaseModule(nn.Module):
    """nn.Module with an ``init_cfg`` for weight initialisation."""

    def __init__(self, init_cfg=None):
        super().__init__()
        self.init_cfg = init_cfg
