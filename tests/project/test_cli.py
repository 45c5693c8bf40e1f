"""The ``convgru-zoo`` command line: argument errors before work, train -> eval files and numbers."""
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from convgru_zoo import cli
from convgru_zoo.evaluation import metrics
from safetensors.torch import load_file
from convgru_zoo.data.moving_mnist import MotionMNIST, MovingMNIST
from convgru_zoo.models import create_forecaster
from helpers import MNIST, needs_mnist, unpublish

pytestmark = pytest.mark.usefixtures("one_thread")

TRAIN = ["train", "--task", "forecast", "--model", "convgru_forecaster_tiny", "--mnist", str(MNIST),
         "--steps", "2", "--batch-size", "2", "--num-sequences", "4", "--no-progress"]


@pytest.fixture(scope="module")
def forecast_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "forecast"
    assert cli.main(TRAIN + ["--out", str(out), "--val-every", "1", "--val-sequences", "2"]) == 0
    return out


# ---------------------------------------------------------------- argument errors
def exit_code(argv):
    """The status ``convgru-zoo argv`` exits with (argparse exits itself; later checks return it)."""
    try:
        return cli.main(argv)
    except SystemExit as exit_:
        return exit_.code

@pytest.mark.parametrize("args, message", [
    (["--steps", "0"], "argument --steps: expected a positive int, got '0'"),
    (["--lr", "-1"], "argument --lr: expected a finite number > 0, got '-1'"),
    (["--lr", "nan"], "argument --lr: expected a finite number > 0, got 'nan'"),
    (["--batch-size", "two"], "argument --batch-size: expected a positive int, got 'two'"),
    (["--task", "segment"], "argument --task: invalid choice: 'segment'"),
    (["--amp", "fp8"], "argument --amp: invalid choice: 'fp8'"),
    (["--model", "resnet50"], "--model must be one of ['convgru_forecaster', 'convgru_forecaster_tiny', "
                              "'convgru_forecaster_wide'] for --task forecast, got 'resnet50'"),
    (["--amp", "fp16", "--device", "cpu"], "--amp fp16 needs a CUDA device"),
    (["--dataset", "motion_mnist"], "--dataset must be one of ['moving_mnist'] for --task forecast, got 'motion_mnist'"),
    (["--dataset", "kinetics"], "argument --dataset: invalid choice: 'kinetics'"),
    (["--pretrained", "mmnist_motion"], "--pretrained must name published weights: pretrained must be True, False or "
                                        "one of the tags of convgru_forecaster_tiny ['mmnist']"),
])
def test_train_argument_errors_name_argument_expected_and_got_before_any_work(tmp_path, capsys, args, message):
    out = tmp_path / "run"
    assert exit_code(TRAIN + ["--out", str(out)] + args) == cli.EXIT_USAGE
    assert message in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("pretrained", ["mmnist", "convgru_forecaster_tiny.mmnist"])
def test_train_pretrained_takes_the_tag_or_its_full_name(pretrained, tmp_path):
    from convgru_zoo import pretrained as published
    args = cli.build_parser().parse_args(TRAIN + ["--out", str(tmp_path / "run"), "--pretrained", pretrained])
    config, _ = cli.train_config_from(args)
    assert config.init_weights == str(published.shipped_path("convgru_forecaster_tiny.mmnist"))


def test_missing_required_argument_and_bad_mnist_folder(tmp_path, capsys):
    assert exit_code(["train", "--task", "forecast", "--model", "convgru_forecaster_tiny",
                      "--out", str(tmp_path / "r")]) == cli.EXIT_USAGE
    assert "one of the arguments --mnist --data is required" in capsys.readouterr().err
    assert cli.main(["train", "--task", "forecast", "--model", "convgru_forecaster_tiny", "--mnist",
                     str(tmp_path / "none"), "--out", str(tmp_path / "r")]) == cli.EXIT_USAGE
    assert "--mnist must be a folder holding MNIST idx files, got" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_eval_argument_errors(tmp_path, capsys):
    assert cli.main(["eval", "--weights", str(tmp_path / "none.safetensors"), "--mnist", str(MNIST)]) == 2
    assert "--weights must be a run folder or a .safetensors file, got" in capsys.readouterr().err
    (tmp_path / "junk.safetensors").write_bytes(b"not a weights file")
    assert cli.main(["eval", "--weights", str(tmp_path / "junk.safetensors"), "--mnist", str(MNIST)]) == 2
    assert "--weights must be a readable safetensors file" in capsys.readouterr().err


# ---------------------------------------------------------------- train, then eval
@needs_mnist
def test_eval_forecast_reports_openstl_metrics_of_the_model_and_writes_pngs(forecast_run, capsys):
    assert cli.main(["eval", "--weights", str(forecast_run), "--mnist", str(MNIST), "--num-sequences", "6",
                     "--batch-size", "4", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    report = json.loads((forecast_run / "eval" / "eval_forecast_torch.json").read_text())
    assert str(forecast_run / "eval" / "eval_forecast_torch.json") in printed
    for kind in ("frames", "per_step", "training_curves"):
        assert Path(report["files"][kind]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The same numbers computed here from the model and the test clips.
    model = create_forecaster("convgru_forecaster_tiny")
    model.load_state_dict(load_file(forecast_run / "model.safetensors"))
    clips = MovingMNIST(str(MNIST), "test", 6).batch(range(6))
    with torch.no_grad():
        pred = model.eval()(torch.from_numpy(clips[:, :10])).numpy()
    expected = metrics.forecast_metrics(pred, clips[:, 10:])
    got = report["metrics"]
    assert got["num_sequences"] == 6 and len(got["per_frame"]["mse"]) == 10
    for name in ("mse", "mae", "ssim", "psnr"):
        assert got[name] == pytest.approx(expected[name], rel=1e-5)
    repeat_last = np.broadcast_to(clips[:, 9:10], clips[:, 10:].shape)
    assert got["baseline_last_frame"]["mse"] == pytest.approx(metrics.forecast_metrics(repeat_last, clips[:, 10:])["mse"])
    # OpenSTL: summed over a frame's 64x64 pixels, so the per-frame MSE is 4096x the pixel mean
    assert got["mse"] == pytest.approx(np.square(pred - clips[:, 10:]).mean() * 64 * 64, rel=1e-4)


@needs_mnist
def test_eval_on_a_fixed_test_file(forecast_run, tmp_path):
    clips = MovingMNIST(str(MNIST), "test", 3).batch(range(3))
    frames = np.round(clips[:, :, 0] * 255).astype(np.uint8).transpose(1, 0, 2, 3)  # (20, N, 64, 64)
    np.save(tmp_path / "mnist_test_seq.npy", frames)
    assert cli.main(["eval", "--weights", str(forecast_run / "model.safetensors"), "--fixed-test",
                     str(tmp_path / "mnist_test_seq.npy"), "--out", str(tmp_path / "ev"), "--no-progress"]) == 0
    report = json.loads((tmp_path / "ev" / "eval_forecast_torch.json").read_text())
    assert report["data"]["source"] == "fixed" and report["metrics"]["num_sequences"] == 3


@needs_mnist
def test_eval_of_a_weights_file_writes_here_not_beside_the_file(forecast_run, tmp_path, monkeypatch):
    """A weights file may sit in an installed package: without --out its results go to eval/<stem> here."""
    monkeypatch.chdir(tmp_path)
    assert cli.main(["eval", "--weights", str(forecast_run / "model.safetensors"), "--mnist", str(MNIST),
                     "--num-sequences", "2", "--no-progress"]) == 0
    assert (tmp_path / "eval" / "model" / "eval_forecast_torch.json").is_file()
    assert not (forecast_run / "model").exists()


@needs_mnist
def test_train_and_eval_a_backbone_with_a_single_frame_baseline(tmp_path, capsys):
    out = tmp_path / "cls"
    assert cli.main(["train", "--task", "classify", "--model", "convgru_tiny", "--mnist", str(MNIST), "--steps", "1",
                     "--batch-size", "2", "--num-sequences", "2", "--out", str(out), "--no-progress"]) == 0
    assert cli.main(["eval", "--weights", str(out), "--mnist", str(MNIST), "--num-sequences", "4",
                     "--no-progress"]) == 0
    report = json.loads((out / "eval" / "eval_classify_torch.json").read_text())
    m = report["metrics"]
    assert m["num_sequences"] == 4
    # Recompute from the model on the same clips: grey digits as 3 channels, normalised.
    model = __import__("timm").create_model("convgru_tiny", num_classes=40, num_frames=10)
    model.load_state_dict(load_file(out / "model.safetensors"))
    clip, labels = MotionMNIST(str(MNIST), "test", 4, channels=3).batch(range(4))
    assert report["data"]["sha256"] == hashlib.sha256(clip.tobytes() + labels.tobytes()).hexdigest()
    with torch.no_grad():
        logits = model.eval()(torch.from_numpy((clip - 0.5) / 0.5)).numpy()
    assert m["clip"] == metrics.topk_accuracy(logits, labels)
    assert m["single_frame_ceiling"] == metrics.single_frame_ceiling(logits, labels, 4)
    assert m["single_frame_ceiling"]["top1"] <= m["single_frame_ceiling"]["digit_top1"] / 4
    assert sorted(m["per_direction_top1"]) == sorted(["down-right", "down-left", "up-right", "up-left"])
    assert np.array(m["per_class_top1"]).shape == (10, 4)
    assert np.array(m["per_class_count"]).tolist() == np.bincount(labels, minlength=40).reshape(10, 4).tolist()
    assert Path(report["files"]["per_class"]).is_file()
    assert "the best one frame allows" in capsys.readouterr().out


def test_demo_evaluates_the_shipped_weights_and_writes_a_report(published, tmp_path, capsys, monkeypatch):
    from convgru_zoo import specs
    name = "convgru_forecaster_tiny.mmnist"  # the test release; the package's other shipped weights are set aside
    for other in [tag for tag, weights in specs.PRETRAINED.items() if tag != name and weights.ships]:
        unpublish(monkeypatch, other)
    out = tmp_path / "demo"
    assert cli.main(["demo", "--mnist", str(MNIST), "--out", str(out), "--no-progress"]) == 0
    report = json.loads((out / "demo_report.json").read_text())
    assert list(report) == [name] and report[name]["task"] == "forecast" and report[name]["metrics"]["num_sequences"] == cli.DEMO_EVAL_SEQUENCES
    assert (out / name / "eval_forecast_torch_frames.png").is_file()
    printed = capsys.readouterr().out
    assert "repeating the last frame" in printed
    hub_only = [w.name for w in specs.PRETRAINED.values() if not w.ships and w.file_sha256("torch")]
    if hub_only:  # named, with the command that evaluates each in a checkout
        assert f"demo: skipped {' and '.join(hub_only)}: published on the Hugging Face Hub only" in printed
        for tag in hub_only:
            assert f"  convgru-zoo eval --weights model_cards/{tag}/model.safetensors --mnist {MNIST}\n" in printed
    assert cli.main(["demo", "--mnist", str(MNIST), "--out", str(out), "--steps", "3"]) == cli.EXIT_USAGE
