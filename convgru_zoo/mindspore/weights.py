"""Weights into MindSpore models: the one strict loader, MindSpore checkpoint files, published weights.

Unlike MindSpore's ``load_param_into_net`` (and MindCV's loading), every load here is strict: the
weights must name exactly the model's parameters with their shapes, and nothing is set unless all
of them fit. Values may be arrays, MindSpore tensors/Parameters or torch tensors; they are cast to
each parameter's dtype.
"""
import os

import mindspore as ms

from .. import convert
from .. import pretrained as _pretrained


def assign_strict(targets, params, source, what) -> None:
    """Set each Parameter in ``targets`` (name -> Parameter) from ``params`` (name -> value).

    Any missing, unexpected or misshapen name raises one ValueError naming ``source`` (the weights)
    and ``what`` (the model) and listing them all, before anything is set.
    """
    arrays = {name: convert.to_numpy(value) for name, value in params.items()}
    missing = sorted(set(targets) - set(arrays))
    unexpected = sorted(set(arrays) - set(targets))
    misshapen = [f"{name}: {arrays[name].shape} in the weights, {tuple(targets[name].shape)} in the model"
                 for name in sorted(arrays) if name in targets and arrays[name].shape != tuple(targets[name].shape)]
    problems = [f"missing {missing}" if missing else "", f"unexpected {unexpected}" if unexpected else "",
                f"misshapen [{'; '.join(misshapen)}]" if misshapen else ""]
    problems = [p for p in problems if p]
    if problems:
        raise ValueError(f"weights {source} do not fit {what}: " + "; ".join(problems))
    for name, array in arrays.items():
        targets[name].set_data(ms.Tensor(array, targets[name].dtype))


def load_params(net, params, source="the given weights") -> None:
    """Set every parameter of ``net`` from ``params`` (MindSpore names -> values), strictly."""
    assign_strict({p.name: p for p in net.get_parameters()}, params, source, type(net).__name__)


def read_mindspore_checkpoint(path, ema=False) -> dict:
    """``{name: array}`` of a MindSpore checkpoint (``.ckpt`` or ``.safetensors``); with ``ema``, the
    ``ema.``-prefixed parameters of a MindCV training checkpoint, unprefixed."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist or is not a file")
    fmt = "safetensors" if path.endswith(".safetensors") else "ckpt"
    try:
        params = {name: value.asnumpy() for name, value in ms.load_checkpoint(path, format=fmt).items()}
    except Exception as e:  # MindSpore raises ValueError/RuntimeError for unreadable files
        raise ValueError(f"checkpoint {path!r} is not a readable MindSpore {fmt} file: {e}") from e
    if ema:
        params = {name[len("ema."):]: value for name, value in params.items() if name.startswith("ema.")}
        if not params:
            raise ValueError(f"checkpoint {path!r} holds no 'ema.' parameters, but ema=True was asked")
    return params


def pretrained_params(name):
    """(``{MindSpore name: array}``, file) of the published weights ``name`` (``<arch>.<tag>``).

    The MindSpore checkpoint when published, else the PyTorch safetensors, read without torch and
    converted; either file is sha256-checked (:func:`convgru_zoo.pretrained.weights_file`).
    """
    weights = _pretrained.get(name)
    if weights.file_sha256("mindspore"):
        path = _pretrained.weights_file(name, "mindspore")
        return read_mindspore_checkpoint(path), path
    if weights.file_sha256("torch"):
        from ..run_files import read_weights

        path = _pretrained.weights_file(name, "torch")
        return convert.torch_to_mindspore(read_weights(path)[0], image_networks=convert.model_image_networks(
            weights.arch)), path
    raise _pretrained.PretrainedWeightsError(
        f"{name} has no published MindSpore or PyTorch weights yet (no sha256 in convgru_zoo.specs.PRETRAINED)")
