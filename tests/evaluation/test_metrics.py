"""Forecast metrics (OpenSTL MSE/MAE, Gaussian SSIM, PSNR), streaming accumulation, top-k accuracy."""
import json

import numpy as np
import pytest

from convgru_zoo.evaluation import metrics
from convgru_zoo.evaluation.metrics import PSNR_CAP, ForecastMetrics, TopkAccuracy, forecast_metrics, gaussian_window, mae_per_frame, mse_per_frame, psnr_per_frame, ssim_per_frame, topk_accuracy

C1, C2 = 0.01 ** 2, 0.03 ** 2


def constant_frames(values, size=12):
    """Forecasts (N, T, 1, size, size) where frame (n, t) is the constant values[n][t]."""
    values = np.asarray(values, np.float64)
    return np.broadcast_to(values[:, :, None, None, None], values.shape + (1, size, size)).copy()


def random_pair(shape=(3, 4, 1, 16, 16), seed=0):
    rng = np.random.default_rng(seed)
    true = rng.random(shape)
    return np.clip(true + 0.2 * rng.standard_normal(shape), 0, 1), true


def test_mse_and_mae_sum_over_a_frame_and_average_over_sequences():
    pred = constant_frames([[0.5, 0.0], [0.25, 0.0]])  # 144 pixels a frame
    true = constant_frames([[0.0, 0.0], [0.0, 0.5]])
    np.testing.assert_allclose(mse_per_frame(pred, true), [(144 * 0.25 + 144 * 0.0625) / 2, 144 * 0.25 / 2])
    np.testing.assert_allclose(mae_per_frame(pred, true), [(144 * 0.5 + 144 * 0.25) / 2, 144 * 0.5 / 2])
    metrics = forecast_metrics(pred, true)
    assert metrics["mse"] == pytest.approx(np.mean([22.5, 18.0]))  # the scalar: mean over frames
    assert metrics["num_sequences"] == 2 and metrics["num_frames"] == 2


def test_psnr_by_hand_and_capped_for_identical_frames():
    pred = constant_frames([[0.1, 0.5]])
    true = constant_frames([[0.0, 0.5]])
    np.testing.assert_allclose(psnr_per_frame(pred, true), [20.0, PSNR_CAP])  # 10 log10(1 / 0.01) = 20 dB


def test_ssim_of_constant_frames_by_hand():
    # constant frames: zero variances, so SSIM = (2ab + C1) / (a^2 + b^2 + C1)
    a, b = 0.2, 0.7
    ssim = ssim_per_frame(constant_frames([[a, a]], size=15), constant_frames([[b, a]], size=15))
    np.testing.assert_allclose(ssim, [(2 * a * b + C1) / (a * a + b * b + C1), 1.0])


def test_ssim_is_one_for_equal_frames_symmetric_and_lower_for_noise():
    pred, true = random_pair()
    np.testing.assert_allclose(ssim_per_frame(true, true), 1.0)
    np.testing.assert_allclose(ssim_per_frame(pred, true), ssim_per_frame(true, pred))
    assert np.all(ssim_per_frame(pred, true) < 0.95)
    assert np.all(ssim_per_frame(1 - true, true) < 0)  # an inverted frame anti-correlates


def test_ssim_equals_the_windowed_definition_computed_directly():
    # Wang et al.: a weighted mean/variance/covariance under the 11x11 Gaussian at every valid position
    pred, true = random_pair(shape=(1, 1, 2, 13, 14), seed=3)
    window = np.outer(gaussian_window(), gaussian_window())
    assert window.shape == (11, 11) and window.sum() == pytest.approx(1)
    assert window[5, 5] / window[5, 6] == pytest.approx(np.exp(0.5 / 1.5 ** 2))
    values = []
    for c in range(2):
        for i in range(3):
            for j in range(4):
                x, y = pred[0, 0, c, i:i + 11, j:j + 11], true[0, 0, c, i:i + 11, j:j + 11]
                mx, my = (window * x).sum(), (window * y).sum()
                vx, vy = (window * (x - mx) ** 2).sum(), (window * (y - my) ** 2).sum()
                cov = (window * (x - mx) * (y - my)).sum()
                values.append((2 * mx * my + C1) * (2 * cov + C2) / ((mx ** 2 + my ** 2 + C1) * (vx + vy + C2)))
    np.testing.assert_allclose(ssim_per_frame(pred, true), [np.mean(values)], rtol=1e-12)


def test_ssim_matches_a_scipy_gaussian_filter_reference():
    ndimage = pytest.importorskip("scipy.ndimage")
    pred, true = random_pair(shape=(2, 2, 1, 20, 24), seed=1)

    def reference(x, y):  # skimage's recipe: reflect-filtered maps, cropped by the window radius
        blur = lambda a: ndimage.gaussian_filter(a, 1.5, truncate=3.5, mode="reflect")
        mx, my = blur(x), blur(y)
        vx, vy, cov = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
        s = (2 * mx * my + C1) * (2 * cov + C2) / ((mx ** 2 + my ** 2 + C1) * (vx + vy + C2))
        return s[5:-5, 5:-5].mean()

    expected = [np.mean([reference(pred[n, t, 0], true[n, t, 0]) for n in range(2)]) for t in range(2)]
    np.testing.assert_allclose(ssim_per_frame(pred, true), expected, rtol=1e-12)


def test_streaming_batches_and_merging_equal_one_pass():
    pred, true = random_pair(shape=(7, 3, 1, 12, 12))
    whole = forecast_metrics(pred, true)
    streamed = ForecastMetrics()
    for start, stop in ((0, 3), (3, 5), (5, 7)):
        streamed.update(pred[start:stop], true[start:stop])
    other = ForecastMetrics().update(pred[:4], true[:4]).merge(ForecastMetrics().update(pred[4:], true[4:]))
    for result in (streamed.compute(), other.compute()):
        assert result["num_sequences"] == 7
        for name in ("mse", "mae", "ssim", "psnr"):
            assert result[name] == pytest.approx(whole[name], rel=1e-12)
            np.testing.assert_allclose(result["per_frame"][name], whole["per_frame"][name], rtol=1e-12)
    json.dumps(whole, allow_nan=False)  # JSON-ready: plain floats and lists, no NaN or inf
    assert set(whole["per_frame"]) == {"mse", "mae", "ssim", "psnr"} and len(whole["per_frame"]["ssim"]) == 3


def test_float32_inputs_are_accumulated_in_float64():
    pred, true = random_pair(shape=(2, 2, 1, 64, 64))
    np.testing.assert_allclose(mse_per_frame(pred.astype(np.float32), true.astype(np.float32)),
                               mse_per_frame(pred.astype(np.float32).astype(np.float64),
                                             true.astype(np.float32).astype(np.float64)), rtol=1e-13)


def test_forecast_errors_name_the_argument():
    pred, true = random_pair(shape=(2, 3, 1, 12, 12))
    with pytest.raises(ValueError, match=r"pred and true must have one shape.*\(2, 3, 1, 12, 12\).*\(2, 2, 1, 12, 12\)"):
        mse_per_frame(pred, true[:, :2])
    with pytest.raises(ValueError, match="true must be a non-empty \\(N, T, C, H, W\\)"):
        forecast_metrics(pred, true[0])
    with pytest.raises(ValueError, match="pred must be a non-empty"):
        psnr_per_frame(pred[:0], true[:0])
    with pytest.raises(TypeError, match="pred must hold real numbers"):
        mae_per_frame(pred.astype(str), true)
    with pytest.raises(ValueError, match="at least 11x11 for SSIM, got 10x12"):
        ssim_per_frame(pred[..., :10, :], true[..., :10, :])
    metrics = ForecastMetrics().update(pred, true)
    with pytest.raises(ValueError, match="T=3 frames like the earlier batches"):
        metrics.update(pred[:, :2], true[:, :2])
    with pytest.raises(ValueError, match="call update"):
        ForecastMetrics().compute()


def test_topk_accuracy_by_hand_with_ties_towards_the_lower_class():
    logits = np.array([[0.1, 0.9, 0.0, 0.5],
                       [3.0, 2.0, 1.0, 0.0],
                       [1.0, 1.0, 1.0, 1.0]])
    labels = np.array([3, 2, 1])
    # ranks of the labels: 1 (only 0.9 above), 2, 1 (tie with class 0, which comes first)
    assert topk_accuracy(logits, labels, ks=(1, 2, 3)) == {"top1": 0.0, "top2": 2 / 3, "top3": 1.0}
    assert topk_accuracy(logits, np.array([1, 0, 0]), ks=(1,)) == {"top1": 1.0}
    streamed = TopkAccuracy(ks=(1, 2)).update(logits[:2], labels[:2]).update(logits[2:], labels[2:])
    assert streamed.compute() == {"top1": 0.0, "top2": 2 / 3}


@pytest.mark.parametrize("logits, labels, ks, message", [
    (np.zeros((2, 3)), np.array([0, 1]), (1, 5), "ks must be ints in \\[1, num_classes=3\\]"),
    (np.zeros((2, 3)), np.array([0, 3]), (1,), "labels must lie in \\[0, 3\\)"),
    (np.zeros((2, 3)), np.array([0]), (1,), "labels must be integers of shape \\(2,\\)"),
    (np.zeros((2, 3)), np.array([0.0, 1.0]), (1,), "labels must be integers"),
    (np.zeros(3), np.array([0]), (1,), "logits must be a non-empty \\(N, num_classes\\)"),
    (np.array([[0.0, np.nan]]), np.array([0]), (1,), "logits must be finite"),
])
def test_topk_errors_name_the_argument(logits, labels, ks, message):
    with pytest.raises(ValueError, match=message):
        topk_accuracy(logits, labels, ks=ks)


def test_single_frame_ceiling_is_a_quarter_of_the_digit_accuracy():
    labels = np.array([0 * 4 + 1, 1 * 4 + 3, 2 * 4 + 0, 3 * 4 + 2])  # digit * 4 + direction
    logits = np.full((4, 40), -10.0)
    logits[0, 0 * 4 + 2] = 5.0    # right digit, wrong direction
    logits[1, 1 * 4 + 3] = 5.0    # right digit and direction
    logits[2, 7 * 4 + 0] = 5.0    # wrong digit first ...
    logits[2, 2 * 4 + 1] = 4.0    # ... the right one second
    logits[3, 9 * 4 + 2] = 5.0    # wrong digit, the right one far behind
    ceiling = metrics.single_frame_ceiling(logits, labels, num_directions=4)
    assert ceiling["digit_top1"] == 0.5
    assert ceiling["top1"] == 0.5 / 4
    assert ceiling["top5"] == 0.5 + 0.25 / 4  # all directions of the first digit, one of the second


def test_accuracy_by_group_counts_each_group_and_marks_empty_ones():
    logits = np.eye(4)[[0, 1, 1, 3]]
    per = metrics.accuracy_by_group(logits, np.array([0, 1, 2, 3]), np.array([0, 0, 1, 1]), 3)
    assert per[:2] == [1.0, 0.5] and np.isnan(per[2])


def test_wilson_interval_matches_the_textbook_and_covers_as_promised():
    low, high = metrics.wilson_interval(0.5, 100)  # 50 of 100: the textbook 0.4038-0.5962
    assert (round(low, 4), round(high, 4)) == (0.4038, 0.5962)
    assert metrics.wilson_interval(1.0, 1000)[1] == 1.0 and metrics.wilson_interval(0.0, 10)[0] == 0.0
    rng = np.random.default_rng(0)  # over many test sets of 1000 clips, about 95% of intervals hold the truth
    truth, n = 0.975, 1000
    hits = [(lambda lo_hi: lo_hi[0] <= truth <= lo_hi[1])(metrics.wilson_interval(rng.binomial(n, truth) / n, n))
            for _ in range(4000)]
    assert 0.93 < np.mean(hits) < 0.97
    with pytest.raises(ValueError, match="count an int >= 1, got 1.2, 0"):
        metrics.wilson_interval(1.2, 0)
