"""Argument checks shared by the PyTorch and MindSpore layers.

Every check runs before any computation and raises an error that names the argument,
what was expected and what came.
"""
import os
from collections.abc import Sequence

import numpy as np


class ConfigError(ValueError):
    """A bad argument of a command (train, eval, release, ...), found before any work is done."""

def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def is_sequence(value):
    """A sequence of entries (list, tuple, range), not text or bytes."""
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes, bytearray))


def flag(name, value):
    """A bool, not a truthy stand-in: ``"False"`` or ``"no"`` would read as True."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


def optional_flag(name, value):
    """None (the default choice) or a bool."""
    return value if value is None else flag(name, value)


def positive_int(name, value):
    if not _is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def class_count(value):
    """Classifier outputs: an int >= 0 (0: no classifier)."""
    if not _is_int(value) or value < 0:
        raise ValueError(f"num_classes must be an int >= 0 (0: no classifier), got {value!r}")
    return value


def floating_dtype(name, value, floating_dtypes):
    """One of the framework's floating dtypes (``floating_dtypes``), not a name such as ``"float32"``."""
    if isinstance(value, str) or value not in floating_dtypes:
        names = ", ".join(map(str, floating_dtypes))
        raise TypeError(f"{name} must be a floating dtype, one of {names}, got {value!r}")
    return value


def odd_kernel(name, value):
    if not _is_int(value) or value < 1 or value % 2 == 0:
        raise ValueError(f"{name} must be a positive odd int (padding k // 2 keeps the size), got {value!r}")
    return value


def per_layer(name, value, n_layers, check):
    """An int for every layer, or a list with one entry per layer, each passing `check`."""
    if is_sequence(value):
        if len(value) != n_layers:
            raise ValueError(f"{name} must have n_layers={n_layers} entries, got {len(value)}: {list(value)!r}")
        return [check(f"{name}[{i}]", v) for i, v in enumerate(value)]
    return [check(name, value)] * n_layers


def convgru_parameters(input_size, hidden_sizes, kernel_sizes, directions=1):
    """Parameters of stacked ConvGRU layers: per layer and direction, three gate convolutions over [x, h]."""
    total = 0
    for hidden, kernel in zip(hidden_sizes, kernel_sizes):
        total += directions * 3 * hidden * ((input_size + hidden) * kernel * kernel + 1)
        input_size = hidden * directions
    return total


def _physical_memory():
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows): no bound known
        return None


def parameters_fit(names, n_parameters, itemsize):
    """Refuse, before allocating, a model whose parameters alone exceed this machine's memory."""
    memory = _physical_memory()
    if memory is not None and n_parameters * itemsize > memory:
        raise ValueError(f"{names} must give parameters that fit in this machine's memory ({memory / 2**30:,.1f} "
                         f"GiB), got {n_parameters:.3g} parameters ({n_parameters * itemsize / 2**30:.3g} GiB)")


def layer_sizes(input_size, hidden_sizes, kernel_sizes, n_layers, directions=1, itemsize=4):
    """Validate a stacked ConvGRU's sizes, and that its parameters (``itemsize`` bytes each) fit in
    memory, before anything is allocated; return (hidden_sizes, kernel_sizes) as lists."""
    positive_int("input_size", input_size)
    positive_int("n_layers", n_layers)
    names = "input_size, hidden_sizes, kernel_sizes and n_layers"
    if not is_sequence(hidden_sizes) and not is_sequence(kernel_sizes):
        # n_layers alike layers: count them before listing n_layers sizes (n_layers=2**40 is refused here).
        hidden, kernel = positive_int("hidden_sizes", hidden_sizes), odd_kernel("kernel_sizes", kernel_sizes)
        deeper = convgru_parameters(hidden * directions, [hidden], [kernel], directions)
        parameters_fit(names, convgru_parameters(input_size, [hidden], [kernel], directions)
                       + (n_layers - 1) * deeper, itemsize)
    # A list fixes n_layers: check it before an int is repeated n_layers times.
    lists = sorted((("hidden_sizes", hidden_sizes, positive_int), ("kernel_sizes", kernel_sizes, odd_kernel)),
                   key=lambda arg: not is_sequence(arg[1]))
    sizes = {name: per_layer(name, value, n_layers, check) for name, value, check in lists}
    parameters_fit(names, convgru_parameters(input_size, sizes["hidden_sizes"], sizes["kernel_sizes"], directions),
                   itemsize)
    return sizes["hidden_sizes"], sizes["kernel_sizes"]


def tensor(name, value, tensor_type):
    """``value`` must be a tensor of the framework (``tensor_type``), not an array, a list or None."""
    if not isinstance(value, tensor_type):
        framework = tensor_type.__module__.split(".")[0]
        raise TypeError(f"{name} must be a {framework}.{tensor_type.__name__}, got {type(value).__name__}")
    return value


def input_dtype(name, dtype, model_dtype, floating, autocast=False):
    """An input in the model's dtype (any floating dtype under autocast), checked before the kernels see it."""
    if not floating:
        raise TypeError(f"{name} must be floating point like the model ({model_dtype}), got {dtype}")
    if dtype != model_dtype and not autocast:
        raise TypeError(f"{name} must have the model's dtype {model_dtype} (cast the input or the model), "
                        f"got {dtype}")


def input_shape(shape, channels, batch_first=True):
    """Check a step (B,C,H,W) or clip (B,T,C,H,W) / (T,B,C,H,W) shape; return it as a tuple."""
    shape = tuple(shape)
    if len(shape) not in (4, 5):
        layout = "(B,T,C,H,W)" if batch_first else "(T,B,C,H,W)"
        raise ValueError(f"x must be a step (B,C,H,W) or a clip {layout}, got a {len(shape)}-D shape {shape}")
    if shape[-3] != channels:
        raise ValueError(f"x must have {channels} channels (dim {len(shape) - 3}), got {shape[-3]} in shape {shape}")
    if len(shape) == 5 and shape[1 if batch_first else 0] == 0:
        raise ValueError(f"x must hold at least one time step, got an empty sequence of shape {shape}")
    if any(s == 0 for s in shape):
        raise ValueError(f"x must not have an empty dimension, got shape {shape}")
    return shape


def stacked_inputs(x, hidden, lengths_given, tensor_type, input_size, batch_first, bidirectional, state_shapes):
    """The checks of a stacked ConvGRU's call, the same in both twins (x's dtype aside, which is the model's).

    ``x`` a step (B,C,H,W) or a clip, with ``input_size`` channels (a clip for a bidirectional stack);
    ``hidden`` None or one state per layer and direction, of ``state_shapes(batch, height, width)``;
    lengths (``lengths_given``) only for clips. Returns (x's batch-first shape, hidden as a list).
    """
    tensor("x", x, tensor_type)
    shape = input_shape(x.shape, input_size, batch_first)
    if len(shape) == 4 and bidirectional:
        raise ValueError(f"x must be a clip (5-D) for a bidirectional ConvGRU, got a step of shape {shape}")
    if len(shape) == 5 and not batch_first:
        shape = (shape[1], shape[0]) + shape[2:]
    hidden = state_list(hidden, state_shapes(shape[0], shape[-2], shape[-1]), x, tensor_type)
    if lengths_given and len(shape) == 4:
        raise ValueError(f"lengths applies to clips (5-D x), got a step of shape {shape}")
    return shape, hidden


def state_list(hidden, expected_shapes, x, tensor_type):
    """Check a list of initial states against the expected (B,C,H,W) shapes and ``x``; None entries allowed."""
    if hidden is None:
        return [None] * len(expected_shapes)
    if not isinstance(hidden, (list, tuple)):
        raise TypeError(f"hidden must be a list of per-layer states or None, got {type(hidden).__name__}")
    if len(hidden) != len(expected_shapes):
        raise ValueError(f"hidden must hold {len(expected_shapes)} states (one per layer and direction), "
                         f"got {len(hidden)}")
    for i, (h, want) in enumerate(zip(hidden, expected_shapes)):
        if h is not None:
            state(f"hidden[{i}]", h, want, x, tensor_type)
    return list(hidden)


def state(name, value, expected_shape, x, tensor_type, autocast=False):
    """A carried state: a tensor of exactly ``expected_shape`` (a batch-1 or 1x1 state would broadcast
    silently), with ``x``'s device and dtype (any dtype under autocast)."""
    tensor(name, value, tensor_type)
    if tuple(value.shape) != tuple(expected_shape):
        raise ValueError(f"{name} must have shape {tuple(expected_shape)}, got {tuple(value.shape)}")
    device, state_device = getattr(x, "device", None), getattr(value, "device", None)
    if state_device != device or (value.dtype != x.dtype and not autocast):
        raise ValueError(f"{name} must be on {device} with dtype {x.dtype} like x, got {state_device} {value.dtype}")


def lengths_values(values, batch, steps):
    """Check per-sample lengths (any 1-D int sequence or array) against batch size and clip length;
    return them as a list of ints."""
    array = np.asarray(values)
    if array.ndim != 1 or array.dtype.kind not in "iu":
        raise ValueError(f"lengths must be a 1-D integer tensor (B,), got {array.dtype} of shape {array.shape}")
    values = array.tolist()
    if len(values) != batch:
        raise ValueError(f"lengths must hold one length per sample (B={batch}), got {len(values)}")
    bad = [v for v in values if not 1 <= v <= steps]
    if bad:
        raise ValueError(f"lengths must lie in [1, T={steps}], got {bad}")
    return values


def backbone_frames(shape, stem_stride, num_stages):
    """Frames at least as large as a backbone's total stride, so every stage has a pixel left."""
    min_size = stem_stride * 2 ** (num_stages - 1)
    if shape[-2] < min_size or shape[-1] < min_size:
        raise ValueError(f"x must be at least {min_size}x{min_size} (H, W) for {num_stages} stages after a "
                         f"stride-{stem_stride} stem, got shape {tuple(shape)}")


def stage_indices(name, indices, num_stages):
    """A non-empty sequence of stage indices in [-num_stages, num_stages); return them sorted, non-negative."""
    given = list(indices) if is_sequence(indices) else []
    if not given or any(not _is_int(i) or not -num_stages <= i < num_stages for i in given):
        raise ValueError(f"{name} must be stage indices in [-{num_stages}, {num_stages}) for {num_stages} stages, "
                         f"got {indices!r}")
    return sorted({i % num_stages for i in given})


def backbone_args(dims, depths, kernel_size, stem_stride, num_frames, num_classes, drop_rate, itemsize=4):
    """Validate a ConvGRU-Net's architecture arguments (both frameworks), and that its ConvGRU layers fit in
    memory, before anything is allocated; return (dims, depths) as tuples."""
    if not is_sequence(dims) or not is_sequence(depths) or len(dims) != len(depths) or not dims:
        raise ValueError(f"dims and depths must give one entry per stage, got dims {dims} and depths {depths}")
    for i, (dim, depth) in enumerate(zip(dims, depths)):
        positive_int(f"dims[{i}]", dim)
        positive_int(f"depths[{i}]", depth)
    odd_kernel("kernel_size", kernel_size)
    positive_int("stem_stride", stem_stride)
    positive_int("num_frames", num_frames)
    class_count(num_classes)
    dims, depths = tuple(dims), tuple(depths)
    if not isinstance(drop_rate, (int, float)) or isinstance(drop_rate, bool) or not 0. <= drop_rate < 1.:
        raise ValueError(f"drop_rate must lie in [0, 1), got {drop_rate!r}")
    recurrent = sum(depth * convgru_parameters(dim, [dim], [kernel_size]) for dim, depth in zip(dims, depths))
    parameters_fit("dims, depths and kernel_size", recurrent, itemsize)
    return dims, depths


def forecaster_args(in_chans, patch_size, hidden_sizes, kernel_size, input_frames, output_frames):
    """Validate a forecaster's constructor arguments; return hidden_sizes as a list."""
    positive_int("in_chans", in_chans)
    positive_int("patch_size", patch_size)
    positive_int("input_frames", input_frames)
    positive_int("output_frames", output_frames)
    if not is_sequence(hidden_sizes) or not hidden_sizes:
        raise ValueError(f"hidden_sizes must be a non-empty sequence of ints (one per ConvGRU layer), "
                         f"got {hidden_sizes!r}")
    hidden_sizes = [positive_int(f"hidden_sizes[{i}]", h) for i, h in enumerate(hidden_sizes)]
    per_layer("kernel_size", kernel_size, len(hidden_sizes), odd_kernel)
    return hidden_sizes


def forecaster_clip(shape, in_chans, patch_size, input_frames, output_frames):
    """Check a context clip's (B,T,C,H,W) shape and the number of frames to forecast.

    Returns ``output_frames`` (a positive int). Raises before any computation.
    """
    shape = tuple(shape)
    if len(shape) != 5:
        raise ValueError(f"clip must be 5-D (B, T, C, H, W), got a {len(shape)}-D shape {shape}")
    batch, frames, channels, height, width = shape
    if frames != input_frames:
        raise ValueError(f"clip must hold input_frames={input_frames} frames (dim 1), got {frames} "
                         f"in shape {shape}")
    if channels != in_chans:
        raise ValueError(f"clip must have in_chans={in_chans} channels (dim 2), got {channels} in shape {shape}")
    if batch == 0 or height == 0 or width == 0:
        raise ValueError(f"clip must not have an empty dimension, got shape {shape}")
    if height % patch_size or width % patch_size:
        raise ValueError(f"clip height and width must be divisible by patch_size={patch_size}, "
                         f"got {height}x{width} in shape {shape}")
    return positive_int("output_frames", output_frames)
