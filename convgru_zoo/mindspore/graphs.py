"""The one-step graph of a MindSpore backbone or forecaster, as a cell to compile or export.

``StepCell(net)(frame, *states)`` returns ``(output, *new_states)``: flat tensors in and out, so
GRAPH_MODE compiles it once per shape and ``mindspore.export`` writes it to MINDIR with one graph
input per state (the contract: :mod:`convgru_zoo.online`). It calls the net's unchecked
``forward_step``; check with ``net.step`` once, or build states with ``net.init_states``.

Wrapping leaves the net's parameter names as they are (no ``net.`` prefix), so a checkpoint saved
afterwards loads as before, and an exported step graph's parameters carry the model's own names,
as its clip graph's do.
"""
from .conv import TeardownSafeCell


class StepCell(TeardownSafeCell):
    """``(frame, *states) -> (output, *new_states)`` of ``net`` (a ConvGRUNet, ConvGRURCN or ConvGRUForecaster)."""

    def __init__(self, net):
        super().__init__(auto_prefix=False)  # the net's parameters keep their names
        self.net = net

    def construct(self, frame, *states):
        output, new_states = self.net.forward_step(frame, states)
        return (output,) + tuple(new_states)
