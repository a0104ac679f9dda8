"""resnetlint: find, confirm and fix bugs in PyTorch residual blocks."""
__version__ = "0.1.0"
