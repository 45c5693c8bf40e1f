"""Forecast and classification metrics in numpy, accumulated in float64; no framework needed.

Forecasts ``pred`` and ``true`` are (N, T, C, H, W) arrays on the 0-1 scale; ``pred`` is scored as
given (clip it first if the model can leave [0, 1]). Per-frame metrics are arrays (T,) averaged
over the N sequences; the scalar of a metric is the mean of its per-frame values.

- MSE and MAE follow OpenSTL's convention: the squared (absolute) error summed over the C*H*W
  pixels of a frame.
- SSIM is Wang et al. 2004's: an 11x11 Gaussian window (sigma 1.5), data range 1, K1 0.01,
  K2 0.03, averaged over the (H-10)x(W-10) positions where the window fits and over channels;
  equal to skimage's ``structural_similarity(gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=1)``.
- PSNR is ``10 log10(1 / m)`` with ``m`` the mean squared error over a frame's pixels, capped at
  ``PSNR_CAP`` dB (identical frames) so results stay finite and JSON-ready.
"""
import math

import numpy as np

FORECAST_METRICS = ("mse", "mae", "ssim", "psnr")
PSNR_CAP = 100.0
SSIM_WINDOW, SSIM_SIGMA, SSIM_K1, SSIM_K2 = 11, 1.5, 0.01, 0.03


def _forecast_pair(pred, true):
    """Check and convert a forecast pair to float64 arrays of one (N, T, C, H, W) shape."""
    pred, true = np.asarray(pred), np.asarray(true)
    for name, value in (("pred", pred), ("true", true)):
        if value.ndim != 5 or 0 in value.shape:
            raise ValueError(f"{name} must be a non-empty (N, T, C, H, W) array, got shape {value.shape}")
        if not np.issubdtype(value.dtype, np.number) or np.issubdtype(value.dtype, np.complexfloating):
            raise TypeError(f"{name} must hold real numbers, got dtype {value.dtype}")
    if pred.shape != true.shape:
        raise ValueError(f"pred and true must have one shape, got pred {pred.shape} and true {true.shape}")
    return pred.astype(np.float64, copy=False), true.astype(np.float64, copy=False)


def _frame_sums(error):
    """Per-sequence, per-frame sums (N, T) of an elementwise error (N, T, C, H, W)."""
    return error.reshape(error.shape[:2] + (-1,)).sum(-1)


def _mse_sums(pred, true):
    return _frame_sums(np.square(pred - true))


def _mae_sums(pred, true):
    return _frame_sums(np.abs(pred - true))


def _psnr_values(pred, true):
    mean_square = _mse_sums(pred, true) / np.prod(pred.shape[2:])
    return -10 * np.log10(np.maximum(mean_square, 10 ** (-PSNR_CAP / 10)))


def gaussian_window(size=SSIM_WINDOW, sigma=SSIM_SIGMA):
    """The normalised 1-D Gaussian taps (size,) whose outer product is the SSIM window."""
    offsets = np.arange(size, dtype=np.float64) - (size - 1) / 2
    taps = np.exp(-0.5 * (offsets / sigma) ** 2)
    return taps / taps.sum()


def _filter_valid(images, taps):
    """Separable 'valid' correlation of (..., H, W) with ``taps`` along H, then along W."""
    size = len(taps)
    rows = np.lib.stride_tricks.sliding_window_view(images, size, axis=-2) @ taps
    return np.lib.stride_tricks.sliding_window_view(rows, size, axis=-1) @ taps


def _ssim_values(pred, true):
    """SSIM (N, T) of every frame, averaged over window positions and channels."""
    height, width = pred.shape[-2:]
    if min(height, width) < SSIM_WINDOW:
        raise ValueError(f"pred and true frames must be at least {SSIM_WINDOW}x{SSIM_WINDOW} for SSIM, "
                         f"got {height}x{width}")
    c1, c2 = SSIM_K1 ** 2, SSIM_K2 ** 2  # data range 1
    mu_x, mu_y, xx, yy, xy = _filter_valid(np.stack([pred, true, pred * pred, true * true, pred * true]),
                                           gaussian_window())
    var_x, var_y, cov = xx - mu_x * mu_x, yy - mu_y * mu_y, xy - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))
    return ssim_map.mean(axis=(-3, -2, -1))


_PER_SEQUENCE = {"mse": _mse_sums, "mae": _mae_sums, "ssim": _ssim_values, "psnr": _psnr_values}


def mse_per_frame(pred, true):
    """Squared error summed over each frame's pixels, averaged over sequences: (T,)."""
    return _mse_sums(*_forecast_pair(pred, true)).mean(0)


def mae_per_frame(pred, true):
    """Absolute error summed over each frame's pixels, averaged over sequences: (T,)."""
    return _mae_sums(*_forecast_pair(pred, true)).mean(0)


def ssim_per_frame(pred, true):
    """Gaussian-window SSIM of each frame (data range 1), averaged over sequences: (T,)."""
    return _ssim_values(*_forecast_pair(pred, true)).mean(0)


def psnr_per_frame(pred, true):
    """PSNR in dB of each frame (capped at ``PSNR_CAP``), averaged over sequences: (T,)."""
    return _psnr_values(*_forecast_pair(pred, true)).mean(0)


class ForecastMetrics:
    """Streaming forecast metrics: ``update`` with batches, ``compute`` the ``forecast_metrics`` dict.

    Keeps float64 per-frame sums over sequences, so batches of any size give the same result as
    one pass over all sequences; ``merge`` adds another accumulator's sums (e.g. from other ranks).
    """

    def __init__(self):
        self.count = 0
        self.sums = None  # metric name -> (T,) float64 sum over the sequences seen

    def update(self, pred, true):
        pred, true = _forecast_pair(pred, true)
        if self.sums is not None and pred.shape[1] != self.num_frames:
            raise ValueError(f"pred must have T={self.num_frames} frames like the earlier batches, "
                             f"got shape {pred.shape}")
        batch = {name: values(pred, true).sum(0) for name, values in _PER_SEQUENCE.items()}
        self._add(batch, len(pred))
        return self

    def merge(self, other):
        if not isinstance(other, ForecastMetrics):
            raise TypeError(f"other must be a ForecastMetrics, got {type(other).__name__}")
        if other.sums is not None:
            if self.sums is not None and other.num_frames != self.num_frames:
                raise ValueError(f"other must count T={self.num_frames} frames, got {other.num_frames}")
            self._add(other.sums, other.count)
        return self

    def _add(self, sums, count):
        if self.sums is None:
            self.sums = {name: np.zeros_like(values) for name, values in sums.items()}
        for name, values in sums.items():
            self.sums[name] += values
        self.count += count

    @property
    def num_frames(self):
        return None if self.sums is None else len(self.sums["mse"])

    def per_frame(self):
        """Metric name -> (T,) float64 mean over the sequences seen."""
        if self.sums is None:
            raise ValueError("no forecasts were added: call update(pred, true) first")
        return {name: values / self.count for name, values in self.sums.items()}

    def compute(self):
        """``{"num_sequences", "num_frames", "mse", "mae", "ssim", "psnr", "per_frame": {name: [T floats]}}``."""
        per_frame = self.per_frame()
        result = {"num_sequences": int(self.count), "num_frames": int(self.num_frames)}
        result.update({name: float(values.mean()) for name, values in per_frame.items()})
        result["per_frame"] = {name: [float(v) for v in values] for name, values in per_frame.items()}
        return result


def forecast_metrics(pred, true):
    """All forecast metrics of one (N, T, C, H, W) pair as a JSON-ready dict (see ``ForecastMetrics.compute``)."""
    return ForecastMetrics().update(pred, true).compute()


def _classification_pair(logits, labels):
    logits, labels = np.asarray(logits), np.asarray(labels)
    if logits.ndim != 2 or 0 in logits.shape:
        raise ValueError(f"logits must be a non-empty (N, num_classes) array, got shape {logits.shape}")
    if not np.issubdtype(logits.dtype, np.floating) and not np.issubdtype(logits.dtype, np.integer):
        raise TypeError(f"logits must hold real numbers, got dtype {logits.dtype}")
    if not np.all(np.isfinite(logits)):
        raise ValueError("logits must be finite, got NaN or inf")
    if labels.shape != logits.shape[:1] or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers of shape ({len(logits)},) to match logits, "
                         f"got {labels.dtype} of shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= logits.shape[1]):
        raise ValueError(f"labels must lie in [0, {logits.shape[1]}), got values from {labels.min()} to {labels.max()}")
    return logits, labels


def _label_ranks(logits, labels):
    """Rank of each label in its row, ties broken towards the lower class index (as a stable sort)."""
    own = logits[np.arange(len(labels)), labels][:, None]
    classes = np.arange(logits.shape[1])
    return (logits > own).sum(1) + ((logits == own) & (classes < labels[:, None])).sum(1)


def _check_ks(ks, num_classes):
    ks = tuple(ks)
    if not ks or any(not isinstance(k, (int, np.integer)) or isinstance(k, bool) or not 1 <= k <= num_classes
                     for k in ks):
        raise ValueError(f"ks must be ints in [1, num_classes={num_classes}], got {ks}")
    return ks


def topk_accuracy(logits, labels, ks=(1, 5)):
    """``{"top1": fraction, "top5": fraction, ...}``: how often the label is among the k highest logits."""
    logits, labels = _classification_pair(logits, labels)
    ranks = _label_ranks(logits, labels)
    return {f"top{k}": float(np.mean(ranks < k)) for k in _check_ks(ks, logits.shape[1])}


class TopkAccuracy:
    """Streaming top-k accuracy: ``update`` with batches of logits and labels, then ``compute``."""

    def __init__(self, ks=(1, 5)):
        self.ks, self.count, self.hits = tuple(ks), 0, np.zeros(len(tuple(ks)), np.int64)

    def update(self, logits, labels):
        logits, labels = _classification_pair(logits, labels)
        ranks = _label_ranks(logits, labels)
        self.hits += [int((ranks < k).sum()) for k in _check_ks(self.ks, logits.shape[1])]
        self.count += len(labels)
        return self

    def compute(self):
        if not self.count:
            raise ValueError("no predictions were added: call update(logits, labels) first")
        return {f"top{k}": float(h / self.count) for k, h in zip(self.ks, self.hits)}


def wilson_interval(accuracy, count, z=1.96):
    """(low, high): the Wilson score interval (95% at ``z=1.96``) of an accuracy measured on ``count`` items,
    how far another sample of as many test items could move it."""
    if not 0 <= accuracy <= 1 or not isinstance(count, int) or count < 1:
        raise ValueError(f"accuracy must be in [0, 1] and count an int >= 1, got {accuracy!r}, {count!r}")
    centre = (accuracy + z * z / (2 * count)) / (1 + z * z / count)
    half = z / (1 + z * z / count) * math.sqrt(accuracy * (1 - accuracy) / count + z * z / (4 * count * count))
    return max(0.0, centre - half), min(1.0, centre + half)


def accuracy_by_group(logits, labels, groups, num_groups):
    """Top-1 accuracy of each group ``0..num_groups-1`` (``groups`` (N,) ints), NaN for an empty group."""
    logits, labels = _classification_pair(logits, labels)
    hits = logits.argmax(1) == labels
    counts = np.bincount(groups, minlength=num_groups)
    correct = np.bincount(groups, weights=hits, minlength=num_groups)
    return [float(c / n) if n else float("nan") for c, n in zip(correct, counts)]


def single_frame_ceiling(logits, labels, num_directions):
    """Best top-1/top-5 a one-frame classifier with this model's digit recognition could reach.

    For labels ``digit * num_directions + direction`` whose direction one frame cannot show (chance,
    ``1 / num_directions``): the digit is ranked by the clip model's probabilities summed over the
    directions; top-1 then scores ``P(digit right) / num_directions`` and top-5 covers every
    direction of the first digit and one of the second.
    """
    logits, labels = _classification_pair(logits, labels)
    if logits.shape[1] % num_directions:
        raise ValueError(f"num_directions must divide the {logits.shape[1]} classes, got {num_directions}")
    probs = np.exp(logits - logits.max(1, keepdims=True))
    digit_probs = probs.reshape(len(labels), -1, num_directions).sum(2)
    digit_rank = _label_ranks(digit_probs, labels // num_directions)
    digit_top1, digit_top2 = float(np.mean(digit_rank < 1)), float(np.mean(digit_rank == 1))
    extra = max(0, 5 - num_directions)  # directions of the second digit within the top 5
    return {"digit_top1": digit_top1, "top1": digit_top1 / num_directions,
            "top5": min(1.0, digit_top1 * min(5, num_directions) / num_directions
                        + digit_top2 * min(extra, num_directions) / num_directions)}


def confusion_matrix(logits, labels):
    """(num_classes, num_classes) int64 counts: row = true class, column = the top-1 prediction."""
    logits, labels = _classification_pair(logits, labels)
    num_classes = logits.shape[1]
    flat = labels * num_classes + logits.argmax(1)
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)
