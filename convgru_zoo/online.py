"""Online (frame-by-frame) inference: the contract both frameworks' models keep, and its checks.

A ConvGRU carries everything it knows about the past in its states, so it can answer after every
frame with constant memory however long the video:

    states = model.init_states(batch, height, width)   # zeros, one per ConvGRU layer
    for frame in video:                                 # (B, C, H, W)
        output, states = model.step(frame, states)

- Backbones (``convgru_tiny/small/base``): ``output`` is the logits from the state so far, i.e.
  ``model(clip[:, :t + 1])`` after frame ``t``. The states are the ConvGRU layers' states, stage by
  stage, at strides ``stem_stride * 2**i``.
- Forecasters: ``output`` is the prediction of the *next* frame, (B, C, H, W) in [0, 1]. During the
  context phase a real frame goes in; after the last of ``input_frames`` context frames the output
  is the first frame ``model(clip)`` forecasts. To forecast further, feed each prediction back in as
  the next frame: the outputs are then ``model(clip)``'s later frames, exactly. The states are the
  stacked ConvGRU's, at 1 / ``patch_size`` resolution.

Feeding a clip frame by frame equals feeding it whole (in eval mode: BatchNorm uses its running
statistics then). ``step`` checks its arguments before any work; the unchecked ``forward_step``
(same arguments) is what compiled and exported graphs call.
"""
from . import _checks


def backbone_state_shapes(stage_depths_dims, stem_stride, batch, height, width):
    """(B, C, H', W') of every ConvGRU layer's state, stage by stage, for (height, width) frames.

    ``stage_depths_dims`` is ((depth, dim), ...) of the stages; the stem (kernel = stride) and each
    stage's 2x2 stride-2 downsampling floor the size, as their convolutions do.
    """
    height, width = height // stem_stride, width // stem_stride
    shapes = []
    for i, (depth, dim) in enumerate(stage_depths_dims):
        if i > 0:
            height, width = height // 2, width // 2
        shapes += [(batch, dim, height, width)] * depth
    return shapes


def forecaster_state_shapes(hidden_sizes, patch_size, batch, height, width):
    """(B, C, H / patch, W / patch) of every ConvGRU layer's state of a forecaster."""
    return [(batch, hidden, height // patch_size, width // patch_size) for hidden in hidden_sizes]


def _spatial(name, height, width, min_size, multiple):
    if height < min_size or width < min_size:
        raise ValueError(f"{name} must be at least {min_size}x{min_size}, got {height}x{width}")
    if height % multiple or width % multiple:
        raise ValueError(f"{name} must be divisible by {multiple}, got {height}x{width}")


def frame_size(batch, height, width, min_size=1, multiple=1):
    """Check ``init_states``' arguments: positive ints, at least ``min_size`` and divisible by ``multiple``."""
    for name, value in (("batch", batch), ("height", height), ("width", width)):
        _checks.positive_int(name, value)
    _spatial("height and width", height, width, min_size, multiple)
    return batch, height, width


def check_step(frame, states, tensor_type, channels, state_shapes, min_size=1, multiple=1):
    """Check a ``step``'s frame (B, C, H, W) and states against the model, before any work.

    ``tensor_type`` is the framework's tensor class; ``state_shapes(batch, height, width)`` gives
    the shapes the states must have for this frame. The states must share the frame's dtype (and
    device). Raises TypeError/ValueError naming ``frame`` or ``states[i]``.
    """
    if not isinstance(frame, tensor_type):
        raise TypeError(f"frame must be a {tensor_type.__module__}.{tensor_type.__name__} (B, C, H, W), "
                        f"got {type(frame).__name__}")
    shape = tuple(frame.shape)
    if len(shape) != 4:
        raise ValueError(f"frame must be one frame (B, C, H, W), got a {len(shape)}-D shape {shape}")
    if shape[1] != channels:
        raise ValueError(f"frame must have {channels} channels (dim 1), got {shape[1]} in shape {shape}")
    if shape[0] == 0:
        raise ValueError(f"frame must not have an empty batch, got shape {shape}")
    _spatial(f"frame (H, W) of shape {shape}", shape[2], shape[3], min_size, multiple)
    if not isinstance(states, (list, tuple)):
        raise TypeError(f"states must be the list of states from init_states or step, got {type(states).__name__}")
    expected = state_shapes(shape[0], shape[2], shape[3])
    if len(states) != len(expected):
        raise ValueError(f"states must hold {len(expected)} states (one per ConvGRU layer), got {len(states)}")
    for i, (state, want) in enumerate(zip(states, expected)):
        if not isinstance(state, tensor_type):
            raise TypeError(f"states[{i}] must be a {tensor_type.__name__}, got {type(state).__name__}")
        if tuple(state.shape) != tuple(want):
            raise ValueError(f"states[{i}] must have shape {tuple(want)} for a frame of shape {shape}, "
                             f"got {tuple(state.shape)}")
        if state.dtype != frame.dtype or getattr(state, "device", None) != getattr(frame, "device", None):
            raise ValueError(f"states[{i}] must have the frame's dtype {frame.dtype} and device "
                             f"{getattr(frame, 'device', None)}, got {state.dtype} on {getattr(state, 'device', None)}")
    return list(states)
