"""The one error type for a mistake in how resnetlint was asked to run.

A bad option, an unknown rule code, a broken ``[tool.resnetlint]``, a
``Settings`` field of the wrong type, a path that does not exist: the
command line prints the message as one line (``resnetlint: error: ...``)
and exits with status 2; the Python API raises it.  The message names what
is wrong and, where there is a short list, the choices.
"""


class UsageError(ValueError):
    """resnetlint was asked to do something it cannot (the message says what)."""
