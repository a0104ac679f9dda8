"""The rule catalog: one module per rule, in code order.

To add a rule, write ``rules/rlNNN_<name>.py`` with a :class:`resnetlint.rule.Rule`
subclass (docs in the module docstring, VALID/INVALID examples on the class)
and list it here.  The test suite picks it up from this list.
"""
from .rl101_stale_input import StaleInput
from .rl102_residual_overwritten import ResidualOverwritten
from .rl201_channel_mismatch import ChannelMismatch

ALL_RULES = [
    StaleInput,
    ResidualOverwritten,
    ChannelMismatch,
]
