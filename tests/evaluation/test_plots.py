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
    plots.save_forecast_grid(path, clips(5, 4), clips(5, 6), clips(5, 6), max_rows=2, title="a title on top")
    assert abs(png_size(path)[1] - expected_height - plots.TITLE_INCHES * plots.DPI) <= 1
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
    assert png_size(tmp_path / "steps.png") == (720, 340)  # one 3.6-inch panel per metric


def test_metric_curves_show_the_baseline_titles_and_units():
    per_frame = {"ssim": [0.9, 0.8, 0.7], "mse": [30.0, 40.0, 50.0]}
    baseline = {"mse": [60.0, 70.0, 80.0], "ssim": [0.6, 0.5, 0.4], "psnr": [10.0, 9.0, 8.0]}
    figure = plots.metric_curves_figure(per_frame, title="model on 3 clips", baseline=baseline)
    mse, ssim = figure.axes  # the usual order, whatever the dict's
    assert mse.get_title() == plots.METRIC_AXES["mse"][0] and mse.get_ylabel() == plots.METRIC_AXES["mse"][1]
    assert ssim.get_title() == plots.METRIC_AXES["ssim"][0] and ssim.get_xlabel() == "predicted frame"
    assert [list(line.get_ydata()) for line in mse.get_lines()] == [per_frame["mse"], baseline["mse"]]
    assert [t.get_text() for t in mse.get_legend().get_texts()] == ["forecast", plots.BASELINE_LABEL]
    assert figure.get_suptitle() == "model on 3 clips"
    with pytest.raises(ValueError, match=r"baseline must be a dict holding the metrics of per_frame \['mse', 'ssim'\], "
                                         r"got \['mse'\]"):
        plots.metric_curves_figure(per_frame, baseline={"mse": [1.0, 2.0, 3.0]})


def test_forecast_grid_has_a_title_and_names_each_row_with_its_frames():
    figure = plots.forecast_grid_figure(clips(2, 4), clips(2, 6), clips(2, 6), title="model: 4 context frames")
    assert figure.get_suptitle() == "model: 4 context frames"
    assert [t.get_text() for t in figure.texts if t.get_text() != figure.get_suptitle()] == 2 * [
        "context\nframes 1-4", "truth\nframes 5-10", "forecast\nframes 5-10"]


def test_accuracy_grid_shows_each_cells_clips_right_out_of_scored():
    figure = plots.accuracy_grid_figure([[0.5, 1.0], [float("nan"), 0.0]], ["a", "b"], ["x", "y"],
                                        counts=[[4, 3], [0, 2]])
    assert [t.get_text() for t in figure.axes[0].texts] == ["0.50\n2/4", "1.00\n3/3", "-\n0/0", "0.00\n0/2"]
    with pytest.raises(ValueError, match=r"counts must be a \(2, 2\) grid of clip counts"):
        plots.accuracy_grid_figure([[0.5, 1.0], [0.5, 0.0]], ["a", "b"], ["x", "y"], counts=[[0.5, 1], [1, 1]])


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
