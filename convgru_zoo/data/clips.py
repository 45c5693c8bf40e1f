"""Frames as users have them -> a pretrained model's input, resolved from the model's pretrained config.

    transform = create_clip_transform(model)             # or a name: create_clip_transform("convgru_tiny")
    logits = model(transform(frames, return_tensors="pt"))

What timm's ``resolve_data_config`` + ``create_transform`` are for images (and a Hugging Face image processor
for its models), for clips of either framework: the pretrained backbones expect frames normalised by their
config's mean/std, and raw [0, 1] frames give wrong answers without any error. numpy only, so a MindSpore
install without torch has it too. The crop and resize are evaluation's (:class:`.transforms.ClipTransform`),
the normalisation training's (:func:`.datasets.normalize`).
"""
import numpy as np

from .. import specs
from .datasets import normalize
from .transforms import ClipTransform

LAYOUTS = ("(H, W, C), (T, H, W, C) or (B, T, H, W, C) for numpy arrays, (C, H, W), (T, C, H, W) or "
           "(B, T, C, H, W) for torch and MindSpore tensors; C 1 or 3")
LUMA = (0.299, 0.587, 0.114)  # RGB -> grey, as Pillow's convert("L") and PyAV's "gray" weigh the channels


def input_config(name) -> dict:
    """``{"input_size": (C, H, W), "mean": ..., "std": ...}`` of the video model or pretrained tag ``name``: what
    its frames are given in (a name: its first tag's, as ``pretrained=True`` loads it).

    A GRU-RCN's frames are normalised as its image backbone's were, read from timm's registry (so timm must be
    installed); its input size is its tag's (the frames it was trained on), or without a tag the backbone's.
    """
    weights = specs.PRETRAINED.get(name) or specs.default_weights(name)
    arch = weights.arch if weights is not None else name
    if arch in specs.RCN_MODELS:
        backbone = rcn_backbone_config(arch)
        return {"input_size": weights.input_size if weights is not None else backbone["input_size"],
                "mean": backbone["mean"], "std": backbone["std"]}
    if weights is None:
        names = sorted(specs.BACKBONES) + sorted(specs.RCN_MODELS) + sorted(specs.FORECASTERS)
        raise ValueError(f"model must be a model, a model name {names} or a pretrained tag "
                         f"{sorted(specs.PRETRAINED)}, got {name!r}")
    return {"input_size": weights.input_size, "mean": weights.mean, "std": weights.std}


def rcn_backbone_config(arch) -> dict:
    """The input config (``input_size``, ``mean``, ``std``, ``interpolation``, ``crop_pct``) of the GRU-RCN
    ``arch``'s image backbone in timm's registry; an ImportError naming the need without timm."""
    backbone = specs.RCN_MODELS[arch].backbone
    try:
        from timm.models import get_pretrained_cfg
    except ImportError as error:
        raise ImportError(f"{arch} normalises its frames as its image backbone {backbone!r} in timm's registry: "
                          f"that needs timm (pip install 'convgru-zoo[torch]'): {error}") from error
    cfg = get_pretrained_cfg(backbone) or get_pretrained_cfg(backbone.split(".")[0])
    return {"input_size": tuple(cfg.input_size), "mean": tuple(cfg.mean), "std": tuple(cfg.std),
            "interpolation": cfg.interpolation, "crop_pct": cfg.crop_pct}


def _config_of_name(name):
    config = input_config(name)
    return config, config["input_size"][0]


def resolve_clip_config(model) -> dict:
    """``{"input_size": (C, H, W), "mean": (C floats), "std": (C floats)}``: what ``model`` was trained on.

    ``model``: a model name or tag (``"convgru_tiny"``, ``"convgru_tiny.mmnist_motion"``, ``"convgru_rcn_resnet18"``:
    a GRU-RCN's name resolves its image backbone's config from timm's registry, so it needs timm), a timm backbone or a
    MindCV one built by this package (their ``pretrained_cfg``), or a forecaster of either framework (frames
    in [0, 1] as they are). C is the model's own channel count (``in_chans=1`` gives one), the config's
    mean/std repeated to it, as a pretrained stem is fitted to it.
    """
    if isinstance(model, str):
        cfg, channels = _config_of_name(model)
    else:
        channels = getattr(model, "in_chans", None) or getattr(model, "in_channels", None)
        cfg = getattr(model, "pretrained_cfg", None)
        if cfg is None and hasattr(model, "input_frames"):
            cfg = {"input_size": specs.INPUT_SIZE, "mean": specs.FORECAST_MEAN, "std": specs.FORECAST_STD}
        if cfg is None or channels is None:
            raise TypeError(f"model must be a convgru_zoo model (with a pretrained_cfg, or a forecaster), a model "
                            f"name or a pretrained tag, got {type(model).__name__}")
    return {"input_size": (channels, *tuple(cfg["input_size"])[1:]),
            "mean": tuple(float(v) for v in np.resize(cfg["mean"], channels)),
            "std": tuple(float(v) for v in np.resize(cfg["std"], channels))}


def create_clip_transform(model, image_size=None) -> "ClipInput":
    """The :class:`ClipInput` of ``model`` (see :func:`resolve_clip_config`); ``image_size``: the side frames
    are resized to instead of the config's (a multiple of the model's stride), 0 to keep their size."""
    config = resolve_clip_config(model)
    side = config["input_size"][-1] if image_size is None else image_size
    if not isinstance(side, (int, np.integer)) or isinstance(side, bool) or side < 0:
        raise ValueError(f"image_size must be an int >= 0 (0 keeps the frames' size) or None, got {image_size!r}")
    return ClipInput(config["input_size"][0], config["mean"], config["std"], int(side))


def _channels_last(frames):
    """(array channels last, the shape as given): tensors (channels first) and PIL images as numpy."""
    if hasattr(frames, "getbands"):  # a PIL image
        array = np.asarray(frames if frames.mode in ("L", "RGB") else frames.convert("RGB"))
        array = array[..., None] if array.ndim == 2 else array
        return array, array.shape
    if isinstance(frames, (list, tuple)):
        if not frames:
            raise ValueError("frames must hold at least one frame, got an empty list")
        parts = [_channels_last(f)[0] for f in frames]
        if len({(p.shape, p.dtype) for p in parts}) != 1:
            raise ValueError("frames: every frame of a list must have the same shape and dtype, got "
                             f"{sorted({(p.shape, str(p.dtype)) for p in parts})}")
        return np.stack(parts), (len(parts), *parts[0].shape)
    if isinstance(frames, np.ndarray):
        return frames, frames.shape
    if type(frames).__module__.startswith("torch"):
        array = frames.detach().cpu().numpy()
    elif hasattr(frames, "asnumpy"):  # a MindSpore tensor
        array = frames.asnumpy()
    else:
        raise TypeError(f"frames must be a numpy array, a PIL image, a list of either, or a torch or MindSpore "
                        f"tensor, got {type(frames).__name__}")
    return (np.moveaxis(array, -3, -1) if array.ndim >= 3 else array), tuple(array.shape)


class ClipInput:
    """Frames -> ``(B, T, C, S, S)`` float32, what the model takes: channels matched (grey repeated, RGB
    weighed to grey), the centred square resized to ``image_size`` (0: frames kept as they are), normalised
    per channel by ``mean``/``std``.

    Frames: uint8 (0-255) or float in [0, 1]: numpy arrays and PIL images channels last, torch and MindSpore
    tensors channels first; one frame, a clip, a batch of clips, or a list of frames. Float frames to resize
    are resized as 8-bit images. Anything else raises naming ``frames``, before any work: a float clip up to
    255 is not silently taken as [0, 1].
    """

    def __init__(self, channels, mean, std, image_size):
        self.channels, self.mean, self.std, self.image_size = channels, mean, std, image_size
        self.resize = ClipTransform(image_size) if image_size else None

    def __repr__(self):
        return (f"ClipInput(channels={self.channels}, mean={self.mean}, std={self.std}, "
                f"image_size={self.image_size})")

    def __call__(self, frames, return_tensors="np"):
        """``frames`` as the model's input: a numpy array (``return_tensors="np"``), torch tensor (``"pt"``) or
        MindSpore tensor (``"ms"``)."""
        if return_tensors not in ("np", "pt", "ms"):
            raise ValueError(f"return_tensors must be 'np', 'pt' or 'ms', got {return_tensors!r}")
        clip = self._matched_channels(self._checked(*_channels_last(frames)))
        batch, steps, height, width, channels = clip.shape
        if self.resize is not None and (height, width) != (self.image_size,) * 2:
            if clip.dtype != np.uint8:
                clip = np.round(clip * 255).astype(np.uint8)
            clip = np.stack([self.resize(c) for c in clip])
        elif clip.dtype == np.uint8:
            clip = np.divide(clip, np.float32(255), dtype=np.float32).transpose(0, 1, 4, 2, 3)
        else:
            clip = clip.astype(np.float32).transpose(0, 1, 4, 2, 3)
        out = normalize(clip, self.mean, self.std)
        if return_tensors == "pt":
            import torch
            return torch.from_numpy(out)
        if return_tensors == "ms":
            import mindspore
            return mindspore.Tensor(out)
        return out

    @staticmethod
    def _checked(array, shape):
        """``array`` (given as ``shape``) as (B, T, H, W, C), its dtype and values checked."""
        if array.ndim not in (3, 4, 5) or array.shape[-1] not in (1, 3) or 0 in array.shape:
            raise ValueError(f"frames must be {LAYOUTS}, got shape {tuple(shape)}")
        if np.issubdtype(array.dtype, np.floating):
            low, high = (float(array.min()), float(array.max())) if np.isfinite(array).all() else (np.nan, np.nan)
            if not 0 <= low <= high <= 1:
                raise ValueError(f"frames: float frames must hold values in [0, 1], got values in [{low}, {high}] "
                                 "(pass 0-255 frames as uint8, or divide them by 255)")
        elif array.dtype != np.uint8:
            raise TypeError(f"frames must be uint8 (0-255) or float in [0, 1], got dtype {array.dtype}")
        return array.reshape((1,) * (5 - array.ndim) + array.shape)

    def _matched_channels(self, clip):
        """Grey frames repeated for a 3-channel model, RGB ones weighed to grey for a 1-channel one."""
        given = clip.shape[-1]
        if given == self.channels:
            return clip
        if (given, self.channels) == (1, 3):
            return np.repeat(clip, 3, axis=-1)
        if (given, self.channels) == (3, 1):
            grey = clip.astype(np.float32) @ np.float32(LUMA)
            return (np.round(grey) if clip.dtype == np.uint8 else grey).astype(clip.dtype)[..., None]
        raise ValueError(f"frames have {given} channels, the model takes {self.channels}")
