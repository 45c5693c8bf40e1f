"""Moving MNIST clips, generated on the fly, and a labelled variant whose label needs motion.

``MovingMNIST`` follows Srivastava et al. 2015 (arXiv:1502.04681): ``num_digits`` 28x28 digits on a
64x64 canvas, each from a uniform random position with a random angle and a fixed speed (a step of
0.1 of the free range ``image_size - 28`` per frame, as the authors' generator; the position moves
one step before the first frame). A coordinate that leaves the free range is clamped to the edge
and its velocity component flips. Digits are overlaid by the pixel-wise maximum.

``MotionMNIST`` is one moving digit labelled ``digit_class * 4 + direction``, where ``direction``
is the quadrant of the velocity between frames 0 and 1 (``DIRECTIONS``). Angles are drawn at
least ``MOTION_ANGLE_MARGIN`` degrees away from the axes, so both components move the digit by
at least 1.2 pixels per frame and the direction shows in the clip. The first frame cannot show
the direction: the digit's appearance does not depend on it, and its start position is uniform and
drawn independently of the velocity. A classifier of frame ``BASELINE_FRAME`` (0) is therefore at
chance on the direction, and capped at a quarter of its digit accuracy: the single-frame baseline
for contrast. Later frames are not blind: a digit drifts towards the side it moves to, so its
position alone tells part of the direction (``single_frame_direction_ceiling`` computes this Bayes
bound; docs/design.md has the figures).

``augment=True`` (training) gives each clip its own random affine of its digit images (scale,
rotation, shear) and stroke width (``augment_digits``), drawn from the item's stream after every
other draw, so the clips' paths and digits are those of ``augment=False``; it multiplies the few
thousand digit images a split holds into a new shape per clip.

Every item is a pure function of ``(seed, split, index)``: random access, no state, the same clip
in any worker or process. ``split`` selects disjoint sets of digit images (``split_indices``,
seeded by ``split_seed`` independently of ``seed``, so a training set drawn with another seed
never shares digits with the test set). The datasets are map-style: PyTorch's ``DataLoader`` and
MindSpore's ``GeneratorDataset`` (see ``to_mindspore``) take them directly; ``batch`` draws many
items at once, vectorised.
"""
import os

import numpy as np

from ..specs import DIRECTIONS
from .mnist import load_digits

SPLITS = ("train", "val", "test")
STEP_LENGTH = 0.1  # per frame, in units of the free range (image_size - digit size)
MOTION_ANGLE_MARGIN = 20.0  # degrees between a MotionMNIST velocity and the nearest axis
BASELINE_FRAME = 0  # the MotionMNIST frame that holds no information about the direction
# augment_digits: uniform ranges of the per-clip affine and stroke width of a digit image
AUGMENT_SCALE = (0.85, 1.15)
AUGMENT_ROTATION = 15.0  # degrees either way
AUGMENT_SHEAR = 12.0     # degrees either way, along x
AUGMENT_STROKE = 0.6     # blend towards a dilated (> 0) or eroded (< 0) stroke, either way
# Distinct random streams for each kind of item, mixed into every item's seed.
_MOVING_STREAM, _MOTION_STREAM = 0, 1


def split_indices(n_digits, split, seed=0, fractions=(0.8, 0.1, 0.1)):
    """Sorted indices of the digit images of ``split``; the three splits are disjoint and cover all."""
    if not isinstance(n_digits, (int, np.integer)) or isinstance(n_digits, bool) or n_digits < len(SPLITS):
        raise ValueError(f"n_digits must be an int >= {len(SPLITS)} (one digit per split), got {n_digits!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    fractions = tuple(float(f) for f in fractions)
    if len(fractions) != len(SPLITS) or min(fractions) <= 0 or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"fractions must be {len(SPLITS)} positive numbers (train, val, test) summing to 1, "
                         f"got {fractions}")
    _check_seed("seed", seed)
    bounds = np.round(np.cumsum(fractions)[:-1] * n_digits).astype(np.int64)
    parts = np.split(np.random.default_rng(seed).permutation(int(n_digits)), bounds)
    sizes = {name: len(part) for name, part in zip(SPLITS, parts)}
    if min(sizes.values()) == 0:
        raise ValueError(f"fractions {fractions} of n_digits={n_digits} leave a split empty: {sizes}")
    return np.sort(parts[SPLITS.index(split)])


def bounce(start, velocity, num_frames):
    """Positions (..., num_frames, 2) in [0, 1] from ``start`` (frame 0) and ``velocity`` (..., 2).

    Each frame moves ``STEP_LENGTH * velocity``; a coordinate that leaves [0, 1] is clamped to
    the edge and its velocity component flips. Computed in closed form for all frames at once:
    after the first hit, the coordinate leaves an edge and hits the other one every
    ``ceil(1 / step)`` frames.
    """
    position = np.asarray(start, np.float64)[..., None, :]
    step = STEP_LENGTH * np.asarray(velocity, np.float64)[..., None, :]
    frame = np.arange(num_frames, dtype=np.float64)[:, None]
    speed = np.maximum(np.abs(step), 1e-12)  # a still coordinate never hits an edge
    first_hit = np.maximum(1, np.ceil(np.where(step > 0, 1 - position, position) / speed))
    period = np.ceil(1 / speed)
    since = np.mod(frame - first_hit, 2 * period)  # frames since the first hit, modulo a round trip
    from_edge = np.where(since < period, since, since - period) * speed
    at_top = (step > 0) == (since < period)  # the last edge hit was 1 (else 0)
    bounced = np.where(at_top, 1 - from_edge, from_edge)
    return np.where(frame < first_hit, position + frame * step, bounced)


def render(digits, digit_ids, corners, image_size):
    """Canvases (B, T, S, S) uint8: digit ``digit_ids[b, d]`` at top-left ``corners[b, t, d]``, max overlay."""
    batch, frames, num_digits = corners.shape[:3]
    height, width = digits.shape[1:]
    canvas = np.zeros((batch * frames, image_size, image_size), np.uint8)
    # A writeable view of every (height, width) window of every frame: windows[f, row, col].
    step = canvas.strides
    windows = np.lib.stride_tricks.as_strided(
        canvas, (batch * frames, image_size - height + 1, image_size - width + 1, height, width),
        (step[0], step[1], step[2], step[1], step[2]))
    frame = np.arange(batch * frames)
    for d in range(num_digits):
        rows, cols = corners[:, :, d, 0].reshape(-1), corners[:, :, d, 1].reshape(-1)
        patch = digits[np.repeat(digit_ids[:, d], frames)]
        windows[frame, rows, cols] = np.maximum(windows[frame, rows, cols], patch)
    return canvas.reshape(batch, frames, image_size, image_size)


def augment_parameters(rng, count):
    """(count, 4) float64 per-digit draws (scale, rotation, shear, stroke) for ``augment_digits``."""
    low = np.array([AUGMENT_SCALE[0], -AUGMENT_ROTATION, -AUGMENT_SHEAR, -AUGMENT_STROKE])
    high = np.array([AUGMENT_SCALE[1], AUGMENT_ROTATION, AUGMENT_SHEAR, AUGMENT_STROKE])
    return low + rng.random((count, 4)) * (high - low)


def _cross_filter(images, reduce):
    """``reduce`` (np.maximum or np.minimum) over each pixel's 3x3 cross neighbourhood, zero padded."""
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1)))
    height, width = images.shape[1:]
    out = images.copy()
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        out = reduce(out, padded[:, dy:dy + height, dx:dx + width])
    return out


def augment_digits(images, params):
    """Digit images (B, H, W) uint8 under the affine and stroke ``params`` (B, 4) of ``augment_parameters``.

    Scale, rotation and x-shear about the image centre, sampled bilinearly (outside is black); then the
    stroke blends towards its 3x3-cross dilation (thicker) or erosion (thinner) by ``|stroke|``."""
    images = np.asarray(images, np.float32)
    count, height, width = images.shape
    scale, rotation, shear, stroke = (params[:, i] for i in range(4))
    theta, phi = np.deg2rad(rotation), np.deg2rad(shear)
    # forward map A = scale * R(theta) @ [[1, tan(phi)], [0, 1]] on (x, y); sample at A^-1 (out - centre)
    cos, sin, tan = np.cos(theta), np.sin(theta), np.tan(phi)
    forward = np.stack([np.stack([cos, cos * tan - sin], -1), np.stack([sin, sin * tan + cos], -1)], -2)
    inverse = np.linalg.inv(forward * scale[:, None, None])  # (B, 2, 2)
    cy, cx = (height - 1) / 2, (width - 1) / 2
    ys, xs = np.meshgrid(np.arange(height) - cy, np.arange(width) - cx, indexing="ij")
    src = np.einsum("bij,jhw->bihw", inverse, np.stack([xs, ys]))  # (B, 2 = x, y, H, W)
    sx, sy = src[:, 0] + cx, src[:, 1] + cy
    x0, y0 = np.floor(sx).astype(np.int64), np.floor(sy).astype(np.int64)
    fx, fy = (sx - x0).astype(np.float32), (sy - y0).astype(np.float32)
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1)))  # a black border: outside samples read 0
    batch = np.arange(count)[:, None, None]

    def at(y, x):
        return padded[batch, np.clip(y + 1, 0, height + 1), np.clip(x + 1, 0, width + 1)]

    out = ((at(y0, x0) * (1 - fx) + at(y0, x0 + 1) * fx) * (1 - fy)
           + (at(y0 + 1, x0) * (1 - fx) + at(y0 + 1, x0 + 1) * fx) * fy)
    morph = np.where(stroke[:, None, None] > 0, _cross_filter(out, np.maximum), _cross_filter(out, np.minimum))
    amount = np.abs(stroke).astype(np.float32)[:, None, None]
    return np.clip(np.rint(out + amount * (morph - out)), 0, 255).astype(np.uint8)


class _GeneratedClips:
    """Shared machinery: digits of one split, per-item random streams, indexing and batching."""

    _stream = None
    column_names = ("clip",)

    def __init__(self, root, split, num_sequences, seq_len, image_size, seed, split_seed, augment):
        images, labels = _digits_from(root)
        if not isinstance(augment, bool):
            raise ValueError(f"augment must be True or False, got {augment!r}")
        _check_positive("num_sequences", num_sequences)
        _check_positive("seq_len", seq_len)
        _check_seed("seed", seed)
        if not isinstance(image_size, int) or image_size < max(images.shape[1:]):
            raise ValueError(f"image_size must be an int >= the digit size {images.shape[1:]}, got {image_size!r}")
        chosen = split_indices(len(images), split, seed=split_seed)
        self.digits, self.labels = images[chosen], labels[chosen].astype(np.int64)
        self.split, self.num_sequences, self.seq_len = split, num_sequences, seq_len
        self.image_size, self.seed, self.split_seed, self.augment = image_size, seed, split_seed, augment

    def _render(self, digit_ids, corners, rngs):
        """``render`` of the items' digits, each clip's own affine of them first when ``augment``."""
        if not self.augment:
            return render(self.digits, digit_ids, corners, self.image_size)
        params = np.concatenate([augment_parameters(rng, digit_ids.shape[1]) for rng in rngs])
        shapes = augment_digits(self.digits[digit_ids.reshape(-1)], params)
        return render(shapes, np.arange(digit_ids.size).reshape(digit_ids.shape), corners, self.image_size)

    def __len__(self):
        return self.num_sequences

    def _rng(self, index):
        return np.random.default_rng([self._stream, self.seed, SPLITS.index(self.split), index])

    def _corners(self, positions):
        """Pixel top-left corners from positions in [0, 1], truncated as the reference generator."""
        free = self.image_size - np.array(self.digits.shape[1:])
        return (positions * free).astype(np.int64)

    def _clips(self, canvases):
        return np.divide(canvases[:, :, None], np.float32(255), dtype=np.float32)

    def __getitem__(self, index):
        items = self.batch([index])
        return items[0] if isinstance(items, np.ndarray) else tuple(part[0] for part in items)

    def __repr__(self):
        return (f"{type(self).__name__}(split={self.split!r}, num_sequences={self.num_sequences}, "
                f"seq_len={self.seq_len}, image_size={self.image_size}, seed={self.seed}, "
                f"digits={len(self.digits)}, augment={self.augment})")


class MovingMNIST(_GeneratedClips):
    """Srivastava et al.'s Moving MNIST: items are float32 clips (seq_len, 1, S, S) in [0, 1].

    ``root`` is a folder of MNIST idx files (``load_digits``) or an ``(images, labels)`` pair.
    """

    _stream = _MOVING_STREAM

    def __init__(self, root, split="train", num_sequences=10000, seq_len=20, num_digits=2, image_size=64,
                 seed=0, split_seed=0, augment=False):
        super().__init__(root, split, num_sequences, seq_len, image_size, seed, split_seed, augment)
        self.num_digits = _check_positive("num_digits", num_digits)

    def batch(self, indices):
        """Clips (B, seq_len, 1, S, S) of the items ``indices``, drawn in one vectorised pass."""
        indices = [_check_index(i, self.num_sequences) for i in indices]
        n = self.num_digits
        digit_ids = np.empty((len(indices), n), np.int64)
        start = np.empty((len(indices), n, 2))
        angle = np.empty((len(indices), n))
        rngs = [self._rng(index) for index in indices]
        for row, rng in enumerate(rngs):
            digit_ids[row] = rng.integers(len(self.digits), size=n)
            start[row] = rng.random((n, 2))
            angle[row] = rng.random(n) * 2 * np.pi
        velocity = np.stack([np.sin(angle), np.cos(angle)], -1)  # (rows, cols) per frame
        positions = bounce(start, velocity, self.seq_len + 1)[:, :, 1:]  # one step before frame 0
        corners = self._corners(positions.transpose(0, 2, 1, 3))  # (B, T, digits, 2)
        return self._clips(self._render(digit_ids, corners, rngs))


def motion_velocity(direction, fraction):
    """Unit velocities (B, 2) as (row, col) in the quadrants ``direction`` (see ``DIRECTIONS``).

    ``fraction`` in [0, 1) places the angle from the horizontal between ``MOTION_ANGLE_MARGIN``
    and ``90 - MOTION_ANGLE_MARGIN`` degrees, so neither component is small.
    """
    angle = np.deg2rad(MOTION_ANGLE_MARGIN + np.asarray(fraction) * (90 - 2 * MOTION_ANGLE_MARGIN))
    sign_row = np.where(np.asarray(direction) >= 2, -1.0, 1.0)  # up
    sign_col = np.where(np.asarray(direction) % 2 == 1, -1.0, 1.0)  # left
    return np.stack([sign_row * np.sin(angle), sign_col * np.cos(angle)], -1)


class MotionMNIST(_GeneratedClips):
    """One moving digit per clip, labelled ``digit_class * 4 + direction`` (40 classes).

    Items are ``(clip float32 (seq_len, channels, S, S) in [0, 1], label np.int64)``: the grey frame
    as ``channels`` equal channels (3 for the backbones' pretrained input); see the module docstring
    for why the label needs more than one frame.
    """

    _stream = _MOTION_STREAM
    column_names = ("clip", "label")
    num_classes = 10 * len(DIRECTIONS)

    def __init__(self, root, split="train", num_sequences=10000, seq_len=10, image_size=64, seed=0,
                 split_seed=0, channels=1, augment=False):
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise ValueError(f"channels must be a positive int, got {channels!r}")
        super().__init__(root, split, num_sequences, seq_len, image_size, seed, split_seed, augment)
        if seq_len < 2:
            raise ValueError(f"seq_len must be >= 2 for motion to show, got {seq_len}")
        self.channels = channels

    def draw(self, indices):
        """Digit ids (B,), directions (B,), start positions (B, 2), velocities (B, 2) of the items, and
        their random streams (left where ``augment`` continues drawing)."""
        indices = [_check_index(i, self.num_sequences) for i in indices]
        digit_ids = np.empty(len(indices), np.int64)
        direction = np.empty(len(indices), np.int64)
        start = np.empty((len(indices), 2))
        fraction = np.empty(len(indices))
        rngs = [self._rng(index) for index in indices]
        for row, rng in enumerate(rngs):
            digit_ids[row] = rng.integers(len(self.digits))
            direction[row] = rng.integers(len(DIRECTIONS))
            start[row] = rng.random(2)
            fraction[row] = rng.random()
        return digit_ids, direction, start, motion_velocity(direction, fraction), rngs

    def batch(self, indices):
        """Clips (B, seq_len, channels, S, S) and labels (B,) int64 of the items ``indices``."""
        digit_ids, direction, start, velocity, rngs = self.draw(indices)
        corners = self._corners(bounce(start, velocity, self.seq_len))[:, :, None]  # (B, T, 1, 2)
        clips = self._clips(self._render(digit_ids[:, None], corners, rngs))
        if self.channels > 1:
            clips = np.repeat(clips, self.channels, axis=2)
        return clips, self.labels[digit_ids] * len(DIRECTIONS) + direction


class MotionMNISTFrames(MotionMNIST):
    """Single frames of :class:`MotionMNIST` clips labelled by their digit (10 classes): item ``k`` is frame
    ``k % seq_len`` of clip ``k``, so the frames sit wherever the clips' digits go, on the same digit images
    (``split``) as the clips. What a GRU-RCN's image backbone trains on before the ConvGRUs learn motion.

    Items are ``(frame float32 (channels, S, S) in [0, 1], digit np.int64)``.
    """

    num_classes = 10

    def batch(self, indices):
        """Frames (B, channels, S, S) and digits (B,) int64 of the items ``indices``."""
        indices = [_check_index(i, self.num_sequences) for i in indices]
        clips, labels = super().batch(indices)
        frame = np.asarray(indices, np.int64) % self.seq_len
        return np.ascontiguousarray(clips[np.arange(len(clips)), frame]), labels // len(DIRECTIONS)


def single_frame_direction_ceiling(seq_len=10, frame=0, image_size=64, digit_size=28, samples=200000, seed=0):
    """Best direction accuracy any classifier can reach from frame ``frame`` of a MotionMNIST clip.

    The digit's appearance is independent of the direction, so one frame tells only the digit's
    pixel position; this estimates the Bayes accuracy of the direction given that position by
    counting on one half of ``samples`` simulated trajectories and scoring on the other half.
    """
    rng = np.random.default_rng(seed)
    direction = rng.integers(len(DIRECTIONS), size=samples)
    velocity = motion_velocity(direction, rng.random(samples))
    positions = bounce(rng.random((samples, 2)), velocity, seq_len)[:, frame]
    free = image_size - digit_size
    cell = (positions * free).astype(np.int64) @ np.array([free + 1, 1])
    counts = np.zeros(((free + 1) ** 2, len(DIRECTIONS)))
    half = samples // 2
    np.add.at(counts, (cell[:half], direction[:half]), 1)
    return float(np.mean(counts[cell[half:]].argmax(1) == direction[half:]))


class FixedMovingMNIST:
    """The standard fixed Moving MNIST test file as a dataset with ``MovingMNIST``'s items.

    The file is memory-mapped; each item is converted to float32 (T, 1, H, W) in [0, 1] on access.
    """

    column_names = ("clip",)

    def __init__(self, path, seq_len=20):
        self.path = os.fspath(path)
        self.frames = _fixed_test_array(self.path, seq_len, mmap=True)
        self.seq_len, self.image_size = self.frames.shape[0], self.frames.shape[2]

    def __len__(self):
        return self.frames.shape[1]

    def __getitem__(self, index):
        return self.batch([index])[0]

    def batch(self, indices):
        """Clips (B, T, 1, H, W) float32 of the sequences ``indices``."""
        frames = self.frames[:, [_check_index(i, len(self)) for i in indices]]  # (T, B, H, W) uint8
        return np.divide(frames.transpose(1, 0, 2, 3)[:, :, None], np.float32(255), dtype=np.float32)

    def __repr__(self):
        return f"FixedMovingMNIST({self.path!r}, sequences={len(self)}, seq_len={self.seq_len})"


def load_fixed_test(path, seq_len=20, max_sequences=None):
    """The fixed test file (uint8 .npy, (seq_len, N, H, W)) as float32 (N, seq_len, 1, H, W) in [0, 1].

    The standard file holds 10000 sequences: 3.3 GB as float32; ``max_sequences`` keeps the first
    ones, and ``FixedMovingMNIST`` reads items lazily instead.
    """
    frames = _fixed_test_array(os.fspath(path), seq_len, mmap=True)
    if max_sequences is not None:
        frames = frames[:, :_check_positive("max_sequences", max_sequences)]
    return (np.asarray(frames, np.float32).transpose(1, 0, 2, 3)[:, :, None] / np.float32(255)).astype(np.float32)


def _fixed_test_array(path, seq_len, mmap):
    try:
        frames = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read the fixed Moving MNIST test file {path!r} as a .npy array: {err}") from err
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[0] != seq_len or frames.shape[2] != frames.shape[3]:
        hint = ""
        if frames.ndim == 4 and frames.shape[1] == seq_len:
            hint = "; it looks like (N, T, H, W): the standard layout puts time first"
        raise ValueError(f"fixed test file {path!r} must hold uint8 frames of shape (seq_len={seq_len}, N, H, H), "
                         f"got {frames.dtype} of shape {frames.shape}{hint}")
    return frames


class EpochShuffle:
    """Sampler of a new permutation each epoch, drawn from ``(seed, epoch)``: reproducible, no global seed."""

    def __init__(self, num_items, seed=0, epoch=0):
        self.num_items, self.seed, self.epoch = num_items, _check_seed("seed", seed), _check_seed("epoch", epoch)

    def __iter__(self):
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.num_items)
        self.epoch += 1
        return iter(order.tolist())

    def __len__(self):
        return self.num_items


def to_mindspore(dataset, batch_size, shuffle=True, seed=0, drop_remainder=False, num_parallel_workers=1,
                 start_epoch=0):
    """A batched ``mindspore.dataset.GeneratorDataset`` over ``dataset`` (columns ``dataset.column_names``).

    With ``shuffle``, each epoch of one iterator (``create_*_iterator(num_epochs=...)``) takes the
    permutation of ``(seed, start_epoch + epoch)``; a new iterator starts again at ``start_epoch``
    (pass the epoch reached to resume).
    """
    import mindspore.dataset as msd

    _check_positive("batch_size", batch_size)
    sampler = EpochShuffle(len(dataset), seed, start_epoch) if shuffle else None
    source = msd.GeneratorDataset(source=dataset, column_names=list(dataset.column_names), sampler=sampler,
                                  shuffle=None if shuffle else False, num_parallel_workers=num_parallel_workers,
                                  python_multiprocessing=False)
    return source.batch(batch_size, drop_remainder=drop_remainder)


def _digits_from(root):
    if isinstance(root, tuple) and len(root) == 2:
        images, labels = (np.asarray(part) for part in root)
        if images.dtype != np.uint8 or images.ndim != 3 or labels.ndim != 1 or len(labels) != len(images):
            raise ValueError(f"root as a pair must be (images uint8 (N, H, W), labels (N,)), got "
                             f"{images.dtype} {images.shape} and {labels.dtype} {labels.shape}")
        return images, labels
    return load_digits(root)


def _check_index(index, length):
    """``index`` as an int in [0, length), Python's negative indices included."""
    if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
        raise TypeError(f"index must be an int, got {type(index).__name__}")
    if not -length <= index < length:
        raise IndexError(f"index {index} out of range for {length} sequences")
    return int(index) % length


def _check_positive(name, value):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _check_seed(name, value):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    return int(value)
