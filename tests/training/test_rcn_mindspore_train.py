"""GRU-RCN training in MindSpore (``convgru-zoo train --framework mindspore``), then eval and stream.

What a user relies on: the run starts the backbone from resnet18's ImageNet weights (timm's, served offline
from a Hugging Face cache the test fills, converted) and ``--freeze-backbone`` leaves them byte-identical,
BatchNorm statistics included, while everything else trains; the run's weights score alike in PyTorch and
MindSpore eval; clips are normalised by the model's config; the schedule's learning rate and
``--backbone-lr-scale`` reach the optimizer; ``stream --framework mindspore`` runs the model frame by frame.
"""
import json

import numpy as np
import pytest

ms = pytest.importorskip("mindspore")
torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")
pytest.importorskip("mindcv")
ms.set_device("CPU")

from safetensors.numpy import load as load_arrays  # noqa: E402

from convgru_zoo import cli, convert, run_files, specs  # noqa: E402
from convgru_zoo.data.datasets import normalize  # noqa: E402
from convgru_zoo.models import create_model  # noqa: E402

ARCH = "convgru_rcn_resnet18"
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))  # resnet18's mean and std


def served_resnet18(seed=2):
    """timm's resnet18 with random weights and random BatchNorm statistics (fresh ones are 0 and 1)."""
    torch.manual_seed(seed)
    state = timm.create_model("resnet18").state_dict()
    for name, value in state.items():
        if name.endswith("running_mean"):
            value.uniform_(-0.5, 0.5)
        elif name.endswith("running_var"):
            value.uniform_(0.5, 1.5)
    return state


def weights_at(checkpoint):
    """The model's parameters (MindSpore names) in a MindSpore run's checkpoint."""
    _, data = run_files.read_checkpoint(checkpoint)
    return load_arrays(data)


@pytest.mark.slow
def test_frozen_backbone_run_keeps_imagenet_weights_trains_the_rest_and_evaluates_alike(
        short_motion_clips, hub_cache, tmp_path, capsys, one_thread):
    served = served_resnet18()
    hub_cache("resnet18", served)
    run = tmp_path / "run"
    data = ["--data", str(short_motion_clips), "--num-frames", "2", "--image-size", "32"]
    assert cli.main(["train", "--framework", "mindspore", "--task", "classify", "--model", ARCH, "--freeze-backbone",
                     *data, "--steps", "2", "--batch-size", "2", "--num-sequences", "4", "--val-every", "2",
                     "--val-sequences", "2", "--ckpt-every", "1", "--out", str(run), "--no-progress"]) == 0
    trained, meta = run_files.read_weights(run / "model.safetensors")
    assert (meta["model"], meta["framework"]) == (ARCH, "mindspore")
    backbone = {k[len("backbone."):]: v for k, v in trained.items() if k.startswith("backbone.")}
    assert backbone.keys() == served.keys() - {"fc.weight", "fc.bias"}  # (run files keep scalars as (1,) arrays)
    for name, value in backbone.items():  # after training and the final BatchNorm recalibration
        np.testing.assert_array_equal(value.ravel(), served[name].numpy().ravel(), err_msg=name)
    first = weights_at(run_files.list_checkpoints(run / "checkpoints")[0])
    last = convert.torch_to_mindspore(trained, image_networks=convert.model_image_networks(ARCH))
    rest = [name for name in last if not name.startswith("backbone.")]
    # 3 projections, 3 ConvGRUs of 3 gates and the head, weights and biases
    spec = specs.RCN_MODELS[ARCH]  # independent levels: one classifier over every level's state
    assert len(rest) == 26 and trained["head.fc.weight"].shape == (2, spec.width * len(spec.out_indices))
    changed = [name for name in rest if not np.array_equal(first[name], last[name])]
    assert changed == rest  # every parameter outside the backbone trained from step 1 to step 2

    reports = {}
    for framework in ("torch", "mindspore"):
        assert cli.main(["eval", "--weights", str(run), "--data", str(short_motion_clips), "--framework", framework,
                         "--no-progress"]) == 0
        reports[framework] = json.loads((run / "eval" / f"eval_classify_{framework}.json").read_text())["metrics"]
    assert reports["mindspore"] == reports["torch"]  # top-1/top-5 per clip and per class: the same ranking

    frames = next(p for p in (short_motion_clips / "left").iterdir() if p.is_dir())
    capsys.readouterr()
    assert cli.main(["stream", ARCH, str(frames), "--framework", "mindspore", "--random-weights", "--size", "32"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("frame ")]
    assert [line.split(":")[0] for line in lines] == [f"frame {t}" for t in range(4)]


def test_clips_are_normalised_by_the_model_and_learning_rates_reach_the_optimizer():
    """Plain SGD: a step at learning rate 0 changes nothing, and with ``backbone_lr_scale=0`` a step at 1 trains
    all but the backbone (whose BatchNorm statistics, not frozen, still follow the batch)."""
    from convgru_zoo.mindspore.train import Trainer

    model = create_model(ARCH, "mindspore", width=8, num_classes=2)
    trainer = Trainer("classify", model, optimizer="sgd", lr=1.0, weight_decay=0.0, momentum=0.0,
                      backbone_lr_scale=0.0)
    clips = np.random.default_rng(0).random((2, 2, 3, 32, 32), dtype=np.float32)
    batch = (clips, np.array([0, 1]))
    np.testing.assert_allclose(trainer.inputs(batch)[0].asnumpy(), normalize(clips, *IMAGENET), atol=1e-6)

    def trained():
        return {p.name: p.asnumpy().copy() for p in model.trainable_params()}

    before = trained()
    trainer.step(batch, lr=0.0)
    assert all(np.array_equal(value, before[name]) for name, value in trained().items())
    trainer.step(batch, lr=1.0)
    after = trained()
    moved = sorted(name for name in after if not np.array_equal(after[name], before[name]))
    assert moved == sorted(name for name in after if not name.startswith("backbone."))


@pytest.mark.parametrize("freeze", [True, False], ids=["frozen", "trained"])
def test_a_training_step_has_the_pytorch_loops_loss_and_gradient_norm(freeze):
    """The same weights and batch through both loops' training step (normalisation, loss, gradients, BatchNorm
    in training mode unless frozen): the loss and the global gradient norm they log agree."""
    from convgru_zoo.mindspore.train import Trainer
    from convgru_zoo.mindspore.weights import load_params
    from convgru_zoo.torch import train as torch_training

    torch.manual_seed(3)
    model = create_model(ARCH, width=8, num_classes=2, freeze_backbone=freeze).train()
    net = create_model(ARCH, "mindspore", width=8, num_classes=2, freeze_backbone=freeze)
    load_params(net, convert.torch_to_mindspore(model.state_dict(), image_networks=convert.model_image_networks(ARCH)))
    clips = np.random.default_rng(1).random((2, 2, 3, 32, 32), dtype=np.float32)
    labels = np.array([0, 1])
    loss, _ = torch_training.forward_loss("classify", model, (torch.from_numpy(clips), torch.from_numpy(labels)),
                                          torch.device("cpu"), torch_training.autocast_for("none", torch.device("cpu")))
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), float("inf")).item()
    got_loss, got_norm = Trainer("classify", net, backbone_lr_scale=1.0).step((clips, labels), lr=1e-3)
    assert got_loss == pytest.approx(loss.item(), rel=1e-5)
    assert got_norm == pytest.approx(norm, rel=1e-4)


def test_a_pretrained_backbone_without_timm_is_named_before_any_work(short_motion_clips, tmp_path, monkeypatch,
                                                                     capsys):
    import sys

    monkeypatch.setitem(sys.modules, "timm", None)  # import timm raises ImportError
    out = tmp_path / "run"
    assert cli.main(["train", "--framework", "mindspore", "--task", "classify", "--model", ARCH, "--data",
                     str(short_motion_clips), "--num-frames", "2", "--out", str(out)]) == cli.EXIT_USAGE
    assert ("--framework mindspore starts convgru_rcn_resnet18 from timm's ImageNet weights of resnet18, which needs "
            "torch and timm installed") in capsys.readouterr().err
    assert not out.exists()


def test_timm_weights_need_the_timm_pooled_stem():
    from convgru_zoo.mindspore.convgru_rcn import load_timm_imagenet_weights

    model = create_model(ARCH, "mindspore", width=8, stem_pool="mindcv")
    with pytest.raises(ValueError, match=r"timm's weights need .*stem_pool='timm'.*got stem_pool='mindcv'"):
        load_timm_imagenet_weights(model, "resnet18")
