"""Run files without pickle, written atomically, readable without any deep-learning framework.

- Weights (``model.safetensors``): tensors plus string metadata (task, model, framework, step),
  read and written here as numpy arrays, so either framework (or none) can use them.
- Training checkpoints, two files in ``RUN_DIR/checkpoints``: ``step_0000120.safetensors`` (the
  tensors; what they hold is the training loop's business) and ``step_0000120.json``, the
  sidecar written last: step, run config, per-rank Python/NumPy RNG states, data position, the
  loop's own JSON state and the sha256 of the tensor file.

Each file is written to a temporary name, flushed and moved into place with ``os.replace``, so a
kill leaves the previous checkpoint or the new one, never half of one: a tensor file without a
matching sidecar (or whose sha256 does not match) is ignored.
"""
import hashlib
import json
import random
import re
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as _load_arrays
from safetensors.numpy import save as _save_arrays

from ._files import atomic_write_bytes, atomic_write_json, sha256_of

FORMAT = "convgru-zoo/train-checkpoint/1"
_NAME = re.compile(r"^step_(\d{7,})\.json$")


def write_weights(path, arrays, metadata=None) -> Path:
    """Save ``{name: array}`` as safetensors with string ``metadata`` (task, model name, step)."""
    meta = {k: str(v) for k, v in (metadata or {}).items()}
    atomic_write_bytes(path, _save_arrays({k: np.ascontiguousarray(v) for k, v in arrays.items()}, metadata=meta))
    return Path(path)


def read_weights(path):
    """(``{name: np.ndarray}``, metadata) of a safetensors weights file; a clear error if it cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist")
    data = path.read_bytes()
    try:
        arrays = _load_arrays(data)
        header = json.loads(data[8:8 + int.from_bytes(data[:8], "little")])
    except (SafetensorError, ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"weights file {path} is not a readable safetensors file: {err}") from None
    # safetensors.numpy hands the tensors back in no fixed order: sort them, so whatever is made from
    # them (a converted checkpoint, a digest) is the same on every run.
    return {name: arrays[name] for name in sorted(arrays)}, header.get("__metadata__") or {}


def read_weights_metadata(path) -> dict:
    """The string metadata of a safetensors weights file (its header only; no tensor is read); a clear error if
    it cannot be read."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            size = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(size)) if 0 < size < 100_000_000 else None
    except OSError as err:
        raise ValueError(f"weights file {path} cannot be read: {err}") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"weights file {path} is not a readable safetensors file: {err}") from None
    if not isinstance(header, dict):
        raise ValueError(f"weights file {path} is not a readable safetensors file: no JSON header")
    return header.get("__metadata__") or {}


def rng_state() -> dict:
    """This process's Python and NumPy RNG states, JSON-able."""
    py_version, py_state, py_gauss = random.getstate()
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    return {"python": [py_version, list(py_state), py_gauss],
            "numpy": [np_kind, np_keys.tolist(), int(np_pos), int(np_has_gauss), float(np_gauss)]}


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` returned."""
    py_version, py_state, py_gauss = state["python"]
    random.setstate((py_version, tuple(py_state), py_gauss))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))


def write_checkpoint(directory, step, tensor_bytes: bytes, sidecar: dict, keep=2) -> Path:
    """Write checkpoint ``step`` (serialized tensors + JSON sidecar) into ``directory``; keep the newest
    ``keep`` (0: every one); return the sidecar path."""
    directory = Path(directory)
    stem = f"step_{step:07d}"
    tensor_path = directory / f"{stem}.safetensors"
    digest = atomic_write_bytes(tensor_path, tensor_bytes)
    json_path = directory / f"{stem}.json"
    atomic_write_json(json_path, dict(sidecar, format=FORMAT, step=step, tensors=tensor_path.name, sha256=digest))
    for old in list_checkpoints(directory)[:-keep]:
        old.with_suffix(".safetensors").unlink(missing_ok=True)
        old.unlink(missing_ok=True)
    return json_path


def read_checkpoint(json_path):
    """(sidecar dict, tensor file bytes) of a checkpoint, its sha256 checked; a ValueError naming the
    sidecar when it is not one of ours or its tensor file is missing or does not match."""
    json_path = Path(json_path)
    meta, problem = _sidecar(json_path)
    if problem:
        raise ValueError(f"checkpoint {json_path}: {problem}")
    try:
        data = json_path.with_name(meta["tensors"]).read_bytes()
    except OSError as err:
        raise ValueError(f"checkpoint {json_path}: its tensor file {meta['tensors']} cannot be read: {err}") from None
    if hashlib.sha256(data).hexdigest() != meta["sha256"]:
        raise ValueError(f"checkpoint {json_path}: {meta['tensors']} does not match its sha256")
    return meta, data


def checkpoint_step(json_path) -> int:
    """The step of a checkpoint, from its sidecar's name (``step_0000120.json``: 120), without reading it."""
    return int(_NAME.match(Path(json_path).name).group(1))


def list_checkpoints(directory):
    """Sidecar paths of the checkpoints in ``directory``, oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted((p for p in directory.iterdir() if _NAME.match(p.name)), key=checkpoint_step)


def _sidecar(json_path: Path):
    """(sidecar, None) when ``json_path`` is a JSON object of this format naming its own tensor file (the
    sidecar's stem, so no path leads elsewhere) and a sha256, else (None, what is wrong)."""
    try:
        meta = json.loads(json_path.read_text())
    except (OSError, ValueError) as err:
        return None, f"unreadable JSON ({err})"
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        return None, f"not a {FORMAT} sidecar"
    tensors, digest, own = meta.get("tensors"), meta.get("sha256"), json_path.with_suffix(".safetensors").name
    if not isinstance(tensors, str) or not isinstance(digest, str):
        return None, "no 'tensors' file name or 'sha256' entry"
    if tensors != own:
        return None, f"'tensors' must be {own!r}, got {tensors!r}"
    return meta, None


def checkpoint_problem(json_path):
    """Why the checkpoint of sidecar ``json_path`` cannot be resumed from, or None when it is complete
    (a sidecar of this format, its tensor file present and matching its sha256)."""
    json_path = Path(json_path)
    meta, problem = _sidecar(json_path)
    if problem:
        return problem
    tensors = meta["tensors"]
    tensor_path = json_path.with_name(tensors)
    if not tensor_path.is_file():
        return f"its tensor file {tensors} is missing"
    if sha256_of(tensor_path) != meta["sha256"]:
        return f"{tensors} does not match its sha256"
    return None


def latest_checkpoint(directory):
    """Sidecar path of the newest complete checkpoint (:func:`checkpoint_problem` is None) or None."""
    return next((p for p in reversed(list_checkpoints(directory)) if checkpoint_problem(p) is None), None)
