"""MindSpore ConvGRU layers: ``from convgru_zoo.mindspore import ConvGRU, ConvGRUCell``."""
from .conv import Conv2d
from .convgru import ConvGRU, ConvGRUCell, load_seed_params

__all__ = ["Conv2d", "ConvGRU", "ConvGRUCell", "load_seed_params"]
