"""Weights between PyTorch state dicts and MindSpore parameter dicts, both ways, for any convgru_zoo model.

Convolution (and linear) weights and biases keep their names and layout. Normalisation layers are
renamed: BatchNorm ``weight/bias/running_mean/running_var`` <-> ``gamma/beta/moving_mean/moving_variance``
(``num_batches_tracked`` exists only in PyTorch: dropped one way, set to 0 the other), and any layer
listed in ``norm_prefixes`` (LayerNorm, GroupNorm) ``weight/bias`` <-> ``gamma/beta``. BatchNorm
layers are found by their running statistics, so only other norm layers need listing.

Framework-free: values may be torch tensors, MindSpore tensors/parameters or numpy arrays;
:func:`torch_to_mindspore` and :func:`mindspore_to_torch_arrays` return ``{name: np.ndarray}``, which
either framework (or none) can use; :func:`mindspore_to_torch` returns torch tensors, ready for
``load_state_dict``. Frameworks are imported only where a function needs one.
"""
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from . import specs
from ._files import atomic_write

_TORCH_TO_MS = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}
_MS_TO_TORCH = {ms_name: torch_name for torch_name, ms_name in _TORCH_TO_MS.items()}

# Layer names that differ between timm's and MindCV's version of an image network (timm -> MindCV), by
# MindCV architecture; every other name is the same in both.
_RESNET_LAYERS = {"downsample": "down_sample", "fc": "classifier"}
IMAGE_NETWORK_LAYERS = {arch: _RESNET_LAYERS for arch in ("resnet18", "resnet34", "resnet50", "resnet101",
                                                         "resnet152")}


def model_image_networks(arch: str) -> dict:
    """``image_networks`` of the zoo model ``arch``: ``{"backbone": its MindCV network}`` for a GRU-RCN over
    one (``specs.RCN_MODELS``), else empty (nothing to rename)."""
    spec = specs.RCN_MODELS.get(arch)
    return {"backbone": spec.mindcv_backbone} if spec is not None and spec.mindcv_backbone else {}


def to_numpy(value) -> np.ndarray:
    """A numpy copy of a torch tensor, MindSpore tensor/parameter or array-like."""
    if hasattr(value, "asnumpy"):  # mindspore.Tensor / Parameter
        return value.asnumpy().copy()
    if hasattr(value, "detach"):  # torch.Tensor; numpy has no bfloat16: widen it (exactly) to float32
        value = value.detach().cpu()
        return (value.float() if str(value.dtype) == "torch.bfloat16" else value).numpy().copy()
    return np.array(value)


def _split(name):
    prefix, _, leaf = name.rpartition(".")
    return prefix, leaf


def _norm_layers(names, stats_leaf, norm_prefixes):
    """Prefixes of norm layers: those holding ``stats_leaf`` plus the listed ``norm_prefixes``."""
    found = {_split(n)[0] for n in names if _split(n)[1] == stats_leaf}
    return found | set(norm_prefixes or ())


def _arrays(argument, named_values) -> dict:
    """``{name: array}`` of a mapping from str names to tensors or numeric arrays, checked before any
    renaming; the error names ``argument``, what it expected and what came."""
    if not isinstance(named_values, Mapping):
        raise TypeError(f"{argument} must be a mapping of parameter names to tensors or arrays, "
                        f"got {type(named_values).__name__}")
    keys = [name for name in named_values if not isinstance(name, str)]
    if keys:
        raise TypeError(f"{argument} must have str parameter names as keys, got {keys[:5]!r}")
    meta = [name for name, value in named_values.items() if getattr(value, "is_meta", False)]
    if meta:
        raise ValueError(f"{argument} must hold values, got tensors on the meta device: {meta[:5]}")
    arrays = {name: to_numpy(value) for name, value in named_values.items()}
    odd = {name: type(named_values[name]).__name__ for name, array in arrays.items() if array.dtype.kind not in "biuf"}
    if odd:
        raise TypeError(f"{argument} must map names to tensors or numeric arrays, got {odd}")
    return arrays


def _checked_image_networks(image_networks) -> dict:
    """``image_networks`` ({prefix: MindCV architecture}, or None) checked against :data:`IMAGE_NETWORK_LAYERS`."""
    if image_networks is None:
        return {}
    if not isinstance(image_networks, Mapping):
        raise TypeError(f"image_networks must be a mapping of name prefixes to MindCV architectures, "
                        f"got {type(image_networks).__name__}")
    unknown = {prefix: arch for prefix, arch in image_networks.items()
               if not isinstance(prefix, str) or arch not in IMAGE_NETWORK_LAYERS}
    if unknown:
        raise ValueError(f"image_networks must map str prefixes to one of {sorted(IMAGE_NETWORK_LAYERS)}, "
                         f"got {unknown}")
    return dict(image_networks)


def _rename_image_layers(prefix, image_networks, to_mindcv):
    """``prefix`` (a layer's dotted path) with the layers below an ``image_networks`` prefix renamed
    timm -> MindCV (``to_mindcv``) or back."""
    parts = prefix.split(".") if prefix else []
    for root, arch in image_networks.items():
        root_parts = root.split(".") if root else []
        if parts[:len(root_parts)] != root_parts:
            continue
        renames = IMAGE_NETWORK_LAYERS[arch]
        if not to_mindcv:
            renames = {mindcv_name: timm_name for timm_name, mindcv_name in renames.items()}
        return ".".join(root_parts + [renames.get(part, part) for part in parts[len(root_parts):]])
    return prefix


def torch_to_mindspore(state_dict, norm_prefixes=None, image_networks=None) -> dict:
    """A PyTorch state dict as MindSpore parameter names -> arrays (see the module docstring)."""
    arrays = _arrays("state_dict", state_dict)
    image_networks = _checked_image_networks(image_networks)
    norms = _norm_layers(arrays, "running_mean", norm_prefixes)
    params = {}
    for name, value in arrays.items():
        prefix, leaf = _split(name)
        if prefix in norms:
            if leaf == "num_batches_tracked":
                continue
            leaf = _TORCH_TO_MS.get(leaf, leaf)
        prefix = _rename_image_layers(prefix, image_networks, to_mindcv=True)
        params[f"{prefix}.{leaf}" if prefix else leaf] = value
    return params


def mindspore_to_torch_arrays(params, norm_prefixes=None, image_networks=None) -> dict:
    """MindSpore parameters (name -> value, or a Cell) as PyTorch names -> numpy arrays (no torch needed).

    BatchNorm layers get ``num_batches_tracked = 0`` (int64), which ``load_state_dict`` requires.
    """
    if hasattr(params, "parameters_and_names"):  # a mindspore Cell
        params = {p.name: p for p in params.get_parameters()}
    arrays = _arrays("params", params)
    image_networks = _checked_image_networks(image_networks)
    norms = _norm_layers(arrays, "moving_mean", norm_prefixes)
    state = {}
    for name, value in arrays.items():
        prefix, leaf = _split(name)
        is_norm = prefix in norms
        if is_norm:
            leaf = _MS_TO_TORCH.get(leaf, leaf)
        prefix = _rename_image_layers(prefix, image_networks, to_mindcv=False)
        state[f"{prefix}.{leaf}" if prefix else leaf] = value
        if is_norm and leaf == "running_mean":
            state[f"{prefix}.num_batches_tracked"] = np.array(0, dtype=np.int64)
    return state


def mindspore_to_torch(params, norm_prefixes=None, image_networks=None) -> dict:
    """MindSpore parameters (name -> value, or a Cell) as a PyTorch state dict of torch tensors, which
    ``load_state_dict`` takes; needs torch (:func:`mindspore_to_torch_arrays` does not)."""
    try:
        import torch
    except ImportError as err:
        raise ImportError(f"mindspore_to_torch returns torch tensors and needs torch ({err}); "
                          "mindspore_to_torch_arrays returns numpy arrays without it") from None
    arrays = mindspore_to_torch_arrays(params, norm_prefixes, image_networks)
    return {name: torch.from_numpy(value) for name, value in arrays.items()}


def save_mindspore_checkpoint(params, path) -> Path:
    """Write MindSpore parameters (name -> value, or a Cell) to ``path`` atomically.

    The format follows the suffix (``.ckpt`` or ``.safetensors``). The file is written next to
    ``path`` under a temporary name and moved into place, so no half-written file is ever left.
    """
    import mindspore as ms

    path = Path(path)
    formats = {".ckpt": "ckpt", ".safetensors": "safetensors"}
    if path.suffix not in formats:
        raise ValueError(f"path must end in .ckpt or .safetensors, got {str(path)!r}")
    if hasattr(params, "parameters_and_names"):
        params = {p.name: p for p in params.get_parameters()}
    entries = [{"name": name, "data": ms.Tensor(to_numpy(value))} for name, value in params.items()]
    atomic_write(path, lambda tmp: ms.save_checkpoint(entries, tmp, format=formats[path.suffix]))
    return path
