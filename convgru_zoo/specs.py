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

# Defaults of the pretrained configs. Backbones take 3-channel frames, as every timm and MindCV model
# does; the grey Moving MNIST digits they are trained on are given as 3 equal channels.
HF_ORG = "convgru-zoo"
INPUT_SIZE = (3, 64, 64)
NUM_CLASSES = 40  # 10 digits x 4 directions of motion
MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)


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


# Pretrained weights. A tag names one training run of one variant (``<arch>.<tag>``); its home is the
# Hub repo ``HF_ORG/<arch>.<tag>``, holding one file per framework. Every door (timm, MindCV,
# torch.hub) resolves a tag through ``convgru_zoo.pretrained``, which checks the file's sha256.
FRAMEWORKS = ("torch", "mindspore")
WEIGHT_FILES = {"torch": "model.safetensors", "mindspore": "model.ckpt"}  # file names in the Hub repo


@dataclass(frozen=True)
class PretrainedWeights:
    """One set of pretrained weights: what it was trained on and the sha256 of each framework's file.

    ``sha256`` maps a framework ("torch", "mindspore") to the hex digest of its file; a framework
    missing from it has no published file yet. ``revision`` pins a Hub commit (None: main).
    """
    arch: str
    tag: str
    description: str
    sha256: tuple = ()   # ((framework, hex digest), ...): a tuple so the spec stays immutable
    revision: str = None
    num_classes: int = NUM_CLASSES
    input_size: tuple = INPUT_SIZE
    mean: tuple = MEAN
    std: tuple = STD
    license: str = "mit"

    @property
    def name(self) -> str:
        return f"{self.arch}.{self.tag}"

    @property
    def hf_hub_id(self) -> str:
        return f"{HF_ORG}/{self.name}"

    def file_sha256(self, framework: str):
        """Hex sha256 of ``framework``'s file, or None when that file is not published yet."""
        return dict(self.sha256).get(framework)


_MMNIST_MOTION = "Moving MNIST clips labelled digit x direction of motion (40 classes)"

PRETRAINED = {w.name: w for w in (
    PretrainedWeights("convgru_tiny", "mmnist_motion", _MMNIST_MOTION),
    PretrainedWeights("convgru_small", "mmnist_motion", _MMNIST_MOTION),
    PretrainedWeights("convgru_base", "mmnist_motion", _MMNIST_MOTION),
)}
