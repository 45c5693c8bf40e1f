"""MNIST digits from the idx files of LeCun's distribution, plain or gzipped, in any folder.

The idx format: two zero bytes, a dtype code, the number of dimensions, then one big-endian
uint32 per dimension and the row-major data. Every header field and the data length are checked,
and errors name the file.
"""
import gzip
import os

import numpy as np

# idx dtype codes -> big-endian numpy dtypes
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
# Subsets of the official distribution, in the order they are concatenated when both are present.
SUBSETS = ("train", "t10k")
# Spellings of the file names (the official one, and the dotted one of some mirrors).
_IMAGE_NAMES = ("{}-images-idx3-ubyte", "{}-images.idx3-ubyte")
_LABEL_NAMES = ("{}-labels-idx1-ubyte", "{}-labels.idx1-ubyte")


def read_idx(path):
    """Read an idx file (``.gz`` or plain) into a native-endian numpy array of its shape."""
    path = os.fspath(path)
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:  # gzip raises BadGzipFile (an OSError) or EOFError
        raise ValueError(f"cannot read idx file {path!r}: {err}") from err
    if len(raw) < 4:
        raise ValueError(f"idx file {path!r} is too short for a header ({len(raw)} bytes)")
    zero, code, ndim = raw[:2], raw[2], raw[3]
    if zero != b"\x00\x00" or code not in _IDX_DTYPES:
        raise ValueError(f"idx file {path!r} has a bad magic number {raw[:4].hex()}: expected 0000 then a "
                         f"dtype code in {sorted(hex(c) for c in _IDX_DTYPES)} and the number of dimensions")
    if ndim == 0:
        raise ValueError(f"idx file {path!r} declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"idx file {path!r} is truncated inside its header ({len(raw)} < {header} bytes)")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[code]
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(f"idx file {path!r} holds {len(raw)} bytes, but its header (shape {shape}, "
                         f"{dtype.name}) needs {expected}: the file is truncated or has trailing data")
    data = np.frombuffer(raw, dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def _find(folder, subset, patterns):
    """The first existing file among the spellings of ``patterns`` (plain or .gz), else None."""
    for pattern in patterns:
        for suffix in ("", ".gz"):
            path = os.path.join(folder, pattern.format(subset) + suffix)
            if os.path.isfile(path):
                return path
    return None


def load_digits(folder, subset=None):
    """Images (N, 28, 28) uint8 and labels (N,) uint8 from the MNIST idx files in ``folder``.

    ``subset`` is "train" or "t10k"; None takes every subset present (train first, then t10k).
    """
    folder = os.fspath(folder)
    if subset is not None and subset not in SUBSETS:
        raise ValueError(f"subset must be one of {SUBSETS} or None, got {subset!r}")
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"folder must be a directory holding MNIST idx files, got {folder!r}")
    wanted = (subset,) if subset else SUBSETS
    images, labels = [], []
    for name in wanted:
        image_path = _find(folder, name, _IMAGE_NAMES)
        label_path = _find(folder, name, _LABEL_NAMES)
        if image_path is None and label_path is None:
            continue
        if image_path is None or label_path is None:
            missing = _IMAGE_NAMES[0] if image_path is None else _LABEL_NAMES[0]
            raise FileNotFoundError(f"folder {folder!r} has only half of the MNIST {name!r} pair: "
                                    f"{missing.format(name)}[.gz] is missing")
        images.append(_checked_images(read_idx(image_path), image_path))
        labels.append(_checked_labels(read_idx(label_path), label_path, len(images[-1])))
    if not images:
        expected = ", ".join(f"{_IMAGE_NAMES[0].format(s)}[.gz] + {_LABEL_NAMES[0].format(s)}[.gz]"
                             for s in wanted)
        raise FileNotFoundError(f"folder {folder!r} holds no MNIST idx files: expected {expected}")
    return np.concatenate(images), np.concatenate(labels)


def _checked_images(images, path):
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(f"image file {path!r} must hold uint8 images (N, H, W), "
                         f"got {images.dtype} of shape {images.shape}")
    return images


def _checked_labels(labels, path, count):
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise ValueError(f"label file {path!r} must hold uint8 labels (N,), got {labels.dtype} of shape {labels.shape}")
    if len(labels) != count:
        raise ValueError(f"label file {path!r} holds {len(labels)} labels for {count} images")
    return labels
