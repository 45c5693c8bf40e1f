"""ConvGRU layers for PyTorch (Ballas et al. 2015, arXiv:1511.06432).

A cell holds the seed's three gate convolutions over ``cat[x, h]`` (``reset_gate``,
``update_gate``, ``out_gate``), so seed state dicts load unchanged. A convolution over
``cat[x, h]`` is the sum of one over ``x`` and one over ``h``; the fast path uses that:

    gx_t      = W_x * x_t + b                  (all T steps in one batched convolution)
    r_t, z_t  = sigmoid(gx_{r,z} + W_h{r,z} * h)  (one convolution for both gates)
    n_t       = tanh(gx_n + W_hn * (r_t . h))
    h_t       = h + z_t . (n_t - h)            (= (1 - z) h + z n, the seed's update)

Only the hidden-to-hidden convolutions run inside the time loop.
"""
from typing import Final, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import _checks

# Size of one chunk of the batched input projection: small enough to stay in cache.
_PROJECTION_CHUNK_BYTES = 8 << 20
FLOATING_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def autocast_on(x: Tensor) -> bool:
    """Whether autocast is on for ``x``'s device (it then casts inputs to each op's dtype itself)."""
    device = x.device.type
    return torch.amp.is_autocast_available(device) and torch.is_autocast_enabled(device)


def check_dtype(name: str, x: Tensor, weight: Tensor) -> None:
    """``x`` in ``weight``'s dtype, or any floating dtype under autocast (:func:`convgru_zoo._checks.input_dtype`)."""
    _checks.input_dtype(name, x.dtype, weight.dtype, x.is_floating_point(), autocast_on(x))


def dtype_itemsize(dtype) -> int:
    """Bytes per parameter of a layer's ``dtype=``: None (torch's default dtype) or a floating torch.dtype,
    checked before anything is built."""
    dtype = torch.get_default_dtype() if dtype is None else dtype
    return _checks.floating_dtype("dtype", dtype, FLOATING_DTYPES).itemsize


def checked_lengths(lengths, batch: int, steps: int, device) -> Tensor:
    """Per-sample lengths (tensor, array or sequence of ints) checked against the clip, as a tensor on ``device``."""
    if isinstance(lengths, Tensor) and lengths.is_meta:
        raise ValueError("lengths must hold values (a tensor on a real device, a list or an array), got a tensor "
                         "on the meta device")
    values = lengths.tolist() if isinstance(lengths, Tensor) else lengths
    return torch.tensor(_checks.lengths_values(values, batch, steps), device=device)


def gru_update(gx: Tensor, h: Tensor, w_h_gates: Tensor, w_h_out: Tensor, padding: int) -> Tensor:
    """One ConvGRU step given the input projection ``gx`` (reset, update, out; with bias)."""
    hidden = h.shape[1]
    gx_gates, gx_n = gx.split([2 * hidden, hidden], 1)
    reset, update = torch.sigmoid(gx_gates + F.conv2d(h, w_h_gates, padding=padding)).chunk(2, 1)
    candidate = torch.tanh(gx_n + F.conv2d(reset * h, w_h_out, padding=padding))
    return h + update * (candidate - h)


class ConvGRUCell(nn.Module):
    """One ConvGRU layer: ``cell(x, h)`` advances one (B,C,H,W) step; ``run`` a whole clip."""

    projection_chunk_bytes: Final[int] = _PROJECTION_CHUNK_BYTES

    def __init__(self, input_size: int, hidden_size: int, kernel_size: int, *, device=None, dtype=None):
        super().__init__()
        self.input_size = _checks.positive_int("input_size", input_size)
        self.hidden_size = _checks.positive_int("hidden_size", hidden_size)
        self.kernel_size = _checks.odd_kernel("kernel_size", kernel_size)
        _checks.parameters_fit("input_size, hidden_size and kernel_size",
                               _checks.convgru_parameters(input_size, [hidden_size], [kernel_size]),
                               dtype_itemsize(dtype))
        self.padding = kernel_size // 2
        conv = dict(kernel_size=kernel_size, padding=self.padding, device=device, dtype=dtype)
        self.reset_gate = nn.Conv2d(input_size + hidden_size, hidden_size, **conv)
        self.update_gate = nn.Conv2d(input_size + hidden_size, hidden_size, **conv)
        self.out_gate = nn.Conv2d(input_size + hidden_size, hidden_size, **conv)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The seed's init: orthogonal weights, zero bias.

        The orthogonal matrix is drawn in at least float32 (a QR has no half-precision CPU kernel),
        then cast to the weights' dtype.
        """
        for gate in (self.reset_gate, self.update_gate, self.out_gate):
            weight = gate.weight
            if not weight.is_meta:
                drawn = torch.empty_like(weight, dtype=torch.promote_types(weight.dtype, torch.float32))
                with torch.no_grad():
                    weight.copy_(nn.init.orthogonal_(drawn))
            nn.init.zeros_(gate.bias)

    def split_weights(self) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """(W_x for all gates, bias, W_h for reset+update, W_h for out) from the gate convs."""
        c = self.input_size
        weight = torch.cat([self.reset_gate.weight, self.update_gate.weight, self.out_gate.weight], 0)
        b_r, b_z, b_n = self.reset_gate.bias, self.update_gate.bias, self.out_gate.bias
        assert b_r is not None and b_z is not None and b_n is not None
        bias = torch.cat([b_r, b_z, b_n], 0)
        split = 2 * self.hidden_size
        return weight[:, :c], bias, weight[:split, c:], weight[split:, c:]

    def init_state(self, x: Tensor) -> Tensor:
        """Zero state on the input's device and dtype, for a (B,C,H,W) step or (B,T,C,H,W) clip."""
        return x.new_zeros((x.shape[0], self.hidden_size, x.shape[-2], x.shape[-1]))

    @torch.jit.unused
    def check_inputs(self, x: Tensor, state: Optional[Tensor], lengths: Optional[Tensor], step: bool,
                     names: Tuple[str, str]) -> Optional[Tensor]:
        """Validate a step (``step``) or a clip, its state and lengths before any work; return the lengths
        as a tensor. ``names`` are the caller's names of x and the state. Skipped in TorchScript and while
        torch.jit traces (the checks would be baked in as constants)."""
        if torch.jit.is_tracing():
            return lengths
        x_name, state_name = names
        _checks.tensor(x_name, x, Tensor)
        shape = _checks.input_shape(x.shape, self.input_size)
        if len(shape) != (4 if step else 5):
            want = "one step (B,C,H,W)" if step else "a clip (B,T,C,H,W)"
            raise ValueError(f"{x_name} must be {want}, got a {len(shape)}-D shape {shape}")
        check_dtype(x_name, x, self.reset_gate.weight)
        if state is not None:
            _checks.state(state_name, state, (shape[0], self.hidden_size) + shape[-2:], x, Tensor, autocast_on(x))
        return None if lengths is None else checked_lengths(lengths, shape[0], shape[1], x.device)

    def forward(self, input_: Tensor, prev_state: Optional[Tensor] = None) -> Tensor:
        """Advance one (B,C,H,W) step from ``prev_state`` (zeros if None); return the new state."""
        if not torch.jit.is_scripting():
            self.check_inputs(input_, prev_state, None, True, ("input_", "prev_state"))
        w_x, bias, w_h_gates, w_h_out = self.split_weights()
        state = self.init_state(input_) if prev_state is None else prev_state
        gx = F.conv2d(input_, w_x, bias, padding=self.padding)
        return gru_update(gx, state, w_h_gates, w_h_out, self.padding)

    def project(self, x: Tensor, w_x: Tensor, bias: Tensor) -> List[Tensor]:
        """Input projection of every step of a (B,T,C,H,W) clip, in cache-sized batched chunks."""
        b, t, c, height, width = x.shape
        step_bytes = b * 3 * self.hidden_size * height * width * x.element_size()
        chunk = max(1, min(t, self.projection_chunk_bytes // max(step_bytes, 1)))
        steps: List[Tensor] = []
        for part in x.split(chunk, 1):
            n = part.shape[1]
            gx = F.conv2d(part.reshape(b * n, c, height, width), w_x, bias, padding=self.padding)
            steps.extend(gx.view(b, n, 3 * self.hidden_size, height, width).unbind(1))
        return steps

    def run(self, x: Tensor, state: Optional[Tensor] = None, lengths: Optional[Tensor] = None,
            reverse: bool = False) -> Tuple[Tensor, Tensor]:
        """Run a (B,T,C,H,W) clip; return (every step's state (B,T,hidden,H,W), final state).

        With ``lengths`` (B,), steps at or past a sample's length leave its state unchanged and
        output zeros, so the final state is the one at its last valid step. ``reverse`` runs
        from the last step to the first (from each sample's last valid step when padded).
        """
        if not torch.jit.is_scripting():
            lengths = self.check_inputs(x, state, lengths, False, ("x", "state"))
        w_x, bias, w_h_gates, w_h_out = self.split_weights()
        steps = self.project(x, w_x, bias)
        h = self.init_state(x) if state is None else state
        outputs: List[Tensor] = []
        order = list(range(len(steps)))
        if reverse:
            order.reverse()
        for t in order:
            h_new = gru_update(steps[t], h, w_h_gates, w_h_out, self.padding)
            if lengths is not None:
                valid = (lengths > t).view(-1, 1, 1, 1)
                h_new = torch.where(valid, h_new, h)
                outputs.append(h_new * valid.to(h_new.dtype))
            else:
                outputs.append(h_new)
            h = h_new
        if reverse:
            outputs.reverse()
        return torch.stack(outputs, 1), h


class ConvGRU(nn.Module):
    """Stacked ConvGRU, a drop-in for the seed's ``ConvGRU(input_size, hidden_sizes, kernel_sizes, n_layers)``.

    - ``model(x)`` on a (B,C,H,W) step returns the list of per-layer states (the seed's API);
      ``model(x, hidden)`` continues from them.
    - ``model(clip)`` on (B,T,C,H,W) (or (T,B,C,H,W) with ``batch_first=False``) returns
      ``(outputs, states)``: every step of the last layer and each layer's final state.
      ``lengths`` (B,) handles padded batches. Feeding a clip in pieces with the states carried
      over equals feeding it whole.
    - ``bidirectional=True`` adds a reverse cell per layer (``ConvGRUCell_00_reverse``...);
      outputs concatenate both directions, states are ordered [layer0 fwd, layer0 rev, ...].
    """

    def __init__(self, input_size, hidden_sizes, kernel_sizes, n_layers, *, batch_first: bool = True,
                 bidirectional: bool = False, device=None, dtype=None):
        super().__init__()
        self.batch_first = _checks.flag("batch_first", batch_first)
        self.bidirectional = _checks.flag("bidirectional", bidirectional)
        directions = 2 if bidirectional else 1
        hidden_sizes, kernel_sizes = _checks.layer_sizes(input_size, hidden_sizes, kernel_sizes, n_layers, directions,
                                                         dtype_itemsize(dtype))
        self.input_size = input_size
        self.hidden_sizes = hidden_sizes
        self.kernel_sizes = kernel_sizes
        self.n_layers = n_layers
        for i in range(n_layers):
            in_size = input_size if i == 0 else hidden_sizes[i - 1] * directions
            for suffix in ("", "_reverse")[:directions]:
                cell = ConvGRUCell(in_size, hidden_sizes[i], kernel_sizes[i], device=device, dtype=dtype)
                self.add_module(f"ConvGRUCell_{i:02d}{suffix}", cell)

    @property
    def cells(self) -> List[ConvGRUCell]:
        """Cells in run order: [layer0, (layer0 reverse), layer1, ...]."""
        return list(self.children())

    def state_shapes(self, batch: int, height: int, width: int) -> List[Tuple[int, int, int, int]]:
        return [(batch, cell.hidden_size, height, width) for cell in self.cells]

    def _check(self, x: Tensor, hidden, lengths):
        """:func:`convgru_zoo._checks.stacked_inputs` and x's dtype; lengths as a tensor on x's device."""
        shape, hidden = _checks.stacked_inputs(x, hidden, lengths is not None, Tensor, self.input_size,
                                               self.batch_first, self.bidirectional, self.state_shapes)
        check_dtype("x", x, self.cells[0].reset_gate.weight)
        if lengths is not None:
            lengths = checked_lengths(lengths, shape[0], shape[1], x.device)
        return hidden, lengths

    def forward(self, x: Tensor, hidden=None, lengths=None):
        hidden, lengths = self._check(x, hidden, lengths)
        if x.dim() == 4:
            states, inp = [], x
            for cell, h in zip(self.cells, hidden):
                inp = cell(inp, h)
                states.append(inp)
            return states
        clip = x if self.batch_first else x.transpose(0, 1)
        cells, states = self.cells, []
        step = 2 if self.bidirectional else 1
        for i in range(0, len(cells), step):
            out, h = cells[i].run(clip, hidden[i], lengths)
            states.append(h)
            if self.bidirectional:
                out_rev, h_rev = cells[i + 1].run(clip, hidden[i + 1], lengths, reverse=True)
                states.append(h_rev)
                out = torch.cat([out, out_rev], 2)
            clip = out
        return (clip if self.batch_first else clip.transpose(0, 1)), states
