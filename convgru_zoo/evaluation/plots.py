"""PNG figures of forecasts, training curves and per-step metrics.

Matplotlib is imported only when a figure is drawn, and only its Agg canvas is used (no pyplot,
no display, no global state). Every file is written to a temporary file in the target folder,
then moved into place, so a failed write leaves nothing behind.
"""
import os

import numpy as np

from .._files import atomic_write

DPI = 100
CELL_INCHES = 0.8     # side of one frame in a forecast grid
LABEL_INCHES = 0.9    # left margin of a forecast grid, for the row names
GRID_ROWS = ("input", "truth", "prediction")


def _figure(width, height):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def _png_path(path):
    path = os.fspath(path)
    if not path.lower().endswith(".png"):
        raise ValueError(f"path must name a .png file, got {path!r}")
    return path


def _write_atomically(figure, path):
    """Save ``figure`` as PNG to ``path`` through a temporary file (see :func:`atomic_write`)."""
    atomic_write(path, lambda tmp: figure.savefig(tmp, format="png", dpi=DPI))
    return path


def _clips(name, value):
    """A (N, T, C, H, W) float array from a clip batch or a single (T, C, H, W) clip."""
    value = np.asarray(value, dtype=np.float64)
    if value.ndim == 4:
        value = value[None]
    if value.ndim != 5 or 0 in value.shape or value.shape[2] not in (1, 3):
        raise ValueError(f"{name} must be clips (N, T, C, H, W) or one clip (T, C, H, W) with C 1 or 3, "
                         f"got shape {value.shape}")
    return value


def save_forecast_grid(path, inputs, truth, pred, max_rows=4):
    """PNG of input, truth and prediction frames: a band of three rows per sequence, one column per step.

    ``inputs`` (N, T_in, C, H, W), ``truth`` and ``pred`` (N, T_out, C, H, W), on the 0-1 scale
    (values outside are clipped for display); at most ``max_rows`` sequences are drawn.
    """
    path = _png_path(path)
    bands = [_clips("inputs", inputs), _clips("truth", truth), _clips("pred", pred)]
    if bands[1].shape != bands[2].shape:
        raise ValueError(f"truth and pred must have one shape, got {bands[1].shape} and {bands[2].shape}")
    if (bands[0].shape[0],) + bands[0].shape[2:] != (bands[1].shape[0],) + bands[1].shape[2:]:
        raise ValueError(f"inputs must match truth in N, C, H, W, got {bands[0].shape} and {bands[1].shape}")
    if not isinstance(max_rows, int) or isinstance(max_rows, bool) or max_rows < 1:
        raise ValueError(f"max_rows must be a positive int, got {max_rows!r}")
    sequences = min(max_rows, len(bands[0]))
    columns = max(bands[0].shape[1], bands[1].shape[1])
    rows = sequences * len(GRID_ROWS)
    width, height = LABEL_INCHES + columns * CELL_INCHES, rows * CELL_INCHES
    figure = _figure(width, height)
    for sequence in range(sequences):
        for band, (name, clips) in enumerate(zip(GRID_ROWS, bands)):
            row = sequence * len(GRID_ROWS) + band
            bottom = 1 - (row + 1) * CELL_INCHES / height
            figure.text(0.5 * LABEL_INCHES / width, bottom + 0.5 * CELL_INCHES / height, name,
                        ha="center", va="center", fontsize=8)
            for step, frame in enumerate(clips[sequence]):
                axes = figure.add_axes([(LABEL_INCHES + (step + 0.03) * CELL_INCHES) / width,
                                        bottom + 0.03 * CELL_INCHES / height,
                                        0.94 * CELL_INCHES / width, 0.94 * CELL_INCHES / height])
                image = np.clip(frame.transpose(1, 2, 0), 0, 1)
                axes.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=1,
                            interpolation="nearest", aspect="auto")
                axes.set_axis_off()
    return _write_atomically(figure, path)


def _series(name, steps, values):
    steps, values = np.asarray(steps, np.float64), np.asarray(values, np.float64)
    if steps.ndim != 1 or steps.shape != values.shape or not len(steps):
        raise ValueError(f"series {name!r} must be (steps, values) of one non-empty 1-D length, "
                         f"got shapes {steps.shape} and {values.shape}")
    return steps, values


def save_curves(path, series, title=None, xlabel="step", ylabel=None, log_y=False):
    """PNG of training curves: ``series`` maps a name to ``(steps, values)``, one line each."""
    path = _png_path(path)
    if not isinstance(series, dict) or not series:
        raise ValueError(f"series must be a non-empty dict name -> (steps, values), got {series!r}")
    lines = {name: _series(name, *pair) for name, pair in series.items()}
    figure = _figure(6.4, 4.0)
    axes = figure.add_subplot()
    for name, (steps, values) in lines.items():
        axes.plot(steps, values, label=str(name), marker="." if len(steps) < 30 else None)
    axes.set_xlabel(xlabel)
    if ylabel:
        axes.set_ylabel(ylabel)
    if title:
        axes.set_title(title)
    if log_y:
        axes.set_yscale("log")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    return _write_atomically(figure, path)


def save_metric_curves(path, per_frame, title=None):
    """PNG with one panel per metric of its value at each predicted step (e.g. ``forecast_metrics()["per_frame"]``)."""
    path = _png_path(path)
    if not isinstance(per_frame, dict) or not per_frame:
        raise ValueError(f"per_frame must be a non-empty dict metric -> per-step values, got {per_frame!r}")
    curves = {name: _series(name, np.arange(1, len(np.atleast_1d(v)) + 1), np.atleast_1d(v))
              for name, v in per_frame.items()}
    figure = _figure(3.2 * len(curves), 3.0)
    for panel, (name, (steps, values)) in enumerate(curves.items()):
        axes = figure.add_subplot(1, len(curves), panel + 1)
        axes.plot(steps, values, marker=".")
        axes.set_title(str(name))
        axes.set_xlabel("predicted frame")
        axes.grid(alpha=0.3)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return _write_atomically(figure, path)


def save_accuracy_grid(path, accuracy, row_labels, col_labels, title=None):
    """PNG heat map of accuracies in [0, 1] (rows x columns, e.g. digit x direction), each cell annotated."""
    path = _png_path(path)
    grid = np.asarray(accuracy, np.float64)
    if grid.ndim != 2 or grid.shape != (len(row_labels), len(col_labels)):
        raise ValueError(f"accuracy must be a ({len(row_labels)}, {len(col_labels)}) grid matching the labels, "
                         f"got shape {grid.shape}")
    figure = _figure(1.1 * len(col_labels) + 1.6, 0.42 * len(row_labels) + 1.2)
    axes = figure.add_subplot()
    image = axes.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    for (row, col), value in np.ndenumerate(grid):
        axes.text(col, row, "-" if np.isnan(value) else f"{value:.2f}", ha="center", va="center",
                  color="white" if not value > 0.6 else "black", fontsize=8)
    axes.set_xticks(range(len(col_labels)), [str(c) for c in col_labels])
    axes.set_yticks(range(len(row_labels)), [str(r) for r in row_labels])
    figure.colorbar(image, ax=axes, fraction=0.05)
    if title:
        axes.set_title(title)
    figure.tight_layout()
    return _write_atomically(figure, path)


def save_confusion_matrix(path, counts, class_names, title=None):
    """PNG of a confusion matrix (rows: true class, columns: predicted), coloured by the share of each
    true class and annotated with the counts."""
    path = _png_path(path)
    counts = np.asarray(counts)
    if counts.ndim != 2 or counts.shape != (len(class_names), len(class_names)) or not len(class_names):
        raise ValueError(f"counts must be a non-empty ({len(class_names)}, {len(class_names)}) matrix matching "
                         f"class_names, got shape {counts.shape}")
    totals = counts.sum(1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    side = 0.5 * len(class_names) + 2.4
    figure = _figure(side + 0.6, side)
    axes = figure.add_subplot()
    image = axes.imshow(shares, vmin=0, vmax=1, cmap="Blues")
    for (row, col), value in np.ndenumerate(counts):
        axes.text(col, row, str(value), ha="center", va="center", fontsize=8,
                  color="white" if shares[row, col] > 0.6 else "black")
    names = [str(c) for c in class_names]
    axes.set_xticks(range(len(names)), names, rotation=90 if max(map(len, names)) > 3 else 0)
    axes.set_yticks(range(len(names)), names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    figure.colorbar(image, ax=axes, fraction=0.05, label="share of the true class")
    if title:
        axes.set_title(title)
    figure.tight_layout()
    return _write_atomically(figure, path)
