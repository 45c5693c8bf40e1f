"""ConvGRU forecasters by name, for either framework: ``create_forecaster("convgru_forecaster")``.

Framework-free: the PyTorch or MindSpore module is imported only when a model of that framework
is asked for. The argument checks both frameworks' forecasters share live here too, so they
accept and reject exactly the same configurations and clips.
"""
from dataclasses import asdict
from importlib import import_module

from . import _checks, specs
from .pretrained import PretrainedWeightsError
from .specs import FORECASTERS

# The forecast head, the same in both frameworks (why it reads the frame too: convgru_zoo.torch.forecaster).
HEAD_KERNEL = 3      # the head's reach at folded resolution: +-1 patch, i.e. +-patch_size pixels
HEAD_PRIOR = 0.05    # initial prediction of every pixel (about the mean of a Moving MNIST frame)

MODULES = {"torch": "convgru_zoo.torch.forecaster", "mindspore": "convgru_zoo.mindspore.forecaster"}


def list_forecasters():
    """Names accepted by :func:`create_forecaster`, sorted."""
    return sorted(FORECASTERS)


def create_forecaster(name="convgru_forecaster", framework="torch", pretrained=False, **kwargs):
    """Build the forecaster ``name`` (a key of ``specs.FORECASTERS``) for ``framework``.

    ``kwargs`` override the variant's spec (e.g. ``output_frames=20``) or pass ``device``/``dtype``
    (PyTorch); ``pretrained=True`` (the variant's first tag) or a tag such as ``"mmnist"`` loads
    published weights, sha256-checked (:func:`pretrained_weights_name`).
    """
    if name not in FORECASTERS:
        raise ValueError(f"name must be one of {list_forecasters()}, got {name!r}")
    if framework not in MODULES:
        raise ValueError(f"framework must be one of {specs.FRAMEWORKS}, got {framework!r}")
    try:
        module = import_module(MODULES[framework])
    except ImportError as error:
        raise ImportError(f"framework={framework!r} needs {framework} installed "
                          f"(pip install 'convgru-zoo[{framework}]'): {error}") from error
    weights_name = pretrained_weights_name(name, pretrained) if pretrained else None
    model = module.ConvGRUForecaster(**{**asdict(FORECASTERS[name]), **kwargs})
    if weights_name:
        module.load_pretrained(model, weights_name)
    return model


def pretrained_weights_name(name, pretrained):
    """``"<name>.<tag>"`` of the weights ``pretrained`` selects: True (the first tag of ``name`` in
    ``specs.PRETRAINED``) or a tag. Raises :class:`PretrainedWeightsError` when there is none."""
    tags = [w.tag for w in specs.PRETRAINED.values() if w.arch == name]
    if pretrained is True:
        if not tags:
            raise PretrainedWeightsError(f"{name} has no pretrained weights yet (no tag for it in "
                                         "convgru_zoo.specs.PRETRAINED); use pretrained=False")
        return f"{name}.{tags[0]}"
    if not isinstance(pretrained, str) or pretrained not in tags:
        raise PretrainedWeightsError(f"pretrained must be True, False or one of the tags of {name} {tags}, "
                                     f"got {pretrained!r}")
    return f"{name}.{pretrained}"


def check_config(in_chans, patch_size, hidden_sizes, kernel_size, input_frames, output_frames):
    """Validate a forecaster's constructor arguments; return hidden_sizes as a list."""
    _checks.positive_int("in_chans", in_chans)
    _checks.positive_int("patch_size", patch_size)
    _checks.positive_int("input_frames", input_frames)
    _checks.positive_int("output_frames", output_frames)
    if not _checks.is_sequence(hidden_sizes) or not hidden_sizes:
        raise ValueError(f"hidden_sizes must be a non-empty sequence of ints (one per ConvGRU layer), "
                         f"got {hidden_sizes!r}")
    hidden_sizes = [_checks.positive_int(f"hidden_sizes[{i}]", h) for i, h in enumerate(hidden_sizes)]
    _checks.per_layer("kernel_size", kernel_size, len(hidden_sizes), _checks.odd_kernel)
    return hidden_sizes


def check_clip(shape, in_chans, patch_size, input_frames, output_frames):
    """Check a context clip's (B,T,C,H,W) shape and the number of frames to forecast.

    Returns ``output_frames`` (a positive int). Raises before any computation.
    """
    shape = tuple(shape)
    if len(shape) != 5:
        raise ValueError(f"clip must be 5-D (B, T, C, H, W), got a {len(shape)}-D shape {shape}")
    batch, frames, channels, height, width = shape
    if frames != input_frames:
        raise ValueError(f"clip must hold input_frames={input_frames} frames (dim 1), got {frames} "
                         f"in shape {shape}")
    if channels != in_chans:
        raise ValueError(f"clip must have in_chans={in_chans} channels (dim 2), got {channels} in shape {shape}")
    if batch == 0 or height == 0 or width == 0:
        raise ValueError(f"clip must not have an empty dimension, got shape {shape}")
    if height % patch_size or width % patch_size:
        raise ValueError(f"clip height and width must be divisible by patch_size={patch_size}, "
                         f"got {height}x{width} in shape {shape}")
    return _checks.positive_int("output_frames", output_frames)
