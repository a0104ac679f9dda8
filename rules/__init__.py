"""The rule catalog: one module per rule, in code order.

To add a rule, write ``rules/rlNNN_<name>.py`` with a :class:`resnetlint.rule.Rule`
subclass (docs in the module docstring, VALID/INVALID examples on the class)
and list it here.  The test suite picks it up from this list.
"""
from .rl100_unused_noqa import UnusedNoqa
from .rl101_stale_input import StaleInput
from .rl102_residual_overwritten import ResidualOverwritten
from .rl103_shortcut_bypassed import ShortcutBypassed
from .rl104_unused_submodule import UnusedSubmodule
from .rl201_channel_mismatch import ChannelMismatch
from .rl202_missing_projection import MissingProjection
from .rl203_stride_mismatch import StrideMismatch
from .rl204_padding_shape_change import PaddingShapeChange
from .rl205_groups_mismatch import GroupsMismatch
from .rl301_bias_before_norm import BiasBeforeNorm
from .rl302_inplace_identity import InplaceIdentity
from .rl303_nonlinear_bottleneck import NonlinearBottleneck

ALL_RULES = [
    UnusedNoqa,
    StaleInput,
    ResidualOverwritten,
    ShortcutBypassed,
    UnusedSubmodule,
    ChannelMismatch,
    MissingProjection,
    StrideMismatch,
    PaddingShapeChange,
    GroupsMismatch,
    BiasBeforeNorm,
    InplaceIdentity,
    NonlinearBottleneck,
]
