"""Argument checks shared by the PyTorch and MindSpore layers.

Every check runs before any computation and raises an error that names the argument,
what was expected and what came.
"""
from collections.abc import Sequence


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def positive_int(name, value):
    if not _is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def odd_kernel(name, value):
    if not _is_int(value) or value < 1 or value % 2 == 0:
        raise ValueError(f"{name} must be a positive odd int (padding k // 2 keeps the size), got {value!r}")
    return value


def per_layer(name, value, n_layers, check):
    """An int for every layer, or a list with one entry per layer, each passing `check`."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != n_layers:
            raise ValueError(f"{name} must have n_layers={n_layers} entries, got {len(value)}: {list(value)!r}")
        return [check(f"{name}[{i}]", v) for i, v in enumerate(value)]
    return [check(name, value)] * n_layers


def layer_sizes(input_size, hidden_sizes, kernel_sizes, n_layers):
    """Validate a stacked ConvGRU's sizes; return (hidden_sizes, kernel_sizes) as lists."""
    positive_int("input_size", input_size)
    positive_int("n_layers", n_layers)
    return (per_layer("hidden_sizes", hidden_sizes, n_layers, positive_int),
            per_layer("kernel_sizes", kernel_sizes, n_layers, odd_kernel))


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


def state_list(hidden, expected_shapes):
    """Check a list of initial states against the expected (B,C,H,W) shapes; None entries allowed."""
    if hidden is None:
        return [None] * len(expected_shapes)
    if not isinstance(hidden, (list, tuple)):
        raise TypeError(f"hidden must be a list of per-layer states or None, got {type(hidden).__name__}")
    if len(hidden) != len(expected_shapes):
        raise ValueError(f"hidden must hold {len(expected_shapes)} states (one per layer and direction), "
                         f"got {len(hidden)}")
    for i, (h, want) in enumerate(zip(hidden, expected_shapes)):
        if h is not None and tuple(h.shape) != tuple(want):
            raise ValueError(f"hidden[{i}] must have shape {tuple(want)}, got {tuple(h.shape)}")
    return list(hidden)


def lengths_values(values, batch, steps):
    """Check per-sample lengths (a sequence of ints) against batch size and clip length."""
    values = [int(v) for v in values]
    if len(values) != batch:
        raise ValueError(f"lengths must hold one length per sample (batch {batch}), got {len(values)}")
    bad = [v for v in values if not 1 <= v <= steps]
    if bad:
        raise ValueError(f"lengths must lie in [1, T={steps}], got {bad}")
    return values


def backbone_args(dims, depths, kernel_size, stem_stride, num_frames, num_classes, drop_rate):
    """Validate a ConvGRU-Net's architecture arguments (both frameworks); return (dims, depths) as tuples."""
    dims, depths = tuple(dims), tuple(depths)
    if len(dims) != len(depths) or not dims:
        raise ValueError(f"dims and depths must give one entry per stage, got dims {dims} and depths {depths}")
    for i, (dim, depth) in enumerate(zip(dims, depths)):
        positive_int(f"dims[{i}]", dim)
        positive_int(f"depths[{i}]", depth)
    odd_kernel("kernel_size", kernel_size)
    positive_int("stem_stride", stem_stride)
    positive_int("num_frames", num_frames)
    if not _is_int(num_classes) or num_classes < 0:
        raise ValueError(f"num_classes must be an int >= 0, got {num_classes!r}")
    if not 0. <= drop_rate < 1.:
        raise ValueError(f"drop_rate must lie in [0, 1), got {drop_rate!r}")
    return dims, depths
