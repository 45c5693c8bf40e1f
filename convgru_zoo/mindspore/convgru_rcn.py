"""GRU-RCN for MindSpore / MindCV: ConvGRUs over a MindCV image network's feature maps, one entry point per
``specs.RCN_MODELS`` variant that MindCV has a backbone for.

The twin of :mod:`convgru_zoo.torch.convgru_rcn` (its docstring has the design): the same specs, the same
parameter names (the image network's layers as MindCV names them, see :mod:`convgru_zoo.convert`), the
same outputs.

    clip (B,T,C,H,W)    a 4-D image (B,C,H,W) is a one-frame clip
    backbone            the image network, once over all B*T frames: its maps at ``out_indices``
    proj i              1x1 Conv2d (with bias) of level i's map to ``width`` channels, on every frame
    grus i              a ConvGRU over level i through time (stacked: level i > 0 also reads level
                        i - 1's state, max-pooled to its grid)
    features            independent levels: every level's final state average-pooled to the coarsest
                        grid, concatenated on channels; stacked: the last level's final state
    head                global average pool -> dropout -> Dense

MindCV's ResNet pools its stem with ``pad_mode="same"`` (no padding before, one after, on even sizes),
timm and torchvision with one pixel on every side: the same weights give other maps. ``stem_pool``
chooses: ``"timm"`` (the default) keeps the model the PyTorch one, so converted timm weights and our
tags give the same outputs in both frameworks; ``"mindcv"`` is the network MindCV's own ImageNet
weights were trained in, which ``pretrained=True`` loads when no tag of ours exists.

Importing this module registers the variants with MindCV (``mindcv.create_model("convgru_rcn_resnet18")``);
loading is strict (``checkpoint_file=``, ``pretrained=``), as in :mod:`convgru_zoo.mindspore.convgru_net`.
"""
import os
from typing import Optional, Sequence

import mindspore as ms
from mindspore import Tensor, nn, ops
from mindcv.data.constants import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from mindcv.models import model_factory
from mindcv.models.helpers import get_checkpoint_download_root
from mindcv.models.registry import register_model
from mindcv.utils.download import DownLoad

from .. import _checks, convert, online, specs
from .. import pretrained as _pretrained
from .._zoo_registration import entry_point
from .conv import Conv2d, TeardownSafeCell, onednn_isa
from .convgru import ConvGRUCell, check_dtype, checked_lengths
from .convgru_net import CellList, ClassifierHead, MindCVDefaultNumClasses
from .weights import assign_strict, load_params, pretrained_params, read_mindspore_checkpoint

__all__ = ["ConvGRURCN", "ImageFeatures", "load_checkpoint", "load_pretrained", "mindcv_image_network"]

STEM_POOLS = ("timm", "mindcv")


class MaxPool2d(TeardownSafeCell, nn.MaxPool2d):
    """``nn.MaxPool2d`` without the interpreter-exit noise."""


def mindcv_image_network(arch: str, in_channels: int = 3, stem_pool: str = "timm", pretrained: bool = False):
    """MindCV's image network ``arch`` with its stem pooled as ``stem_pool`` says (module docstring).

    ``pretrained`` loads MindCV's ImageNet checkpoint through MindCV's own path (its URL, downloader and
    cache folder, ``get_checkpoint_download_root()``), strictly: every parameter of the network but the
    classifier must be in it.
    """
    if stem_pool not in STEM_POOLS:
        raise ValueError(f"stem_pool must be one of {STEM_POOLS}, got {stem_pool!r}")
    if not model_factory.is_model(arch):
        raise ValueError(f"arch must be a MindCV model name, got {arch!r}")
    if ms.get_context("device_target") == "CPU":
        onednn_isa()  # MindCV's own convolutions run MindSpore's oneDNN too: cap it before their first kernel
    net = model_factory.create_model(arch, in_channels=in_channels)
    if not hasattr(net, "feature_info"):
        raise ValueError(f"MindCV's {arch} has no feature_info: it cannot give feature maps (features_only)")
    if stem_pool == "timm":
        if not isinstance(getattr(net, "max_pool", None), nn.MaxPool2d):
            raise ValueError(f"stem_pool='timm' applies to MindCV's ResNets, not to {arch}")
        net.max_pool = MaxPool2d(kernel_size=3, stride=2, pad_mode="pad", padding=1)
    if pretrained:
        load_mindcv_imagenet_weights(net, arch)
    return net


def load_mindcv_imagenet_weights(net, arch: str) -> str:
    """Load MindCV's ImageNet checkpoint of ``arch`` into ``net`` strictly; return the file.

    The file comes from ``default_cfg["url"]`` through MindCV's downloader, which reuses a file already
    in its cache folder (so a file put there works offline). The classifier is left out (the caller's
    head replaces it); a first convolution for one input channel gets the summed RGB weights, as MindCV does.
    """
    cfg = model_factory.model_entrypoint(arch).__globals__["default_cfgs"][arch]
    if not cfg.get("url"):
        raise _pretrained.PretrainedWeightsError(f"MindCV has no ImageNet checkpoint for {arch}")
    folder = get_checkpoint_download_root()
    DownLoad().download_url(cfg["url"], path=folder)
    path = os.path.join(folder, os.path.basename(cfg["url"]))
    params = read_mindspore_checkpoint(path)
    classifier = cfg["classifier"] + "."
    params = {name: value for name, value in params.items() if not name.startswith(classifier)}
    first_conv = cfg["first_conv"] + ".weight"
    own = {p.name: p for p in net.get_parameters() if not p.name.startswith(classifier)}
    if first_conv in params and first_conv in own and own[first_conv].shape[1] == 1:
        params[first_conv] = params[first_conv].sum(axis=1, keepdims=True)
    try:
        assign_strict(own, params, f"MindCV's {arch} ImageNet checkpoint ({path})", arch)
    except ValueError as e:
        raise _pretrained.PretrainedWeightsError(str(e)) from e
    return path


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
