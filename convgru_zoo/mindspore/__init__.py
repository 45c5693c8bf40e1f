"""MindSpore ConvGRU layers: ``from convgru_zoo.mindspore import ConvGRU, ConvGRUCell``.

Importing sets no MindSpore context: choose the device yourself (``mindspore.set_device("CPU")``).
Each :class:`Conv2d` takes the convolution path chosen for the device target when it is built (on CPU
by a short probe, :func:`convgru_zoo.mindspore.conv.conv_path`), so set the device before building models.
"""
from .conv import Conv2d
from .convgru import ConvGRU, ConvGRUCell, load_seed_params

__all__ = ["Conv2d", "ConvGRU", "ConvGRUCell", "load_seed_params"]
