"""ConvGRU video backbones for MindSpore / MindCV, one ``convgru_*`` entry point per ``specs.BACKBONES`` variant.

The twin of :mod:`convgru_zoo.torch.convgru_net` (its docstring has the design): the same variant
specs (:data:`convgru_zoo.specs.BACKBONES`), the same parameter names (BatchNorm's ``gamma/beta/moving_mean/moving_variance`` for torch's
``weight/bias/running_mean/running_var``, see :mod:`convgru_zoo.convert`), the same outputs.

    clip (B,T,C,H,W)    a 4-D image (B,C,H,W) is a one-frame clip
    stem                Conv2d k=s=stem_stride + BatchNorm2d, on every frame
    stage i             (i > 0: Conv2d k=s=2 + BatchNorm2d on every frame), then depths[i]
                        ConvGRU layers run through time
    features            each stage's final state; the last one feeds the head
    head                global average pool -> dropout -> Dense

Importing this module registers the variants with MindCV, so ``mindcv.create_model(name,
num_classes=..., in_channels=..., pretrained=..., features_only=..., out_indices=...)`` and
``mindcv.list_models("convgru*")`` work as for MindCV's own models, in PYNATIVE and GRAPH mode.

Loading is strict here, unlike MindCV's: pretrained weights are sha256-checked
(:mod:`convgru_zoo.pretrained`) and must name exactly the model's parameters with their shapes.
For a checkpoint of your own pass ``checkpoint_file=PATH``: ``create_model`` hands extra keywords
to the model's entry point (its documented ``**kwargs``), which loads it strictly and raises if the
file is missing. MindCV's own ``checkpoint_path=`` stays MindCV's (applied by ``create_model``
after the entry point, no hook to reach it: a missing file is skipped, loading is not strict).

MindCV's ``create_model`` always passes ``num_classes`` (default 1000), which would give
``pretrained=True`` a new, untrained 1000-class head. The one change made to MindCV marks that
default (:class:`MindCVDefaultNumClasses`, still the int 1000 for every other model), so a
``convgru_*`` model the caller gave no ``num_classes`` keeps its published classifier.
"""
import inspect
import os
from typing import Optional, Sequence

import mindspore as ms
import numpy as np
from mindspore import Tensor, nn, ops
from mindcv.models import model_factory
from mindcv.models.features import FeatureExtractWrapper
from mindcv.models.registry import register_model

from .. import _checks, online, specs
from .. import pretrained as _pretrained
from .._zoo_registration import register_backbones
from .conv import Conv2d, TeardownSafeCell
from .convgru import ConvGRUCell, check_dtype, checked_lengths
from .weights import load_params, pretrained_params, read_mindspore_checkpoint

__all__ = ["ConvGRUNet", "ConvGRUNetFeatures", "ConvGRUStage", "FrameConvNorm", "load_checkpoint",
           "load_pretrained"]


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

    def step(self, x, states):
        """Advance one (B,C,H,W) frame from the layers' ``states``; return their new states."""
        if self.downsample is not None:
            x = self.downsample(x.expand_dims(1)).squeeze(1)
        new_states = []
        for i, block in enumerate(self.blocks):
            x = block(x, states[i])
            new_states.append(x)
        return new_states


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
        im2col: Convolution path (None: the one :func:`convgru_zoo.mindspore.conv.conv_path` chose).
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
        _checks.tensor("x", x, Tensor)
        shape = _checks.input_shape(x.shape, self.in_channels)
        _checks.backbone_frames(shape, self.stem_stride, len(self.stages))
        check_dtype("x", x, self.stem.conv.weight)
        if lengths is None:
            return None
        return checked_lengths(lengths, shape[0], shape[1] if len(shape) == 5 else 1)

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

    def state_shapes(self, batch: int, height: int, width: int):
        """Shapes of the states :meth:`step` carries for (height, width) frames, one per ConvGRU layer."""
        stages = [(len(stage.blocks), stage.blocks[0].hidden_size) for stage in self.stages]
        return online.backbone_state_shapes(stages, self.stem_stride, batch, height, width)

    def init_states(self, batch: int, height: int, width: int, dtype=ms.float32):
        """Zero states for :meth:`step` (:mod:`convgru_zoo.online`)."""
        online.frame_size(batch, height, width, min_size=self.feature_info[-1]["reduction"])
        return [ops.zeros(shape, dtype) for shape in self.state_shapes(batch, height, width)]

    def step(self, frame, states):
        """Online inference: one (B,C,H,W) frame and the carried states in, (logits so far, new states) out.

        After frames 0..t, the logits equal ``model(clip[:, :t + 1])`` (in eval mode, ``set_train(False)``).
        Runs op by op; :class:`convgru_zoo.mindspore.graphs.StepCell` is the compiled step.
        """
        states = online.check_step(frame, states, Tensor, self.in_channels, self.state_shapes,
                                   min_size=self.feature_info[-1]["reduction"])
        output, new_states = self.forward_step(frame, states)
        return output, list(new_states)

    def forward_step(self, frame, states):
        """:meth:`step` without the checks: what compiled and exported step graphs run."""
        x = self.stem(frame.expand_dims(1)).squeeze(1)
        new_states = ()  # a tuple: a list's extend() gives wrong states in GRAPH_MODE (MindSpore 2.10)
        for stage in self.stages:
            depth = len(stage.blocks)
            stage_states = stage.step(x, states[len(new_states):len(new_states) + depth])
            new_states = new_states + tuple(stage_states)
            x = stage_states[-1]
        return self.forward_head(x), new_states


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


def load_checkpoint(model: ConvGRUNet, checkpoint_path, ema: bool = False) -> None:
    """Load a MindSpore checkpoint file (``.ckpt`` or ``.safetensors``) into ``model``, strictly.

    With ``ema``, the ``ema.``-prefixed parameters of a MindCV training checkpoint are loaded instead.
    """
    load_params(model, read_mindspore_checkpoint(checkpoint_path, ema), repr(os.fspath(checkpoint_path)))


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
    params, path = pretrained_params(name)
    first_conv = default_cfgs[weights.arch]["first_conv"] + ".weight"
    if first_conv in params:
        params[first_conv] = adapt_first_conv(params[first_conv], model.in_channels)
    if model.num_classes != weights.num_classes:
        classifier = default_cfgs[weights.arch]["classifier"]
        params = {k: v for k, v in params.items() if not k.startswith(classifier + ".")}
        params.update({p.name: p for p in model.get_parameters() if p.name.startswith(classifier + ".")})
    try:
        load_params(model, params, f"{name} ({path})")
    except ValueError as e:
        raise _pretrained.PretrainedWeightsError(str(e)) from e


def _checked_out_indices(out_indices, num_stages: int) -> list:
    """``out_indices`` (None: every stage; an int: that stage; negatives count from the end) as a list."""
    if out_indices is None:
        return list(range(num_stages))
    if isinstance(out_indices, int) and not isinstance(out_indices, bool):
        out_indices = [out_indices]
    return _checks.stage_indices("out_indices", out_indices, num_stages)


class MindCVDefaultNumClasses(int):
    """The ``num_classes`` MindCV's ``create_model`` passes when its caller gave none: an int, told apart by type."""


def _mark_mindcv_default_num_classes() -> None:
    """Replace ``create_model``'s default ``num_classes`` by the same number as a :class:`MindCVDefaultNumClasses`."""
    create_model = model_factory.create_model
    with_defaults = [p.name for p in inspect.signature(create_model).parameters.values()
                     if p.kind is p.POSITIONAL_OR_KEYWORD and p.default is not p.empty]
    if "num_classes" not in with_defaults:
        return
    defaults = list(create_model.__defaults__)
    at = with_defaults.index("num_classes")
    defaults[at] = MindCVDefaultNumClasses(defaults[at])
    create_model.__defaults__ = tuple(defaults)


def _create_convgru_net(variant: str, pretrained: bool = False, features_only: bool = False, out_indices=None,
                        checkpoint_file=None, num_classes: Optional[int] = None,
                        in_channels: int = specs.INPUT_SIZE[0], **kwargs):
    """The entry point of ``variant``; ``num_classes`` not given (None, or MindCV's default) is the
    variant's published head (:data:`default_cfgs`)."""
    spec = specs.BACKBONES[variant]
    if num_classes is None or type(num_classes) is MindCVDefaultNumClasses:
        num_classes = default_cfgs[variant]["num_classes"]
    model_args = dict(dims=spec.dims, depths=spec.depths, kernel_size=spec.kernel_size,
                      stem_stride=spec.stem_stride, num_frames=spec.num_frames)
    model_args.update(kwargs, num_classes=num_classes, in_channels=in_channels)
    _checks.flag("pretrained", pretrained)
    if _checks.flag("features_only", features_only):
        out_indices = _checked_out_indices(out_indices, len(model_args["dims"]))
    elif out_indices is not None:
        raise ValueError(f"out_indices applies with features_only=True, got out_indices={out_indices!r}")
    model = (ConvGRUNetFeatures if features_only else ConvGRUNet)(**model_args)
    model.pretrained_cfg = default_cfgs[variant]  # as timm's models carry theirs: convgru_zoo.data.create_clip_transform
    if pretrained and checkpoint_file is not None:
        raise ValueError(f"pretrained and checkpoint_file exclude each other, got pretrained=True and "
                         f"checkpoint_file={checkpoint_file!r}")
    if pretrained:
        load_pretrained(model, _pretrained.weights_name(variant, True))
    if checkpoint_file is not None:
        load_checkpoint(model, checkpoint_file)
    if features_only:
        model = ConvGRUFeatureExtractor(model, out_indices=out_indices)
    return model


def _cfg(arch: str) -> dict:
    """MindCV's config of a variant, from its first pretrained tag if any; ``url`` is set (so MindCV lists it
    as pretrained) once that tag is published."""
    weights = specs.default_weights(arch)
    cfg = {"url": "", "num_classes": specs.NUM_CLASSES, "input_size": specs.INPUT_SIZE, "mean": specs.MEAN,
           "std": specs.STD, "first_conv": "stem.conv", "classifier": "head.fc"}
    if weights is None:
        return cfg
    published = weights.file_sha256("mindspore") or weights.file_sha256("torch")
    filename = specs.WEIGHT_FILES["mindspore" if weights.file_sha256("mindspore") else "torch"]
    url = f"https://huggingface.co/{weights.hf_hub_id}/resolve/{weights.revision or 'main'}/{filename}"
    return {**cfg, "url": url if published else "", "weights": weights.name, "hf_hub_id": weights.hf_hub_id,
            "num_classes": weights.num_classes, "input_size": weights.input_size, "mean": weights.mean,
            "std": weights.std, "label_names": weights.label_names}


default_cfgs = {arch: _cfg(arch) for arch in specs.BACKBONES}

register_backbones(__name__, _create_convgru_net, register_model)
_mark_mindcv_default_num_classes()
