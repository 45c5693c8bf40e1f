"""ConvGRU layers for MindSpore (Ballas et al. 2015, arXiv:1511.06432), twins of ``convgru_zoo.torch``.

Same parameters (names and layout), same equations and the same fast path as the PyTorch file:
the input-to-hidden convolutions of all T steps run as one batched convolution, and only the
hidden-to-hidden convolutions (reset and update fused into one) run inside the time loop.
``tanh`` is computed as ``2 * sigmoid(2x) - 1``: MindSpore's CPU tanh is off by up to 1e-4,
this form agrees with PyTorch's tanh to ~1e-6.

Works in PYNATIVE_MODE and compiled (GRAPH_MODE, ``mindspore.jit``). Argument checks run in
Python before the call (``ConvGRU.__call__``); a parent cell compiled around a ConvGRU calls
:meth:`ConvGRU.check_inputs` itself if it wants them.
"""
from typing import Optional

import mindspore as ms
import numpy as np
from mindspore import Tensor, ops
from mindspore.common import dtype as mstype
from mindspore.common import initializer as init

from .. import _checks
from .conv import Conv2d, TeardownSafeCell, conv2d
from .weights import assign_strict


def tanh(x):
    """tanh as 2 * sigmoid(2x) - 1: matches PyTorch's tanh to ~1e-6 (MindSpore's CPU tanh: 1e-4)."""
    return 2 * ops.sigmoid(2 * x) - 1


def dtype_itemsize(dtype) -> int:
    """Bytes per parameter of a layer's ``dtype=``: a floating MindSpore dtype, checked before anything is built."""
    return _checks.floating_dtype("dtype", dtype, mstype.float_type).itemsize


def check_dtype(name, x, weight):
    """``x`` in ``weight``'s dtype (:func:`convgru_zoo._checks.input_dtype`)."""
    _checks.input_dtype(name, x.dtype, weight.dtype, ops.is_floating_point(x))


def checked_lengths(lengths, batch, steps):
    """Per-sample lengths (Tensor, array or sequence of ints) checked against the clip, as an int32 Tensor."""
    values = lengths.asnumpy() if isinstance(lengths, Tensor) else lengths
    return Tensor(np.array(_checks.lengths_values(values, batch, steps), np.int32))


def gru_update(gx, h, w_h_gates, w_h_out, padding, im2col):
    """One ConvGRU step given the input projection ``gx`` (reset, update, out; with bias)."""
    gx_r, gx_z, gx_n = ops.split(gx, gx.shape[1] // 3, 1)
    gh_r, gh_z = ops.split(conv2d(h, w_h_gates, None, 1, padding, im2col), h.shape[1], 1)
    reset = ops.sigmoid(gx_r + gh_r)
    update = ops.sigmoid(gx_z + gh_z)
    candidate = tanh(gx_n + conv2d(reset * h, w_h_out, None, 1, padding, im2col))
    return h + update * (candidate - h)


class ConvGRUCell(TeardownSafeCell):
    """One ConvGRU layer: ``cell(x, h)`` advances one (B,C,H,W) step; ``run`` a whole clip.

    ``im2col`` is passed to the gate convolutions (:class:`Conv2d`; None: :func:`~convgru_zoo.mindspore.conv.conv_path`).
    """

    def __init__(self, input_size: int, hidden_size: int, kernel_size: int, *,
                 im2col: Optional[bool] = None, dtype=ms.float32):
        super().__init__()
        self.input_size = _checks.positive_int("input_size", input_size)
        self.hidden_size = _checks.positive_int("hidden_size", hidden_size)
        self.kernel_size = _checks.odd_kernel("kernel_size", kernel_size)
        _checks.parameters_fit("input_size, hidden_size and kernel_size",
                               _checks.convgru_parameters(input_size, [hidden_size], [kernel_size]),
                               dtype_itemsize(dtype))
        self.padding = kernel_size // 2
        conv = dict(padding=self.padding, im2col=im2col, dtype=dtype)
        self.reset_gate = Conv2d(input_size + hidden_size, hidden_size, kernel_size, **conv)
        self.update_gate = Conv2d(input_size + hidden_size, hidden_size, kernel_size, **conv)
        self.out_gate = Conv2d(input_size + hidden_size, hidden_size, kernel_size, **conv)
        self.im2col = self.reset_gate.im2col
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The seed's init: orthogonal weights, zero bias."""
        for gate in (self.reset_gate, self.update_gate, self.out_gate):
            weight, bias = gate.weight, gate.bias
            weight.set_data(init.initializer(init.Orthogonal(), weight.shape, weight.dtype))
            bias.set_data(init.initializer("zeros", bias.shape, bias.dtype))

    def split_weights(self):
        """(W_x for all gates, bias, W_h for reset+update, W_h for out) from the gate convs."""
        c = self.input_size
        weight = ops.cat([self.reset_gate.weight, self.update_gate.weight, self.out_gate.weight], 0)
        bias = ops.cat([self.reset_gate.bias, self.update_gate.bias, self.out_gate.bias], 0)
        split, hidden = 2 * self.hidden_size, self.hidden_size
        # ops.narrow: ~6x faster than a StridedSlice (weight[:, :c]) or Split along dim 1 on CPU (docs/)
        w_h = ops.narrow(weight, 1, c, hidden)
        return ops.narrow(weight, 1, 0, c), bias, ops.narrow(w_h, 0, 0, split), ops.narrow(w_h, 0, split, hidden)

    def init_state(self, x):
        """Zero state with the input's dtype, for a (B,C,H,W) step or (B,T,C,H,W) clip."""
        return ops.zeros((x.shape[0], self.hidden_size, x.shape[-2], x.shape[-1]), x.dtype)

    def __call__(self, input_, prev_state=None):
        """Check the step (also in GRAPH mode, where ``construct`` is compiled), then run it."""
        _checks.tensor("input_", input_, Tensor)
        shape = _checks.input_shape(input_.shape, self.input_size)
        if len(shape) != 4:
            raise ValueError(f"input_ must be one step (B,C,H,W), got a {len(shape)}-D shape {shape}")
        check_dtype("input_", input_, self.reset_gate.weight)
        if prev_state is not None:
            _checks.state("prev_state", prev_state, (shape[0], self.hidden_size) + shape[-2:], input_, Tensor)
        return super().__call__(input_, prev_state)

    def construct(self, input_, prev_state=None):
        """Advance one (B,C,H,W) step from ``prev_state`` (zeros if None); return the new state.

        One step has nothing to batch over time, so it convolves ``cat[x, h]`` with each gate's own
        weights, as the seed does: slicing the weights into input and hidden parts, as ``run`` does
        once per clip, would cost more on CPU than the step's convolutions (``docs/``)."""
        state = self.init_state(input_) if prev_state is None else prev_state
        xh = ops.cat([input_, state], 1)
        reset = ops.sigmoid(self.reset_gate(xh))
        update = ops.sigmoid(self.update_gate(xh))
        candidate = tanh(self.out_gate(ops.cat([input_, reset * state], 1)))
        return state + update * (candidate - state)

    def run(self, x, state=None, lengths=None, reverse=False):
        """Run a (B,T,C,H,W) clip; return (every step's state (B,T,hidden,H,W), final state).

        With ``lengths`` (B,) int tensor, steps at or past a sample's length leave its state
        unchanged and output zeros, so the final state is the one at its last valid step.
        ``reverse`` runs from the last step to the first (from each sample's last valid step
        when padded).
        """
        w_x, bias, w_h_gates, w_h_out = self.split_weights()
        b, t, c, height, width = x.shape
        gx = conv2d(x.reshape(b * t, c, height, width), w_x, bias, 1, self.padding, self.im2col)
        steps = ops.unstack(gx.reshape(b, t, 3 * self.hidden_size, height, width), 1)
        h = self.init_state(x) if state is None else state
        outputs = []
        order = range(t - 1, -1, -1) if reverse else range(t)
        for i in order:
            h_new = gru_update(steps[i], h, w_h_gates, w_h_out, self.padding, self.im2col)
            if lengths is not None:
                valid = (lengths > i).reshape(-1, 1, 1, 1)
                h_new = ops.where(valid, h_new, h)
                outputs.append(h_new * valid.astype(h_new.dtype))
            else:
                outputs.append(h_new)
            h = h_new
        if reverse:
            outputs = outputs[::-1]
        return ops.stack(outputs, 1), h


class ConvGRU(TeardownSafeCell):
    """Stacked ConvGRU, a drop-in for the seed's ``ConvGRU(input_size, hidden_sizes, kernel_sizes, n_layers)``.

    Same API and parameter names as :class:`convgru_zoo.torch.ConvGRU` (``ConvGRUCell_00.reset_gate.weight``...):

    - ``model(x)`` on a (B,C,H,W) step returns the list of per-layer states; ``model(x, hidden)``
      continues from them.
    - ``model(clip)`` on (B,T,C,H,W) (or (T,B,C,H,W) with ``batch_first=False``) returns
      ``(outputs, states)``: every step of the last layer and each layer's final state.
      ``lengths`` (B,) handles padded batches.
    - ``bidirectional=True`` adds a reverse cell per layer (``ConvGRUCell_00_reverse``...);
      outputs concatenate both directions, states are ordered [layer0 fwd, layer0 rev, ...].

    The cells in run order are ``model.cells()`` (MindSpore's own method; the torch model's
    ``cells`` property).
    """

    def __init__(self, input_size, hidden_sizes, kernel_sizes, n_layers, *, batch_first: bool = True,
                 bidirectional: bool = False, im2col: Optional[bool] = None, dtype=ms.float32):
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
        layers = []
        for i in range(n_layers):
            in_size = input_size if i == 0 else hidden_sizes[i - 1] * directions
            for suffix in ("", "_reverse")[:directions]:
                cell = ConvGRUCell(in_size, hidden_sizes[i], kernel_sizes[i], im2col=im2col, dtype=dtype)
                setattr(self, f"ConvGRUCell_{i:02d}{suffix}", cell)
                layers.append(cell)
        # A plain tuple (not a CellList) so parameter names stay ``ConvGRUCell_00...``.
        self.layers = tuple(layers)

    def state_shapes(self, batch: int, height: int, width: int):
        return [(batch, cell.hidden_size, height, width) for cell in self.layers]

    def check_inputs(self, x, hidden=None, lengths=None):
        """Validate ``construct``'s arguments in Python; return (hidden, lengths) ready for it.

        ``hidden`` comes back as None or a mutable tuple of states (zeros where None was given).

        ``lengths`` may be any int sequence or array; it comes back as an int32 Tensor.
        """
        shape, hidden = _checks.stacked_inputs(x, hidden, lengths is not None, Tensor, self.input_size,
                                               self.batch_first, self.bidirectional, self.state_shapes)
        check_dtype("x", x, self.layers[0].reset_gate.weight)
        batch, height, width = shape[0], shape[-2], shape[-1]
        if lengths is not None:
            lengths = checked_lengths(lengths, batch, shape[1])
        if all(h is None for h in hidden):
            return None, lengths
        # A list (or a plain tuple of tensors) is compiled into the graph as a constant, which
        # makes GRAPH_MODE recompile on every call: pass a mutable tuple, zeros for missing states.
        shapes = self.state_shapes(batch, height, width)
        return ms.mutable(tuple(ops.zeros(s, x.dtype) if h is None else h for h, s in zip(hidden, shapes))), lengths

    def __call__(self, x, hidden=None, lengths=None):
        hidden, lengths = self.check_inputs(x, hidden, lengths)
        return super().__call__(x, hidden, lengths)

    def construct(self, x, hidden=None, lengths=None):
        # A compiled parent calls construct, not __call__: check x's (static) shape here too, which a
        # graph evaluates once, while compiling.
        _checks.input_shape(x.shape, self.input_size, self.batch_first)
        cells = self.layers
        if hidden is None:
            hidden = [None] * len(cells)
        if x.ndim == 4:
            states = []
            inp = x
            for i in range(len(cells)):
                inp = cells[i](inp, hidden[i])
                states.append(inp)
            return states
        clip = x if self.batch_first else ops.swapaxes(x, 0, 1)
        states = []
        step = 2 if self.bidirectional else 1
        for i in range(0, len(cells), step):
            out, h = cells[i].run(clip, hidden[i], lengths)
            states.append(h)
            if self.bidirectional:
                out_rev, h_rev = cells[i + 1].run(clip, hidden[i + 1], lengths, True)
                states.append(h_rev)
                out = ops.cat([out, out_rev], 2)
            clip = out
        return (clip if self.batch_first else ops.swapaxes(clip, 0, 1)), states


def load_seed_params(net: ConvGRU, params) -> None:
    """Load parameters saved by the seed's MindSpore port (``cells.0.reset_gate.weight``...) into ``net``.

    ``cells.N`` is the N-th cell in run order (``ConvGRUCell_00``, ...). Strict: any missing,
    unexpected or shape-mismatched name raises a ValueError listing them, and nothing is loaded
    unless everything matches. ``params`` maps names to Parameters, Tensors or arrays (e.g. what
    ``mindspore.load_checkpoint`` returns); values are cast to the parameter's dtype.
    """
    if not isinstance(net, ConvGRU):
        raise TypeError(f"net must be a convgru_zoo.mindspore.ConvGRU, got {type(net).__name__}")
    index = {name: i for i, name in enumerate(net.name_cells())}
    own = {}  # seed name -> our Parameter
    for param in net.get_parameters():
        cell, rest = param.name.split(".", 1)
        own[f"cells.{index[cell]}.{rest}"] = param
    assign_strict(own, params, "in the seed layout (cells.N.<gate>.weight/bias)", type(net).__name__)
