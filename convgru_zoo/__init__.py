"""convgru-zoo: convolutional GRU video models for PyTorch and MindSpore.

Framework code lives in ``convgru_zoo.torch`` and ``convgru_zoo.mindspore``; importing this
package imports neither framework. It registers the ``convgru_*`` backbones with timm and MindCV
when those are imported (before or after this package), and gives the framework-free entry points.
"""
from . import _zoo_registration
from .models import create_forecaster, create_model, list_forecasters, list_models

__version__ = "0.1.0"
__all__ = ["create_forecaster", "create_model", "list_forecasters", "list_models", "__version__"]

_zoo_registration.install()
