"""The datasets a run trains and evaluates on by name (``--dataset``; ``--data`` is the user's folder
instead): how a split is built, and what the labels mean, so training, evaluation and cards read classes
from here, not from constants.

A new dataset is one module in this package plus one :data:`DATASETS` entry.
"""
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..specs import DIGIT_GRID, INPUT_SIZE, LABEL_NAMES, MEAN, MOTION_MNIST_GRID, STD, grid_label_names
from .moving_mnist import MotionMNIST, MotionMNISTFrames, MovingMNIST

CONTEXT_FRAMES = 10  # forecast: frames in, and frames out; classify: clip length


@dataclass(frozen=True)
class Dataset:
    """A dataset by name: ``build(root, split, num_sequences, augment)`` returns an object with ``batch(indices)``.

    ``grid`` lays the classes out as (row names, column names), class ``r * len(columns) + c``, for the
    per-row/column accuracies and the per-class picture, whose axes ``grid_axes`` names; ``label_names``
    and ``num_classes`` follow from it (none for a forecast dataset).
    """
    task: str
    build: Callable
    grid: tuple = ()
    grid_axes: tuple = ()  # what a row and a column of ``grid`` are: ("digit", "direction")

    @property
    def label_names(self) -> tuple:
        return grid_label_names(self.grid)

    @property
    def num_classes(self) -> int:
        return len(self.label_names)


def _moving_mnist(root, split, num_sequences, augment=False):
    return MovingMNIST(root, split, num_sequences, seq_len=2 * CONTEXT_FRAMES, augment=augment)


def _motion_mnist(root, split, num_sequences, augment=False):
    return MotionMNIST(root, split, num_sequences, seq_len=CONTEXT_FRAMES, channels=INPUT_SIZE[0], augment=augment)


def _motion_mnist_frames(root, split, num_sequences, augment=False):
    return MotionMNISTFrames(root, split, num_sequences, seq_len=CONTEXT_FRAMES, channels=INPUT_SIZE[0], augment=augment)


DATASETS = {
    "moving_mnist": Dataset("forecast", _moving_mnist),
    "motion_mnist": Dataset("classify", _motion_mnist, grid=MOTION_MNIST_GRID, grid_axes=("digit", "direction")),
    "motion_mnist_frames": Dataset("classify_frames", _motion_mnist_frames, grid=DIGIT_GRID, grid_axes=("digit",)),
}
# What a task trains on when --dataset is not given.
DEFAULT = {"forecast": "moving_mnist", "classify": "motion_mnist", "classify_frames": "motion_mnist_frames"}
assert DATASETS["motion_mnist"].label_names == LABEL_NAMES  # what the published tags' configs name


def dataset_names(task) -> list:
    """The names of :data:`DATASETS` serving ``task``."""
    return sorted(name for name, dataset in DATASETS.items() if dataset.task == task)


def resolve_dataset(task, name="") -> str:
    """``name`` checked to be a dataset of ``task``, or the task's own (:data:`DEFAULT`) for ``""``/None."""
    name = name or DEFAULT.get(task)
    if name not in dataset_names(task):
        raise ValueError(f"dataset must be one of {dataset_names(task)} for task {task!r}, got {name!r}")
    return name


def build_dataset(name, root, split, num_sequences, augment=False):
    """Split ``split`` of the dataset ``name`` (a key of :data:`DATASETS`) from the files in ``root``."""
    if name not in DATASETS:
        raise ValueError(f"dataset must be one of {sorted(DATASETS)}, got {name!r}")
    return DATASETS[name].build(root, split, num_sequences, augment)


def input_norm(model) -> tuple:
    """(mean, std) ``model``'s input is normalised by: its pretrained config's (a GRU-RCN's are its image
    backbone's ImageNet statistics), else the backbones' default; a DistributedDataParallel's model is unwrapped."""
    cfg = getattr(getattr(model, "module", model), "pretrained_cfg", None) or {}
    return tuple(cfg.get("mean", MEAN)), tuple(cfg.get("std", STD))


def normalize(clip: np.ndarray, mean=MEAN, std=STD) -> np.ndarray:
    """Backbone input: [0, 1] frames (..., C, H, W) normalised per channel by ``mean``/``std`` (default: the
    backbones' pretrained configs', which training uses; :mod:`convgru_zoo.data.clips` passes a model's own)."""
    mean = np.reshape(np.float32(mean), (-1, 1, 1))
    std = np.reshape(np.float32(std), (-1, 1, 1))
    return ((clip - mean) / std).astype(np.float32)
