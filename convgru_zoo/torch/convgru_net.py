"""ConvGRU-Net: recurrent video backbones ``convgru_tiny/small/base`` for timm.

The stacked GRU-RCN of Ballas et al. 2015 (arXiv:1511.06432) as a hierarchy: ConvGRUs carry a state
through time at several resolutions, and the classifier reads the final state of the coarsest one.

    clip (B,T,C,H,W)          a 4-D image (B,C,H,W) is a one-frame clip, in every method
    stem                      Conv2d k=s=stem_stride + BatchNorm2d, on every frame
    stage i                   (i > 0: Conv2d k=s=2 + BatchNorm2d on every frame of the previous
                              stage's states), then depths[i] ConvGRU layers run through time
    features                  the last stage's final state (B, dims[-1], H/r, W/r), NCHW,
                              r = stem_stride * 2**(len(dims) - 1)
    head                      global average pool -> dropout -> Linear

A stage's feature (``features_only``, ``forward_intermediates``) is its final state, at stride
``stem_stride * 2**i``. Per-sample ``lengths`` (B,) let padded clips end early: a sample's state stops
at its last valid frame. The clip length is free; ``num_frames`` (from the spec) is the default clip
used for the figures below. Variant specs live in :mod:`convgru_zoo.specs`, shared with MindSpore.

``pretrained=True`` resolves the tag (``convgru_small.mmnist_motion``) through
:mod:`convgru_zoo.pretrained`: the copy shipped in the package or the Hub's (cache) file, used only
if its sha256 matches, loaded from safetensors; ``in_chans`` and ``num_classes`` are adapted as in timm.

Figures at the default clip (3 x 64 x 64 frames, T = num_frames), FLOPs of the convolutions and the
classifier counted by ``torch.utils.flop_counter`` (2 per multiply-add; elementwise gating not
counted), from ``python benchmarks/backbone_figures.py``:

| model | dims | depths | params (M) | GFLOPs | clip (B,T,C,H,W) |
|---|---|---|---|---|---|
| convgru_tiny | (32, 64, 128) | (1, 1, 1) | 1.210 | 0.878 | (1, 10, 3, 64, 64) |
| convgru_small | (48, 96, 192) | (1, 1, 2) | 4.708 | 2.607 | (1, 10, 3, 64, 64) |
| convgru_base | (64, 128, 256) | (1, 2, 2) | 9.249 | 5.762 | (1, 10, 3, 64, 64) |
"""
import os
from dataclasses import asdict, replace
from typing import List, Optional, Tuple, Union

import torch
from safetensors import SafetensorError, safe_open
from torch import Tensor, nn

from timm.layers import ClassifierHead, get_device_dtype, register_notrace_function, register_notrace_module
from timm.models import (adapt_input_conv, build_model_with_cfg, checkpoint, generate_default_cfgs, register_model,
                         resolve_pretrained_cfg)
from timm.models._features import feature_take_indices  # timm exports it from no public module (1.0.31)

from .. import _checks, online, specs
from .._zoo_registration import register_backbones
from ..pretrained import PretrainedWeightsError, by_hf_hub_id, weights_file
from .convgru import ConvGRUCell, check_dtype, checked_lengths

__all__ = ["ConvGRUNet", "ConvGRUStage", "FrameConvNorm"]


@register_notrace_function
def as_clip(x: Tensor, in_chans: int) -> Tensor:
    """A (B,T,C,H,W) clip as is, a (B,C,H,W) image as a one-frame clip; other shapes raise ValueError."""
    if x.dim() == 4:
        x = x.unsqueeze(1)
    if x.dim() != 5:
        raise ValueError("x must be a clip (B,T,C,H,W) or an image (B,C,H,W), got a {}-D tensor".format(x.dim()))
    if x.shape[2] != in_chans:
        raise ValueError("x must have in_chans={} channels, got {} in shape {}".format(
            in_chans, x.shape[2], x.shape))
    return x


@register_notrace_function
def check_lengths(lengths: Optional[Tensor], clip: Tensor) -> Optional[Tensor]:
    """Validate per-sample clip lengths (B,) against a (B,T,C,H,W) clip; return them on its device.

    In eager mode and torch.fx, :func:`check_clip` has already checked (and made a tensor of) them.
    """
    if lengths is None:
        return None
    if (lengths.dim() != 1 or lengths.is_floating_point() or lengths.dtype == torch.bool
            or lengths.shape[0] != clip.shape[0]):
        raise ValueError("lengths must be a 1-D integer tensor with one length per sample (B={}), got {} of "
                         "shape {}".format(clip.shape[0], lengths.dtype, lengths.shape))
    if lengths.numel() > 0 and (int(lengths.min()) < 1 or int(lengths.max()) > clip.shape[1]):
        raise ValueError("lengths must lie in [1, T={}], got values from {} to {}".format(
            clip.shape[1], int(lengths.min()), int(lengths.max())))
    return lengths.to(clip.device)


@register_notrace_function
@torch.jit.ignore  # Python even inside TorchScript: an fx-traced graph calls it unconditionally
def check_clip(x: Tensor, lengths: Optional[Tensor], in_chans: int, stem_stride: int, num_stages: int,
               weight: Tensor) -> Optional[Tensor]:
    """Check a backbone's input before any work, as the MindCV twin does (:mod:`convgru_zoo._checks`):
    a tensor in the stem ``weight``'s dtype, (B,T,C,H,W) or (B,C,H,W) with ``in_chans`` channels, no
    empty dimension, frames at least the total stride; ``lengths`` (tensor, array or list of ints).
    Returns ``lengths`` as a tensor on ``x``'s device. Skipped by scripted forwards (:func:`check_lengths`
    checks there) and while torch.jit traces.
    """
    if torch.jit.is_tracing():
        return lengths
    _checks.tensor("x", x, Tensor)
    shape = _checks.input_shape(x.shape, in_chans)
    _checks.backbone_frames(shape, stem_stride, num_stages)
    check_dtype("x", x, weight)
    if lengths is None:
        return None
    return checked_lengths(lengths, shape[0], shape[1] if len(shape) == 5 else 1, x.device)


class FrameConvNorm(nn.Module):
    """Conv2d (kernel = stride) + BatchNorm2d applied to every frame of a (B,T,C,H,W) clip."""

    def __init__(self, in_chs: int, out_chs: int, stride: int, device=None, dtype=None):
        super().__init__()
        dd = dict(device=device, dtype=dtype)
        self.conv = nn.Conv2d(in_chs, out_chs, kernel_size=stride, stride=stride, bias=False, **dd)
        self.norm = nn.BatchNorm2d(out_chs, **dd)

    def forward(self, x: Tensor) -> Tensor:
        batch, steps = x.shape[0], x.shape[1]
        y = self.norm(self.conv(x.flatten(0, 1)))
        return y.reshape(batch, steps, y.shape[1], y.shape[2], y.shape[3])


@register_notrace_module  # the time loop: a leaf for torch.fx
class ConvGRUStage(nn.Module):
    """Per-frame 2x downsampling (unless first), then ConvGRU layers run through time.

    ``stage(x, lengths)`` takes a (B,T,C,H,W) clip or a (B,C,H,W) one-frame clip and returns
    (every step's state of the last layer (B,T,C',H',W'), its final state (B,C',H',W')).
    """

    def __init__(self, in_chs: int, out_chs: int, depth: int, kernel_size: int, downsample: bool,
                 device=None, dtype=None):
        super().__init__()
        dd = dict(device=device, dtype=dtype)
        if not downsample and in_chs != out_chs:
            raise ValueError(f"a stage without downsampling keeps its width: in_chs {in_chs} != out_chs {out_chs}")
        self.downsample = FrameConvNorm(in_chs, out_chs, 2, **dd) if downsample else nn.Identity()
        self.blocks = nn.ModuleList([ConvGRUCell(out_chs, out_chs, kernel_size, **dd) for _ in range(depth)])

    def forward(self, x: Tensor, lengths: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        if x.dim() == 4:
            x = x.unsqueeze(1)
        x = self.downsample(x)
        state: Optional[Tensor] = None
        for block in self.blocks:
            x, state = block.run(x, None, lengths)
        assert state is not None
        return x, state

    def step(self, x: Tensor, states: List[Tensor]) -> List[Tensor]:
        """Advance one (B,C,H,W) frame from the layers' ``states``; return their new states."""
        x = self.downsample(x.unsqueeze(1)).squeeze(1)
        new_states: List[Tensor] = []
        for i, block in enumerate(self.blocks):
            x = block(x, states[i])
            new_states.append(x)
        return new_states


class ConvGRUNet(nn.Module):
    """Hierarchical ConvGRU video backbone with a classifier on the final state (see module docstring)."""

    def __init__(
            self,
            dims: Tuple[int, ...] = (32, 64, 128),
            depths: Tuple[int, ...] = (1, 1, 1),
            kernel_size: int = 3,
            stem_stride: int = 4,
            num_frames: int = 10,
            in_chans: int = 3,
            num_classes: int = 40,
            global_pool: str = 'avg',
            drop_rate: float = 0.,
            device=None,
            dtype=None,
    ):
        """
        Args:
            dims: Channels (hidden size) of each stage.
            depths: ConvGRU layers in each stage.
            kernel_size: ConvGRU kernel size (odd).
            stem_stride: Patch size and stride of the stem.
            num_frames: Default clip length (example inputs, FLOP counts); any length can be fed.
            in_chans: Channels of each frame.
            num_classes: Classifier outputs, 0 for none.
            global_pool: Pooling of the final state ('avg', 'max', ..., '' for none).
            drop_rate: Dropout before the classifier.
        """
        super().__init__()
        dd = dict(device=device, dtype=dtype)
        dims, depths = _checks.backbone_args(dims, depths, kernel_size, stem_stride, num_frames, num_classes,
                                             drop_rate)
        self.in_chans = _checks.positive_int("in_chans", in_chans)
        self.stem_stride = stem_stride
        self.num_frames = num_frames
        self.num_classes = num_classes
        self.drop_rate = drop_rate
        self.grad_checkpointing = False

        self.stem = FrameConvNorm(in_chans, dims[0], stem_stride, **dd)
        stages, self.feature_info = [], []
        for i, (dim, depth) in enumerate(zip(dims, depths)):
            in_chs = dims[max(i - 1, 0)]
            stages.append(ConvGRUStage(in_chs, dim, depth, kernel_size, downsample=i > 0, **dd))
            self.feature_info.append(dict(num_chs=dim, reduction=stem_stride * 2 ** i, module=f'stages.{i}'))
        self.stages = nn.ModuleList(stages)
        self.num_features = dims[-1]
        self.head = ClassifierHead(self.num_features, num_classes, pool_type=global_pool, drop_rate=drop_rate, **dd)
        self.head_hidden_size = self.head.num_features

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False):
        return dict(
            stem=r'^stem',
            blocks=r'^stages\.(\d+)' if coarse else [
                (r'^stages\.(\d+)\.downsample', (0,)),
                (r'^stages\.(\d+)\.blocks\.(\d+)', None),
            ],
        )

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each stage in backward instead of keeping its activations."""
        self.grad_checkpointing = enable

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head.fc

    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None) -> None:
        """New classifier with ``num_classes`` outputs (0: none); pooling kept unless ``global_pool`` is given."""
        self.num_classes = num_classes
        self.head.reset(num_classes, global_pool, in_features=self.num_features, **get_device_dtype(self))
        self.head_hidden_size = self.head.num_features

    def forward_intermediates(
            self,
            x: Tensor,
            indices: Optional[Union[int, List[int]]] = None,
            norm: bool = False,
            stop_early: bool = False,
            output_fmt: str = 'NCHW',
            intermediates_only: bool = False,
            lengths: Optional[Tensor] = None,
    ) -> Union[List[Tensor], Tuple[Tensor, List[Tensor]]]:
        """Final states of the selected stages, with or without the final features.

        Args:
            x: Clip (B,T,C,H,W) or image (B,C,H,W).
            indices: Take the last n stages if int, all if None, those listed if a sequence.
            norm: Unused (there is no final norm); kept for the timm API.
            stop_early: Stop after the last stage asked for.
            output_fmt: Only 'NCHW'.
            intermediates_only: Return only the intermediates.
            lengths: Optional per-sample clip lengths (B,).
        """
        assert output_fmt == 'NCHW', 'Output format must be NCHW.'
        take_indices, max_index = feature_take_indices(len(self.stages), indices)
        if not torch.jit.is_scripting():
            lengths = check_clip(x, lengths, self.in_chans, self.stem_stride, len(self.stages), self.stem.conv.weight)
        x = as_clip(x, self.in_chans)
        lengths = check_lengths(lengths, x)
        x = self.stem(x)
        if torch.jit.is_scripting() or not stop_early:
            stages = self.stages
        else:
            stages = self.stages[:max_index + 1]
        intermediates: List[Tensor] = []
        state: Optional[Tensor] = None
        for i, stage in enumerate(stages):
            if self.grad_checkpointing and not torch.jit.is_scripting():
                x, state = checkpoint(stage, x, lengths)
            else:
                x, state = stage(x, lengths)
            if i in take_indices:
                intermediates.append(state)
        if intermediates_only:
            return intermediates
        assert state is not None
        return state, intermediates

    def prune_intermediate_layers(
            self,
            indices: Union[int, List[int]] = 1,
            prune_norm: bool = False,
            prune_head: bool = True,
    ) -> List[int]:
        """Drop the stages after the last one in ``indices`` (and the head); return the kept indices."""
        take_indices, max_index = feature_take_indices(len(self.stages), indices)
        prune_end = max_index < len(self.stages) - 1
        self.stages = self.stages[:max_index + 1]
        if prune_end:
            self.num_features = self.head_hidden_size = self.feature_info[max_index]['num_chs']
        if prune_head or prune_end:
            self.reset_classifier(0, '')
        return take_indices

    def forward_features(self, x: Tensor, lengths: Optional[Tensor] = None) -> Tensor:
        """The last stage's final state (B, num_features, H/r, W/r) for a clip or an image."""
        if not torch.jit.is_scripting():
            lengths = check_clip(x, lengths, self.in_chans, self.stem_stride, len(self.stages), self.stem.conv.weight)
        x = as_clip(x, self.in_chans)
        lengths = check_lengths(lengths, x)
        x = self.stem(x)
        state: Optional[Tensor] = None
        for stage in self.stages:
            if self.grad_checkpointing and not torch.jit.is_scripting():
                x, state = checkpoint(stage, x, lengths)
            else:
                x, state = stage(x, lengths)
        assert state is not None
        return state

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        return self.head(x, pre_logits=True) if pre_logits else self.head(x)

    def forward(self, x: Tensor, lengths: Optional[Tensor] = None) -> Tensor:
        return self.forward_head(self.forward_features(x, lengths))

    @torch.jit.ignore
    def state_shapes(self, batch: int, height: int, width: int) -> List[Tuple[int, int, int, int]]:
        """Shapes of the states :meth:`step` carries for (height, width) frames, one per ConvGRU layer."""
        stages = [(len(stage.blocks), stage.blocks[0].hidden_size) for stage in self.stages]
        return online.backbone_state_shapes(stages, self.stem_stride, batch, height, width)

    @torch.jit.ignore
    def init_states(self, batch: int, height: int, width: int) -> List[Tensor]:
        """Zero states for :meth:`step` (:mod:`convgru_zoo.online`), on the model's device and dtype."""
        online.frame_size(batch, height, width, min_size=self.feature_info[len(self.stages) - 1]['reduction'])
        dd = get_device_dtype(self)
        return [torch.zeros(shape, **dd) for shape in self.state_shapes(batch, height, width)]

    @torch.jit.ignore
    def step(self, frame: Tensor, states: List[Tensor]) -> Tuple[Tensor, List[Tensor]]:
        """Online inference: one (B,C,H,W) frame and the carried states in, (logits so far, new states) out.

        After frames 0..t, the logits equal ``model(clip[:, :t + 1])`` (in eval mode).
        """
        states = online.check_step(frame, states, Tensor, self.in_chans, self.state_shapes,
                                   min_size=self.feature_info[len(self.stages) - 1]['reduction'])
        return self.forward_step(frame, states)

    def forward_step(self, frame: Tensor, states: List[Tensor]) -> Tuple[Tensor, List[Tensor]]:
        """:meth:`step` without the checks: what scripted, compiled and exported step graphs run."""
        x = self.stem(frame.unsqueeze(1)).squeeze(1)
        new_states: List[Tensor] = []
        for stage in self.stages:
            stage_states = stage.step(x, states[len(new_states):len(new_states) + len(stage.blocks)])
            new_states.extend(stage_states)
            x = stage_states[-1]
        return self.forward_head(x), new_states


def checkpoint_filter_fn(state_dict, model: ConvGRUNet):
    """Unwrap a training checkpoint and fit the stem to the model's ``in_chans``."""
    for key in ('state_dict', 'model'):
        if key in state_dict and isinstance(state_dict[key], dict):
            state_dict = state_dict[key]
    stem = state_dict.get('stem.conv.weight')
    if stem is not None and stem.shape[1] != model.in_chans:
        state_dict = dict(state_dict)
        state_dict['stem.conv.weight'] = adapt_input_conv(model.in_chans, stem, base_chans=stem.shape[1])
    return state_dict


def _check_weights_file(file) -> None:
    """A user's ``pretrained_cfg_overlay=dict(file=...)``: an existing file and, for safetensors, a readable
    header, with the path in the error (timm raises an empty FileNotFoundError or the reader's bare error)."""
    if not os.path.isfile(file):
        raise FileNotFoundError(f"pretrained_cfg file must be an existing weights file, got {file!r}")
    if str(file).endswith('.safetensors'):
        try:
            with safe_open(file, 'pt') as f:
                f.keys()
        except SafetensorError as e:
            raise PretrainedWeightsError(f"weights file {file} is not a readable safetensors file: {e}") from None


def _verified_pretrained_cfg(variant: str, kwargs: dict):
    """The pretrained cfg, pointed at the sha256-checked local file when the weights are ours.

    A user's own source (``local-dir:``, a file, a URL, another Hub repo) is left to timm as given.
    """
    cfg = resolve_pretrained_cfg(
        variant, pretrained_cfg=kwargs.get('pretrained_cfg'), pretrained_cfg_overlay=kwargs.pop('pretrained_cfg_overlay', None))
    if cfg.file and cfg.source != 'local-dir':  # local-dir: file is timm's folder
        _check_weights_file(cfg.file)
    weights = by_hf_hub_id(cfg.hf_hub_id)
    if weights is None or cfg.source == 'local-dir' or cfg.file or cfg.state_dict or cfg.url:
        return cfg
    return replace(cfg, file=str(weights_file(weights.name, 'torch')), source=None, custom_load=False)


def _create_convgru_net(variant: str, pretrained: bool = False, **kwargs) -> ConvGRUNet:
    model_args = dict(asdict(specs.BACKBONES[variant]), **kwargs)
    model_args.setdefault('in_chans', specs.INPUT_SIZE[0])  # timm fits pretrained stems to kwargs' in_chans
    out_indices = model_args.get('out_indices')
    if model_args.get('features_only') and out_indices is not None and _checks.is_sequence(model_args['dims']):
        num_stages = len(model_args['dims'])
        if not (isinstance(out_indices, int) and 1 <= out_indices <= num_stages):  # an int n: the last n stages
            _checks.stage_indices("out_indices", out_indices, num_stages)
    file = None
    if pretrained:
        model_args['pretrained_cfg'] = _verified_pretrained_cfg(variant, model_args)
        file = model_args['pretrained_cfg'].file
    try:
        return build_model_with_cfg(
            ConvGRUNet, variant, pretrained,
            pretrained_filter_fn=checkpoint_filter_fn,
            feature_cfg=dict(feature_cls='getter', out_indices=tuple(range(len(specs.BACKBONES[variant].dims)))),
            **model_args)
    except RuntimeError as e:
        if file and 'Error(s) in loading state_dict' in str(e):
            raise PretrainedWeightsError(f"weights file {file} does not fit {variant}: {e}") from e
        raise


def _cfg(arch: str, **kwargs):
    spec = specs.BACKBONES[arch]
    return {
        'num_classes': specs.NUM_CLASSES, 'input_size': specs.INPUT_SIZE,
        'pool_size': tuple(s // spec.reduction for s in specs.INPUT_SIZE[1:]),
        'crop_pct': 1.0, 'interpolation': 'bilinear', 'mean': specs.MEAN, 'std': specs.STD,
        'first_conv': 'stem.conv', 'classifier': 'head.fc',
        'paper_ids': 'arXiv:1511.06432', 'paper_name': 'Delving Deeper into Convolutional Networks for Learning Video Representations',
        **kwargs,
    }


# One config per pretrained tag; a variant without a tag gets a plain one (timm's default tag '').
default_cfgs = generate_default_cfgs({
    **{w.name: _cfg(w.arch, hf_hub_id=w.hf_hub_id, num_classes=w.num_classes, input_size=w.input_size,
                    mean=w.mean, std=w.std, license=w.license, description=w.description)
       for w in specs.BACKBONE_WEIGHTS.values()},
    **{arch: _cfg(arch) for arch in specs.BACKBONES if specs.default_weights(arch) is None},
})

register_backbones(__name__, _create_convgru_net, register_model)
