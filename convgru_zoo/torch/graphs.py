"""The one-step graph of a PyTorch backbone or forecaster, as a module to script, compile or export.

``StepGraph(model)(frame, states)`` is ``model.forward_step``: (output, new states) for one frame
and the carried states (the contract: :mod:`convgru_zoo.online`), without the Python-side checks
of ``model.step``, so ``torch.jit``, ``torch.compile`` and ``torch.onnx`` see only the computation.
"""
from typing import List, Tuple

from torch import Tensor, nn


class StepGraph(nn.Module):
    """``(frame, states) -> (output, new_states)`` of ``model`` (a ConvGRUNet or ConvGRUForecaster)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.train(model.training)  # exporters read the wrapper's mode: the model's

    def forward(self, frame: Tensor, states: List[Tensor]) -> Tuple[Tensor, List[Tensor]]:
        return self.model.forward_step(frame, states)
