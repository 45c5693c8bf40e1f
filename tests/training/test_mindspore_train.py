"""MindSpore: eval of converted weights matches PyTorch; a compiled fine-tuning run lowers the loss."""
import json

import numpy as np
import pytest
import torch

ms = pytest.importorskip("mindspore")

from convgru_zoo import cli  # noqa: E402
from convgru_zoo.data.datasets import build_dataset  # noqa: E402
from convgru_zoo.models import create_model  # noqa: E402
from convgru_zoo.run_files import read_weights  # noqa: E402
from helpers import MNIST, needs_mnist  # noqa: E402

pytestmark = [needs_mnist, pytest.mark.slow]  # whole training runs


@pytest.fixture(scope="module")
def torch_run(tmp_path_factory):
    """A tiny forecaster trained 2 steps in PyTorch."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    ms.set_device("CPU")
    out = tmp_path_factory.mktemp("ms") / "torch_run"
    assert cli.main(["train", "--task", "forecast", "--model", "convgru_forecaster_tiny", "--mnist", str(MNIST),
                     "--steps", "2", "--batch-size", "2", "--num-sequences", "4", "--out", str(out),
                     "--no-progress"]) == 0
    yield out
    torch.set_num_threads(threads)


def test_mindspore_eval_of_converted_weights_gives_the_pytorch_metrics(torch_run):
    reports = {}
    for framework in ("torch", "mindspore"):
        # 4 clips in one batch: one MindSpore graph compile
        assert cli.main(["eval", "--weights", str(torch_run), "--mnist", str(MNIST), "--num-sequences", "4",
                         "--batch-size", "4", "--framework", framework, "--no-progress"]) == 0
        reports[framework] = json.loads((torch_run / "eval" / f"eval_forecast_{framework}.json").read_text())["metrics"]
    a, b = reports["torch"], reports["mindspore"]
    for name in ("mse", "mae", "ssim", "psnr"):
        assert b[name] == pytest.approx(a[name], rel=1e-5, abs=1e-6), name
        assert b["per_frame"][name] == pytest.approx(a["per_frame"][name], rel=1e-5, abs=1e-6), name
    assert ms.get_context("mode") == ms.PYNATIVE_MODE  # the compiled mode was only for the evaluation


def test_mindspore_fine_tuning_lowers_the_loss_and_its_weights_load_in_pytorch(torch_run, tmp_path, capsys):
    out = tmp_path / "ms_run"
    # Two clips seen 5 times from the PyTorch weights, compiled once (one batch shape).
    assert cli.main(["train", "--framework", "mindspore", "--init-weights", str(torch_run), "--task", "forecast",
                     "--model", "convgru_forecaster_tiny", "--mnist", str(MNIST), "--steps", "5", "--batch-size", "2",
                     "--num-sequences", "2", "--lr", "1e-3", "--schedule", "constant", "--out", str(out),
                     "--no-progress"]) == 0
    losses = [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    # The untrained head already predicts the frames' mean brightness: a modest fall is the real signal.
    assert len(losses) == 5 and losses[-1] < losses[0], losses
    state, meta = read_weights(out / "model.safetensors")
    assert meta["framework"] == "mindspore" and meta["model"] == "convgru_forecaster_tiny"
    start = read_weights(torch_run / "model.safetensors")[0]
    assert state.keys() == start.keys() and not np.array_equal(state["head.weight"], start["head.weight"])
    assert (out / "model.ckpt").stat().st_size > 0
    assert cli.main(["eval", "--weights", str(out), "--mnist", str(MNIST), "--num-sequences", "2",
                     "--no-progress"]) == 0
    assert "convgru_forecaster_tiny (torch) on 2 clips" in capsys.readouterr().out


def test_mindspore_refuses_what_it_does_not_do(tmp_path, capsys):
    code = cli.main(["train", "--framework", "mindspore", "--amp", "bf16", "--task", "forecast", "--model",
                     "convgru_forecaster_tiny", "--mnist", str(MNIST), "--out", str(tmp_path / "r")])
    assert code == cli.EXIT_USAGE
    assert "--amp must be none or auto with --framework mindspore (it trains in float32), got 'bf16'" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_mindspore_fine_tuning_clips_the_global_gradient_norm():
    from convgru_zoo.mindspore.train import Trainer

    model = create_model("convgru_forecaster_tiny", "mindspore")
    before = [p.asnumpy().copy() for p in model.trainable_params()]
    # Plain SGD at lr 1: the update is minus the clipped gradient, so its global norm is the clip.
    trainer = Trainer("forecast", model, optimizer="sgd", lr=1.0, weight_decay=0.0, momentum=0.0, grad_clip=1e-3)
    clip = np.random.default_rng(0).random((2, 20, 1, 16, 16), dtype=np.float32)
    _, grad_norm = trainer.step(clip, lr=1.0)
    assert grad_norm > 1e-3  # the norm logged is the one before clipping
    update = np.sqrt(sum(((p.asnumpy() - b) ** 2).sum() for p, b in zip(model.trainable_params(), before)))
    assert update == pytest.approx(1e-3, rel=1e-3)


def test_mindspore_backbone_run_ends_with_the_batchnorm_statistics_pytorch_computes(tmp_path):
    # Precise BN in both loops: the MindSpore run's saved statistics are what the PyTorch loop's recalibration
    # computes from the same final weights on the same fixed training batches.
    from convgru_zoo import train as training
    from convgru_zoo.torch import train as torch_training

    out = tmp_path / "ms_cls"
    assert cli.main(["train", "--framework", "mindspore", "--task", "classify", "--model", "convgru_tiny",
                     "--mnist", str(MNIST), "--steps", "2", "--batch-size", "2", "--num-sequences", "6",
                     "--lr", "0.05", "--out", str(out), "--no-progress"]) == 0
    state, _ = read_weights(out / "model.safetensors")
    model = create_model("convgru_tiny")
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    for norm in model.modules():  # statistics from nowhere: what the recalibration must replace
        if isinstance(norm, torch.nn.BatchNorm2d):
            norm.running_mean.fill_(7.0)
            norm.running_var.fill_(7.0)
    train_set = build_dataset("motion_mnist", str(MNIST), "train", 6)
    torch_training.recalibrate_batchnorm("classify", model, train_set, 2, torch.device("cpu"),
                                         torch_training.autocast_for("none", torch.device("cpu")))
    stats = {k: v.numpy() for k, v in model.state_dict().items() if "running_" in k}
    assert len(stats) == 6 and not np.allclose(state["stem.norm.running_mean"], 0)
    for name, value in stats.items():
        np.testing.assert_allclose(state[name], value, rtol=1e-4, atol=1e-5, err_msg=name)
