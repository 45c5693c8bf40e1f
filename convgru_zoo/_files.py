"""Atomic file writes and checksums, for every file convgru-zoo writes (weights, checkpoints, JSON, PNG).

A file is written under a temporary name beside its target, flushed to disk and moved into place
with ``os.replace``, so a crash leaves the old file or the new one, never half of one. The file gets
the mode any new file gets under the process's umask (0644 under umask 022), whatever mode the writer
left on the temporary file (MindSpore's ``save_checkpoint`` makes its files read-only, 0400).
"""
import hashlib
import json
import os
import secrets
import stat
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
    tmp = str(path.parent / f".{path.name}.tmp-{secrets.token_hex(8)}{path.suffix}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as to any new file
    try:
        normal_mode = stat.S_IMODE(os.fstat(fd).st_mode)
    finally:
        os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, normal_mode)
        with open(tmp, "rb") as f:  # POSIX fsyncs a file open for reading
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
