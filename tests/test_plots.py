"""PNG figures: valid files of the expected size, and no partial file when a write fails."""
import struct

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from convgru_zoo.evaluation import plots  # noqa: E402  (after the skip: matplotlib is an optional extra)


def png_size(path):
    """(width, height) from a PNG's signature and IHDR chunk; fails on anything else."""
    raw = path.read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n" and raw[12:16] == b"IHDR", "not a PNG"
    assert raw[-8:-4] == b"IEND", "PNG is cut short"
    return struct.unpack(">II", raw[16:24])


def clips(n, t, c=1, size=16, seed=0):
    return np.random.default_rng(seed).random((n, t, c, size, size)).astype(np.float32)


def test_forecast_grid_has_a_band_of_three_rows_per_sequence(tmp_path):
    path = tmp_path / "out" / "grid.png"  # missing folders are created
    plots.save_forecast_grid(path, clips(5, 4), clips(5, 6), clips(5, 6), max_rows=2)
    width, height = png_size(path)
    expected_width = (plots.LABEL_INCHES + 6 * plots.CELL_INCHES) * plots.DPI
    expected_height = 2 * 3 * plots.CELL_INCHES * plots.DPI
    assert abs(width - expected_width) <= 1 and abs(height - expected_height) <= 1
    plots.save_forecast_grid(path, clips(1, 3, c=3)[0], clips(1, 3, c=3)[0], clips(1, 3, c=3)[0])  # one RGB clip
    width, height = png_size(path)
    assert width / height == pytest.approx((plots.LABEL_INCHES + 3 * plots.CELL_INCHES) / (3 * plots.CELL_INCHES),
                                           rel=0.01)


def test_curves_and_metric_curves(tmp_path):
    plots.save_curves(tmp_path / "curves.png", {"train": (np.arange(50), np.linspace(1, 0.1, 50)),
                                               "val": ([0, 25, 49], [1.0, 0.5, 0.2])}, log_y=True, ylabel="loss")
    assert png_size(tmp_path / "curves.png") == (640, 400)
    per_frame = {"mse": [30.0, 40.0, 50.0], "ssim": [0.9, 0.8, 0.7]}
    plots.save_metric_curves(tmp_path / "steps.png", per_frame, title="forecast")
    assert png_size(tmp_path / "steps.png") == (640, 300)  # one 3.2-inch panel per metric


@pytest.mark.parametrize("call, message", [
    (lambda p: plots.save_forecast_grid(p, clips(2, 3), clips(2, 4), clips(2, 5)), "truth and pred must have one shape"),
    (lambda p: plots.save_forecast_grid(p, clips(1, 3), clips(2, 4), clips(2, 4)), "inputs must match truth"),
    (lambda p: plots.save_forecast_grid(p, clips(2, 3, c=2), clips(2, 4), clips(2, 4)), "inputs must be clips"),
    (lambda p: plots.save_forecast_grid(p, clips(2, 3), clips(2, 4), clips(2, 4), max_rows=0), "max_rows must be"),
    (lambda p: plots.save_curves(p, {}), "series must be a non-empty dict"),
    (lambda p: plots.save_curves(p, {"loss": ([1, 2], [1.0])}), "series 'loss' must be"),
    (lambda p: plots.save_metric_curves(p, {"mse": []}), "series 'mse' must be"),
    (lambda p: plots.save_curves(p.with_suffix(".jpg"), {"loss": ([1], [1.0])}), "path must name a .png"),
])
def test_bad_arguments_raise_before_anything_is_written(tmp_path, call, message):
    with pytest.raises(ValueError, match=message):
        call(tmp_path / "figure.png")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_leaves_no_partial_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    path = tmp_path / "curves.png"
    path.write_bytes(b"previous figure")

    def broken_savefig(self, target, **kwargs):
        with open(target, "wb") as f:
            f.write(b"\x89PNG half")
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    with pytest.raises(OSError, match="disk full"):
        plots.save_curves(path, {"loss": ([0, 1], [1.0, 0.5])})
    assert path.read_bytes() == b"previous figure"
    assert [p.name for p in tmp_path.iterdir()] == ["curves.png"]
