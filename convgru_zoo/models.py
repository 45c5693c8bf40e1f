"""Every model of the zoo by name, in either framework: ``create_model("convgru_small", "mindspore")``.

The names are the keys of :data:`convgru_zoo.specs.BACKBONES` (video classifiers, in timm and MindCV),
:data:`convgru_zoo.specs.RCN_MODELS` (GRU-RCN video classifiers over pretrained image backbones; in
MindSpore those whose backbone MindCV has) and
:data:`convgru_zoo.specs.FORECASTERS` (frame forecasters). Nothing here imports a framework until
a model of that framework is asked for. ``pretrained`` is True (the first tag of the model in
:data:`convgru_zoo.specs.PRETRAINED`) or a tag such as ``"mmnist"``; weights are sha256-checked
(:mod:`convgru_zoo.pretrained`).
"""
from dataclasses import asdict
from importlib import import_module

from . import specs
from ._zoo_registration import entry_point
from .pretrained import weights_name

FRAMES_TASK = "classify_frames"  # one class per single frame: an image backbone of a GRU-RCN, trained on frames
TASKS = ("forecast", "classify", FRAMES_TASK)
BACKBONE_MODULES = {"torch": "convgru_zoo.torch.convgru_net", "mindspore": "convgru_zoo.mindspore.convgru_net"}
RCN_MODULES = {"torch": "convgru_zoo.torch.convgru_rcn", "mindspore": "convgru_zoo.mindspore.convgru_rcn"}
FORECASTER_MODULES = {"torch": "convgru_zoo.torch.forecaster", "mindspore": "convgru_zoo.mindspore.forecaster"}


def list_models(task=None):
    """Names :func:`create_model` accepts: the video classifiers (``task="classify"``: the backbones, then
    the GRU-RCN models), the forecasters (``task="forecast"``) or every video model (None); each group sorted.
    ``task="classify_frames"``: the image backbones of the GRU-RCN models (timm names)."""
    if task not in (None, *TASKS):
        raise ValueError(f"task must be one of {TASKS} or None, got {task!r}")
    if task == FRAMES_TASK:
        return list_image_backbones()
    return ((sorted(specs.BACKBONES) + sorted(specs.RCN_MODELS) if task != "forecast" else [])
            + (list_forecasters() if task != "classify" else []))


def list_image_backbones():
    """The image backbones of :data:`convgru_zoo.specs.RCN_MODELS` (timm names), sorted: what ``--task
    classify_frames`` trains on single frames to start a GRU-RCN from."""
    return sorted({spec.backbone for spec in specs.RCN_MODELS.values()})


def list_forecasters():
    """Names accepted by :func:`create_forecaster`, sorted."""
    return sorted(specs.FORECASTERS)


def _framework_module(modules, framework):
    if framework not in modules:
        raise ValueError(f"framework must be one of {specs.FRAMEWORKS}, got {framework!r}")
    try:
        return import_module(modules[framework])
    except ImportError as error:
        raise ImportError(f"framework={framework!r} needs {framework} installed "
                          f"(pip install 'convgru-zoo[{framework}]'): {error}") from error


def create_model(name, framework="torch", pretrained=False, **kwargs):
    """The video model ``name`` (:func:`list_models`) for ``framework`` ("torch" or "mindspore"), or an image
    backbone of :func:`list_image_backbones` (PyTorch), in training mode.

    ``kwargs`` are the model's arguments: a backbone's as timm's ``create_model`` (PyTorch) or MindCV's
    entry points (MindSpore: ``in_channels`` for ``in_chans``) take them, a forecaster's as
    :func:`create_forecaster` does.
    """
    if name in specs.FORECASTERS:
        return create_forecaster(name, framework, pretrained, **kwargs)
    if name in specs.RCN_MODELS:
        return _create_rcn(name, framework, pretrained, **kwargs)
    if name in list_image_backbones():
        return _create_image_backbone(name, framework, pretrained, **kwargs)
    if name not in specs.BACKBONES:
        raise ValueError(f"model must be one of {list_models()} or an image backbone {list_image_backbones()}, "
                         f"got {name!r}")
    module = _framework_module(BACKBONE_MODULES, framework)
    tagged = weights_name(name, pretrained) if pretrained else None
    if framework == "torch":
        import timm  # importing the module above registered the backbones

        return timm.create_model(tagged or name, pretrained=bool(tagged), **kwargs)
    model = getattr(module, name)(**kwargs)
    if tagged:
        module.load_pretrained(model, tagged)
    return model


def _create_rcn(name, framework, pretrained, **kwargs):
    """A GRU-RCN model: ``pretrained=True`` loads its image backbone's ImageNet weights through the framework's
    library (and the whole model's where a tag exists); a tag name loads that tag."""
    module = _framework_module(RCN_MODULES, framework)
    if isinstance(pretrained, str):
        pretrained = weights_name(name, pretrained)
    if framework == "torch":
        import timm  # importing the module above registered the models

        if isinstance(pretrained, str):
            return timm.create_model(pretrained, pretrained=True, **kwargs)
        return timm.create_model(name, pretrained=pretrained, **kwargs)
    if not specs.RCN_MODELS[name].mindcv_backbone:
        raise ValueError(f"model {name!r} has no MindSpore version (MindCV has no {specs.RCN_MODELS[name].backbone}); "
                         f"MindSpore has {sorted(n for n, s in specs.RCN_MODELS.items() if s.mindcv_backbone)}")
    model = getattr(module, name)(pretrained=pretrained is True, **kwargs)
    if isinstance(pretrained, str):
        module.load_pretrained(model, pretrained)
    return model


def _create_image_backbone(name, framework, pretrained, **kwargs):
    """timm's own image model ``name`` (a GRU-RCN's backbone), for training on single frames: PyTorch only."""
    if framework != "torch":
        raise ValueError(f"the image backbone {name!r} is timm's model: framework must be 'torch', got {framework!r}")
    if pretrained:
        raise ValueError(f"the image backbone {name!r} is built here untrained (its frame training is ours); for its "
                         f"ImageNet weights use timm.create_model({name!r}, pretrained=True), got pretrained={pretrained!r}")
    _framework_module(RCN_MODULES, framework)
    import timm

    return timm.create_model(name, **kwargs)


def create_forecaster(name="convgru_forecaster", framework="torch", pretrained=False, **kwargs):
    """Build the forecaster ``name`` (a key of ``specs.FORECASTERS``) for ``framework``.

    ``kwargs`` override the variant's spec (e.g. ``output_frames=20``) or pass ``device``/``dtype``
    (PyTorch); ``pretrained=True`` (the variant's first tag) or a tag such as ``"mmnist"`` loads
    published weights, sha256-checked.
    """
    if name not in specs.FORECASTERS:
        raise ValueError(f"name must be one of {list_forecasters()}, got {name!r}")
    module = _framework_module(FORECASTER_MODULES, framework)
    tagged = weights_name(name, pretrained) if pretrained else None
    model = module.ConvGRUForecaster(**{**asdict(specs.FORECASTERS[name]), **kwargs})
    if tagged:
        module.load_pretrained(model, tagged)
    return model


def inference_model(name, framework="torch", pretrained=False, **kwargs):
    """:func:`create_model` in eval mode: what export, streaming and benchmarks run."""
    model = create_model(name, framework, pretrained, **kwargs)
    if framework == "torch":
        return model.eval()
    model.set_train(False)
    return model


def hub_doc(name):
    """The torch.hub docstring of ``name``, from its spec: architecture, real input and output, arguments."""
    tag = specs.default_weights(name)
    pretrained = (f"True loads {tag.name} ({tag.description}); a tag name loads that tag; sha256-checked."
                  if tag else "no tag is published for it yet: False.")
    if name in specs.FORECASTERS:
        spec = specs.FORECASTERS[name]
        side = f"H and W multiples of {spec.patch_size}"
        return (f"ConvGRU encoder-forecaster {name}: {spec.summary()}, closed loop.\n\n"
                f"Input: a clip (B, {spec.input_frames}, {spec.in_chans}, H, W) in [0, 1], {side}; output: "
                f"(B, {spec.output_frames}, {spec.in_chans}, H, W) frames in [0, 1] (``model(clip, "
                f"output_frames=n)`` forecasts another horizon).\n\n"
                f"Args:\n    pretrained: {pretrained}\n    **kwargs: Model arguments: "
                f"{', '.join(specs.ForecasterSpec.__dataclass_fields__)}, device, dtype.\n")
    if name in specs.RCN_MODELS:
        spec = specs.RCN_MODELS[name]
        tagged = f"; a tag name loads that tag ({tag.name} for True)" if tag else ""
        return (f"GRU-RCN video classifier {name}: {spec.summary()}.\n\n"
                f"Input: a clip (B, T, 3, H, W) normalised as the image backbone was (its pretrained_cfg), or an image "
                f"(B, 3, H, W) as a one-frame clip; output: (B, num_classes) logits ({specs.NUM_CLASSES} by default).\n\n"
                f"Args:\n    pretrained: True loads the image backbone's ImageNet weights through timm{tagged}.\n"
                f"    **kwargs: Model arguments, e.g. num_classes, backbone (convgru_rcn), out_indices, width, "
                f"stacked, freeze_backbone, drop_rate (see convgru_zoo.torch.convgru_rcn.ConvGRURCN).\n")
    spec, channels = specs.BACKBONES[name], specs.INPUT_SIZE[0]
    return (f"ConvGRU video backbone {name}: {spec.summary()}.\n\n"
            f"Input: a clip of {channels}-channel frames (B, T, {channels}, H, W), or an image (B, {channels}, H, W) "
            f"as a one-frame clip, H and W multiples of {spec.reduction}; output: (B, num_classes) logits "
            f"({specs.NUM_CLASSES} by default).\n\n"
            f"Args:\n    pretrained: {pretrained}\n    **kwargs: Model arguments, e.g. num_classes, in_chans, "
            f"drop_rate, global_pool, features_only, out_indices (see ``timm.create_model``).\n")


def hub_entry_point(name, module):
    """The torch.hub entry point ``name(pretrained=False, **kwargs)`` of a PyTorch model, for ``hubconf.py``."""
    def create(name, pretrained=False, **kwargs):
        return create_model(name, "torch", pretrained, **kwargs)

    return entry_point(name, create, module, hub_doc(name))
