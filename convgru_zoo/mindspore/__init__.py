"""MindSpore ConvGRU layers: ``from convgru_zoo.mindspore import ConvGRU, ConvGRUCell``."""
from .conv import Conv2d
from .convgru import ConvGRU, ConvGRUCell

__all__ = ["Conv2d", "ConvGRU", "ConvGRUCell"]
