"""The paper's ConvGRU written plainly, one step at a time: the baseline for tests and benchmarks.

Ballas et al. 2015, eq. (3) with the seed's gate layout: three convolutions over ``cat[x, h]``
per layer and step, no batching, no fusion. It reads the weights of a
:class:`convgru_zoo.torch.ConvGRU`, so both compute from the same parameters.
"""
import torch
import torch.nn.functional as F


def reference_step(cell, x, h):
    """h_t from x_t and h_{t-1} for one ConvGRUCell, exactly as the equations read."""
    p = cell.padding
    xh = torch.cat([x, h], 1)
    z = torch.sigmoid(F.conv2d(xh, cell.update_gate.weight, cell.update_gate.bias, padding=p))
    r = torch.sigmoid(F.conv2d(xh, cell.reset_gate.weight, cell.reset_gate.bias, padding=p))
    n = torch.tanh(F.conv2d(torch.cat([x, r * h], 1), cell.out_gate.weight, cell.out_gate.bias, padding=p))
    return (1 - z) * h + z * n


def reference_clip(model, clip):
    """Unidirectional stacked ConvGRU over a (B,T,C,H,W) clip: (outputs of last layer, final states)."""
    b, t, _, height, width = clip.shape
    states = [clip.new_zeros(b, cell.hidden_size, height, width) for cell in model.cells]
    outputs = []
    for step in range(t):
        inp = clip[:, step]
        for i, cell in enumerate(model.cells):
            states[i] = reference_step(cell, inp, states[i])
            inp = states[i]
        outputs.append(inp)
    return torch.stack(outputs, 1), states
