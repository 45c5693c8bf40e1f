"""The transfer experiment's commands end to end (docs/gru-rcn.md, "Transfer"), on tiny settings: an image backbone
trained on single Motion MNIST frames (`--task classify_frames`), a GRU-RCN over it with the backbone frozen
(`--init-weights FRAMES_RUN --freeze-backbone`), convgru_tiny from scratch, every checkpoint kept
(`--keep-checkpoints 0`), then benchmarks/rcn_transfer.py scoring them against CPU-hours into a JSON and a plot.

What a user relies on: the frames are the clips' frames, on the same digit images (the test digits stay unseen);
the frame-trained weights land in the GRU-RCN's ``backbone.*`` exactly and stay there through frozen training;
the scores are of the fixed test set, the GRU-RCN's CPU-hours include the frame training; clear errors for a
frame run of another backbone and for settings the experiment's commands do not support."""
import json
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")

from convgru_zoo import cli, specs  # noqa: E402
from convgru_zoo import run_files as ckpt  # noqa: E402
from convgru_zoo.data.datasets import DATASETS, build_dataset  # noqa: E402
from convgru_zoo.data.moving_mnist import MotionMNIST, MotionMNISTFrames  # noqa: E402
from convgru_zoo.torch.convgru_rcn import load_image_backbone  # noqa: E402
from convgru_zoo.train import ConfigError, Runtime, TrainConfig, check_config, dist_from_env  # noqa: E402
from helpers import MNIST, REPO, needs_mnist  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")
RCN = "convgru_rcn_resnet18"
TINY_RUN = ["--mnist", str(MNIST), "--steps", "2", "--batch-size", "2", "--num-sequences", "8", "--ckpt-every", "1",
            "--keep-checkpoints", "0", "--no-progress"]


@needs_mnist
def test_frames_are_the_clips_frames_on_the_same_digits_labelled_by_digit():
    clips = MotionMNIST(str(MNIST), "train", 16, seq_len=10, channels=3)
    frames = build_dataset("motion_mnist_frames", str(MNIST), "train", 16)
    assert isinstance(frames, MotionMNISTFrames) and DATASETS["motion_mnist_frames"].num_classes == 10
    np.testing.assert_array_equal(frames.digits, clips.digits)  # the clips' split: test digits never seen
    images, digits = frames.batch([3, 14, -1])
    video, labels = clips.batch([3, 14, 15])
    assert images.shape == (3, 3, 64, 64) and images.dtype == np.float32
    np.testing.assert_array_equal(images, video[[0, 1, 2], [3, 4, 5]])  # item k: frame k % 10 of clip k
    np.testing.assert_array_equal(digits, labels // 4)


def test_image_backbone_weights_land_in_the_backbone_strictly():
    torch.manual_seed(0)
    image = timm.create_model("test_resnet", num_classes=10)
    model = timm.create_model("convgru_rcn", backbone="test_resnet", width=8, num_classes=5)
    load_image_backbone(model, image.state_dict())
    own = image.state_dict()
    for name, value in model.backbone.state_dict().items():
        torch.testing.assert_close(value, own[name], rtol=0, atol=0)
    del own[sorted(own)[0]]
    with pytest.raises(RuntimeError, match="Missing key"):
        load_image_backbone(model, own)


@needs_mnist
def test_the_transfer_commands_end_to_end(tmp_path):
    frames, rcn, scratch = tmp_path / "frames", tmp_path / "rcn", tmp_path / "scratch"
    assert cli.main(["train", "--task", "classify_frames", "--model", "resnet18", "--out", str(frames),
                     "--val-every", "2", "--val-sequences", "4", *TINY_RUN]) == 0
    assert cli.main(["train", "--task", "classify", "--model", RCN, "--freeze-backbone", "--init-weights", str(frames),
                     "--out", str(rcn), *TINY_RUN]) == 0
    assert cli.main(["train", "--task", "classify", "--model", "convgru_tiny", "--out", str(scratch), *TINY_RUN]) == 0
    assert len(ckpt.list_checkpoints(rcn / "checkpoints")) == 2 == len(ckpt.list_checkpoints(scratch / "checkpoints"))

    image_state, meta = ckpt.read_weights(frames / "model.safetensors")
    assert (meta["task"], meta["model"]) == ("classify_frames", "resnet18") and image_state["fc.weight"].shape[0] == 10
    rcn_state, _ = ckpt.read_weights(rcn / "model.safetensors")
    backbone = {k[len("backbone."):]: v for k, v in rcn_state.items() if k.startswith("backbone.")}
    assert set(backbone) == set(image_state) - {"fc.weight", "fc.bias"}  # resnet18 keeps its names as a backbone
    for name, value in backbone.items():  # frozen: the frame training's tensors, BatchNorm statistics included
        np.testing.assert_array_equal(value, image_state[name], err_msg=name)

    results = tmp_path / "results" / "transfer.json"
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "rcn_transfer.py"), "score", "--mnist", str(MNIST),
                           "--frames", str(frames), "--rcn", str(rcn), "--scratch", str(scratch), "--num-sequences",
                           "4", "--json", str(results)], capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(results.read_text())
    assert results.with_suffix(".png").is_file()
    assert report["frames"]["model"] == "resnet18" and report["frames"]["steps"] == 2
    assert [p["step"] for p in report["rcn"]["points"]] == [1, 2] == [p["step"] for p in report["scratch"]["points"]]
    first = report["rcn"]["points"][0]
    assert first["cpu_hours"] > report["frames"]["cpu_hours"] > 0  # the frame training counted in
    assert first["batchnorm_recomputed"] and not report["rcn"]["points"][1]["batchnorm_recomputed"]  # the last is
    assert report["test_set"]["num_sequences"] == 4 and len(report["test_set"]["sha256"]) == 64
    assert all(0 <= p["top1"] <= p["top5"] <= 1 for run in ("rcn", "scratch") for p in report[run]["points"])
    equal = report["at_equal_cpu"]
    assert equal["cpu_hours"] == min(report["rcn"]["points"][-1]["cpu_hours"],
                                     report["scratch"]["points"][-1]["cpu_hours"])

    results.with_suffix(".png").unlink()
    again = subprocess.run([sys.executable, str(REPO / "benchmarks" / "rcn_transfer.py"), "plot", "--json",
                            str(results)], capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and results.with_suffix(".png").is_file(), again.stderr[-2000:]

    with pytest.raises(ConfigError, match="--weights must be a video model's, got resnet18's trained with --task "
                                          "classify_frames"):
        from convgru_zoo.evaluation.evaluate import evaluate
        evaluate(frames, mnist=MNIST, out=tmp_path / "eval", progress=False)


@needs_mnist
def test_frame_weights_of_another_backbone_are_refused_naming_both(tmp_path):
    other = ckpt.write_weights(tmp_path / "other.safetensors", {"fc.weight": np.zeros((10, 4), np.float32)},
                               {"task": "classify_frames", "model": "resnet50"})
    config = TrainConfig(task="classify", model=RCN, init_weights=str(other), freeze_backbone=True)
    with pytest.raises(ConfigError, match=r"--init-weights must hold convgru_rcn_resnet18 weights or, trained with "
                                          r"--task classify_frames, its image backbone resnet18's, got resnet50 "
                                          r"weights \(task classify_frames\)"):
        check_config(config, Runtime(mnist=str(MNIST), out=str(tmp_path / "run")), dist_from_env())


@pytest.mark.parametrize("change, message", [
    (dict(framework="mindspore"), "--task classify_frames trains timm's image models: --framework must be torch"),
    (dict(model="convgru_tiny"), r"--model must be one of \[.*'resnet18'.*\] for --task classify_frames"),
    (dict(runtime=dict(keep_checkpoints=-1)), "--keep-checkpoints must be an int >= 0"),
])
@needs_mnist
def test_frame_training_settings_are_checked(tmp_path, change, message):
    runtime = Runtime(mnist=str(MNIST), out=str(tmp_path / "run"), **change.pop("runtime", {}))
    config = TrainConfig(**{"task": "classify_frames", "model": "resnet18", **change})
    with pytest.raises(ConfigError, match=message):
        check_config(config, runtime, dist_from_env())
    assert not (tmp_path / "run").exists()


@needs_mnist
def test_keeping_every_checkpoint_is_a_pytorch_setting(tmp_path):
    config = TrainConfig(task="classify", model="convgru_tiny", framework="mindspore")
    with pytest.raises(ConfigError, match="--keep-checkpoints applies to --framework torch"):
        check_config(config, Runtime(mnist=str(MNIST), out=str(tmp_path), keep_checkpoints=0), dist_from_env())


def test_image_backbones_are_the_rcn_models_backbones():
    from convgru_zoo import models
    assert models.list_models("classify_frames") == sorted({s.backbone for s in specs.RCN_MODELS.values()})
    assert not set(models.list_models("classify_frames")) & set(models.list_models())
    assert models.create_model("resnet18", num_classes=10).get_classifier().out_features == 10
    with pytest.raises(ValueError, match="framework must be 'torch'"):
        models.create_model("resnet18", "mindspore")
