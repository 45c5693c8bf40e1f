"""Register the convgru_* backbones with timm and MindCV as soon as those libraries are imported.

``import convgru_zoo`` must make ``timm.create_model("convgru_small")`` and
``mindcv.create_model("convgru_small")`` work, without importing two deep-learning frameworks
up front (seconds, and gigabytes for a user of one). A library already imported gets the models
at once; one imported later gets them right after its own import finishes, via a meta-path hook.

The entry points themselves are generated from :data:`convgru_zoo.specs.BACKBONES`
(:func:`register_backbones`), so a new size is one spec entry.

A model file may be what imports its library first (``import convgru_zoo.mindspore.convgru_net``, as
``create_model("convgru_tiny", "mindspore")`` does in a fresh process): the library's other model files
import names from it, so they wait until it has finished, then are imported.
"""
import importlib
import importlib.abc
import sys

from . import specs

MODEL_FILES = {  # library -> the modules that register models with it, each needing those before it
    "timm": ("convgru_zoo.torch.convgru_net", "convgru_zoo.torch.convgru_rcn"),
    "mindcv": ("convgru_zoo.mindspore.convgru_net", "convgru_zoo.mindspore.convgru_rcn"),
}
_executing = set()  # model files whose module code is running
_waiting = set()    # libraries whose model files wait for one of _executing to finish


def _import_model_files(library, finished=None):
    """Import ``library``'s model files in order, up to one still executing (``finished`` just has)."""
    for model_file in MODEL_FILES[library]:
        if model_file in _executing and model_file != finished:
            _waiting.add(library)
            return
        importlib.import_module(model_file)
    _waiting.discard(library)


class _RegisterOnImport(importlib.abc.MetaPathFinder):
    """Lets the other finders locate timm / mindcv, then registers our models after it executes; tracks our
    model files' execution, so those that wait for one are imported when it finishes."""

    def find_spec(self, fullname, path, target=None):
        if fullname not in MODEL_FILES and not any(fullname in files for files in MODEL_FILES.values()):
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                break
        else:
            return None
        exec_module = spec.loader.exec_module

        def exec_then_register(module):
            exec_module(module)
            _import_model_files(fullname)

        def exec_model_file(module):
            _executing.add(fullname)
            try:
                exec_module(module)
            finally:
                _executing.discard(fullname)
            for library in sorted(_waiting):
                if fullname in MODEL_FILES[library]:
                    _import_model_files(library, finished=fullname)

        spec.loader.exec_module = exec_then_register if fullname in MODEL_FILES else exec_model_file
        return spec


def install():
    """Register with the libraries imported so far; hook the import of the others."""
    for library in MODEL_FILES:
        if library in sys.modules:
            _import_model_files(library)
    if not any(isinstance(finder, _RegisterOnImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _RegisterOnImport())


def entry_point(name, create, module, doc):
    """``name(pretrained=False, **kwargs)``, calling ``create(name, pretrained=pretrained, **kwargs)``.

    It is named and placed in ``module`` as a hand-written function would be: timm and MindCV register a
    model under its function's ``__name__`` and read ``default_cfgs`` from the module ``__module__`` names.
    """
    def model(pretrained=False, **kwargs):
        return create(name, pretrained=pretrained, **kwargs)

    model.__name__ = model.__qualname__ = name
    model.__module__, model.__doc__ = module, doc
    return model


def register_backbones(module, create, register):
    """Define in ``module`` (a module being imported) one entry point per :data:`specs.BACKBONES` variant,
    each passed through ``register`` (timm's or MindCV's ``register_model``)."""
    namespace = sys.modules[module]
    for name, spec in specs.BACKBONES.items():
        setattr(namespace, name, register(entry_point(name, create, module, f"{name}: {spec.summary()}.")))


def register_rcn_models(module, create, register, names=None):
    """Define in ``module`` one entry point per :data:`specs.RCN_MODELS` variant (the GRU-RCN models over
    image backbones; those in ``names`` if given), each passed through ``register``."""
    namespace = sys.modules[module]
    for name, spec in specs.RCN_MODELS.items():
        if names is not None and name not in names:
            continue
        setattr(namespace, name, register(entry_point(name, create, module, f"{name}: {spec.summary()}.")))
