"""Framework-free data: MNIST idx files, Moving MNIST clips, and frames -> a model's input (numpy only)."""
from .clips import ClipInput, create_clip_transform, resolve_clip_config
from .mnist import load_digits, read_idx
from .moving_mnist import (BASELINE_FRAME, DIRECTIONS, SPLITS, FixedMovingMNIST, MotionMNIST, MovingMNIST,
                           load_fixed_test, single_frame_direction_ceiling, split_indices, to_mindspore)

__all__ = ["BASELINE_FRAME", "DIRECTIONS", "SPLITS", "ClipInput", "FixedMovingMNIST", "MotionMNIST", "MovingMNIST",
           "create_clip_transform", "load_digits", "load_fixed_test", "read_idx", "resolve_clip_config",
           "single_frame_direction_ceiling", "split_indices", "to_mindspore"]
