"""ConvGRU encoder-forecaster for MindSpore, the twin of :mod:`convgru_zoo.torch.forecaster`.

Same architecture, parameter names (``convgru.ConvGRUCell_00.reset_gate.weight``...,
``head.weight``/``head.bias``) and numerics: frames folded space-to-depth by ``patch_size``, a
stacked ConvGRU reads the context, then a 3x3 convolution head over the last state and the current
frame, and a sigmoid, predict each next frame, which is fed back as the next input (closed loop,
differentiable end to end). Why the head sees the frame: see the PyTorch module.

Works in PYNATIVE_MODE and compiled (GRAPH_MODE, ``mindspore.jit``). Arguments are checked in
Python before the call; ``output_frames`` is a compile-time constant (each value compiles once).
"""
import math
from typing import Optional

import mindspore as ms
from mindspore import Tensor, ops

from .. import _checks, online
from .. import pretrained as _pretrained
from ..specs import HEAD_KERNEL, HEAD_PRIOR
from .conv import Conv2d, TeardownSafeCell
from .convgru import ConvGRU, check_dtype
from .weights import load_params, pretrained_params

__all__ = ["ConvGRUForecaster", "load_pretrained"]


def space_to_depth(x, patch):
    """(N, C, H, W) -> (N, C*p*p, H/p, W/p), channel c*p*p + i*p + j (torch's pixel_unshuffle)."""
    n, c, height, width = x.shape
    x = x.reshape(n, c, height // patch, patch, width // patch, patch).transpose(0, 1, 3, 5, 2, 4)
    return x.reshape(n, c * patch * patch, height // patch, width // patch)


def depth_to_space(x, patch):
    """Inverse of :func:`space_to_depth` (torch's pixel_shuffle)."""
    n, folded, height, width = x.shape
    c = folded // (patch * patch)
    x = x.reshape(n, c, patch, patch, height, width).transpose(0, 1, 4, 2, 5, 3)
    return x.reshape(n, c, height * patch, width * patch)


class ConvGRUForecaster(TeardownSafeCell):
    """``model(clip)``: (B, input_frames, C, H, W) frames in [0, 1] -> (B, output_frames, C, H, W).

    ``im2col`` is passed to every convolution (None picks the fast path for the device target).
    """

    def __init__(self, in_chans: int = 1, patch_size: int = 4, hidden_sizes=(64, 64, 64), kernel_size=3,
                 input_frames: int = 10, output_frames: int = 10, *, im2col: Optional[bool] = None,
                 dtype=ms.float32):
        super().__init__()
        hidden_sizes = _checks.forecaster_args(in_chans, patch_size, hidden_sizes, kernel_size, input_frames, output_frames)
        self.in_chans = in_chans
        self.patch_size = patch_size
        self.input_frames = input_frames
        self.output_frames = output_frames
        folded = in_chans * patch_size ** 2
        self.convgru = ConvGRU(folded, hidden_sizes, kernel_size, len(hidden_sizes), im2col=im2col, dtype=dtype)
        self.head = Conv2d(hidden_sizes[-1] + folded, folded, HEAD_KERNEL, padding=HEAD_KERNEL // 2,
                           im2col=im2col, dtype=dtype)
        self.head.bias.set_data(ops.full((folded,), math.log(HEAD_PRIOR / (1 - HEAD_PRIOR)), dtype=dtype))

    def __call__(self, clip, output_frames: Optional[int] = None):
        if not isinstance(clip, Tensor):
            raise TypeError(f"clip must be a mindspore Tensor (B, T, C, H, W), got {type(clip).__name__}")
        output_frames = _checks.forecaster_clip(clip.shape, self.in_chans, self.patch_size, self.input_frames,
                                   self.output_frames if output_frames is None else output_frames)
        if not ops.is_floating_point(clip):
            raise TypeError(f"clip must be floating point with values in [0, 1], got {clip.dtype}")
        check_dtype("clip", clip, self.head.weight)
        return super().__call__(clip, output_frames)

    def construct(self, clip, output_frames=None):
        """Forecast ``output_frames`` (default: the model's) frames after the context ``clip``.

        Called directly inside a compiled graph, where ``__call__``'s checks do not run.
        """
        if output_frames is None:
            output_frames = self.output_frames
        b, t, c, height, width = clip.shape
        p = self.patch_size
        context = space_to_depth(clip.reshape(b * t, c, height, width), p)
        inputs = context.reshape((b, t) + context.shape[1:])
        frame = inputs[:, -1]
        # The cells are called directly: ConvGRU.__call__ holds Python-side checks a graph cannot run.
        cells = self.convgru.layers
        states = []
        for i in range(len(cells)):
            inputs, state = cells[i].run(inputs)
            states.append(state)
        folded_frames = []
        for step in range(output_frames):
            frame = ops.sigmoid(self.head(ops.cat((states[-1], frame), 1)))
            folded_frames.append(frame)
            if step + 1 < output_frames:
                inputs, new_states = frame, []
                for i in range(len(cells)):
                    inputs = cells[i](inputs, states[i])
                    new_states.append(inputs)
                states = new_states
        # The sigmoid commutes with depth-to-space, so the loop feeds back folded frames directly.
        folded = ops.stack(folded_frames, 1)
        frames = depth_to_space(folded.reshape((b * output_frames,) + folded.shape[2:]), p)
        return frames.reshape(b, output_frames, c, height, width)

    def state_shapes(self, batch: int, height: int, width: int):
        """Shapes of the states :meth:`step` carries for (height, width) frames, one per ConvGRU layer."""
        return online.forecaster_state_shapes(self.convgru.hidden_sizes, self.patch_size, batch, height, width)

    def init_states(self, batch: int, height: int, width: int, dtype=ms.float32):
        """Zero states for :meth:`step` (:mod:`convgru_zoo.online`)."""
        online.frame_size(batch, height, width, multiple=self.patch_size)
        return [ops.zeros(shape, dtype) for shape in self.state_shapes(batch, height, width)]

    def step(self, frame, states):
        """Online inference: one (B,C,H,W) frame in [0, 1] and the carried states in; the prediction of
        the next frame and the new states out (the contract: :mod:`convgru_zoo.online`).

        Runs op by op; :class:`convgru_zoo.mindspore.graphs.StepCell` is the compiled step.
        """
        states = online.check_step(frame, states, Tensor, self.in_chans, self.state_shapes,
                                   multiple=self.patch_size)
        if not ops.is_floating_point(frame):
            raise TypeError(f"frame must be floating point with values in [0, 1], got {frame.dtype}")
        check_dtype("frame", frame, self.head.weight)
        return self.forward_step(frame, states)

    def forward_step(self, frame, states):
        """:meth:`step` without the checks: what compiled and exported step graphs run."""
        folded = space_to_depth(frame, self.patch_size)
        cells = self.convgru.layers
        new_states = []
        inputs = folded
        for i in range(len(cells)):
            inputs = cells[i](inputs, states[i])
            new_states.append(inputs)
        prediction = ops.sigmoid(self.head(ops.cat((new_states[-1], folded), 1)))
        return depth_to_space(prediction, self.patch_size), new_states


def load_pretrained(model: ConvGRUForecaster, weights_name: str) -> None:
    """Load the published weights ``weights_name`` (``<arch>.<tag>``, sha256-checked) strictly
    (:func:`convgru_zoo.mindspore.weights.pretrained_params`)."""
    params, path = pretrained_params(weights_name)
    try:
        load_params(model, params, f"{weights_name} ({path})")
    except ValueError as error:
        raise _pretrained.PretrainedWeightsError(str(error)) from error
