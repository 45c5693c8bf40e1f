"""Framework-free data: MNIST idx files and Moving MNIST clips (numpy only)."""
from .mnist import load_digits, read_idx
from .moving_mnist import (BASELINE_FRAME, DIRECTIONS, SPLITS, FixedMovingMNIST, MotionMNIST, MovingMNIST,
                           load_fixed_test, single_frame_direction_ceiling, split_indices, to_mindspore)

__all__ = ["BASELINE_FRAME", "DIRECTIONS", "SPLITS", "FixedMovingMNIST", "MotionMNIST", "MovingMNIST",
           "load_digits", "load_fixed_test", "read_idx", "single_frame_direction_ceiling", "split_indices",
           "to_mindspore"]
