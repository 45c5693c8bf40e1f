"""Training checkpoints and weight files without pickle, written atomically.

A checkpoint is two files in ``RUN_DIR/checkpoints``:

- ``step_0000120.safetensors``: the model's and the optimizer's tensors plus the per-rank torch
  RNG states (``model.*``, ``optim.<param index>.<key>``, ``rng.torch.<rank>``, ``rng.cuda.<rank>``);
- ``step_0000120.json``: the sidecar, written last: step, run config, optimizer hyper-parameters,
  Python/NumPy RNG states, data position, grad-scaler state and the sha256 of the tensor file.

Each file is written to a temporary name, flushed to disk and moved into place with
``os.replace``, so a kill leaves either the previous checkpoint or the new one, never half of one:
a tensor file without a matching sidecar is ignored.
"""
import json
import random
import re
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load as _load_tensors
from safetensors.torch import save as _save_tensors

from ._files import atomic_write_bytes, atomic_write_json, sha256_of

FORMAT = "convgru-zoo/train-checkpoint/1"
_NAME = re.compile(r"^step_(\d{7,})\.json$")


def _contiguous(tensors):
    """Detached, contiguous CPU copies that share no storage (safetensors refuses shared storage)."""
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}


def save_weights(path, state_dict, metadata=None) -> Path:
    """Save a model state dict as safetensors with string ``metadata`` (task, model name, step)."""
    meta = {k: str(v) for k, v in (metadata or {}).items()}
    atomic_write_bytes(path, _save_tensors(_contiguous(state_dict), metadata=meta))
    return Path(path)


def load_weights(path):
    """(state dict, metadata) of a safetensors weights file; a clear error if it cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist")
    data = path.read_bytes()
    try:
        tensors = _load_tensors(data)
    except Exception as err:  # safetensors raises its own error types
        raise ValueError(f"weights file {path} is not a readable safetensors file: {err}") from None
    from safetensors import safe_open
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata() or {}
    return tensors, metadata


def rng_state():
    """This process's Python, NumPy and torch RNG states: (JSON-able part, tensors)."""
    py_version, py_state, py_gauss = random.getstate()
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    json_part = {"python": [py_version, list(py_state), py_gauss],
                 "numpy": [np_kind, np_keys.tolist(), int(np_pos), int(np_has_gauss), float(np_gauss)]}
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors["cuda"] = torch.cuda.get_rng_state()
    return json_part, tensors


def set_rng_state(json_part, tensors) -> None:
    py_version, py_state, py_gauss = json_part["python"]
    random.setstate((py_version, tuple(py_state), py_gauss))
    kind, keys, pos, has_gauss, gauss = json_part["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(tensors["torch"])
    if "cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["cuda"])


def _optimizer_parts(optimizer):
    """Split ``optimizer.state_dict()`` into tensors and a JSON-able remainder."""
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, entry in state["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{index}.{key}"] = value
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _optimizer_state(tensors, json_part):
    state = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value
    for index, entry in json_part["scalars"].items():
        state.setdefault(int(index), {}).update(entry)
    return {"state": state, "param_groups": json_part["param_groups"]}


def save_checkpoint(directory, step, model, optimizer, sidecar, rank_rng_tensors, keep=2) -> Path:
    """Write checkpoint ``step`` into ``directory``; keep the newest ``keep``; return the sidecar path.

    ``sidecar`` holds the JSON-able run state (config, data position, scaler, RNG); the tensors
    of every rank's RNG come in ``rank_rng_tensors`` (a list, one dict per rank).
    """
    directory = Path(directory)
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    optim_tensors, optim_json = _optimizer_parts(optimizer)
    tensors.update(optim_tensors)
    for rank, rng in enumerate(rank_rng_tensors):
        tensors.update({f"rng.{kind}.{rank}": value for kind, value in rng.items()})
    stem = f"step_{step:07d}"
    tensor_path = directory / f"{stem}.safetensors"
    digest = atomic_write_bytes(tensor_path, _save_tensors(_contiguous(tensors)))
    meta = dict(sidecar, format=FORMAT, step=step, optimizer=optim_json, tensors=tensor_path.name, sha256=digest)
    json_path = directory / f"{stem}.json"
    atomic_write_json(json_path, meta)
    for old in list_checkpoints(directory)[:-keep]:
        old.with_suffix(".safetensors").unlink(missing_ok=True)
        old.unlink(missing_ok=True)
    return json_path


def list_checkpoints(directory):
    """Sidecar paths of the checkpoints in ``directory``, oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(directory):
    """Sidecar path of the newest complete checkpoint (tensor file present, sha256 matching) or None."""
    for json_path in reversed(list_checkpoints(directory)):
        try:
            meta = json.loads(json_path.read_text())
        except (OSError, ValueError):
            continue
        tensor_path = json_path.with_name(meta.get("tensors", ""))
        if meta.get("format") == FORMAT and tensor_path.is_file() and sha256_of(tensor_path) == meta["sha256"]:
            return json_path
    return None


def load_checkpoint(json_path, model, optimizer, rank=0):
    """Restore model and optimizer from a checkpoint; return (sidecar dict, this rank's RNG tensors)."""
    json_path = Path(json_path)
    meta = json.loads(json_path.read_text())
    tensor_path = json_path.with_name(meta["tensors"])
    if sha256_of(tensor_path) != meta["sha256"]:
        raise ValueError(f"checkpoint {tensor_path} does not match the sha256 in {json_path.name}")
    tensors = _load_tensors(tensor_path.read_bytes())
    model.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
    optimizer.load_state_dict(_optimizer_state(tensors, meta["optimizer"]))
    rng = {kind: tensors[f"rng.{kind}.{rank}"] for kind in ("torch", "cuda") if f"rng.{kind}.{rank}" in tensors}
    return meta, rng
