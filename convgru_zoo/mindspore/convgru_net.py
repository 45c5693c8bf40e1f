"""ConvGRU video backbones for MindSpore / MindCV: ``convgru_tiny``, ``convgru_small``, ``convgru_base``.

The twin of :mod:`convgru_zoo.torch.convgru_net` (its docstring has the design and the table of
parameters and GFLOPs): the same variant specs (:data:`convgru_zoo.specs.BACKBONES`), the same
parameter names (BatchNorm's ``gamma/beta/moving_mean/moving_variance`` for torch's
``weight/bias/running_mean/running_var``, see :mod:`convgru_zoo.convert`), the same outputs.

    clip (B,T,C,H,W)    a 4-D image (B,C,H,W) is a one-frame clip
    stem                Conv2d k=s=stem_stride + BatchNorm2d, on every frame
    stage i             (i > 0: Conv2d k=s=2 + BatchNorm2d on every frame), then depths[i]
                        ConvGRU layers run through time
    features            each stage's final state; the last one feeds the head
    head                global average pool -> dropout -> Dense

Importing this module registers the variants with MindCV, so ``mindcv.create_model(name,
num_classes=..., in_channels=..., pretrained=..., checkpoint_path=..., features_only=...,
out_indices=...)`` and ``mindcv.list_models("convgru*")`` work as for MindCV's own models, in
PYNATIVE and GRAPH mode. Unlike MindCV's own loading, every load here is strict: pretrained weights
are sha256-checked (:mod:`convgru_zoo.pretrained`), a ``checkpoint_path`` that does not exist is an
error, and a checkpoint must name exactly the model's parameters with their shapes.
"""
import os
from typing import Mapping, Optional, Sequence

import mindspore as ms
import numpy as np
from mindspore import Parameter, Tensor, nn
from mindcv.models import model_factory
from mindcv.models.features import FeatureExtractWrapper
from mindcv.models.registry import register_model

from .. import _checks, convert, specs
from .. import pretrained as _pretrained
from .conv import Conv2d, TeardownSafeCell
from .convgru import ConvGRUCell

__all__ = ["ConvGRUNet", "ConvGRUNetFeatures", "ConvGRUStage", "FrameConvNorm", "load_checkpoint",
           "load_pretrained", "load_weights"]


class BatchNorm2d(TeardownSafeCell, nn.BatchNorm2d):
    """``nn.BatchNorm2d`` without the interpreter-exit noise (see :class:`TeardownSafeCell`)."""


class Dense(TeardownSafeCell, nn.Dense):
    """``nn.Dense`` without the interpreter-exit noise."""


class Dropout(TeardownSafeCell, nn.Dropout):
    """``nn.Dropout`` without the interpreter-exit noise."""


class CellList(TeardownSafeCell, nn.CellList):
    """``nn.CellList`` without the interpreter-exit noise."""


class FrameConvNorm(TeardownSafeCell):
    """Conv2d (kernel = stride, no bias) + BatchNorm2d applied to every frame of a (B,T,C,H,W) clip."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, *, im2col: Optional[bool] = None,
                 dtype=ms.float32):
        super().__init__()
        self.conv = Conv2d(in_channels, out_channels, stride, stride=stride, has_bias=False, im2col=im2col,
                           dtype=dtype)
        self.norm = BatchNorm2d(out_channels, eps=1e-5, momentum=0.9, dtype=dtype)  # torch's momentum 0.1

    def construct(self, x):
        b, t, c, height, width = x.shape
        y = self.norm(self.conv(x.reshape(b * t, c, height, width)))
        return y.reshape(b, t, y.shape[1], y.shape[2], y.shape[3])


class ConvGRUStage(TeardownSafeCell):
    """Per-frame 2x downsampling (unless first), then ConvGRU layers run through time.

    ``stage(x, lengths)`` takes a (B,T,C,H,W) clip (or a (B,C,H,W) one-frame clip) and returns
    (every step's state of the last layer (B,T,C',H',W'), its final state (B,C',H',W')).
    """

    def __init__(self, in_channels: int, out_channels: int, depth: int, kernel_size: int, downsample: bool, *,
                 im2col: Optional[bool] = None, dtype=ms.float32):
        super().__init__()
        if not downsample and in_channels != out_channels:
            raise ValueError(f"a stage without downsampling keeps its width: in_channels {in_channels} != "
                             f"out_channels {out_channels}")
        conv = dict(im2col=im2col, dtype=dtype)
        self.downsample = FrameConvNorm(in_channels, out_channels, 2, **conv) if downsample else None
        self.blocks = CellList([ConvGRUCell(out_channels, out_channels, kernel_size, **conv)
                                   for _ in range(depth)])

    def construct(self, x, lengths=None):
        if x.ndim == 4:
            x = x.expand_dims(1)
        if self.downsample is not None:
            x = self.downsample(x)
        state = None
        for block in self.blocks:
            x, state = block.run(x, None, lengths)
        return x, state


class ClassifierHead(TeardownSafeCell):
    """Global average pool -> dropout -> Dense (``fc``; none when ``num_classes`` is 0)."""

    def __init__(self, in_features: int, num_classes: int, drop_rate: float = 0., *, dtype=ms.float32):
        super().__init__()
        self.num_features = in_features
        self.drop = Dropout(p=drop_rate) if drop_rate > 0 else None
        self.fc = Dense(in_features, num_classes, dtype=dtype) if num_classes > 0 else None

    def construct(self, x, pre_logits=False):
        x = x.mean(axis=(2, 3))
        if self.drop is not None:
            x = self.drop(x)
        if pre_logits or self.fc is None:
            return x
        return self.fc(x)


class ConvGRUNet(TeardownSafeCell):
    """Hierarchical ConvGRU video backbone with a classifier on the final state (see module docstring).

    Args:
        dims: Channels (hidden size) of each stage.
        depths: ConvGRU layers in each stage.
        kernel_size: ConvGRU kernel size (odd).
        stem_stride: Patch size and stride of the stem.
        num_frames: Default clip length; any length can be fed.
        in_channels: Channels of each frame.
        num_classes: Classifier outputs, 0 for none (the head then returns the pooled features).
        drop_rate: Dropout before the classifier.
        im2col: Convolution path (None: im2col + matmul on CPU, the native kernel elsewhere).
        dtype: Parameter dtype.

    ``model(x, lengths=None)`` takes a clip (B,T,C,H,W) or an image (B,C,H,W); ``lengths`` (B,)
    lets padded clips end early. Inputs are checked in Python before the (possibly compiled) call.
    """

    def __init__(self, dims: Sequence[int] = (32, 64, 128), depths: Sequence[int] = (1, 1, 1), kernel_size: int = 3,
                 stem_stride: int = 4, num_frames: int = 10, in_channels: int = 3, num_classes: int = 40,
                 drop_rate: float = 0., *, im2col: Optional[bool] = None, dtype=ms.float32):
        super().__init__()
        dims, depths = _checks.backbone_args(dims, depths, kernel_size, stem_stride, num_frames, num_classes,
                                             drop_rate)
        self.in_channels = _checks.positive_int("in_channels", in_channels)
        self.stem_stride = stem_stride
        self.num_frames = num_frames
        self.num_classes = num_classes
        conv = dict(im2col=im2col, dtype=dtype)

        self.stem = FrameConvNorm(in_channels, dims[0], stem_stride, **conv)
        stages, self.feature_info = [], []
        for i, (dim, depth) in enumerate(zip(dims, depths)):
            stages.append(ConvGRUStage(dims[max(i - 1, 0)], dim, depth, kernel_size, i > 0, **conv))
            self.feature_info.append(dict(chs=dim, reduction=stem_stride * 2 ** i, name=f"stages.{i}"))
        self.stages = CellList(stages)
        self.num_features = self.head_hidden_size = dims[-1]
        self.head = ClassifierHead(self.num_features, num_classes, drop_rate, dtype=dtype)

    def check_inputs(self, x, lengths=None):
        """Validate ``x`` and ``lengths`` in Python; return ``lengths`` as an int32 Tensor (or None)."""
        if not isinstance(x, Tensor):
            raise TypeError(f"x must be a mindspore Tensor, got {type(x).__name__}")
        shape = _checks.input_shape(x.shape, self.in_channels)
        min_size = self.feature_info[-1]["reduction"]
        if shape[-2] < min_size or shape[-1] < min_size:
            raise ValueError(f"x must be at least {min_size}x{min_size} (H, W) for {len(self.stages)} stages after "
                             f"a stride-{self.stem_stride} stem, got shape {shape}")
        if lengths is None:
            return None
        values = np.asarray(lengths.asnumpy() if isinstance(lengths, Tensor) else lengths)
        if values.ndim != 1 or values.dtype.kind not in "iu":
            raise ValueError(f"lengths must be a 1-D integer tensor (B,), got {values.dtype} of shape {values.shape}")
        _checks.lengths_values(values.tolist(), shape[0], shape[1] if len(shape) == 5 else 1)
        return Tensor(values.astype(np.int32))

    def __call__(self, x, lengths=None):
        lengths = self.check_inputs(x, lengths)
        if lengths is None:
            return super().__call__(x)
        return super().__call__(x, lengths)

    def forward_stages(self, x, lengths=None):
        """Final state of every stage, (B, dims[i], H/r_i, W/r_i), for a clip or an image."""
        if x.ndim == 4:
            x = x.expand_dims(1)
        x = self.stem(x)
        states = []
        for stage in self.stages:
            x, state = stage(x, lengths)
            states.append(state)
        return states

    def forward_features(self, x, lengths=None):
        """The last stage's final state (B, num_features, H/r, W/r) for a clip or an image."""
        return self.forward_stages(x, lengths)[-1]

    def forward_head(self, x, pre_logits=False):
        return self.head(x, pre_logits)

    def construct(self, x, lengths=None):
        return self.forward_head(self.forward_features(x, lengths))


class ConvGRUNetFeatures(ConvGRUNet):
    """:class:`ConvGRUNet` whose call returns every stage's final state (MindCV ``features_only``).

    The stages run in one time loop of the model's own, so, as MindCV's HRNet does, it marks itself
    ``is_rewritten`` and ``FeatureExtractWrapper`` picks the ``out_indices`` from the returned list.
    It keeps the head's parameters, so the same checkpoints load into both classes.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.is_rewritten = True

    def construct(self, x, lengths=None):
        return self.forward_stages(x, lengths)


class ConvGRUFeatureExtractor(TeardownSafeCell, FeatureExtractWrapper):
    """MindCV's ``FeatureExtractWrapper`` that checks the input in Python first (also in GRAPH mode)."""

    def __call__(self, x):
        self.net.check_inputs(x)
        return super().__call__(x)


def _as_parameters(model, params: Mapping, source: str) -> dict:
    """``params`` (name -> array-like) as Parameters of the model's dtypes, checked name for name.

    Raises ValueError naming ``source`` and every missing, unexpected or misshapen parameter.
    """
    own = {p.name: p for p in model.get_parameters()}
    missing = sorted(set(own) - set(params))
    unexpected = sorted(set(params) - set(own))
    arrays = {name: convert.to_numpy(value) for name, value in params.items() if name in own}
    misshapen = [f"{name}: {arrays[name].shape} in the weights, {tuple(own[name].shape)} in the model"
                 for name in sorted(arrays) if arrays[name].shape != tuple(own[name].shape)]
    problems = [f"missing {missing}" if missing else "", f"unexpected {unexpected}" if unexpected else "",
                f"misshapen [{'; '.join(misshapen)}]" if misshapen else ""]
    problems = [p for p in problems if p]
    if problems:
        raise ValueError(f"weights {source} do not fit {type(model).__name__}: " + "; ".join(problems))
    return {name: Parameter(Tensor(array, own[name].dtype), name=name) for name, array in arrays.items()}


def load_weights(model: ConvGRUNet, params: Mapping, source: str = "the given weights") -> None:
    """Load ``params`` (MindSpore names -> arrays, tensors or Parameters) into ``model``, strictly.

    Every parameter of the model must be there with its shape, and nothing else; ``source`` names
    the weights in errors.
    """
    param_dict = _as_parameters(model, params, source)
    not_loaded, unused = ms.load_param_into_net(model, param_dict, strict_load=True)
    if not_loaded or unused:
        raise ValueError(f"weights {source} did not load fully into {type(model).__name__}: "
                         f"not loaded {not_loaded}, unused {unused}")


def load_checkpoint(model: ConvGRUNet, checkpoint_path, ema: bool = False) -> None:
    """Load a MindSpore checkpoint (``.ckpt`` or ``.safetensors``) into ``model``, strictly.

    With ``ema``, the ``ema.``-prefixed parameters of a MindCV training checkpoint are loaded instead.
    """
    path = os.fspath(checkpoint_path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint_path {path!r} does not exist or is not a file")
    fmt = "safetensors" if path.endswith(".safetensors") else "ckpt"
    try:
        params = ms.load_checkpoint(path, format=fmt)
    except Exception as e:  # MindSpore raises ValueError/RuntimeError for unreadable files
        raise ValueError(f"checkpoint_path {path!r} is not a readable MindSpore {fmt} file: {e}") from e
    if ema:
        params = {name[len("ema."):]: value for name, value in params.items() if name.startswith("ema.")}
        if not params:
            raise ValueError(f"checkpoint_path {path!r} holds no 'ema.' parameters, but ema=True was asked")
    load_weights(model, params, repr(path))


def adapt_first_conv(weight: np.ndarray, in_channels: int) -> np.ndarray:
    """Fit pretrained stem weights (out, C, k, k) to ``in_channels`` as timm's ``adapt_input_conv`` does.

    One channel: sum over the source channels. More: repeat the source channels and scale by
    C / in_channels, so a grey frame repeated over the new channels gives the same response.
    """
    base = weight.shape[1]
    if in_channels == base:
        return weight
    if in_channels == 1:
        return weight.sum(axis=1, keepdims=True)
    repeat = -(-in_channels // base)
    return np.tile(weight, (1, repeat, 1, 1))[:, :in_channels] * (base / in_channels)


def load_pretrained(model: ConvGRUNet, name: str) -> None:
    """Load the pretrained weights ``name`` (``<arch>.<tag>``) into ``model``, strictly.

    The MindSpore checkpoint is used when published, else the PyTorch safetensors converted
    (:func:`convgru_zoo.convert.torch_to_mindspore`); either file is sha256-checked by
    :func:`convgru_zoo.pretrained.weights_file`. The stem is fitted to the model's ``in_channels``;
    a model with another ``num_classes`` than the weights keeps its own new classifier.
    """
    weights = _pretrained.get(name)
    if weights.file_sha256("mindspore"):
        path = _pretrained.weights_file(name, "mindspore")
        params = {k: v.asnumpy() for k, v in ms.load_checkpoint(str(path)).items()}
    elif weights.file_sha256("torch"):
        from safetensors.numpy import load_file

        path = _pretrained.weights_file(name, "torch")
        params = convert.torch_to_mindspore(load_file(str(path)))
    else:
        raise _pretrained.PretrainedWeightsError(
            f"{name} has no published MindSpore or PyTorch weights yet (no sha256 in convgru_zoo.specs.PRETRAINED)")
    first_conv = default_cfgs[weights.arch]["first_conv"] + ".weight"
    if first_conv in params:
        params[first_conv] = adapt_first_conv(params[first_conv], model.in_channels)
    if model.num_classes != weights.num_classes:
        classifier = default_cfgs[weights.arch]["classifier"]
        params = {k: v for k, v in params.items() if not k.startswith(classifier + ".")}
        params.update({p.name: p for p in model.get_parameters() if p.name.startswith(classifier + ".")})
    try:
        load_weights(model, params, f"{name} ({path})")
    except ValueError as e:
        raise _pretrained.PretrainedWeightsError(str(e)) from e


def _checked_out_indices(out_indices, num_stages: int) -> list:
    """``out_indices`` (None: every stage; negatives count from the end) as a list of stage indices."""
    if out_indices is None:
        return list(range(num_stages))
    if isinstance(out_indices, int) and not isinstance(out_indices, bool):
        out_indices = [out_indices]
    indices = list(out_indices)
    bad = [i for i in indices if isinstance(i, bool) or not isinstance(i, int) or not -num_stages <= i < num_stages]
    if bad or not indices:
        raise ValueError(f"out_indices must be stage indices in [-{num_stages}, {num_stages}) for {num_stages} "
                         f"stages, got {out_indices!r}")
    return sorted({i % num_stages for i in indices})


def _create_convgru_net(variant: str, pretrained: bool = False, features_only: bool = False, out_indices=None,
                        **kwargs):
    spec = specs.BACKBONES[variant]
    model_args = dict(dims=spec.dims, depths=spec.depths, kernel_size=spec.kernel_size,
                      stem_stride=spec.stem_stride, num_frames=spec.num_frames)
    model_args.update(kwargs)
    if features_only:
        out_indices = _checked_out_indices(out_indices, len(model_args["dims"]))
    elif out_indices is not None:
        raise ValueError(f"out_indices applies with features_only=True, got out_indices={out_indices!r}")
    model = (ConvGRUNetFeatures if features_only else ConvGRUNet)(**model_args)
    if pretrained:
        load_pretrained(model, default_cfgs[variant]["weights"])
    if features_only:
        model = ConvGRUFeatureExtractor(model, out_indices=out_indices)
    return model


def _cfg(weights: specs.PretrainedWeights) -> dict:
    """MindCV's config of a variant; ``url`` is set (so MindCV lists it as pretrained) once published."""
    published = weights.file_sha256("mindspore") or weights.file_sha256("torch")
    filename = specs.WEIGHT_FILES["mindspore" if weights.file_sha256("mindspore") else "torch"]
    url = f"https://huggingface.co/{weights.hf_hub_id}/resolve/{weights.revision or 'main'}/{filename}"
    return {
        "url": url if published else "",
        "weights": weights.name,
        "hf_hub_id": weights.hf_hub_id,
        "num_classes": weights.num_classes,
        "input_size": weights.input_size,
        "mean": weights.mean,
        "std": weights.std,
        "first_conv": "stem.conv",
        "classifier": "head.fc",
    }


def _default_weights(arch: str) -> specs.PretrainedWeights:
    """The first pretrained tag listed for ``arch`` in ``specs.PRETRAINED`` (timm's default tag)."""
    return next(w for w in specs.PRETRAINED.values() if w.arch == arch)


default_cfgs = {arch: _cfg(_default_weights(arch)) for arch in specs.BACKBONES}


@register_model
def convgru_tiny(pretrained: bool = False, num_classes: int = specs.NUM_CLASSES,
                 in_channels: int = specs.INPUT_SIZE[0], **kwargs):
    """ConvGRU-Tiny: three stages of one ConvGRU layer each."""
    return _create_convgru_net("convgru_tiny", pretrained, num_classes=num_classes, in_channels=in_channels, **kwargs)


@register_model
def convgru_small(pretrained: bool = False, num_classes: int = specs.NUM_CLASSES,
                  in_channels: int = specs.INPUT_SIZE[0], **kwargs):
    """ConvGRU-Small: wider stages, two ConvGRU layers in the last."""
    return _create_convgru_net("convgru_small", pretrained, num_classes=num_classes, in_channels=in_channels, **kwargs)


@register_model
def convgru_base(pretrained: bool = False, num_classes: int = specs.NUM_CLASSES,
                 in_channels: int = specs.INPUT_SIZE[0], **kwargs):
    """ConvGRU-Base: widest stages, two ConvGRU layers in the last two."""
    return _create_convgru_net("convgru_base", pretrained, num_classes=num_classes, in_channels=in_channels, **kwargs)


def _install_strict_checkpoint_loading() -> None:
    """Make ``mindcv.create_model(..., checkpoint_path=...)`` load ConvGRU models with :func:`load_checkpoint`.

    ``create_model`` does not pass ``checkpoint_path`` to the entry point; it calls MindCV's
    ``load_model_checkpoint`` afterwards, which skips a missing file silently and loads non-strictly.
    This wraps that function (looked up in ``mindcv.models.model_factory`` at call time) so ConvGRU
    models load strictly; every other model keeps MindCV's behaviour. Idempotent.
    """
    mindcv_load = model_factory.load_model_checkpoint
    if getattr(mindcv_load, "convgru_strict", False):
        return

    def load_model_checkpoint(model, checkpoint_path="", ema=False, auto_mapping=False):
        net = model.net if isinstance(model, ConvGRUFeatureExtractor) else model
        if not isinstance(net, ConvGRUNet):
            return mindcv_load(model, checkpoint_path, ema, auto_mapping)
        if auto_mapping:
            raise ValueError("auto_mapping is not supported for ConvGRU models: their checkpoints must name "
                             "exactly the model's parameters")
        return load_checkpoint(net, checkpoint_path, ema)

    load_model_checkpoint.convgru_strict = True
    load_model_checkpoint.__doc__ = mindcv_load.__doc__
    model_factory.load_model_checkpoint = load_model_checkpoint


_install_strict_checkpoint_loading()
