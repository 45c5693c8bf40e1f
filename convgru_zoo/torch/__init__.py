"""PyTorch ConvGRU layers and models: ``from convgru_zoo.torch import ConvGRU, ConvGRUCell``."""
from .convgru import ConvGRU, ConvGRUCell

__all__ = ["ConvGRU", "ConvGRUCell"]
