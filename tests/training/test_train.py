"""The training loop in-process: data order, schedule, checks before work, checkpoints, learning."""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from convgru_zoo import run_files as ckpt
from convgru_zoo import specs
from convgru_zoo import train as training
from convgru_zoo.data import datasets
from convgru_zoo.data.datasets import build_dataset, normalize
from convgru_zoo.data.moving_mnist import MotionMNIST
from convgru_zoo.evaluation.evaluate import evaluate
from convgru_zoo.models import create_model
from convgru_zoo.torch import device as torch_device
from convgru_zoo.torch import train as torch_training
from convgru_zoo.train import ConfigError, Dist, Runtime, TrainConfig
from helpers import MNIST, needs_mnist

pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------- data order and schedule
def test_batches_are_a_function_of_seed_and_step_and_cover_each_epoch():
    n, batch = 10, 4
    first_epoch = [i for step in range(5) for i in training.batch_indices(step, batch, n, seed=7)][:n]
    assert sorted(first_epoch) == list(range(n))
    assert training.batch_indices(3, batch, n, 7) == training.batch_indices(3, batch, n, 7)
    assert training.batch_indices(0, batch, n, 7) != training.batch_indices(0, batch, n, 8)
    second = [i for step in range(5) for i in training.batch_indices(step, batch, n, 7)][n:2 * n]
    assert sorted(second) == list(range(n)) and second != first_epoch  # reshuffled per epoch


def test_ranks_split_each_global_batch_without_overlap():
    world = 2
    sampler_parts = [list(torch_training.StepBatchSampler(3, 6, 4, 50, 1, rank, world)) for rank in range(world)]
    for step, parts in zip(range(3, 6), zip(*sampler_parts)):
        merged = sorted(parts[0] + parts[1])
        assert merged == sorted(training.batch_indices(step, 4, 50, 1))
        assert not set(parts[0]) & set(parts[1])


def test_learning_rate_warmup_then_cosine_or_constant():
    cosine = TrainConfig(task="forecast", model="m", steps=110, lr=1.0, warmup_steps=10, min_lr=0.1)
    assert training.learning_rate(0, cosine) == pytest.approx(0.1)
    assert training.learning_rate(9, cosine) == pytest.approx(1.0)
    assert training.learning_rate(10, cosine) == pytest.approx(1.0)
    assert training.learning_rate(60, cosine) == pytest.approx(0.55)
    assert training.learning_rate(110, cosine) == pytest.approx(0.1)
    rates = [training.learning_rate(s, cosine) for s in range(10, 110)]
    assert all(a >= b for a, b in zip(rates, rates[1:]))
    constant = TrainConfig(task="forecast", model="m", steps=50, lr=0.3, schedule="constant")
    assert {training.learning_rate(s, constant) for s in range(50)} == {0.3}


# ---------------------------------------------------------------- checks before any work
def _config(**kw):
    return TrainConfig(**{**dict(task="forecast", model="convgru_forecaster_tiny", steps=2, batch_size=2,
                                 num_sequences=4, ckpt_every=1), **kw})


@needs_mnist
@pytest.mark.parametrize("change, env, message", [
    (dict(batch_size=3), Dist(0, 2, 0), "--batch-size must be divisible by the number of processes (2), got 3"),
    (dict(amp="fp16"), Dist(), "--amp fp16 needs a CUDA device"),
    (dict(model="resnet50"), Dist(), "--model must be one of"),
    (dict(task="classify"), Dist(), "--model must be one of"),
    (dict(dataset="motion_mnist"), Dist(), "--dataset must be one of ['moving_mnist'] for --task forecast, got 'motion_mnist'"),
    (dict(framework="mindspore", amp="bf16"), Dist(), "--amp must be none or auto with --framework mindspore"),
    (dict(init_weights="/no/such/weights.safetensors"), Dist(), "--init-weights must be"),
])
def test_bad_settings_are_refused_naming_the_argument(tmp_path, change, env, message):
    with pytest.raises(ConfigError, match=None) as err:
        training.check_config(_config(**change), Runtime(mnist=str(MNIST), out=str(tmp_path / "r")), env)
    assert message in str(err.value)
    assert not (tmp_path / "r").exists()


def test_missing_mnist_folder_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"--mnist must be a folder .* got '.*nowhere'"):
        training.check_config(_config(), Runtime(mnist=str(tmp_path / "nowhere"), out=str(tmp_path / "r")), Dist())


# ---------------------------------------------------------------- whole runs
@needs_mnist
def test_forecaster_training_lowers_the_loss_and_writes_a_self_describing_run(tmp_path):
    out = tmp_path / "run"
    config = _config(steps=8, num_sequences=2, lr=3e-3, schedule="constant", grad_clip=1.0, ckpt_every=3)
    summary = training.train(config, Runtime(mnist=str(MNIST), out=str(out), progress=False))
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(1, 9))
    # Two clips seen 8 times: the forecast must beat both its start (the head's prior) and the best
    # constant frame (their mean brightness), the plateau a forecaster that learns nothing sits on.
    future = torch.from_numpy(build_dataset("moving_mnist", str(MNIST), "train", 2).batch([0, 1]))[:, 10:]
    mean_frame_loss = F.binary_cross_entropy(future.mean().expand_as(future), future).item()
    assert records[-1]["loss"] < min(records[0]["loss"], mean_frame_loss)
    assert all(np.isfinite(r["grad_norm"]) and r["lr"] == 3e-3 for r in records)
    state, meta = ckpt.read_weights(out / "model.safetensors")
    assert meta["task"] == "forecast" and meta["model"] == "convgru_forecaster_tiny" and meta["step"] == "8"
    assert summary["weights_sha256"] == json.loads((out / "train_summary.json").read_text())["weights_sha256"]
    # checkpoints at 6 and 8 kept (keep=2), 3 pruned; the last equals the final weights
    assert [p.name for p in ckpt.list_checkpoints(out / "checkpoints")] == ["step_0000006.json", "step_0000008.json"]
    model = create_model("convgru_forecaster_tiny")
    optimizer = torch_training.make_optimizer(config, model)
    meta, _ = torch_training.restore_checkpoint(ckpt.latest_checkpoint(out / "checkpoints"), model, optimizer)
    assert meta["step"] == 8 and meta["data_position"]["next_sample"] == 16
    assert all(np.array_equal(model.state_dict()[k].numpy(), v) for k, v in state.items())
    assert optimizer.state_dict()["state"][0]["step"].item() == 8

    with pytest.raises(ConfigError, match="--out must be a new or empty run folder"):
        training.train(config, Runtime(mnist=str(MNIST), out=str(out), progress=False))
    with pytest.raises(ConfigError, match=r"--lr: the run has 0.003, got 0.1"):
        training.train(_config(steps=8, num_sequences=2, lr=0.1, schedule="constant", grad_clip=1.0, ckpt_every=3),
                       Runtime(mnist=str(MNIST), out=str(out), progress=False, resume=True))


@needs_mnist
def test_backbone_trains_with_bf16_autocast_and_sgd(tmp_path):
    out = tmp_path / "cls"
    config = TrainConfig(task="classify", model="convgru_tiny", steps=2, batch_size=2, num_sequences=4,
                         optimizer="sgd", lr=0.05, amp="bf16", grad_clip=1.0, val_every=2, val_sequences=4)
    training.train(config, Runtime(mnist=str(MNIST), out=str(out), progress=False))
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 2 and all(np.isfinite(r["loss"]) for r in records)
    state, meta = ckpt.read_weights(out / "model.safetensors")
    assert meta["task"] == "classify"
    assert state["head.fc.weight"].shape == (specs.NUM_CLASSES, specs.BACKBONES["convgru_tiny"].dims[-1])
    assert all(v.dtype in (np.float32, np.int64) for v in state.values())  # autocast kept fp32 weights
    torch.manual_seed(config.seed)
    model = create_model("convgru_tiny")
    assert not np.array_equal(model.state_dict()["head.fc.weight"].numpy(), state["head.fc.weight"]), "SGD moved"
    # The validation logged at the last step is that of the final weights, recomputed here.
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    clips, labels = build_dataset("motion_mnist", str(MNIST), "val", 4).batch(range(4))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model.eval()(torch.from_numpy(normalize(clips))).float()
    assert records[-1]["val_top1"] == (logits.argmax(-1).numpy() == labels).mean()
    assert records[-1]["val_loss"] == pytest.approx(F.cross_entropy(logits, torch.from_numpy(labels)).item(), rel=1e-3)


@needs_mnist
def test_batchnorm_statistics_are_those_of_the_final_weights(tmp_path, one_thread):
    # Exponential running averages trail fast-moving weights (measured: 13% validation top-1 from them, 94%
    # from fresh statistics); the run ends with statistics recomputed under its final weights.
    out = tmp_path / "cls"
    config = TrainConfig(task="classify", model="convgru_tiny", steps=3, batch_size=2, num_sequences=8, lr=0.05)
    training.train(config, Runtime(mnist=str(MNIST), out=str(out), progress=False))
    state, _ = ckpt.read_weights(out / "model.safetensors")
    model = create_model("convgru_tiny")
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    for norm in model.modules():  # statistics from nowhere: what the recalibration must replace
        if isinstance(norm, torch.nn.BatchNorm2d):
            norm.running_mean.fill_(7.0)
    train_set = build_dataset("motion_mnist", str(MNIST), "train", 8)
    torch_training.recalibrate_batchnorm("classify", model, train_set, 2, torch.device("cpu"),
                                         torch_training.autocast_for("none", torch.device("cpu")))
    for name, value in model.state_dict().items():
        if "running_" in name:
            np.testing.assert_allclose(value.numpy(), state[name], rtol=1e-5, atol=1e-6, err_msg=name)
    assert not np.allclose(state["stem.norm.running_mean"], 0)


class ParityMotionMNIST(MotionMNIST):
    """Motion MNIST labelled by the digit's parity and direction: a dataset with classes of its own (8)."""

    def batch(self, indices):
        clips, labels = super().batch(indices)
        directions = len(specs.DIRECTIONS)
        return clips, labels // directions % 2 * directions + labels % directions


@needs_mnist
def test_a_dataset_is_one_registry_entry_that_training_and_evaluation_read(tmp_path, monkeypatch):
    monkeypatch.setitem(datasets.DATASETS, "parity_motion", datasets.Dataset(
        "classify", lambda root, split, n, augment=False: ParityMotionMNIST(root, split, n, channels=3, augment=augment),
        grid=(("even", "odd"), specs.DIRECTIONS), grid_axes=("parity", "direction")))
    out = tmp_path / "parity"
    config = TrainConfig(task="classify", model="convgru_tiny", dataset="parity_motion", steps=1, batch_size=2,
                         num_sequences=2)
    training.train(config, Runtime(mnist=str(MNIST), out=str(out), progress=False))
    state, _ = ckpt.read_weights(out / "model.safetensors")
    assert state["head.fc.weight"].shape[0] == 8  # the head has the dataset's classes
    report = evaluate(out, mnist=str(MNIST), num_sequences=4, progress=False)  # on the run's own dataset
    assert report["data"]["dataset"] == "parity_motion" and report["metrics"]["num_sequences"] == 4
    assert list(report["metrics"]["per_direction_top1"]) == list(specs.DIRECTIONS)
    assert np.shape(report["metrics"]["per_class_top1"]) == (2, 4)
    with pytest.raises(ConfigError, match="--weights must fit convgru_tiny"):  # 40 classes: not this run's
        evaluate(out, mnist=str(MNIST), num_sequences=4, progress=False, dataset="motion_mnist", out=tmp_path / "e")
    with pytest.raises(ConfigError, match=r"--dataset must be one of \['motion_mnist', 'parity_motion'\] for "
                                          r"--task classify, got 'moving_mnist'"):
        evaluate(out, mnist=str(MNIST), dataset="moving_mnist", out=tmp_path / "e")
    assert not (tmp_path / "e").exists()


@needs_mnist
def test_resume_takes_a_field_the_run_predates_as_its_default(tmp_path):
    out = tmp_path / "old"
    training.train(_config(steps=1), Runtime(mnist=str(MNIST), out=str(out), progress=False))
    sidecar = ckpt.latest_checkpoint(out / "checkpoints")
    record = json.loads(sidecar.read_text())
    del record["config"]["dataset"], record["config"]["augment"]  # a run from before --dataset and --augment
    sidecar.write_text(json.dumps(record))
    runtime = Runtime(mnist=str(MNIST), out=str(out), progress=False, resume=True)
    assert training.check_resume(_config(steps=1), runtime, Dist()) == sidecar
    assert training.check_resume(_config(steps=1, dataset="moving_mnist"), runtime, Dist()) == sidecar  # the task's own
    with pytest.raises(ConfigError, match=r"--augment: the run has False, got True"):
        training.check_resume(_config(steps=1, augment=True), runtime, Dist())


def test_a_checkpoint_without_its_sidecar_or_with_a_bad_hash_is_not_used(tmp_path):
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.ones(1, 2)).sum().backward()
    optimizer.step()
    folder = tmp_path / "checkpoints"
    good = torch_training.save_checkpoint(folder, 1, model, optimizer, {"config": {}}, [torch_training.torch_rng_state()])
    assert ckpt.latest_checkpoint(folder) == good
    (folder / "step_0000002.safetensors").write_bytes(b"half-written")  # killed before its sidecar
    assert ckpt.latest_checkpoint(folder) == good
    bad = torch_training.save_checkpoint(folder, 3, model, optimizer, {"config": {}}, [torch_training.torch_rng_state()])
    with open(bad.with_suffix(".safetensors"), "r+b") as f:
        f.seek(-1, 2)
        f.write(b"\x7f")
    assert ckpt.latest_checkpoint(folder) == good
    assert not list(folder.glob(".*.tmp"))
    fresh = torch.nn.Linear(2, 2)
    fresh_opt = torch.optim.AdamW(fresh.parameters())
    torch_training.restore_checkpoint(good, fresh, fresh_opt)
    assert torch.equal(fresh.weight, model.weight)
    assert torch.equal(fresh_opt.state_dict()["state"][0]["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"])


def test_resume_keeps_the_metrics_of_checkpointed_steps_only(tmp_path):
    log = tmp_path / "metrics.jsonl"
    log.write_text('{"step": 1, "loss": 1.0}\n{"step": 2, "loss": 0.9}\n{"step": 3, "loss": 0.8}\n{"step": 4, "lo')
    kept = training.metrics_lines_upto(log, 2)  # killed mid-line after checkpoint 2
    assert [json.loads(line)["step"] for line in kept] == [1, 2]


@needs_mnist
def test_forecaster_trains_with_bf16_autocast(tmp_path):
    training.train(_config(steps=1, amp="bf16"), Runtime(mnist=str(MNIST), out=str(tmp_path / "bf16"), progress=False))
    records = [json.loads(line) for line in (tmp_path / "bf16" / "metrics.jsonl").read_text().splitlines()]
    assert np.isfinite(records[0]["loss"]) and np.isfinite(records[0]["grad_norm"])
    state, _ = ckpt.read_weights(tmp_path / "bf16" / "model.safetensors")
    assert all(v.dtype == np.float32 for v in state.values())  # autocast kept fp32 weights


@needs_mnist
@pytest.mark.parametrize("native", [True, False])
def test_amp_auto_trains_in_bf16_only_where_the_cpu_computes_it_natively(tmp_path, monkeypatch, native):
    monkeypatch.setattr(torch_device.machine, "native_bf16", lambda: native)
    autocasts = []
    autocast_for = torch_training.autocast_for
    monkeypatch.setattr(torch_training, "autocast_for", lambda amp, device: autocasts.append(amp) or autocast_for(amp, device))
    out = tmp_path / "auto"
    training.train(_config(steps=1, amp="auto"), Runtime(mnist=str(MNIST), out=str(out), progress=False))
    summary = json.loads((out / "train_summary.json").read_text())
    assert autocasts == ["bf16" if native else "none"]  # the autocast the steps ran under
    assert summary["amp"] == autocasts[0]
    assert json.loads((out / "config.json").read_text())["train"]["amp"] == "auto"  # the recipe's choice, not the machine's


@needs_mnist
def test_each_resumed_segment_records_its_threads_and_precision_for_the_release(tmp_path, monkeypatch):
    """A run resumed on another machine: --amp auto picks bf16 there, float32 here, on other threads; the
    release counts each segment's hours at its own threads and names both precisions."""
    from convgru_zoo.publishing import release

    config, out = _config(steps=3, amp="auto"), tmp_path / "moved"
    step = torch_training.TorchLoop.step

    def stopped_at_third_step(loop, batch, lr):
        if loop.optimizer.state_dict()["state"] and loop.optimizer.state_dict()["state"][0]["step"].item() == 2:
            raise KeyboardInterrupt  # killed after checkpoint 2
        return step(loop, batch, lr)

    monkeypatch.setattr(torch_device.machine, "native_bf16", lambda: True)
    monkeypatch.setattr(torch_training.TorchLoop, "step", stopped_at_third_step)
    with pytest.raises(KeyboardInterrupt):
        training.train(config, Runtime(mnist=str(MNIST), out=str(out), progress=False))
    monkeypatch.setattr(torch_device.machine, "native_bf16", lambda: False)
    monkeypatch.setattr(torch_training.TorchLoop, "step", step)
    torch.set_num_threads(2)  # one_thread restores the count
    training.train(config, Runtime(mnist=str(MNIST), out=str(out), progress=False, resume=True))

    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [(r["step"], r.get("threads"), r.get("amp")) for r in records] == [(1, 1, "bf16"), (2, None, None),
                                                                               (3, 2, "none")]
    spent = release.training_time((out / "metrics.jsonl").read_text().splitlines())
    assert (spent["segments"], spent["segment_threads"], spent["segment_amp"]) == (2, [1, 2], ["bf16", "none"])
    last_count = {"machine": {"torch_threads": 2}}  # train_summary.json: the last segment's machine
    assert release.threads_per_segment(spent, None, last_count, out) == [1, 2]
    assert release.training_cost(spent, [1, 2], world=1, gpu=False)["cpu_hours"] == pytest.approx(
        spent["segment_hours"][0] + 2 * spent["segment_hours"][1])
