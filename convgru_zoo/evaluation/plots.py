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
TITLE_INCHES = 0.4    # top margin of a forecast grid with a title
# Per-step metric panels: (title, y-axis label with the unit), in the convention of .metrics.ForecastMetrics
METRIC_AXES = {
    "mse": ("MSE per frame (lower is better)", "squared error summed over the frame's pixels (0-1 scale)"),
    "mae": ("MAE per frame (lower is better)", "absolute error summed over the frame's pixels (0-1 scale)"),
    "ssim": ("SSIM (higher is better)", "SSIM, Gaussian window (1: identical)"),
    "psnr": ("PSNR (higher is better)", "dB"),
}
BASELINE_LABEL = "repeating the last context frame"


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


def save_forecast_grid(path, inputs, truth, pred, max_rows=4, title=None):
    """PNG of context, truth and forecast frames: a band of three rows per sequence, one column per step,
    each row named with the frames it shows (see :func:`forecast_grid_figure`)."""
    path = _png_path(path)
    return _write_atomically(forecast_grid_figure(inputs, truth, pred, max_rows, title), path)


def forecast_grid_figure(inputs, truth, pred, max_rows=4, title=None):
    """The figure of :func:`save_forecast_grid`.

    ``inputs`` (N, T_in, C, H, W), ``truth`` and ``pred`` (N, T_out, C, H, W), on the 0-1 scale
    (values outside are clipped for display); at most ``max_rows`` sequences are drawn.
    """
    bands = [_clips("inputs", inputs), _clips("truth", truth), _clips("pred", pred)]
    if bands[1].shape != bands[2].shape:
        raise ValueError(f"truth and pred must have one shape, got {bands[1].shape} and {bands[2].shape}")
    if (bands[0].shape[0],) + bands[0].shape[2:] != (bands[1].shape[0],) + bands[1].shape[2:]:
        raise ValueError(f"inputs must match truth in N, C, H, W, got {bands[0].shape} and {bands[1].shape}")
    if not isinstance(max_rows, int) or isinstance(max_rows, bool) or max_rows < 1:
        raise ValueError(f"max_rows must be a positive int, got {max_rows!r}")
    context, future = bands[0].shape[1], bands[1].shape[1]
    names = (f"context\nframes 1-{context}", f"truth\nframes {context + 1}-{context + future}",
             f"forecast\nframes {context + 1}-{context + future}")
    sequences = min(max_rows, len(bands[0]))
    columns = max(context, future)
    rows = sequences * len(names)
    top = TITLE_INCHES if title else 0.0
    width, height = LABEL_INCHES + columns * CELL_INCHES, top + rows * CELL_INCHES
    figure = _figure(width, height)
    if title:
        figure.suptitle(title, y=1 - 0.5 * TITLE_INCHES / height, va="center", fontsize=10)
    for sequence in range(sequences):
        for band, (name, clips) in enumerate(zip(names, bands)):
            row = sequence * len(names) + band
            bottom = 1 - (top + (row + 1) * CELL_INCHES) / height
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
    return figure


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


def save_metric_curves(path, per_frame, title=None, baseline=None):
    """PNG with one panel per metric of its value at each predicted step (see :func:`metric_curves_figure`)."""
    path = _png_path(path)
    return _write_atomically(metric_curves_figure(per_frame, title, baseline), path)


def metric_curves_figure(per_frame, title=None, baseline=None):
    """One panel per metric of ``per_frame`` (e.g. ``forecast_metrics()["per_frame"]``), titled and with its
    unit (:data:`METRIC_AXES`), beside the same metric of ``baseline`` (the ``per_frame`` of repeating the
    last context frame, say) where given: a forecast has learnt motion only where it beats that."""
    if not isinstance(per_frame, dict) or not per_frame:
        raise ValueError(f"per_frame must be a non-empty dict metric -> per-step values, got {per_frame!r}")
    known_first = sorted(per_frame, key=lambda name: list(METRIC_AXES).index(name) if name in METRIC_AXES else
                         len(METRIC_AXES))
    curves = {name: _series(name, np.arange(1, len(np.atleast_1d(per_frame[name])) + 1),
                            np.atleast_1d(per_frame[name])) for name in known_first}
    if baseline is not None:
        if not isinstance(baseline, dict) or not set(curves) <= set(baseline):
            raise ValueError(f"baseline must be a dict holding the metrics of per_frame {sorted(curves)}, got "
                             f"{sorted(baseline) if isinstance(baseline, dict) else type(baseline).__name__}")
        baseline = {name: _series(f"baseline {name}", curves[name][0], np.atleast_1d(baseline[name]))
                    for name in curves}
    figure = _figure(3.6 * len(curves), 3.4)
    for panel, (name, (steps, values)) in enumerate(curves.items()):
        axes = figure.add_subplot(1, len(curves), panel + 1)
        panel_title, unit = METRIC_AXES.get(name, (str(name), None))
        axes.plot(steps, values, marker=".", label="forecast")
        if baseline is not None:
            axes.plot(*baseline[name], marker=".", linestyle="--", color="grey", label=BASELINE_LABEL)
        axes.set_title(panel_title, fontsize=9)
        axes.set_xlabel("predicted frame")
        if unit:
            axes.set_ylabel(unit, fontsize=8)
        axes.grid(alpha=0.3)
        if panel == 0:
            axes.legend(fontsize=7)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure


def save_accuracy_grid(path, accuracy, row_labels, col_labels, title=None, counts=None):
    """PNG heat map of accuracies in [0, 1] (see :func:`accuracy_grid_figure`)."""
    path = _png_path(path)
    return _write_atomically(accuracy_grid_figure(accuracy, row_labels, col_labels, title, counts), path)


def accuracy_grid_figure(accuracy, row_labels, col_labels, title=None, counts=None):
    """Heat map of accuracies in [0, 1] (rows x columns, e.g. digit x direction), each cell annotated with its
    accuracy and, given ``counts`` (clips per cell, same shape), the clips right out of those scored."""
    grid = np.asarray(accuracy, np.float64)
    if grid.ndim != 2 or grid.shape != (len(row_labels), len(col_labels)):
        raise ValueError(f"accuracy must be a ({len(row_labels)}, {len(col_labels)}) grid matching the labels, "
                         f"got shape {grid.shape}")
    if counts is not None:
        counts = np.asarray(counts)
        if counts.shape != grid.shape or not np.issubdtype(counts.dtype, np.integer) or (counts < 0).any():
            raise ValueError(f"counts must be a {grid.shape} grid of clip counts (ints >= 0) like accuracy, got "
                             f"shape {counts.shape} of {counts.dtype}")
    figure = _figure(1.1 * len(col_labels) + 1.9, (0.42 if counts is None else 0.55) * len(row_labels) + 1.2)
    axes = figure.add_subplot()
    image = axes.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    for (row, col), value in np.ndenumerate(grid):
        text = "-" if np.isnan(value) else f"{value:.2f}"
        if counts is not None:
            text += f"\n{round(value * counts[row, col]) if counts[row, col] else 0}/{counts[row, col]}"
        axes.text(col, row, text, ha="center", va="center", color="white" if not value > 0.6 else "black",
                  fontsize=8 if counts is None else 7)
    axes.set_xticks(range(len(col_labels)), [str(c) for c in col_labels])
    axes.set_yticks(range(len(row_labels)), [str(r) for r in row_labels])
    figure.colorbar(image, ax=axes, fraction=0.05, label="accuracy")
    if title:
        axes.set_title(title)
    figure.tight_layout()
    return figure


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
