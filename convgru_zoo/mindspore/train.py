"""Fine-tune a MindSpore forecaster or backbone on Moving MNIST, compiled (GRAPH_MODE) on any device.

The loop mirrors :mod:`convgru_zoo.train`: the same data order (a function of seed and step), the
same losses (per-pixel cross-entropy or MSE on the 10 predicted frames; cross-entropy on
normalised clips), AdamW or SGD with
the same step-wise learning rate. One ``TrainOneStepCell`` is compiled once for the batch shape;
the learning rate is a Parameter set before each step, so changing it does not recompile.
Weights start from a PyTorch state dict (converted) or the model's initialisation.
"""
import json
import time
from pathlib import Path

import mindspore as ms
import numpy as np
from mindspore import Parameter, Tensor, nn, ops

from .. import checkpoint as ckpt
from ..convert import load_mindspore_params, mindspore_to_torch, save_mindspore_checkpoint, torch_to_mindspore
from ..specs import MEAN, NUM_CLASSES, STD
from ..train import CONTEXT_FRAMES, batch_indices, build_dataset, learning_rate


def build_model(task, name):
    if task == "forecast":
        from ..forecasters import create_forecaster
        return create_forecaster(name, framework="mindspore")
    from . import convgru_net
    return getattr(convgru_net, name)(num_classes=NUM_CLASSES, num_frames=CONTEXT_FRAMES)


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
    """Cross-entropy of the backbone's logits on a normalised clip."""

    def __init__(self, model):
        super().__init__(auto_prefix=False)  # the model's parameters keep their names
        self.model = model

    def construct(self, clip, label):
        return ops.cross_entropy(self.model((clip - MEAN[0]) / STD[0]), label)


class ClippedTrainStep(nn.TrainOneStepCell):
    """One optimizer step with the gradients' global norm clipped to ``max_norm`` (as torch's clip_grad_norm_)."""

    def __init__(self, network, optimizer, max_norm):
        super().__init__(network, optimizer)
        self.max_norm = max_norm

    def construct(self, *inputs):
        loss = self.network(*inputs)
        grads = self.grad_no_sens(self.network, self.weights)(*inputs)
        grads = ops.clip_by_global_norm(grads, self.max_norm)
        return ops.depend(loss, self.optimizer(grads))


class FineTuner:
    """``step(batch, lr) -> loss`` with a compiled train step; ``losses`` holds every step's loss."""

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
            raise ValueError(f"optimizer must be adamw or sgd, got {optimizer!r}")
        loss_net = ForecastLoss(model, loss) if task == "forecast" else ClassifyLoss(model)
        self.train_step = ClippedTrainStep(loss_net, opt, grad_clip) if grad_clip > 0 else nn.TrainOneStepCell(
            loss_net, opt)
        self.train_step.set_train()
        self.losses = []

    def step(self, batch, lr):
        self.lr.set_data(Tensor(lr, ms.float32))
        if self.task == "forecast":
            value = self.train_step(Tensor(batch))
        else:
            clips, labels = batch
            value = self.train_step(Tensor(clips), Tensor(labels.astype(np.int32)))
        self.losses.append(float(value.asnumpy()))
        return self.losses[-1]


def finetune(config, mnist, out, init_state=None, progress=True, log=None):
    """Train ``config`` (a :class:`convgru_zoo.train.TrainConfig`) in MindSpore; write the run folder.

    Writes ``metrics.jsonl``, ``model.ckpt`` (MindSpore) and ``model.safetensors`` (PyTorch names,
    so ``eval`` in either framework reads it). Returns the list of losses.
    """
    from tqdm.auto import tqdm

    ms.set_seed(config.seed)
    out = Path(out)
    previous = ms.get_context("mode")
    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        model = build_model(config.task, config.model)
        if init_state is not None:
            load_mindspore_params(model, torch_to_mindspore(init_state))
        tuner = FineTuner(config.task, model, config.optimizer, config.lr, config.weight_decay, config.momentum,
                          config.loss, config.grad_clip)
        dataset = build_dataset(config.task, mnist, "train", config.num_sequences)
        out.mkdir(parents=True, exist_ok=True)
        began = time.perf_counter()
        with open(out / "metrics.jsonl", "w") as metrics:
            for step in tqdm(range(config.steps), desc=f"train {config.model} (mindspore)", unit="step",
                             disable=not progress):
                lr = learning_rate(step, config)
                loss = tuner.step(dataset.batch(batch_indices(step, config.batch_size, len(dataset), config.seed)), lr)
                metrics.write(json.dumps({"step": step + 1, "loss": loss, "lr": lr,
                                          "elapsed_s": time.perf_counter() - began}) + "\n")
                metrics.flush()
        model.set_train(False)
        meta = {"task": config.task, "model": config.model, "framework": "mindspore", "step": config.steps}
        save_mindspore_checkpoint(model, out / "model.ckpt")
        ckpt.save_weights(out / "model.safetensors",
                          {k: _torch_tensor(v) for k, v in mindspore_to_torch(model).items()}, meta)
        ckpt.atomic_write_json(out / "config.json", {**meta, "train": vars(config)})
        return tuner.losses
    finally:
        ms.set_context(mode=previous)


def _torch_tensor(array):
    import torch
    return torch.from_numpy(np.ascontiguousarray(array))
