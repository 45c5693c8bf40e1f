"""One source of truth for what both frameworks share: model variants and their defaults.

The PyTorch (timm) and MindSpore (MindCV) model files read these specs; nothing here imports
a framework.
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class BackboneSpec:
    """A ConvGRU video backbone: a patchify stem, then stages of ConvGRU layers.

    Stage i runs at 1 / (stem_stride * 2**i) of the input resolution; stage 0 takes the stem's
    output, later stages take a 2x2 stride-2 downsampling of the previous stage's states.
    """
    dims: tuple          # channels (hidden size) of each stage
    depths: tuple        # ConvGRU layers in each stage
    kernel_size: int = 3
    stem_stride: int = 4
    num_frames: int = 10  # default clip length (a model argument, not a pretrained-config key)


BACKBONES = {
    "convgru_tiny": BackboneSpec(dims=(32, 64, 128), depths=(1, 1, 1)),
    "convgru_small": BackboneSpec(dims=(48, 96, 192), depths=(1, 1, 2)),
    "convgru_base": BackboneSpec(dims=(64, 128, 256), depths=(1, 2, 2)),
}

# Defaults of the pretrained configs: the labelled Moving MNIST clips the weights are trained on.
HF_ORG = "convgru-zoo"
INPUT_SIZE = (1, 64, 64)
NUM_CLASSES = 40  # 10 digits x 4 directions of motion
MEAN = (0.5,)
STD = (0.5,)


@dataclass(frozen=True)
class ForecasterSpec:
    """A ConvGRU encoder-forecaster: frames folded space-to-depth by patch_size, a stacked ConvGRU
    reads input_frames, then predicts output_frames closed loop (convgru_zoo.forecasters)."""
    in_chans: int = 1
    patch_size: int = 4
    hidden_sizes: tuple = (64, 64, 64)
    kernel_size: int = 3
    input_frames: int = 10
    output_frames: int = 10


FORECASTERS = {
    "convgru_forecaster": ForecasterSpec(),                             # Moving MNIST 10 -> 10
    "convgru_forecaster_tiny": ForecasterSpec(hidden_sizes=(32, 32)),  # CPU demos and tests
}
