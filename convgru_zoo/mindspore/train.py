"""The MindSpore training loop of :mod:`convgru_zoo.train`, compiled (GRAPH_MODE), float32.

The same run as the PyTorch loop: data order, losses (per-pixel cross-entropy or MSE on the 10
predicted frames; cross-entropy on normalised clips), AdamW or SGD, the step-wise learning rate,
gradient clipping by global norm (torch's ``clip_grad_norm_`` rule), the metrics log, periodic
validation, atomic checkpoints and exact resume. One train step is compiled once for the batch
shape; the learning rate is a Parameter set before each step, so changing it does not recompile.

A checkpoint's tensor file holds every Parameter of the train step under its MindSpore name: the
model's and the optimizer's state (moments, step count), so a resumed run continues bit for bit.
"""
import hashlib
import json
import time
from pathlib import Path

import mindspore as ms
import numpy as np
from mindspore import Parameter, Tensor, nn, ops
from safetensors.numpy import load as load_arrays
from safetensors.numpy import save as save_arrays
from tqdm.auto import tqdm

from .. import checkpoint as ckpt
from .. import train as core
from ..convert import mindspore_to_torch, save_mindspore_checkpoint, torch_to_mindspore
from ..train import CONTEXT_FRAMES, ConfigError, Dist
from .weights import assign_strict, load_params


def check(config: core.TrainConfig, runtime: core.Runtime, env: Dist) -> None:
    """What only the MindSpore loop can check: float32, its own launcher, the device."""
    if config.amp != "none":
        raise ConfigError(f"--amp must be none with --framework mindspore (it trains in float32), got {config.amp!r}")
    if runtime.workers:
        raise ConfigError(f"--workers applies to --framework torch (its DataLoader), got {runtime.workers}")
    if env.world > 1:
        raise ConfigError(f"--framework mindspore trains in one process: its launcher msrun does not run data "
                          f"parallel on CPU in MindSpore 2.10 (see convgru_zoo.mindspore.train), got a job of "
                          f"{env.world} processes")
    device_target(runtime.device)


def device_target(device: str):
    """``--device`` (auto, cpu, cuda, cuda:N) as MindSpore's (target, index); auto: MindSpore's default."""
    if device == "auto":
        return None, None
    kind, _, index = device.partition(":")
    if kind not in ("cpu", "cuda") or (index and not index.isdigit()):
        raise ConfigError(f"--device must be auto, cpu, cuda or cuda:N, got {device!r}")
    return ("CPU" if kind == "cpu" else "GPU"), (int(index) if index else None)


class ForecastLoss(nn.Cell):
    """Per-pixel cross-entropy (``bce``) or MSE between the forecast of the first 10 frames and the last 10."""

    def __init__(self, model, loss="bce"):
        super().__init__(auto_prefix=False)  # the model's parameters keep their names
        self.model = model
        self.bce = loss == "bce"

    def construct(self, clip):
        future = clip[:, CONTEXT_FRAMES:]
        pred = self.model(clip[:, :CONTEXT_FRAMES])
        if self.bce:
            return ops.binary_cross_entropy(pred, future)
        return ops.mse_loss(pred, future)


class ClassifyLoss(nn.Cell):
    """Cross-entropy of the backbone's logits on a (normalised) clip."""

    def __init__(self, model):
        super().__init__(auto_prefix=False)  # the model's parameters keep their names
        self.model = model

    def construct(self, clip, label):
        return ops.cross_entropy(self.model(clip), label)


class TrainStep(nn.TrainOneStepCell):
    """One optimizer step; returns (loss, the gradients' global norm before clipping).

    With ``max_norm > 0`` the gradients are scaled by ``min(1, max_norm / (norm + 1e-6))``, torch's
    ``clip_grad_norm_`` rule, so both frameworks clip alike.
    """

    def __init__(self, network, optimizer, max_norm=0.0):
        super().__init__(network, optimizer)
        self.max_norm = max_norm

    def construct(self, *inputs):
        loss = self.network(*inputs)
        grads = self.grad_no_sens(self.network, self.weights)(*inputs)
        norm = ops.sqrt(ops.addn([ops.reduce_sum(ops.square(g)) for g in grads]))
        if self.max_norm > 0:
            scale = ops.minimum(self.max_norm / (norm + 1e-6), 1.0)
            grads = tuple(g * scale for g in grads)
        return ops.depend(loss, self.optimizer(grads)), norm


class Trainer:
    """``step(batch, lr) -> (loss, grad_norm)`` through a compiled :class:`TrainStep`, plus its state for
    checkpoints (every Parameter of the step: model and optimizer)."""

    def __init__(self, task, model, optimizer="adamw", lr=1e-3, weight_decay=0.01, momentum=0.9, loss="bce",
                 grad_clip=0.0):
        self.task, self.model = task, model
        self.lr = Parameter(Tensor(lr, ms.float32), name="learning_rate", requires_grad=False)
        params = model.trainable_params()
        if optimizer == "adamw":
            opt = nn.AdamWeightDecay(params, learning_rate=self.lr, weight_decay=weight_decay)
        elif optimizer == "sgd":
            opt = nn.SGD(params, learning_rate=self.lr, momentum=momentum, weight_decay=weight_decay)
        else:
            raise ValueError(f"optimizer must be one of {core.OPTIMIZERS}, got {optimizer!r}")
        loss_net = ForecastLoss(model, loss) if task == "forecast" else ClassifyLoss(model)
        self.train_step = TrainStep(loss_net, opt, grad_clip)
        self.train_step.set_train()

    def inputs(self, batch):
        if self.task == "forecast":
            return (Tensor(batch),)
        clips, labels = batch
        return Tensor(core.normalize(clips)), Tensor(labels.astype(np.int32))

    def step(self, batch, lr):
        self.lr.set_data(Tensor(lr, ms.float32))
        loss, norm = self.train_step(*self.inputs(batch))
        return float(loss.asnumpy()), float(norm.asnumpy())

    def state(self) -> dict:
        """``{name: array}`` of every Parameter of the train step (model, optimizer, learning rate)."""
        return {p.name: p.asnumpy() for p in self.train_step.get_parameters()}

    def load_state(self, arrays) -> None:
        """Set the train step's Parameters from :meth:`state`'s output, strictly (before the first step)."""
        assign_strict({p.name: p for p in self.train_step.get_parameters()}, arrays, "of the checkpoint", "the train step")


def _bce(pred, target):
    """torch's ``binary_cross_entropy`` (logs clamped at -100) in numpy."""
    log_p, log_q = np.maximum(np.log(pred), -100), np.maximum(np.log1p(-pred), -100)
    return float(-(target * log_p + (1 - target) * log_q).mean())


def validate(task, model, dataset, batch_size, loss="bce"):
    """Mean loss (and top-1 for classify) over ``dataset``, in order, the model in eval mode."""
    model.set_train(False)
    total, correct, count = 0.0, 0, 0
    for first in range(0, len(dataset), batch_size):
        items = dataset.batch(range(first, min(first + batch_size, len(dataset))))
        if task == "forecast":
            pred = model(Tensor(np.ascontiguousarray(items[:, :CONTEXT_FRAMES]))).asnumpy().astype(np.float64)
            future = items[:, CONTEXT_FRAMES:]
            value = _bce(pred, future) if loss == "bce" else float(((pred - future) ** 2).mean())
        else:
            clips, labels = items
            logits = model(Tensor(core.normalize(clips))).asnumpy().astype(np.float64)
            shifted = logits - logits.max(-1, keepdims=True)
            log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
            value = float(-log_probs[np.arange(len(labels)), labels].mean())
            correct += int((logits.argmax(-1) == labels).sum())
        n = len(items) if task == "forecast" else len(items[0])
        total += value * n
        count += n
    model.set_train(True)
    result = {"val_loss": total / count}
    if task == "classify":
        result["val_top1"] = correct / count
    return result


def weights_digest(model) -> str:
    """sha256 of every parameter's name and bytes, in the model's order."""
    digest = hashlib.sha256()
    for param in model.get_parameters():
        digest.update(param.name.encode())
        digest.update(np.ascontiguousarray(param.asnumpy()).tobytes())
    return digest.hexdigest()


def run(config: core.TrainConfig, runtime: core.Runtime, env: Dist, resume_from) -> dict:
    """Train (or resume from ``resume_from``, a checkpoint sidecar) in MindSpore; return the summary."""
    target, index = device_target(runtime.device)
    if target is not None:
        ms.set_device(target, index)
    previous = ms.get_context("mode")
    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        return _train(config, runtime, resume_from)
    finally:
        ms.set_context(mode=previous)


def _train(config, runtime, resume_from):
    out = Path(runtime.out)
    ms.set_seed(config.seed)
    np.random.seed(config.seed)
    model = core.build_model(config.task, config.model, framework="mindspore")
    if config.init_weights:
        try:
            load_params(model, torch_to_mindspore(core.read_init_weights(config)), repr(config.init_weights))
        except ValueError as err:
            raise ConfigError(f"--init-weights must fit {config.model}: {err}") from None
    trainer = Trainer(config.task, model, config.optimizer, config.lr, config.weight_decay, config.momentum,
                      config.loss, config.grad_clip)
    start = 0
    if resume_from is not None:
        meta, data = ckpt.read_checkpoint(resume_from)
        trainer.load_state(load_arrays(data))
        ckpt.set_rng_state(meta["rng"][0])
        start = meta["step"]
    metrics_file = core.open_metrics_log(out, start)
    train_set = core.build_dataset(config.task, runtime.mnist, "train", config.num_sequences)
    val_set = core.build_dataset(config.task, runtime.mnist, "val", config.val_sequences) if config.val_every else None
    bar = tqdm(total=config.steps, initial=start, desc=f"train {config.model} (mindspore)", unit="step",
               disable=not runtime.progress, dynamic_ncols=True)
    began = time.perf_counter()
    try:
        for step, indices in enumerate(core.rank_batches(start, config.steps, config.batch_size, len(train_set),
                                                         config.seed), start):
            tick = time.perf_counter()
            lr = core.learning_rate(step, config)
            loss, grad_norm = trainer.step(train_set.batch(indices), lr)
            done = step + 1
            record = {"step": done, "loss": loss, "lr": lr, "grad_norm": grad_norm,
                      "clips_per_s": config.batch_size / (time.perf_counter() - tick),
                      "elapsed_s": time.perf_counter() - began}
            if val_set is not None and done % config.val_every == 0:
                record.update(validate(config.task, model, val_set, config.batch_size, config.loss))
            metrics_file.write(json.dumps(record) + "\n")
            metrics_file.flush()
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4g}", lr=f"{lr:.3g}")
            if done % config.ckpt_every == 0 or done == config.steps:
                sidecar = core.checkpoint_sidecar(config, runtime, done, [ckpt.rng_state()])
                ckpt.write_checkpoint(out / "checkpoints", done, save_arrays(trainer.state()), sidecar)
    finally:
        bar.close()
        metrics_file.close()

    model.set_train(False)
    summary = {"task": config.task, "model": config.model, "steps": config.steps, "world_size": 1,
               "device": ms.get_context("device_target"), "weights_sha256": weights_digest(model),
               "ranks_agree_on_weights": True}
    save_mindspore_checkpoint(model, out / "model.ckpt")
    core.write_final(out, mindspore_to_torch(model), config, summary)
    return summary
