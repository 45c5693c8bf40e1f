"""torch.hub entry points of convgru-zoo.

    model = torch.hub.load("<owner>/convgru-zoo", "convgru_small", pretrained=True)
    model = torch.hub.load("/path/to/checkout", "convgru_tiny", source="local", num_classes=10)

Each entry point builds the timm model of the same name, so pretrained weights go through the
same sha256-checked resolution as ``timm.create_model(name, pretrained=True)``.
"""
dependencies = ["torch", "timm", "safetensors", "huggingface_hub"]


def _create(name, pretrained, kwargs):
    import timm

    import convgru_zoo  # noqa: F401  registers the convgru_* models with timm

    return timm.create_model(name, pretrained=pretrained, **kwargs)


def convgru_tiny(pretrained=False, **kwargs):
    """ConvGRU-Tiny video backbone: three ConvGRU stages (32, 64, 128 channels, one layer each).

    Input: a clip (B, T, 1, 64, 64) or an image (B, 1, 64, 64); output: (B, num_classes) logits.

    Args:
        pretrained: Load the Moving MNIST motion weights (40 classes), checked by sha256.
        **kwargs: Model arguments, e.g. num_classes, in_chans, drop_rate, global_pool,
            features_only, out_indices (see ``timm.create_model``).
    """
    return _create("convgru_tiny", pretrained, kwargs)


def convgru_small(pretrained=False, **kwargs):
    """ConvGRU-Small video backbone: three ConvGRU stages (48, 96, 192 channels; 1, 1, 2 layers).

    Input: a clip (B, T, 1, 64, 64) or an image (B, 1, 64, 64); output: (B, num_classes) logits.

    Args:
        pretrained: Load the Moving MNIST motion weights (40 classes), checked by sha256.
        **kwargs: Model arguments, e.g. num_classes, in_chans, drop_rate, global_pool,
            features_only, out_indices (see ``timm.create_model``).
    """
    return _create("convgru_small", pretrained, kwargs)


def convgru_base(pretrained=False, **kwargs):
    """ConvGRU-Base video backbone: three ConvGRU stages (64, 128, 256 channels; 1, 2, 2 layers).

    Input: a clip (B, T, 1, 64, 64) or an image (B, 1, 64, 64); output: (B, num_classes) logits.

    Args:
        pretrained: Load the Moving MNIST motion weights (40 classes), checked by sha256.
        **kwargs: Model arguments, e.g. num_classes, in_chans, drop_rate, global_pool,
            features_only, out_indices (see ``timm.create_model``).
    """
    return _create("convgru_base", pretrained, kwargs)


def convgru_forecaster(pretrained=False, **kwargs):
    """ConvGRU encoder-forecaster for Moving MNIST: 10 frames in, 10 predicted, closed loop.

    Input: a clip (B, 10, 1, 64, 64) in [0, 1]; output: (B, 10, 1, 64, 64) frames in [0, 1]
    (``model(clip, output_frames=n)`` forecasts another horizon).

    Args:
        pretrained: True (or a tag name) loads published weights, checked by sha256.
        **kwargs: Model arguments: in_chans, patch_size, hidden_sizes, kernel_size, input_frames,
            output_frames, device, dtype.
    """
    from convgru_zoo import create_forecaster

    return create_forecaster("convgru_forecaster", "torch", pretrained, **kwargs)


def convgru_forecaster_tiny(pretrained=False, **kwargs):
    """Small ConvGRU encoder-forecaster (2 ConvGRU layers x 32) for CPU demos; same API as convgru_forecaster."""
    from convgru_zoo import create_forecaster

    return create_forecaster("convgru_forecaster_tiny", "torch", pretrained, **kwargs)
