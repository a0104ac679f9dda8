"""resnetlint: find, confirm and fix bugs in PyTorch residual blocks.

The public API (imported lazily so that ``resnetlint --version`` stays fast):

* :func:`check_source` — findings for a string of source code;
* :func:`check_paths` — findings for files and directories;
* :class:`Settings`, :class:`Finding`;
* :class:`UsageError`, raised for a bad setting or a path that does not exist.
"""
__version__ = "0.1.0"

__all__ = ["check_source", "check_paths", "Settings", "Finding", "RunResult", "UsageError", "__version__"]


def __getattr__(name):
    if name in ("check_source", "check_paths", "Settings", "RunResult"):
        from . import api

        return getattr(api, name)
    if name == "Finding":
        from .findings import Finding

        return Finding
    if name == "UsageError":
        from .errors import UsageError

        return UsageError
    raise AttributeError(f"module 'resnetlint' has no attribute {name!r}")
