"""convgru-zoo: convolutional GRU video models for PyTorch and MindSpore.

Framework code lives in ``convgru_zoo.torch`` and ``convgru_zoo.mindspore``. Importing the package
imports a framework's model file only when that framework is installed (to register the models with
timm / MindCV), so it works with either framework missing.
"""
__version__ = "0.1.0"

# Register the models with each framework's model zoo when that framework is installed.
from importlib.util import find_spec as _find_spec

if _find_spec("torch") and _find_spec("timm"):
    from .torch import convgru_net as _timm_models  # noqa: F401  registers convgru_* with timm
if _find_spec("mindspore") and _find_spec("mindcv"):
    from .mindspore import convgru_net as _mindcv_models  # noqa: F401  registers convgru_* with MindCV
