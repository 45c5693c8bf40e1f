"""GRU-RCN: ConvGRUs over the feature maps of any pretrained timm image backbone, for timm.

Ballas et al. 2015 (arXiv:1511.06432) run convolutional GRUs over the "percepts" of an ImageNet
network at several levels: the image network brings what it learned from photos, the ConvGRUs add
motion. One ``convgru_rcn_*`` entry point per :data:`convgru_zoo.specs.RCN_MODELS` variant, plus
the generic ``timm.create_model("convgru_rcn", backbone="<any timm model with features_only>")``.

    clip (B,T,C,H,W)          a 4-D image (B,C,H,W) is a one-frame clip, in every method
    backbone                  timm ``features_only`` model, once per clip on all B*T frames
    proj[i]                   1x1 Conv2d (C_i -> width) on level i's maps, all frames at once
    grus[i]                   ConvGRU (hidden size width) through time on level i
                              stacked: its input is cat[proj_i, h_{i-1} max-pooled to level i's grid]
    features                  independent: every level's final state average-pooled to the coarsest
                              level's grid, concatenated (B, L*width, H/r, W/r); stacked: the last
                              level's final state (B, width, H/r, W/r); r = the coarsest stride
    head                      global average pool -> dropout -> Linear

With independent levels the head is the paper's averaged per-level classifiers: global-average-pooling
the concatenation and one Linear gives sum_i W_i p_i + b over the levels' pooled states p_i, which is
the average of L per-level linear classifiers (logits, weights L * W_i) reparametrised; the pooled
states are the levels' own global averages whenever the coarsest grid divides each level's (frame
sides a multiple of the coarsest stride). A level's feature (``features_only``,
``forward_intermediates``) is its final state at its own stride.

Pooling between grids is ``avg_pool2d`` / ``max_pool2d`` with kernel = stride = the ratio of the two
levels' strides, ``ceil_mode=True``, cropped to the target grid: the right size for any frame size
(backbones that round feature sizes up or down alike), where ``adaptive_*_pool2d`` to a size read
from another tensor does not export to ONNX with dynamic frame sizes.

``pretrained=True`` loads the image backbone's own ImageNet weights through timm (its Hugging Face
Hub weights), and the whole model's where :data:`convgru_zoo.specs.PRETRAINED` has a tag for the
variant. The backbone's ``pretrained_cfg`` (mean, std, input size, interpolation, crop) becomes the
model's, so ``timm.data.resolve_data_config`` and ``create_clip_transform`` normalise for it.
``freeze_backbone=True`` keeps the image backbone fixed: no gradients, BatchNorm in eval mode even
after ``model.train()``.

Online API (:mod:`convgru_zoo.online`): ``init_states`` / ``step`` carry one state per level; a step
is one backbone pass and one ConvGRU step per level, and after frames 0..t the logits equal
``model(clip[:, :t + 1])`` in eval mode.
"""
import itertools
from dataclasses import asdict
from functools import lru_cache, partial
from typing import Dict, List, Optional, Tuple, Union

import timm
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from timm.layers import ClassifierHead, get_device_dtype, register_notrace_function, register_notrace_module
from timm.models import (build_model_with_cfg, checkpoint, generate_default_cfgs, get_pretrained_cfg, register_model,
                         resolve_pretrained_cfg)
from timm.models._features import feature_take_indices  # timm exports it from no public module (1.0.31)

from .. import _checks, online, specs
from .._zoo_registration import register_rcn_models
from .convgru import ConvGRUCell, check_dtype, checked_lengths, gru_update
from .convgru_net import _verified_pretrained_cfg, as_clip, check_lengths

__all__ = ["ConvGRURCN", "LevelConvGRU", "load_image_backbone", "pool_to_grid"]

# Keys of the image backbone's pretrained config that become the model's: its input as it was trained.
BACKBONE_CFG_KEYS = ('input_size', 'interpolation', 'crop_pct', 'crop_mode', 'mean', 'std')


@register_notrace_module  # the time loop depends on T: a leaf for torch.fx
class LevelConvGRU(ConvGRUCell):
    """The ConvGRU of one RCN level. Calling it runs a whole (B,T,C,H,W) clip (``ConvGRUCell.run``);
    :meth:`step` advances one (B,C,H,W) frame. Parameters as :class:`ConvGRUCell`'s."""

    def forward(self, x: Tensor, lengths: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """(every step's state (B,T,hidden,H,W), final state) of a clip from a zero state."""
        return self.run(x, None, lengths)

    def step(self, x: Tensor, state: Tensor) -> Tensor:
        """One frame from ``state``, unchecked (the model's :meth:`ConvGRURCN.step` checks)."""
        w_x, bias, w_h_gates, w_h_out = self.split_weights()
        return gru_update(F.conv2d(x, w_x, bias, padding=self.padding), state, w_h_gates, w_h_out, self.padding)


def pool_to_grid(x: Tensor, target: Tensor, ratio: int, pool_type: str) -> Tensor:
    """Pool (N,C,H,W) ``x`` ('avg' or 'max') by ``ratio`` to ``target``'s (..., H', W') grid: kernel = stride
    = ``ratio``, ceil_mode, cropped (see the module docstring)."""
    if ratio > 1:
        if pool_type == 'max':
            x = F.max_pool2d(x, ratio, ratio, ceil_mode=True)
        else:
            x = F.avg_pool2d(x, ratio, ratio, ceil_mode=True, count_include_pad=False)
    return x[:, :, :target.shape[-2], :target.shape[-1]]


@register_notrace_function
@torch.jit.ignore
def check_clip(x: Tensor, lengths: Optional[Tensor], in_chans: int, min_size: int, weight: Tensor) -> Optional[Tensor]:
    """Check the model's input before any work: a tensor in ``weight``'s dtype, (B,T,C,H,W) or (B,C,H,W)
    with ``in_chans`` channels, no empty dimension, frames at least ``min_size`` (the coarsest stride);
    ``lengths`` returned as a tensor on ``x``'s device. Skipped while torch.jit traces."""
    if torch.jit.is_tracing():
        return lengths
    _checks.tensor("x", x, Tensor)
    shape = _checks.input_shape(x.shape, in_chans)
    if shape[-2] < min_size or shape[-1] < min_size:
        raise ValueError(f"x must be at least {min_size}x{min_size} (H, W), the backbone's coarsest stride, "
                         f"got shape {shape}")
    check_dtype("x", x, weight)
    if lengths is None:
        return None
    return checked_lengths(lengths, shape[0], shape[1] if len(shape) == 5 else 1, x.device)


@lru_cache(maxsize=None)
def feature_levels(name) -> nn.Module:
    """timm's ``features_only`` model ``name`` at its default levels, on the meta device (no weights, no
    compute): what the backbone offers. Errors name an unknown model or one without ``features_only``."""
    if not isinstance(name, str) or not timm.is_model(name.split('.')[0]):
        raise ValueError(f"backbone must be the name of a timm model (timm.list_models()), got {name!r}")
    try:
        return timm.create_model(name.split('.')[0], features_only=True, device='meta')
    except Exception as e:
        raise ValueError(f"backbone must support features_only=True in timm, got {name!r}, which does not "
                         f"({type(e).__name__}: {e})") from e


def create_backbone(name: str, out_indices, in_chans: int, pretrained: bool, device=None, dtype=None) -> nn.Module:
    """timm's ``features_only`` model ``name`` at ``out_indices`` (None: its last three levels), with clear
    errors for an unknown name, a model without ``features_only`` support and levels out of range."""
    levels = feature_levels(name).feature_info.info
    dd = {k: v for k, v in dict(device=device, dtype=dtype).items() if v is not None}
    n = len(levels)
    if out_indices is None:
        out_indices = tuple(range(max(n - 3, 0), n))
    given = list(out_indices) if _checks.is_sequence(out_indices) else []
    if not given or any(not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < n for i in given) \
            or given != sorted(set(given)):
        raise ValueError(f"out_indices must be increasing feature levels in [0, {n}) of backbone {name!r} (at "
                         f"strides {[level['reduction'] for level in levels]}), got {out_indices!r}")
    strides = [levels[i]['reduction'] for i in given]
    if any(high % low for low, high in zip(strides, strides[1:])):
        raise ValueError(f"out_indices must pick levels of backbone {name!r} whose strides divide each other (pooling "
                         f"between them), got {out_indices!r} at strides {strides}")
    pretrained_weights = {}
    if pretrained:  # timm's own path (its Hub weights), loaded strictly into the image model, classifier and all
        image_model = timm.create_model(name, pretrained=True, **dd)
        pretrained_weights = dict(pretrained=True, pretrained_cfg_overlay=dict(state_dict=image_model.state_dict()))
    # features_only drops the classifier and loads non-strictly: from a complete image model's state it misses nothing.
    return timm.create_model(name, features_only=True, out_indices=tuple(out_indices), in_chans=in_chans,
                             **pretrained_weights, **dd)


class ConvGRURCN(nn.Module):
    """GRU-RCN video model over a timm image backbone (see the module docstring)."""

    def __init__(
            self,
            backbone: str = 'resnet18',
            out_indices: Optional[Tuple[int, ...]] = None,
            width: int = 64,
            kernel_size: int = 3,
            stacked: bool = False,
            num_frames: int = 10,
            in_chans: int = 3,
            num_classes: int = specs.NUM_CLASSES,
            global_pool: str = 'avg',
            drop_rate: float = 0.,
            pretrained_backbone: bool = False,
            freeze_backbone: bool = False,
            device=None,
            dtype=None,
    ):
        """
        Args:
            backbone: timm model name (any model with ``features_only`` support).
            out_indices: The backbone's feature levels the ConvGRUs run on (None: its last three).
            width: Channels each level is projected to; the ConvGRUs' hidden size.
            kernel_size: ConvGRU kernel size (odd).
            stacked: Stacked GRU-RCN (each level's state feeds the next) instead of independent levels.
            num_frames: Default clip length (example inputs, FLOP counts); any length can be fed.
            in_chans: Channels of each frame.
            num_classes: Classifier outputs, 0 for none.
            global_pool: Pooling of the features ('avg', 'max', ..., '' for none).
            drop_rate: Dropout before the classifier.
            pretrained_backbone: Load the backbone's ImageNet weights through timm.
            freeze_backbone: No gradients for the backbone and its BatchNorm kept in eval mode.
        """
        super().__init__()
        dd = dict(device=device, dtype=dtype)
        self.width = _checks.positive_int("width", width)
        _checks.odd_kernel("kernel_size", kernel_size)
        self.stacked = _checks.flag("stacked", stacked)
        self.num_frames = _checks.positive_int("num_frames", num_frames)
        self.in_chans = _checks.positive_int("in_chans", in_chans)
        self.num_classes = _checks.class_count(num_classes)
        if not isinstance(drop_rate, (int, float)) or isinstance(drop_rate, bool) or not 0. <= drop_rate < 1.:
            raise ValueError(f"drop_rate must lie in [0, 1), got {drop_rate!r}")
        self.freeze_backbone = _checks.flag("freeze_backbone", freeze_backbone)
        self.drop_rate = drop_rate
        self.grad_checkpointing = False

        self.backbone_name = backbone
        self.backbone = create_backbone(backbone, out_indices, in_chans, _checks.flag(
            "pretrained_backbone", pretrained_backbone), **dd)
        reductions = self.backbone.feature_info.reduction()
        self.out_indices = tuple(self.backbone.feature_info.out_indices)
        self.reductions = tuple(reductions)
        self.proj = nn.ModuleList([nn.Conv2d(chs, width, 1, **dd) for chs in self.backbone.feature_info.channels()])
        self.grus = nn.ModuleList([
            LevelConvGRU(width * (2 if stacked and i > 0 else 1), width, kernel_size, **dd)
            for i in range(len(reductions))])
        self.feature_info = [dict(num_chs=width, reduction=r, module=f'grus.{i}') for i, r in enumerate(reductions)]
        self.num_features = width if stacked else width * len(reductions)
        self.head = ClassifierHead(self.num_features, num_classes, pool_type=global_pool, drop_rate=drop_rate, **dd)
        self.head_hidden_size = self.head.num_features
        self._level_sizes: Dict[Tuple[int, int], List[Tuple[int, int]]] = {}
        if freeze_backbone:
            self.backbone.requires_grad_(False)
            self.backbone.eval()

    def train(self, mode: bool = True):
        """Training mode for everything but a frozen backbone, which stays in eval mode (BatchNorm statistics)."""
        super().train(mode)
        if self.freeze_backbone:
            self.backbone.eval()
        return self

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False):
        return dict(stem=r'^backbone', blocks=r'^(?:proj|grus)\.(\d+)')

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute the backbone's stages and each level's ConvGRU in backward instead of keeping activations."""
        self.grad_checkpointing = enable
        if hasattr(self.backbone, 'set_grad_checkpointing'):
            self.backbone.set_grad_checkpointing(enable)

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head.fc

    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None) -> None:
        """New classifier with ``num_classes`` outputs (0: none); pooling kept unless ``global_pool`` is given."""
        self.num_classes = _checks.class_count(num_classes)
        self.head.reset(num_classes, global_pool, in_features=self.num_features, **get_device_dtype(self.proj))
        self.head_hidden_size = self.head.num_features

    def _run_levels(self, x: Tensor, lengths: Optional[Tensor]) -> List[Tensor]:
        """Each level's final state (B,width,H_i,W_i) for a (B,T,C,H,W) clip."""
        batch, steps = x.shape[0], x.shape[1]
        features = self.backbone(x.flatten(0, 1))
        states: List[Tensor] = []
        below: Optional[Tensor] = None  # the previous level's every-step states, (B*T, width, H, W)
        for i, (proj, gru) in enumerate(zip(self.proj, self.grus)):
            level = proj(features[i])
            if below is not None:
                level = torch.cat([level, pool_to_grid(below, level, self.reductions[i] // self.reductions[i - 1],
                                                       'max')], 1)
            level = level.reshape(batch, steps, level.shape[1], level.shape[2], level.shape[3])
            if self.grad_checkpointing and not torch.jit.is_scripting():
                every, state = checkpoint(gru, level, lengths)
            else:
                every, state = gru(level, lengths)
            if self.stacked:
                below = every.flatten(0, 1)
            states.append(state)
        return states

    def _features(self, states: List[Tensor]) -> Tensor:
        """The head's input from the levels' states (see the module docstring)."""
        if self.stacked:
            return states[-1]
        coarsest = states[-1]
        return torch.cat([pool_to_grid(state, coarsest, self.reductions[-1] // self.reductions[i], 'avg')
                          for i, state in enumerate(states)], 1)

    def _clip(self, x: Tensor, lengths: Optional[Tensor]) -> Tuple[Tensor, Optional[Tensor]]:
        if not torch.jit.is_scripting():
            lengths = check_clip(x, lengths, self.in_chans, self.reductions[-1], self.proj[0].weight)
        x = as_clip(x, self.in_chans)
        return x, check_lengths(lengths, x)

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
        """Final states of the selected levels, with or without the final features.

        Args:
            x: Clip (B,T,C,H,W) or image (B,C,H,W).
            indices: Take the last n levels if int, all if None, those listed if a sequence.
            norm: Unused (there is no final norm); kept for the timm API.
            stop_early: Unused: the backbone computes every level in one pass.
            output_fmt: Only 'NCHW'.
            intermediates_only: Return only the intermediates.
            lengths: Optional per-sample clip lengths (B,).
        """
        assert output_fmt == 'NCHW', 'Output format must be NCHW.'
        take_indices, _ = feature_take_indices(len(self.grus), indices)
        x, lengths = self._clip(x, lengths)
        states = self._run_levels(x, lengths)
        intermediates = [state for i, state in enumerate(states) if i in take_indices]
        if intermediates_only:
            return intermediates
        return self._features(states), intermediates

    def prune_intermediate_layers(
            self,
            indices: Union[int, List[int]] = 1,
            prune_norm: bool = False,
            prune_head: bool = True,
    ) -> List[int]:
        """Drop the levels after the last one in ``indices`` (and the head); return the kept indices."""
        take_indices, max_index = feature_take_indices(len(self.grus), indices)
        prune_end = max_index < len(self.grus) - 1
        self.proj, self.grus = self.proj[:max_index + 1], self.grus[:max_index + 1]
        self.reductions = self.reductions[:max_index + 1]
        if prune_end:
            self.num_features = self.width if self.stacked else self.width * (max_index + 1)
            self.head_hidden_size = self.num_features
        if prune_head or prune_end:
            self.reset_classifier(0, '')
        return take_indices

    def forward_features(self, x: Tensor, lengths: Optional[Tensor] = None) -> Tensor:
        """Features (B, num_features, H/r, W/r) of a clip or an image (see the module docstring)."""
        x, lengths = self._clip(x, lengths)
        return self._features(self._run_levels(x, lengths))

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        return self.head(x, pre_logits=True) if pre_logits else self.head(x)

    def forward(self, x: Tensor, lengths: Optional[Tensor] = None) -> Tensor:
        return self.forward_head(self.forward_features(x, lengths))

    @torch.jit.ignore
    def level_sizes(self, height: int, width: int) -> List[Tuple[int, int]]:
        """(H_i, W_i) of every level for (height, width) frames, from the backbone run on the meta device
        (no compute), cached per frame size."""
        key = (height, width)
        if key not in self._level_sizes:
            tensors = {name: torch.empty_like(t, device='meta') for name, t in itertools.chain(
                self.backbone.named_parameters(), self.backbone.named_buffers())}
            frame = torch.empty((1, self.in_chans, height, width), device='meta', dtype=self.proj[0].weight.dtype)
            with torch.no_grad():
                features = torch.func.functional_call(self.backbone, tensors, (frame,))
            self._level_sizes[key] = [(f.shape[-2], f.shape[-1]) for f in features]
        return self._level_sizes[key][:len(self.grus)]

    @torch.jit.ignore
    def state_shapes(self, batch: int, height: int, width: int) -> List[Tuple[int, int, int, int]]:
        """Shapes of the states :meth:`step` carries for (height, width) frames, one per level."""
        return [(batch, self.width, h, w) for h, w in self.level_sizes(height, width)]

    @torch.jit.ignore
    def init_states(self, batch: int, height: int, width: int) -> List[Tensor]:
        """Zero states for :meth:`step` (:mod:`convgru_zoo.online`), on the model's device and dtype."""
        online.frame_size(batch, height, width, min_size=self.reductions[-1])
        dd = get_device_dtype(self.proj[0])
        return [torch.zeros(shape, **dd) for shape in self.state_shapes(batch, height, width)]

    @torch.jit.ignore
    def step(self, frame: Tensor, states: List[Tensor]) -> Tuple[Tensor, List[Tensor]]:
        """Online inference: one (B,C,H,W) frame and the carried states in, (logits so far, new states) out.

        After frames 0..t, the logits equal ``model(clip[:, :t + 1])`` (in eval mode).
        """
        states = online.check_step(frame, states, Tensor, self.in_chans, self.state_shapes,
                                   min_size=self.reductions[-1])
        check_dtype("frame", frame, self.proj[0].weight)
        return self.forward_step(frame, states)

    def forward_step(self, frame: Tensor, states: List[Tensor]) -> Tuple[Tensor, List[Tensor]]:
        """:meth:`step` without the checks: what scripted, compiled and exported step graphs run."""
        features = self.backbone(frame)
        new_states: List[Tensor] = []
        for i, (proj, gru) in enumerate(zip(self.proj, self.grus)):
            level = proj(features[i])
            if self.stacked and i > 0:
                ratio = self.reductions[i] // self.reductions[i - 1]
                level = torch.cat([level, pool_to_grid(new_states[i - 1], level, ratio, 'max')], 1)
            new_states.append(gru.step(level, states[i]))
        return self.forward_head(self._features(new_states)), new_states


def load_image_backbone(model: ConvGRURCN, image_state: Dict[str, Tensor]) -> None:
    """Load the weights of ``model``'s image backbone trained as a whole image model (timm's names, its classifier
    included: a ``convgru-zoo train --task classify_frames`` run) into ``model.backbone``, strictly.

    The image model is built for ``image_state``'s classifier and loaded strictly (a missing or unexpected
    tensor names itself), then timm's own ``features_only`` path maps it onto the model's levels, as
    ``pretrained=True`` does with ImageNet weights; the backbone then loads that state strictly.
    """
    classifier = get_pretrained_cfg(model.backbone_name.split('.')[0]).classifier
    weight = image_state.get(f"{classifier}.weight") if isinstance(classifier, str) else None
    image_model = timm.create_model(model.backbone_name, num_classes=0 if weight is None else weight.shape[0],
                                    in_chans=model.in_chans)
    image_model.load_state_dict(image_state)
    features = timm.create_model(
        model.backbone_name, features_only=True, out_indices=model.out_indices, in_chans=model.in_chans,
        pretrained=True, pretrained_cfg_overlay=dict(state_dict=image_model.state_dict()))
    model.backbone.load_state_dict(features.state_dict())


def checkpoint_filter_fn(state_dict, model: ConvGRURCN):
    """Unwrap a training checkpoint (``state_dict`` / ``model`` keys)."""
    for key in ('state_dict', 'model'):
        if key in state_dict and isinstance(state_dict[key], dict):
            state_dict = state_dict[key]
    return state_dict


def first_conv(backbone: str):
    """The model's name(s) of the backbone's first convolution(s). timm's features_only wrappers of some
    models flatten top-level Sequentials (``stem.0`` becoming ``stem_0``): the name is looked up in the wrapper."""
    names = get_pretrained_cfg(backbone.split('.')[0]).first_conv
    keys = feature_levels(backbone).state_dict()

    def lookup(name):
        top, _, rest = name.partition('.')
        flat = f"{top}_{rest}" if rest else name
        return "backbone." + next((n for n in (name, flat) if f"{n}.weight" in keys), name)
    return lookup(names) if isinstance(names, str) else tuple(lookup(name) for name in names)


def backbone_cfg(backbone: str) -> dict:
    """The image backbone's input config (:data:`BACKBONE_CFG_KEYS`) from timm's registry, and its first conv."""
    feature_levels(backbone)  # a clear error for a name timm does not know or without features_only
    cfg = get_pretrained_cfg(backbone) or get_pretrained_cfg(backbone.split('.')[0])
    if cfg is None:
        raise ValueError(f"backbone must be a timm model with a pretrained config, got {backbone!r}")
    values = {key: getattr(cfg, key) for key in BACKBONE_CFG_KEYS}
    values['first_conv'] = first_conv(backbone)
    return values


def _cfg(spec: specs.RcnSpec, **kwargs):
    cfg = {**backbone_cfg(spec.backbone), **kwargs}
    return {
        'num_classes': specs.NUM_CLASSES, **cfg,
        'pool_size': tuple(s // 32 for s in cfg['input_size'][1:]),
        'classifier': 'head.fc', 'paper_ids': 'arXiv:1511.06432',
        'paper_name': 'Delving Deeper into Convolutional Networks for Learning Video Representations',
    }


def _create_convgru_rcn(variant: str, pretrained: bool = False, **kwargs) -> ConvGRURCN:
    """Build ``variant``. ``pretrained``: the whole model's weights where its pretrained config names some
    (a tag of :data:`specs.PRETRAINED`, sha256-checked, or a user's ``pretrained_cfg_overlay`` file), else the
    image backbone's ImageNet weights through timm. With ``features_only``, ``out_indices`` is timm's: which
    of the model's levels to return; the backbone's levels are the variant's."""
    spec = specs.RCN_MODELS[variant]
    model_args = {k: v for k, v in asdict(spec).items() if k != 'mindcv_backbone'}
    if kwargs.get('features_only'):
        levels = model_args.pop('out_indices')
        model_cls = partial(ConvGRURCN, out_indices=levels)
        num_levels = len(levels) if levels is not None else 3
    else:
        model_cls, num_levels = ConvGRURCN, 0
    model_args.update(kwargs)
    # The model's input config is its image backbone's: a variant's config holds it (a tag's, the frame size it
    # was trained on too); another backbone (the generic model's is an argument) brings its own.
    if model_args['backbone'] != spec.backbone:
        model_args['pretrained_cfg_overlay'] = dict(backbone_cfg(model_args['backbone']),
                                                    **(model_args.get('pretrained_cfg_overlay') or {}))
    cfg = resolve_pretrained_cfg(variant, pretrained_cfg=model_args.get('pretrained_cfg'),
                                 pretrained_cfg_overlay=model_args.get('pretrained_cfg_overlay'))
    whole = bool(pretrained and (cfg.hf_hub_id or cfg.file or cfg.url or cfg.state_dict))
    if whole:
        model_args['pretrained_cfg'] = _verified_pretrained_cfg(variant, model_args)
    elif pretrained:
        model_args.setdefault('pretrained_backbone', True)
    model = build_model_with_cfg(
        model_cls, variant, whole, pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(feature_cls='getter', out_indices=tuple(range(num_levels))), **model_args)
    if not kwargs.get('features_only'):  # the features' grid for the config's input size
        model.pretrained_cfg['pool_size'] = tuple(s // model.reductions[-1] for s in model.pretrained_cfg['input_size'][1:])
    return model


def tagged_cfg(weights: specs.PretrainedWeights) -> dict:
    """A tag's config: its backbone's normalisation (what training normalised by), the frame size it was trained on."""
    return _cfg(specs.RCN_MODELS[weights.arch], hf_hub_id=weights.hf_hub_id, num_classes=weights.num_classes,
                input_size=weights.input_size, license=weights.license, description=weights.description,
                label_names=weights.label_names)


# One config per pretrained tag; a variant without a tag gets a plain one (timm's default tag '').
default_cfgs = generate_default_cfgs({
    **{w.name: tagged_cfg(w) for w in specs.PRETRAINED.values() if w.arch in specs.RCN_MODELS},
    **{name: _cfg(spec) for name, spec in specs.RCN_MODELS.items() if specs.default_weights(name) is None},
})

register_rcn_models(__name__, _create_convgru_rcn, register_model)
