"""convgru-zoo: convolutional GRU video models for PyTorch and MindSpore.

Framework code lives in ``convgru_zoo.torch`` and ``convgru_zoo.mindspore``; this package
imports neither, so it works with either framework missing.
"""
__version__ = "0.1.0"
