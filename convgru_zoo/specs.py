"""One source of truth for what both frameworks share: model variants and their defaults.

The PyTorch (timm) and MindSpore (MindCV) model files read these specs; nothing here imports
a framework.
"""
import json
from dataclasses import dataclass, replace
from pathlib import Path


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

    @property
    def reduction(self) -> int:
        """Total stride: the last stage runs at 1 / reduction of the input resolution."""
        return self.stem_stride * 2 ** (len(self.dims) - 1)

    def summary(self) -> str:
        """One line on the architecture, for generated docstrings."""
        dims, depths = (", ".join(map(str, v)) for v in (self.dims, self.depths))
        strides = ", ".join(str(self.stem_stride * 2 ** i) for i in range(len(self.dims)))
        return (f"{len(self.dims)} ConvGRU stages ({dims} channels; {depths} layers) at strides {strides}")


BACKBONES = {
    "convgru_tiny": BackboneSpec(dims=(32, 64, 128), depths=(1, 1, 1)),
    "convgru_small": BackboneSpec(dims=(48, 96, 192), depths=(1, 1, 2)),
    "convgru_base": BackboneSpec(dims=(64, 128, 256), depths=(1, 2, 2)),
}

@dataclass(frozen=True)
class RcnSpec:
    """A GRU-RCN (Ballas et al. 2015): ConvGRUs over the feature maps of a pretrained image backbone.

    The backbone's maps at ``out_indices`` (its feature levels, e.g. timm's ``features_only`` levels)
    are each projected by a 1x1 convolution to ``width`` channels and carried through time by a
    ConvGRU of hidden size ``width``. ``stacked=False``: independent levels whose classifiers are
    averaged (GRU-RCN); ``stacked=True``: each level's state, max-pooled, feeds the next (stacked GRU-RCN).

    Defaults (measured, docs/gru-rcn.md): the levels at strides 8, 16 and 32 and width 64, the widest
    state there within the budget of an online step at most 1.25x the image model's forward
    (convgru_rcn_resnet18 at 224x224: 1.1x; width 128: 1.4x). A stride-4 level costs about 40% of
    resnet18's own FLOPs at width 64 (1.4x).
    """
    backbone: str                 # timm model name
    mindcv_backbone: str = None   # MindCV's name of the same network, None where MindCV has none
    out_indices: tuple = None     # backbone feature levels; None: its last three
    width: int = 64
    kernel_size: int = 3
    stacked: bool = False
    num_frames: int = 10          # default clip length (example inputs, FLOP counts); any length can be fed

    def summary(self) -> str:
        """One line on the architecture, for generated docstrings."""
        levels = "its last three feature levels" if self.out_indices is None else \
            f"feature levels {', '.join(map(str, self.out_indices))}"
        form = "stacked (each level's state feeds the next)" if self.stacked else "independent levels, averaged classifiers"
        return f"ConvGRUs ({self.width} channels) over {levels} of {self.backbone}; {form}"


RCN_GENERIC = "convgru_rcn"  # timm.create_model(RCN_GENERIC, backbone="<any timm model with features_only>")
RCN_MODELS = {
    RCN_GENERIC: RcnSpec("resnet18", "resnet18"),
    "convgru_rcn_resnet18": RcnSpec("resnet18", "resnet18", out_indices=(2, 3, 4)),
    "convgru_rcn_resnet50": RcnSpec("resnet50", "resnet50", out_indices=(2, 3, 4)),
    "convgru_rcn_mobilenetv3_large_100": RcnSpec("mobilenetv3_large_100", out_indices=(2, 3, 4)),
    "convgru_rcn_convnext_tiny": RcnSpec("convnext_tiny", out_indices=(1, 2, 3)),
}

# Defaults of the pretrained configs. Backbones take 3-channel frames, as every timm and MindCV model
# does; the grey Moving MNIST digits they are trained on are given as 3 equal channels.
HF_ORG = "convgru-zoo"                 # the Hugging Face Hub organisation of the pretrained tags
GITHUB_REPO = "convgru-zoo/convgru-zoo"  # the source repository: torch.hub.load(GITHUB_REPO, ...) and pip's git URL
INPUT_SIZE = (3, 64, 64)
DIRECTIONS = ("down-right", "down-left", "up-right", "up-left")  # Motion MNIST's, index = (vx < 0) + 2 * (vy < 0)
MOTION_MNIST_GRID = (tuple(f"digit {d}" for d in range(10)), DIRECTIONS)  # class = digit * 4 + direction
DIGIT_GRID = (MOTION_MNIST_GRID[0], ())  # single frames classified by digit (a GRU-RCN backbone's frame training)
NUM_CLASSES = 40  # 10 digits x 4 directions of motion


def grid_label_names(grid) -> tuple:
    """Class names of a (row names, column names) grid of classes, class ``r * len(columns) + c``: "digit 7, up-right";
    a grid without columns names its rows: "digit 7"."""
    rows, columns = grid or ((), ())
    if rows and not columns:
        return tuple(rows)
    return tuple(f"{r}, {c}" for r in rows for c in columns)


LABEL_NAMES = grid_label_names(MOTION_MNIST_GRID)  # the classes of every published backbone tag
MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)
# Forecasters read and predict frames in [0, 1] as they are: their configs normalise by mean 0, std 1.
FORECAST_MEAN, FORECAST_STD = (0.0,), (1.0,)


@dataclass(frozen=True)
class ForecasterSpec:
    """A ConvGRU encoder-forecaster: frames folded space-to-depth by patch_size, a stacked ConvGRU
    reads input_frames, then predicts output_frames closed loop (convgru_zoo.models.create_forecaster)."""
    in_chans: int = 1
    patch_size: int = 4
    hidden_sizes: tuple = (64, 64, 64)
    kernel_size: int = 3
    input_frames: int = 10
    output_frames: int = 10

    def summary(self) -> str:
        """One line on the architecture, for generated docstrings."""
        return (f"{len(self.hidden_sizes)} ConvGRU layers ({', '.join(map(str, self.hidden_sizes))} channels) on "
                f"frames folded {self.patch_size}x{self.patch_size}; {self.input_frames} frames in, "
                f"{self.output_frames} predicted")


# The forecast head, the same in both frameworks (why it reads the frame too: convgru_zoo.torch.forecaster).
HEAD_KERNEL = 3      # the head's reach at folded resolution: +-1 patch, i.e. +-patch_size pixels
HEAD_PRIOR = 0.05    # initial prediction of every pixel (about the mean of a Moving MNIST frame)

FORECASTERS = {
    "convgru_forecaster": ForecasterSpec(),                             # Moving MNIST 10 -> 10
    "convgru_forecaster_tiny": ForecasterSpec(hidden_sizes=(32, 32)),  # CPU demos and tests
    "convgru_forecaster_wide": ForecasterSpec(hidden_sizes=(96, 96, 96)),  # the same at 96 channels a layer
}


# Pretrained weights. A tag names one training run of one variant (``<arch>.<tag>``); its home is the
# Hub repo ``HF_ORG/<arch>.<tag>``, holding one file per framework. Every door (timm, MindCV,
# torch.hub) resolves a tag through ``convgru_zoo.pretrained``, which checks the file's sha256.
FRAMEWORKS = ("torch", "mindspore")
WEIGHT_FILES = {"torch": "model.safetensors", "mindspore": "model.ckpt"}  # file names in the Hub repo


@dataclass(frozen=True)
class PretrainedWeights:
    """One set of pretrained weights: the recipe that trains them and the sha256 of each framework's file.

    ``recipe`` holds every ``convgru_zoo.train.TrainConfig`` field of the run (``convgru-zoo train
    --recipe <name>`` replays it); ``sha256`` maps a framework ("torch", "mindspore") to the hex
    digest of its file, as ``convgru-zoo release`` recorded it in ``weights/published.json``; a
    framework missing from it has no published file yet. ``ships``: a copy ships inside the package,
    so ``pretrained=True`` works offline right after ``pip install``. ``revision`` pins a Hub commit.
    """
    arch: str
    tag: str
    description: str
    recipe: tuple = ()   # ((TrainConfig field, value), ...): tuples keep the spec immutable
    ships: bool = False
    sha256: tuple = ()   # ((framework, hex digest), ...)
    revision: str = None
    license: str = "mit"

    @property
    def name(self) -> str:
        return f"{self.arch}.{self.tag}"

    @property
    def hf_hub_id(self) -> str:
        return f"{HF_ORG}/{self.name}"

    @property
    def task(self) -> str:
        return "forecast" if self.arch in FORECASTERS else "classify"

    @property
    def num_classes(self) -> int:
        return NUM_CLASSES if self.task == "classify" else 0

    @property
    def label_names(self) -> tuple:
        """Each output's class name (timm's ``label_names``); empty for forecasters."""
        return LABEL_NAMES if self.task == "classify" else ()

    @property
    def input_size(self) -> tuple:
        if self.task == "classify":
            return INPUT_SIZE
        return (FORECASTERS[self.arch].in_chans, *INPUT_SIZE[1:])

    @property
    def mean(self):
        """Per-channel mean the inputs are normalised by; None for a GRU-RCN, whose frames are normalised as its image
        backbone's were (its library's registry: ``convgru_zoo.data.clips.input_config``)."""
        if self.arch in RCN_MODELS:
            return None
        return MEAN[:self.input_size[0]] if self.task == "classify" else FORECAST_MEAN * self.input_size[0]

    @property
    def std(self):
        """Per-channel std, as :attr:`mean` (None for a GRU-RCN)."""
        if self.arch in RCN_MODELS:
            return None
        return STD[:self.input_size[0]] if self.task == "classify" else FORECAST_STD * self.input_size[0]

    @property
    def frameworks(self) -> tuple:
        """The frameworks with a file of these weights: both, but PyTorch alone for a GRU-RCN whose image
        backbone MindCV has not."""
        if self.arch in RCN_MODELS and not RCN_MODELS[self.arch].mindcv_backbone:
            return ("torch",)
        return FRAMEWORKS

    def file_sha256(self, framework: str):
        """Hex sha256 of ``framework``'s file, or None when that file is not published yet."""
        return dict(self.sha256).get(framework)


PUBLISHED_FILE = Path(__file__).resolve().parent / "weights" / "published.json"


def _published_sha256(name: str) -> tuple:
    published = json.loads(PUBLISHED_FILE.read_text()) if PUBLISHED_FILE.is_file() else {}
    return tuple(sorted(published.get(name, {}).items()))


def _recipe(task, model, steps, batch_size, lr, weight_decay, warmup_steps, min_lr, val_every, **rest):
    """A training recipe: the arguments that differ between runs, the rest shared by every published run.

    ``amp="auto"`` trains in bf16 where the machine computes it natively, float32 elsewhere (the two tiny
    tags were trained before that choice existed, in float32, which is what auto picks on their machine)."""
    shared = dict(framework="torch", init_weights="", num_sequences=100000, augment=False, seed=0, loss="bce", optimizer="adamw",
                  momentum=0.9, schedule="cosine", amp="none", grad_clip=1.0, ckpt_every=250, val_sequences=256,
                  pretrained_backbone=True, freeze_backbone=False, backbone_lr_scale=1.0)
    return tuple(sorted({**shared, **rest, "task": task, "model": model, "steps": steps, "batch_size": batch_size,
                         "lr": lr, "weight_decay": weight_decay, "warmup_steps": warmup_steps, "min_lr": min_lr,
                         "val_every": val_every}.items()))


_MMNIST_MOTION = "Moving MNIST clips labelled digit x direction of motion (40 classes)"
_MMNIST = "Moving MNIST (Srivastava et al. 2015): two digits, 10 frames in, the next 10 forecast"
_BACKBONE_RECIPE = dict(task="classify", dataset="motion_mnist", batch_size=32, weight_decay=0.05, warmup_steps=100, min_lr=2e-5,
                        val_every=250, ckpt_every=100)
_FORECAST_RECIPE = dict(task="forecast", dataset="moving_mnist", batch_size=16, weight_decay=0.01, warmup_steps=200, min_lr=5e-5,
                        val_every=500)

PRETRAINED = {w.name: replace(w, sha256=_published_sha256(w.name)) for w in (
    PretrainedWeights("convgru_tiny", "mmnist_motion", _MMNIST_MOTION, ships=True, recipe=_recipe(
        model="convgru_tiny", steps=1500, lr=2e-3, **_BACKBONE_RECIPE)),
    PretrainedWeights("convgru_small", "mmnist_motion", _MMNIST_MOTION, recipe=_recipe(
        model="convgru_small", steps=6000, lr=2e-3, amp="auto", augment=True, **_BACKBONE_RECIPE)),
    PretrainedWeights("convgru_base", "mmnist_motion", _MMNIST_MOTION, recipe=_recipe(
        model="convgru_base", steps=6000, lr=1.5e-3, amp="auto", augment=True, **_BACKBONE_RECIPE)),
    PretrainedWeights("convgru_forecaster", "mmnist", _MMNIST, ships=True, recipe=_recipe(
        model="convgru_forecaster", steps=4000, lr=3e-3, amp="auto", **_FORECAST_RECIPE)),
    PretrainedWeights("convgru_forecaster_tiny", "mmnist", _MMNIST, ships=True, recipe=_recipe(
        model="convgru_forecaster_tiny", steps=6000, lr=5e-3, **_FORECAST_RECIPE)),
    PretrainedWeights("convgru_forecaster_wide", "mmnist", _MMNIST, recipe=_recipe(
        model="convgru_forecaster_wide", steps=4000, lr=3e-3, amp="auto", **_FORECAST_RECIPE)),
)}
BACKBONE_WEIGHTS = {name: w for name, w in PRETRAINED.items() if w.task == "classify"}


def default_weights(arch: str):
    """The first tag listed for ``arch`` in :data:`PRETRAINED` (what ``pretrained=True`` loads), or None."""
    return next((w for w in PRETRAINED.values() if w.arch == arch), None)
