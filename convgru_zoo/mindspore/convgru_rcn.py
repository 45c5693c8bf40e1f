"""GRU-RCN for MindSpore / MindCV: ConvGRUs over a MindCV image network's feature maps, one entry point per
``specs.RCN_MODELS`` variant that MindCV has the backbone of (``mindcv_backbone``).

The twin of :mod:`convgru_zoo.torch.convgru_rcn` (its docstring has the design): the same specs, the same
parameter names (the image network's layers as MindCV names them: :mod:`convgru_zoo.convert` maps timm's),
the same outputs.

    clip (B,T,C,H,W)    a 4-D image (B,C,H,W) is a one-frame clip
    backbone            the image network's maps at ``out_indices``, once over all B*T frames
    proj[i]             1x1 Conv2d (with bias) of level i's maps to ``width`` channels, all frames at once
    grus[i]             a ConvGRU through time on level i; stacked: its input is cat[proj_i, the
                        state of level i - 1 max-pooled to level i's grid]
    features            independent levels: every level's final state average-pooled to the coarsest
                        grid, concatenated on channels; stacked: the last level's final state
    head                global average pool -> dropout -> Dense

The backbone is one of MindCV's ResNets (the networks :data:`convgru_zoo.convert.IMAGE_NETWORK_LAYERS`
maps from timm), whose levels measure ceil(H / stride) for any frame size. MindCV's ResNet pools its
stem with ``pad_mode="same"`` (nothing before, one pixel after, on even sizes), timm and torchvision
with one pixel on every side: the same weights give shifted maps. ``stem_pool="timm"`` (the default)
makes the model the PyTorch one, so converted timm weights and our tags give the same outputs in both
frameworks; ``"mindcv"`` is the network MindCV's own ImageNet weights were trained in, which
``pretrained=True`` loads (through MindCV's URL and cache) where :data:`convgru_zoo.specs.PRETRAINED`
has no tag of ours; then ``stem_pool`` defaults to ``"mindcv"``. :func:`load_timm_imagenet_weights` puts timm's
ImageNet weights into the timm-pooled network instead: what ``convgru-zoo train --framework mindspore`` starts from.

Importing this module registers the variants with MindCV, so ``mindcv.create_model`` takes them with
its own arguments (``num_classes``, ``pretrained``, ``checkpoint_path``, ``features_only``, ``out_indices``)
and hands the others to :class:`ConvGRURCN` (``stacked=True``, ``width=32``, ``freeze_backbone=True``)::

    model = mindcv.create_model("convgru_rcn_resnet18", num_classes=10, stacked=True)

``checkpoint_file=`` loads strictly, as in :mod:`convgru_zoo.mindspore.convgru_net`.
"""
import os
from dataclasses import asdict
from typing import Optional, Sequence

import mindspore as ms
from mindspore import Tensor, nn, ops
from mindcv.data.constants import DEFAULT_CROP_PCT, IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from mindcv.models import model_factory
from mindcv.models.helpers import get_checkpoint_download_root
from mindcv.models.registry import get_pretrained_cfg, register_model
from mindcv.utils.download import DownLoad

from .. import _checks, convert, online, specs
from .. import pretrained as _pretrained
from .._zoo_registration import register_rcn_models
from .conv import Conv2d, TeardownSafeCell, onednn_isa
from .convgru import ConvGRUCell, check_dtype, checked_lengths
from .convgru_net import (CellList, ClassifierHead, ConvGRUFeatureExtractor, MindCVDefaultNumClasses,
                          _checked_out_indices, adapt_first_conv)
from .weights import assign_strict, load_params, pretrained_params, read_mindspore_checkpoint

__all__ = ["ConvGRURCN", "ConvGRURCNFeatures", "ImageFeatures", "load_checkpoint", "load_pretrained",
           "load_timm_imagenet_weights", "mindcv_image_network"]

STEM_POOLS = ("timm", "mindcv")


class MaxPool2d(TeardownSafeCell, nn.MaxPool2d):
    """``nn.MaxPool2d`` without the interpreter-exit noise."""


def mindcv_image_network(arch: str, in_channels: int = 3, stem_pool: str = "timm", pretrained: bool = False):
    """MindCV's ResNet ``arch`` (a key of :data:`convgru_zoo.convert.IMAGE_NETWORK_LAYERS`), its stem pooled
    as ``stem_pool`` says (module docstring); ``pretrained``: with MindCV's ImageNet weights
    (:func:`load_mindcv_imagenet_weights`)."""
    if arch not in convert.IMAGE_NETWORK_LAYERS:
        raise ValueError(f"backbone must be one of MindCV's networks with a timm twin "
                         f"{sorted(convert.IMAGE_NETWORK_LAYERS)}, got {arch!r}")
    if stem_pool not in STEM_POOLS:
        raise ValueError(f"stem_pool must be one of {STEM_POOLS}, got {stem_pool!r}")
    if ms.get_context("device_target") == "CPU":
        onednn_isa()  # MindCV's convolutions run MindSpore's oneDNN too: capped before their first kernel
    net = model_factory.create_model(arch, in_channels=_checks.positive_int("in_channels", in_channels))
    if stem_pool == "timm":
        net.max_pool = MaxPool2d(kernel_size=3, stride=2, pad_mode="pad", padding=1)
    if pretrained:
        load_mindcv_imagenet_weights(net, arch, in_channels)
    return net


def load_mindcv_imagenet_weights(net, arch: str, in_channels: int = 3) -> str:
    """Load MindCV's ImageNet checkpoint of ``arch`` into ``net``, strictly but for its classifier; return
    the file.

    The file is MindCV's ``url`` for ``arch``, through MindCV's downloader and cache folder
    (``get_checkpoint_download_root()``; a file already there is used as is, so it works offline). The
    first convolution is fitted to ``in_channels`` as for our own weights (``adapt_first_conv``).
    """
    cfg = get_pretrained_cfg(arch)
    folder = get_checkpoint_download_root()
    DownLoad().download_url(cfg["url"], path=folder)
    path = os.path.join(folder, os.path.basename(cfg["url"]))
    classifier = cfg["classifier"] + "."
    params = {name: value for name, value in read_mindspore_checkpoint(path).items()
              if not name.startswith(classifier)}
    first_conv = cfg["first_conv"] + ".weight"
    if first_conv in params:
        params[first_conv] = adapt_first_conv(params[first_conv], in_channels)
    own = {p.name: p for p in net.get_parameters() if not p.name.startswith(classifier)}
    try:
        assign_strict(own, params, f"MindCV's {arch} ImageNet checkpoint ({path})", arch)
    except ValueError as e:
        raise _pretrained.PretrainedWeightsError(str(e)) from e
    return path


def load_timm_imagenet_weights(model: "ConvGRURCN", arch: str) -> None:
    """Load timm's ImageNet weights of ``arch`` (a key of :data:`convgru_zoo.convert.IMAGE_NETWORK_LAYERS`:
    the network's name in timm and in MindCV alike) into ``model``'s backbone, converted, strictly: every
    backbone parameter gets a value; layers the backbone does not hold (its classifier, levels past the
    deepest one used) are left out.

    They come through timm's own path, as the PyTorch model's ``pretrained=True`` (its Hugging Face Hub file,
    or the cache), so both frameworks start from the same weights; only ``stem_pool="timm"`` computes with
    them what timm does. Needs torch and timm. The first convolution is fitted to the model's ``in_channels``.
    """
    if arch not in convert.IMAGE_NETWORK_LAYERS:
        raise ValueError(f"arch must be one of MindCV's networks with a timm twin {sorted(convert.IMAGE_NETWORK_LAYERS)}, "
                         f"got {arch!r}")
    if model.stem_pool != "timm":
        raise ValueError(f"timm's weights need the model's stem pooled as timm pools it (stem_pool='timm'), got "
                         f"stem_pool={model.stem_pool!r}")
    import timm

    state = timm.create_model(arch, pretrained=True).state_dict()
    held = set(model.backbone.name_cells())
    params = {f"backbone.{name}": value for name, value in
              convert.torch_to_mindspore(state, image_networks={"": arch}).items() if name.split(".")[0] in held}
    params["backbone.conv1.weight"] = adapt_first_conv(params["backbone.conv1.weight"], model.in_channels)
    try:
        assign_strict({p.name: p for p in model.backbone.get_parameters()}, params,
                      f"timm's {arch} ImageNet weights", "the GRU-RCN's backbone")
    except ValueError as e:
        raise _pretrained.PretrainedWeightsError(str(e)) from e


class ImageFeatures(TeardownSafeCell):
    """A MindCV image network's maps at ``out_indices`` (indices into its ``feature_info``), as timm's
    ``features_only`` gives them.

    It holds the network's top-level cells up to the deepest level asked for, under their own names
    (``conv1.weight``, ``layer1.0.conv1.weight``...: what :mod:`convgru_zoo.convert` maps timm's names to),
    and runs them in order; the cells after it (pooling, classifier) are dropped. Like MindCV's
    ``FeatureExtractWrapper``, it relies on the network's top-level cells being registered in the
    order they run, each used once (true of MindCV's ResNets).
    """

    def __init__(self, net, out_indices: Sequence[int]):
        super().__init__()
        info = net.feature_info
        out_indices = _checks.stage_indices("out_indices", list(out_indices), len(info))
        taps = {info[i]["name"]: i for i in out_indices}
        cells, positions = [], []
        for name, cell in net.name_cells().items():
            if len(positions) == len(taps):
                break
            setattr(self, name, cell)
            if name in taps:
                positions.append(len(cells))
            cells.append(cell)
        if len(positions) != len(taps):
            raise ValueError(f"{type(net).__name__}'s feature_info names layers {sorted(taps)} that are not its "
                             "top-level cells")
        self.layers = tuple(cells)  # a plain tuple: the parameter names stay the network's own
        self.taps = tuple(positions)
        self.feature_info = [dict(info[i]) for i in out_indices]

    def construct(self, x):
        features = ()
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i in self.taps:
                features = features + (x,)
        return features


def backbone_levels(net, out_indices, name):
    """``out_indices`` (None: the last three) checked against the feature levels of ``net`` (MindCV's ``name``)."""
    levels = net.feature_info
    n = len(levels)
    if out_indices is None:
        return tuple(range(max(n - 3, 0), n))
    given = list(out_indices) if _checks.is_sequence(out_indices) else []
    if not given or any(not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < n for i in given) \
            or given != sorted(set(given)):
        raise ValueError(f"out_indices must be increasing feature levels in [0, {n}) of backbone {name!r} (at "
                         f"strides {[level['reduction'] for level in levels]}), got {out_indices!r}")
    return tuple(given)


def pool_to_grid(x, target_shape, ratio: int, pool_type: str):
    """Pool (N,C,H,W) ``x`` ('avg' or 'max') by ``ratio`` to the (H', W') of ``target_shape``: kernel = stride
    = ``ratio``, ceil_mode, cropped; the PyTorch model's ``pool_to_grid``."""
    if ratio > 1:
        if pool_type == "max":
            x = ops.max_pool2d(x, ratio, ratio, ceil_mode=True)
        else:
            x = ops.avg_pool2d(x, ratio, ratio, ceil_mode=True, count_include_pad=False)
    return x[:, :, :target_shape[-2], :target_shape[-1]]


class ConvGRURCN(TeardownSafeCell):
    """GRU-RCN video model over a MindCV ResNet (see the module docstring).

    Args:
        backbone: MindCV model name, one of :data:`convgru_zoo.convert.IMAGE_NETWORK_LAYERS`.
        out_indices: The backbone's feature levels the ConvGRUs run on (None: its last three).
        width: Channels each level is projected to; the ConvGRUs' hidden size.
        kernel_size: ConvGRU kernel size (odd).
        stacked: Stacked GRU-RCN (each level's state feeds the next) instead of independent levels.
        num_frames: Default clip length; any length can be fed.
        in_channels: Channels of each frame.
        num_classes: Classifier outputs, 0 for none (the head then returns the pooled features).
        drop_rate: Dropout before the classifier.
        pretrained_backbone: Load MindCV's ImageNet weights into the backbone.
        freeze_backbone: No gradients for the backbone and its BatchNorm kept in eval mode.
        stem_pool: "timm" or "mindcv": how the backbone's stem max-pool pads (module docstring).
        im2col: Path of the ConvGRUs' and projections' convolutions (:class:`~convgru_zoo.mindspore.conv.Conv2d`).

    ``model(x, lengths=None)`` takes a clip (B,T,C,H,W) or an image (B,C,H,W); ``lengths`` (B,) lets padded
    clips end early. Inputs are checked in Python before the (possibly compiled) call.
    """

    def __init__(self, backbone: str = "resnet18", out_indices: Optional[Sequence[int]] = None, width: int = 64,
                 kernel_size: int = 3, stacked: bool = False, num_frames: int = 10, in_channels: int = 3,
                 num_classes: int = specs.NUM_CLASSES, drop_rate: float = 0., pretrained_backbone: bool = False,
                 freeze_backbone: bool = False, stem_pool: str = "timm", *, im2col: Optional[bool] = None):
        super().__init__()
        self.width = _checks.positive_int("width", width)
        _checks.odd_kernel("kernel_size", kernel_size)
        self.stacked = _checks.flag("stacked", stacked)
        self.num_frames = _checks.positive_int("num_frames", num_frames)
        self.in_channels = _checks.positive_int("in_channels", in_channels)
        self.num_classes = _checks.class_count(num_classes)
        if not isinstance(drop_rate, (int, float)) or isinstance(drop_rate, bool) or not 0. <= drop_rate < 1.:
            raise ValueError(f"drop_rate must lie in [0, 1), got {drop_rate!r}")
        self.freeze_backbone = _checks.flag("freeze_backbone", freeze_backbone)
        self.stem_pool = stem_pool

        net = mindcv_image_network(backbone, in_channels, stem_pool, _checks.flag("pretrained_backbone",
                                                                                 pretrained_backbone))
        self.out_indices = backbone_levels(net, out_indices, backbone)
        self.backbone = ImageFeatures(net, self.out_indices)
        self.reductions = tuple(info["reduction"] for info in self.backbone.feature_info)
        for low, high in zip(self.reductions, self.reductions[1:]):
            if high % low:
                raise ValueError(f"out_indices must pick levels whose strides divide each other, got strides "
                                 f"{self.reductions} of backbone {backbone!r}")
        conv = dict(im2col=im2col)
        self.proj = CellList([Conv2d(info["chs"], width, 1, **conv) for info in self.backbone.feature_info])
        self.grus = CellList([ConvGRUCell(width * (2 if stacked and i > 0 else 1), width, kernel_size, **conv)
                              for i in range(len(self.reductions))])
        self.feature_info = [dict(chs=width, reduction=r, name=f"grus.{i}") for i, r in enumerate(self.reductions)]
        self.num_features = self.head_hidden_size = width if stacked else width * len(self.reductions)
        self.head = ClassifierHead(self.num_features, num_classes, drop_rate)
        if self.freeze_backbone:
            for param in self.backbone.get_parameters():
                param.requires_grad = False
            # Running statistics in training mode too, whichever cell set_train is called on (a training
            # wrapper sets every cell's flag, past any override of set_train here).
            for _, cell in self.backbone.cells_and_names():
                if isinstance(cell, nn.BatchNorm2d):
                    cell.use_batch_statistics = False

    def check_inputs(self, x, lengths=None):
        """Validate ``x`` and ``lengths`` in Python; return ``lengths`` as an int32 Tensor (or None)."""
        _checks.tensor("x", x, Tensor)
        shape = _checks.input_shape(x.shape, self.in_channels)
        min_size = self.reductions[-1]
        if shape[-2] < min_size or shape[-1] < min_size:
            raise ValueError(f"x must be at least {min_size}x{min_size} (H, W), the backbone's coarsest stride, "
                             f"got shape {shape}")
        check_dtype("x", x, self.proj[0].weight)
        if lengths is None:
            return None
        return checked_lengths(lengths, shape[0], shape[1] if len(shape) == 5 else 1)

    def __call__(self, x, lengths=None):
        lengths = self.check_inputs(x, lengths)
        if lengths is None:
            return super().__call__(x)
        return super().__call__(x, lengths)

    def image_features(self, frames):
        """The backbone's maps of (N,C,H,W) frames; cut off from gradients when the backbone is frozen."""
        maps = self.backbone(frames)
        if self.freeze_backbone:
            maps = tuple(ops.stop_gradient(m) for m in maps)
        return maps

    def forward_levels(self, x, lengths=None):
        """Each level's final state (B, width, H_i, W_i) for a clip or an image."""
        if x.ndim == 4:
            x = x.expand_dims(1)
        batch, steps = x.shape[0], x.shape[1]
        maps = self.image_features(x.reshape(batch * steps, x.shape[2], x.shape[3], x.shape[4]))
        states = []
        below = None  # the previous level's every-step states (B*T, width, H, W), stacked form
        for i in range(len(self.grus)):
            level = self.proj[i](maps[i])
            if below is not None:
                level = ops.cat([level, pool_to_grid(below, level.shape, self.reductions[i] // self.reductions[i - 1],
                                                     "max")], 1)
            level = level.reshape(batch, steps, level.shape[1], level.shape[2], level.shape[3])
            every, state = self.grus[i].run(level, None, lengths)
            if self.stacked:
                below = every.reshape(batch * steps, every.shape[2], every.shape[3], every.shape[4])
            states.append(state)
        return states

    def features(self, states):
        """The head's input from the levels' states (see the module docstring)."""
        if self.stacked:
            return states[-1]
        coarsest = states[-1].shape
        return ops.cat([pool_to_grid(state, coarsest, self.reductions[-1] // self.reductions[i], "avg")
                        for i, state in enumerate(states)], 1)

    def forward_features(self, x, lengths=None):
        """Features (B, num_features, H/r, W/r) of a clip or an image (see the module docstring)."""
        return self.features(self.forward_levels(x, lengths))

    def forward_head(self, x, pre_logits=False):
        return self.head(x, pre_logits)

    def construct(self, x, lengths=None):
        return self.forward_head(self.forward_features(x, lengths))

    def state_shapes(self, batch: int, height: int, width: int):
        """Shapes of the states :meth:`step` carries for (height, width) frames, one per level: a ResNet's
        level at stride r measures ceil(side / r)."""
        return [(batch, self.width, -(-height // r), -(-width // r)) for r in self.reductions]

    def init_states(self, batch: int, height: int, width: int, dtype=ms.float32):
        """Zero states for :meth:`step` (:mod:`convgru_zoo.online`)."""
        online.frame_size(batch, height, width, min_size=self.reductions[-1])
        return [ops.zeros(shape, dtype) for shape in self.state_shapes(batch, height, width)]

    def step(self, frame, states):
        """Online inference: one (B,C,H,W) frame and the carried states in, (logits so far, new states) out.

        After frames 0..t, the logits equal ``model(clip[:, :t + 1])`` (in eval mode, ``set_train(False)``).
        Runs op by op; :class:`convgru_zoo.mindspore.graphs.StepCell` is the compiled step.
        """
        states = online.check_step(frame, states, Tensor, self.in_channels, self.state_shapes,
                                   min_size=self.reductions[-1])
        check_dtype("frame", frame, self.proj[0].weight)
        output, new_states = self.forward_step(frame, states)
        return output, list(new_states)

    def forward_step(self, frame, states):
        """:meth:`step` without the checks: what compiled and exported step graphs run."""
        maps = self.image_features(frame)
        new_states = ()
        for i in range(len(self.grus)):
            level = self.proj[i](maps[i])
            if self.stacked and i > 0:
                ratio = self.reductions[i] // self.reductions[i - 1]
                level = ops.cat([level, pool_to_grid(new_states[i - 1], level.shape, ratio, "max")], 1)
            new_states = new_states + (self.grus[i](level, states[i]),)
        return self.forward_head(self.features(new_states)), new_states


class ConvGRURCNFeatures(ConvGRURCN):
    """:class:`ConvGRURCN` whose call returns every level's final state (MindCV ``features_only``), marked
    ``is_rewritten`` for ``FeatureExtractWrapper`` as :class:`~convgru_zoo.mindspore.convgru_net.ConvGRUNetFeatures`
    is; it keeps the head, so the same checkpoints load into both classes."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.is_rewritten = True

    def construct(self, x, lengths=None):
        return self.forward_levels(x, lengths)


def load_checkpoint(model: ConvGRURCN, checkpoint_path, ema: bool = False) -> None:
    """Load a MindSpore checkpoint file (``.ckpt`` or ``.safetensors``) into ``model``, strictly; ``ema``: the
    ``ema.``-prefixed parameters of a MindCV training checkpoint."""
    load_params(model, read_mindspore_checkpoint(checkpoint_path, ema), repr(os.fspath(checkpoint_path)))


def load_pretrained(model: ConvGRURCN, name: str) -> None:
    """Load our pretrained weights ``name`` (``<arch>.<tag>``) into ``model``, strictly (sha256-checked, the
    PyTorch file converted where no MindSpore one is published); a model with another ``num_classes``
    keeps its own new classifier."""
    weights = _pretrained.get(name)
    params, path = pretrained_params(name)
    if model.num_classes != weights.num_classes:
        params = {k: v for k, v in params.items() if not k.startswith("head.fc.")}
        params.update({p.name: p for p in model.get_parameters() if p.name.startswith("head.fc.")})
    try:
        load_params(model, params, f"{name} ({path})")
    except ValueError as e:
        raise _pretrained.PretrainedWeightsError(str(e)) from e


def _create_convgru_rcn(variant: str, pretrained: bool = False, features_only: bool = False, out_indices=None,
                        checkpoint_file=None, num_classes: Optional[int] = None,
                        in_channels: int = specs.INPUT_SIZE[0], **kwargs):
    """The entry point of ``variant``. ``pretrained``: our tag where :data:`specs.PRETRAINED` has one, else
    MindCV's ImageNet backbone (then ``stem_pool`` defaults to "mindcv"). ``out_indices``, as in timm: with
    ``features_only`` the model's levels to return (the backbone's are the variant's), else the backbone's."""
    spec = specs.RCN_MODELS[variant]
    if num_classes is None or type(num_classes) is MindCVDefaultNumClasses:
        num_classes = specs.NUM_CLASSES
    model_args = {k: v for k, v in asdict(spec).items() if k not in ("backbone", "mindcv_backbone")}
    model_args.update(backbone=spec.mindcv_backbone, num_classes=num_classes, in_channels=in_channels)
    model_args.update(kwargs)
    tag = specs.default_weights(variant) if _checks.flag("pretrained", pretrained) else None
    if pretrained and checkpoint_file is not None:
        raise ValueError(f"pretrained and checkpoint_file exclude each other, got pretrained=True and "
                         f"checkpoint_file={checkpoint_file!r}")
    if pretrained and tag is None:
        model_args.setdefault("pretrained_backbone", True)
        model_args.setdefault("stem_pool", "mindcv")
    if _checks.flag("features_only", features_only):
        levels = model_args["out_indices"]
        out_indices = _checked_out_indices(out_indices, 3 if levels is None else len(levels))
    elif out_indices is not None:  # without features_only, the backbone's levels (as in timm)
        model_args["out_indices"] = out_indices
    model = (ConvGRURCNFeatures if features_only else ConvGRURCN)(**model_args)
    model.pretrained_cfg = default_cfgs[variant]
    if tag is not None:
        load_pretrained(model, tag.name)
    if checkpoint_file is not None:
        load_checkpoint(model, checkpoint_file)
    if features_only:
        model = ConvGRUFeatureExtractor(model, out_indices=out_indices)
    return model


def _cfg(variant: str) -> dict:
    """MindCV's config of a variant: the backbone's ImageNet input (MindCV's mean and std, in [0, 1]
    units), and our tag where one exists; ``url`` (what MindCV lists as pretrained) is the tag's file once
    published, else MindCV's backbone checkpoint, which ``pretrained=True`` then loads."""
    spec = specs.RCN_MODELS[variant]
    cfg = {"url": get_pretrained_cfg(spec.mindcv_backbone)["url"], "num_classes": specs.NUM_CLASSES,
           "input_size": (3, 224, 224), "crop_pct": DEFAULT_CROP_PCT, "interpolation": "bilinear",
           "mean": tuple(v / 255 for v in IMAGENET_DEFAULT_MEAN), "std": tuple(v / 255 for v in IMAGENET_DEFAULT_STD),
           "first_conv": "backbone.conv1", "classifier": "head.fc"}
    weights = specs.default_weights(variant)
    if weights is None:
        return cfg
    published = weights.file_sha256("mindspore") or weights.file_sha256("torch")
    filename = specs.WEIGHT_FILES["mindspore" if weights.file_sha256("mindspore") else "torch"]
    url = f"https://huggingface.co/{weights.hf_hub_id}/resolve/{weights.revision or 'main'}/{filename}"
    return {**cfg, "url": url if published else "", "weights": weights.name, "hf_hub_id": weights.hf_hub_id,
            "num_classes": weights.num_classes, "label_names": weights.label_names}


MINDCV_VARIANTS = [name for name, spec in specs.RCN_MODELS.items() if spec.mindcv_backbone]
default_cfgs = {variant: _cfg(variant) for variant in MINDCV_VARIANTS}

register_rcn_models(__name__, _create_convgru_rcn, register_model, MINDCV_VARIANTS)
