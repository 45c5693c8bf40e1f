"""torch.hub entry points of convgru-zoo: one per backbone and forecaster in ``convgru_zoo.specs``.

    model = torch.hub.load("convgru-zoo/convgru-zoo", "convgru_small", pretrained=True)   # specs.GITHUB_REPO
    model = torch.hub.load("/path/to/checkout", "convgru_tiny", source="local", num_classes=10)

Each entry point is ``convgru_zoo.create_model(name, "torch", pretrained, **kwargs)``: a backbone is the timm
model of the same name, so pretrained weights go through the same sha256-checked resolution as
``timm.create_model(name, pretrained=True)``. ``torch.hub.help(repo, name)`` states its input and arguments.
"""
from convgru_zoo import models as _models

dependencies = ["torch", "timm", "safetensors", "huggingface_hub"]

globals().update({name: _models.hub_entry_point(name, __name__) for name in _models.list_models()})
