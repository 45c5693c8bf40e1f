"""ConvGRU encoder-forecaster for video prediction (PyTorch), e.g. Moving MNIST 10 -> 10 frames.

Each (C,H,W) frame is folded space-to-depth by ``patch_size`` (1x64x64 -> 16x16x16 for patch 4),
so the recurrent core runs at 1/patch resolution with every pixel kept. One stacked ConvGRU
reads the ``input_frames`` context frames (their input convolutions batched), then forecasts
closed loop: a 3x3 convolution head reads the last layer's state *and the current frame* (the
last context frame, then each prediction) and gives ``C * patch**2`` logits; a sigmoid gives the
next frame in [0, 1] (unfolded depth-to-space for the output) and that prediction is the next
step's input. ``input_frames + output_frames - 1`` recurrent steps in all; the loop is
differentiable end to end, so training sees the model's own errors.

Why the head sees the current frame: with the state alone, the model must rebuild every pixel from
the recurrent state before any forecast beats the mean frame, and a small one trained for minutes
never leaves that plateau (docs/design.md has the figures). With
the frame beside the state, copying (and blurring, and at 3x3 shifting by up to a patch) it is one
linear map, so the loss falls early and the recurrent state learns the motion on top. The head's
bias starts at the logit of ``HEAD_PRIOR``, the mean brightness of a sparse frame, instead of a
random level.
"""
import math
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import _checks, online
from ..pretrained import PretrainedWeightsError, weights_file
from ..specs import HEAD_KERNEL, HEAD_PRIOR
from .convgru import ConvGRU, check_dtype

__all__ = ["ConvGRUForecaster", "load_pretrained"]


class ConvGRUForecaster(nn.Module):
    """``model(clip)``: (B, input_frames, C, H, W) frames in [0, 1] -> (B, output_frames, C, H, W).

    Parameters: ``convgru.ConvGRUCell_00.*`` ... (a :class:`ConvGRU` over ``C * patch**2`` input
    channels) and ``head.weight``/``head.bias`` (3x3 convolution over ``hidden_sizes[-1] + C * patch**2``
    channels: the last state, then the current folded frame); the MindSpore twin has the same.
    """

    def __init__(self, in_chans: int = 1, patch_size: int = 4, hidden_sizes=(64, 64, 64), kernel_size=3,
                 input_frames: int = 10, output_frames: int = 10, device=None, dtype=None):
        super().__init__()
        hidden_sizes = _checks.forecaster_args(in_chans, patch_size, hidden_sizes, kernel_size, input_frames, output_frames)
        self.in_chans = in_chans
        self.patch_size = patch_size
        self.input_frames = input_frames
        self.output_frames = output_frames
        folded = in_chans * patch_size ** 2
        self.convgru = ConvGRU(folded, hidden_sizes, kernel_size, len(hidden_sizes), device=device, dtype=dtype)
        self.head = nn.Conv2d(hidden_sizes[-1] + folded, folded, HEAD_KERNEL, padding=HEAD_KERNEL // 2,
                              device=device, dtype=dtype)
        nn.init.constant_(self.head.bias, math.log(HEAD_PRIOR / (1 - HEAD_PRIOR)))

    def forward(self, clip: Tensor, output_frames: Optional[int] = None) -> Tensor:
        """Forecast ``output_frames`` (default: the model's) frames after the context ``clip``."""
        if not isinstance(clip, Tensor):
            raise TypeError(f"clip must be a torch.Tensor (B, T, C, H, W), got {type(clip).__name__}")
        output_frames = _checks.forecaster_clip(clip.shape, self.in_chans, self.patch_size, self.input_frames,
                                   self.output_frames if output_frames is None else output_frames)
        if not clip.is_floating_point():
            raise TypeError(f"clip must be floating point with values in [0, 1], got {clip.dtype}")
        check_dtype("clip", clip, self.head.weight)
        context = F.pixel_unshuffle(clip, self.patch_size)
        _, states = self.convgru(context)
        frame = context[:, -1]
        folded_frames = []
        for step in range(output_frames):
            # Under autocast the head gives a lower-precision frame: back to the states' dtype.
            frame = torch.sigmoid(self.head(torch.cat([states[-1], frame.to(states[-1].dtype)], 1)))
            frame = frame.to(states[-1].dtype)
            folded_frames.append(frame)
            if step + 1 < output_frames:
                states = self.convgru(frame, states)
        # The sigmoid commutes with depth-to-space, so the loop feeds back folded frames directly.
        return F.pixel_shuffle(torch.stack(folded_frames, 1), self.patch_size)

    def state_shapes(self, batch: int, height: int, width: int):
        """Shapes of the states :meth:`step` carries for (height, width) frames, one per ConvGRU layer."""
        return online.forecaster_state_shapes(self.convgru.hidden_sizes, self.patch_size, batch, height, width)

    def init_states(self, batch: int, height: int, width: int) -> List[Tensor]:
        """Zero states for :meth:`step` (:mod:`convgru_zoo.online`), on the model's device and dtype."""
        online.frame_size(batch, height, width, multiple=self.patch_size)
        weight = self.head.weight
        return [weight.new_zeros(shape) for shape in self.state_shapes(batch, height, width)]

    def step(self, frame: Tensor, states: List[Tensor]) -> Tuple[Tensor, List[Tensor]]:
        """Online inference: one (B,C,H,W) frame in [0, 1] and the carried states in; the prediction of
        the next frame and the new states out.

        Feed the ``input_frames`` context frames, then each prediction back: the predictions from the
        last context frame on are ``model(clip)``'s frames (:mod:`convgru_zoo.online`).
        """
        states = online.check_step(frame, states, Tensor, self.in_chans, self.state_shapes,
                                   multiple=self.patch_size)
        if not frame.is_floating_point():
            raise TypeError(f"frame must be floating point with values in [0, 1], got {frame.dtype}")
        check_dtype("frame", frame, self.head.weight)
        return self.forward_step(frame, states)

    def forward_step(self, frame: Tensor, states: List[Tensor]) -> Tuple[Tensor, List[Tensor]]:
        """:meth:`step` without the checks: what scripted, compiled and exported step graphs run."""
        folded = F.pixel_unshuffle(frame, self.patch_size)
        inputs, new_states = folded, []
        for cell, state in zip(self.convgru.cells, states):  # the cells: ConvGRU's own checks do not trace
            inputs = cell(inputs, state)
            new_states.append(inputs)
        states = new_states
        prediction = torch.sigmoid(self.head(torch.cat([states[-1], folded.to(states[-1].dtype)], 1)))
        return F.pixel_shuffle(prediction.to(states[-1].dtype), self.patch_size), states


def load_pretrained(model: ConvGRUForecaster, weights_name: str) -> None:
    """Load the published weights ``weights_name`` (``<arch>.<tag>``, sha256-checked) strictly."""
    from safetensors.torch import load_file

    path = weights_file(weights_name, "torch")
    try:
        model.load_state_dict(load_file(str(path)), strict=True)
    except RuntimeError as error:
        raise PretrainedWeightsError(f"weights {weights_name} ({path}) do not fit this model: {error}") from error
