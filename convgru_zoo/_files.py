"""Atomic file writes and checksums, for every file convgru-zoo writes (weights, checkpoints, JSON, PNG).

A file is written under a temporary name beside its target, flushed to disk and moved into place
with ``os.replace``, so a crash leaves the old file or the new one, never half of one.
"""
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Callable


def sha256_of(path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_write(path, write: Callable[[str], None]) -> str:
    """Write ``path`` through ``write(temp_path)``, then move it in place; return its sha256.

    The temporary name keeps ``path``'s suffix, since some writers (MindSpore's) pick the format
    from it or append their own.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        digest = sha256_of(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return digest


def atomic_write_bytes(path, data: bytes) -> str:
    """Write ``data`` to ``path`` atomically; return its sha256."""
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def atomic_write_json(path, obj) -> str:
    """Write ``obj`` as indented, key-sorted JSON to ``path`` atomically; return its sha256."""
    return atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())
