"""Register the convgru_* backbones with timm and MindCV as soon as those libraries are imported.

``import convgru_zoo`` must make ``timm.create_model("convgru_small")`` and
``mindcv.create_model("convgru_small")`` work, without importing two deep-learning frameworks
up front (seconds, and gigabytes for a user of one). A library already imported gets the models
at once; one imported later gets them right after its own import finishes, via a meta-path hook.
"""
import importlib
import importlib.abc
import sys

MODEL_FILES = {
    "timm": "convgru_zoo.torch.convgru_net",
    "mindcv": "convgru_zoo.mindspore.convgru_net",
}


class _RegisterOnImport(importlib.abc.MetaPathFinder):
    """Lets the other finders locate timm / mindcv, then registers our models after it executes."""

    def find_spec(self, fullname, path, target=None):
        if fullname not in MODEL_FILES:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                break
        else:
            return None
        exec_library = spec.loader.exec_module

        def exec_then_register(module):
            exec_library(module)
            importlib.import_module(MODEL_FILES[fullname])

        spec.loader.exec_module = exec_then_register
        return spec


def install():
    """Register with the libraries imported so far; hook the import of the others."""
    for library, model_file in MODEL_FILES.items():
        if library in sys.modules:
            importlib.import_module(model_file)
    if not any(isinstance(finder, _RegisterOnImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _RegisterOnImport())
