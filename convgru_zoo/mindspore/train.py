"""The MindSpore part of the training loop of :mod:`convgru_zoo.train` (:class:`MindSporeLoop`), compiled
(GRAPH_MODE), float32.

The same run as the PyTorch loop: data order, losses (per-pixel cross-entropy or MSE on the 10
predicted frames; cross-entropy on normalised clips), AdamW or SGD, the step-wise learning rate,
gradient clipping by global norm (torch's ``clip_grad_norm_`` rule), the metrics log, periodic
validation, atomic checkpoints and exact resume. One train step is compiled once for the batch
shape; the learning rate is a Parameter set before each step, so changing it does not recompile.

Data parallel runs under MindSpore's own launcher (on CPU too), each rank on its share of every
global batch, gradients averaged, BatchNorm statistics averaged after every step and recomputed on
fixed training batches before each validation and at the end (precise BN), as the PyTorch loop does::

    msrun --worker_num=2 --local_worker_num=2 --join=True $(which convgru-zoo) train --framework mindspore ...

A checkpoint's tensor file holds every Parameter of the train step under its MindSpore name: the
model's and the optimizer's state (moments, step count), so a resumed run continues bit for bit.

GRU-RCN models (``specs.RCN_MODELS``) train as in the PyTorch loop: clips normalised by the model's
pretrained config (its image backbone's ImageNet mean and std), a frozen backbone (``--freeze-backbone``)
outside the optimizer with its BatchNorm statistics untouched, the backbone's learning rate scaled by
``--backbone-lr-scale`` (a parameter group of its own). ``--pretrained-backbone`` starts from timm's
ImageNet weights of the image network, converted (:func:`convgru_zoo.mindspore.convgru_rcn.load_timm_imagenet_weights`),
not from MindCV's: a run's weights are read in PyTorch too (``model.safetensors``, eval, export, release),
and only the network with timm's stem pooling is the same network in both frameworks, where MindCV's
ImageNet weights were trained with MindCV's own pooling (docs/design.md); both loops then start from the
same weights. It needs torch and timm installed, and timm's weights downloaded or in the Hugging Face
cache; ``--no-pretrained-backbone`` or ``--init-weights`` need neither.
"""
import hashlib
import os

import mindspore as ms
import numpy as np
from mindspore import ParameterTuple, Tensor, nn, ops
from safetensors.numpy import load as load_arrays
from safetensors.numpy import save as save_arrays

from .. import run_files as ckpt
from .. import train as core
from ..convert import mindspore_to_torch_arrays, model_image_networks, save_mindspore_checkpoint, torch_to_mindspore
from ..data.datasets import input_norm, normalize
from ..models import create_model
from ..specs import RCN_MODELS
from ..train import CONTEXT_FRAMES, ConfigError, Dist
from .device import device_target
from .weights import assign_strict, load_params


def check(config: core.TrainConfig, runtime: core.Runtime, env: Dist) -> None:
    """What only the MindSpore loop can check: float32, its own launcher, the device."""
    if config.amp not in ("none", "auto"):
        raise ConfigError(f"--amp must be none or auto with --framework mindspore (it trains in float32), "
                          f"got {config.amp!r}")
    if runtime.workers:
        raise ConfigError(f"--workers applies to --framework torch (its DataLoader), got {runtime.workers}")
    if env.world > 1 and os.environ.get("MS_ROLE") not in ("MS_WORKER", "MS_SCHED"):
        raise ConfigError(f"--framework mindspore runs data parallel under msrun (msrun --worker_num=N ... "
                          f"convgru-zoo train ...), got a job of {env.world} processes from another launcher")
    if starts_from_timm_weights(config):
        try:
            import timm  # noqa: F401  (with torch: where the ImageNet weights of the backbone come from)
        except ImportError as err:
            raise ConfigError(f"--framework mindspore starts {config.model} from timm's ImageNet weights of "
                              f"{RCN_MODELS[config.model].backbone}, which needs torch and timm installed ({err}); "
                              f"pass --no-pretrained-backbone (or --init-weights) to train without them") from None
    device_target(runtime.device)


def starts_from_timm_weights(config: core.TrainConfig) -> bool:
    """Whether the run starts a GRU-RCN's backbone from timm's ImageNet weights (see the module docstring)."""
    return config.model in RCN_MODELS and config.pretrained_backbone and not config.init_weights


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
    ``clip_grad_norm_`` rule, so both frameworks clip alike. Data parallel: gradients and the loss
    are averaged over the ranks first.
    """

    def __init__(self, network, optimizer, max_norm=0.0, world=1):
        super().__init__(network, optimizer)
        self.max_norm = max_norm
        self.world = world
        self.all_reduce = ops.AllReduce() if world > 1 else None

    def construct(self, *inputs):
        loss = self.network(*inputs)
        grads = self.grad_reducer(self.grad_no_sens(self.network, self.weights)(*inputs))
        if self.world > 1:
            loss = self.all_reduce(loss) / self.world
        norm = ops.sqrt(ops.addn([ops.reduce_sum(ops.square(g)) for g in grads]))
        if self.max_norm > 0:
            scale = ops.minimum(self.max_norm / (norm + 1e-6), 1.0)
            grads = tuple(g * scale for g in grads)
        return ops.depend(loss, self.optimizer(grads)), norm


class AverageOverRanks(nn.Cell):
    """Replace each of ``params`` by its mean over the data-parallel ranks (BatchNorm's running statistics)."""

    def __init__(self, params, world):
        super().__init__()
        self.params = ParameterTuple(params)
        self.all_reduce = ops.AllReduce()
        self.world = world

    def construct(self):
        for param in self.params:
            ops.assign(param, self.all_reduce(param) / self.world)
        return self.world


def param_groups(model, lr, weight_decay, backbone_lr_scale=None):
    """The trained parameters in groups, as the PyTorch loop's ``param_groups``: given ``backbone_lr_scale``
    (GRU-RCN models), their trained image backbone (``backbone.*``) in a group of its own at
    ``lr * backbone_lr_scale``. Every group names its ``weight_decay``, so every parameter decays, as in torch:
    given a plain list, MindSpore's optimizers exempt names with 'gamma' or 'beta' (BatchNorm's)."""
    trained = model.trainable_params()
    backbone = [p for p in trained if p.name.startswith("backbone.")]
    if backbone_lr_scale is None or not backbone:
        return [{"params": trained, "weight_decay": weight_decay}]
    rest = [p for p in trained if not p.name.startswith("backbone.")]
    return [{"params": rest, "lr": lr, "weight_decay": weight_decay},
            {"params": backbone, "lr": lr * backbone_lr_scale, "weight_decay": weight_decay}]


def _adamw_update(beta1, beta2, eps, bias1, bias2_sqrt, lr, weight_decay, param, exp_avg, exp_avg_sq, grad):
    """torch's AdamW update of one parameter and its moments (``torch.optim.adamw``, one tensor at a time)."""
    exp_avg_new = ops.lerp(exp_avg, grad, 1 - beta1)
    exp_avg_sq_new = exp_avg_sq * beta2 + grad * grad * (1 - beta2)
    denom = ops.sqrt(exp_avg_sq_new) / bias2_sqrt + eps
    param_new = param * (1 - lr * weight_decay) - (lr / bias1) * (exp_avg_new / denom)
    return ops.depend(ops.assign(param, param_new), (ops.assign(exp_avg, exp_avg_new),
                                                     ops.assign(exp_avg_sq, exp_avg_sq_new)))


class AdamW(nn.Optimizer):
    """``torch.optim.AdamW`` in MindSpore: bias-corrected moments, decoupled weight decay ``lr * wd * param``,
    ``eps`` added to the corrected root of the second moment.

    MindSpore's ``nn.AdamWeightDecay`` corrects neither moment: its step is ``(1 - beta1^t) / sqrt(1 - beta2^t)``
    times torch's, 3.2x at step 1 and still 1.26x at step 1000 (docs/design.md); ``mint.optim.AdamW`` has no CPU
    kernel. Parameters as ``nn.Optimizer`` takes them (a list, or groups with ``lr`` and ``weight_decay``); a
    plain list is one group, so every parameter decays, as in torch. Its state is ``exp_avg.*``, ``exp_avg_sq.*``
    and the step count ``global_step``.
    """

    def __init__(self, params, learning_rate=1e-3, weight_decay=0.01, betas=(0.9, 0.999), eps=1e-8):
        if params and not isinstance(params[0], dict):
            params = [{"params": params}]
        super().__init__(learning_rate, params, weight_decay)
        self.beta1, self.beta2 = Tensor(betas[0], ms.float32), Tensor(betas[1], ms.float32)
        self.eps = Tensor(eps, ms.float32)
        self.exp_avg = self._parameters.clone(prefix="exp_avg", init="zeros")
        self.exp_avg_sq = self._parameters.clone(prefix="exp_avg_sq", init="zeros")

    def construct(self, gradients):
        self.assignadd(self.global_step, self.global_step_increase_tensor)
        step = self.global_step.astype(ms.float32).reshape(())
        bias1 = 1 - ops.pow(self.beta1, step)
        bias2_sqrt = ops.sqrt(1 - ops.pow(self.beta2, step))
        moments = (self.exp_avg, self.exp_avg_sq, gradients)
        if self.is_group_lr:
            return self.hyper_map(ops.partial(_adamw_update, self.beta1, self.beta2, self.eps, bias1, bias2_sqrt),
                                  self.get_lr(), self.weight_decay, self._parameters, *moments)
        return self.hyper_map(ops.partial(_adamw_update, self.beta1, self.beta2, self.eps, bias1, bias2_sqrt,
                                          self.get_lr()), self.weight_decay, self._parameters, *moments)


def trained_batchnorms(model):
    """The BatchNorm cells whose statistics training updates: not those a model keeps in eval mode (a
    frozen GRU-RCN backbone's, ``use_batch_statistics=False``)."""
    return [cell for _, cell in model.cells_and_names()
            if isinstance(cell, nn.BatchNorm2d) and cell.use_batch_statistics is not False]


class Trainer:
    """``step(batch, lr) -> (loss, grad_norm)`` through a compiled :class:`TrainStep`, plus its state for
    checkpoints (every Parameter of the step: model and optimizer). With ``world > 1`` (under msrun,
    after ``mindspore.communication.init()``) each call is this rank's share of a data-parallel step.

    Classification clips are normalised by the model's pretrained config (:func:`input_norm`); given
    ``backbone_lr_scale`` (GRU-RCN models), the trained backbone learns at that times the step's learning rate.
    """

    def __init__(self, task, model, optimizer="adamw", lr=1e-3, weight_decay=0.01, momentum=0.9, loss="bce",
                 grad_clip=0.0, world=1, backbone_lr_scale=None):
        self.task, self.model = task, model
        self.mean_std = input_norm(model)
        params = param_groups(model, lr, weight_decay, backbone_lr_scale)
        if optimizer == "adamw":
            opt = AdamW(params, learning_rate=lr, weight_decay=weight_decay)
        elif optimizer == "sgd":
            opt = nn.SGD(params, learning_rate=lr, momentum=momentum, weight_decay=weight_decay)
        else:
            raise ValueError(f"optimizer must be one of {core.OPTIMIZERS}, got {optimizer!r}")
        # The optimizer's own learning-rate Parameters (it copies a rate it is given into one of its own), each
        # with its scale of the schedule's rate: assigned before a step (ops.assign: a PyNative step missed
        # set_data's value), they change the rate without a recompile.
        if opt.is_group_lr:  # one Parameter per group, repeated for each of the group's parameters
            scales = {p.name: backbone_lr_scale if p.name.startswith("backbone.") else 1.0 for p in opt.parameters}
            self.rates = list({rate.name: (rate, scales[param.name])
                               for param, rate in zip(opt.parameters, opt.learning_rate)}.values())
        else:
            self.rates = [(opt.learning_rate, 1.0)]
        loss_net = ForecastLoss(model, loss) if task == "forecast" else ClassifyLoss(model)
        self.train_step = TrainStep(loss_net, opt, grad_clip, world)
        self.train_step.set_train()
        buffers = [stat for norm in trained_batchnorms(model) for stat in (norm.moving_mean, norm.moving_variance)]
        self.average_buffers = AverageOverRanks(buffers, world) if world > 1 and buffers else None

    def inputs(self, batch):
        if self.task == "forecast":
            return (Tensor(batch),)
        clips, labels = batch
        return Tensor(normalize(clips, *self.mean_std)), Tensor(labels.astype(np.int32))

    def step(self, batch, lr):
        for rate, scale in self.rates:
            ops.assign(rate, Tensor(lr * scale, ms.float32))
        loss, norm = self.train_step(*self.inputs(batch))
        if self.average_buffers is not None:
            self.average_buffers()
        return float(loss.asnumpy()), float(norm.asnumpy())

    def recalibrate_batchnorm(self, dataset, batch_size) -> None:
        """Replace every BatchNorm's moving statistics by their plain average over the fixed training batches
        of :func:`convgru_zoo.train.recalibration_batches`, under the current weights, as the PyTorch loop does.

        MindSpore fixes BatchNorm's momentum in its primitive, so each batch starts from zero statistics: one
        training-mode forward pass then leaves ``momentum * batch statistic`` (unbiased variance, as torch's).
        BatchNorms a model keeps in eval mode (a frozen GRU-RCN backbone's) keep theirs, as in the PyTorch loop.
        """
        norms = trained_batchnorms(self.model)
        if not norms:
            return
        sums = [[np.zeros(norm.moving_mean.shape), np.zeros(norm.moving_variance.shape)] for norm in norms]
        batches = core.recalibration_batches(len(dataset), batch_size)
        for indices in batches:
            for norm in norms:
                for stat in (norm.moving_mean, norm.moving_variance):
                    stat.set_data(Tensor(np.zeros(stat.shape, np.float32)))
            self.train_step.network(*self.inputs(dataset.batch(indices)))
            for norm, (mean, var) in zip(norms, sums):
                mean += norm.moving_mean.asnumpy() / norm.momentum
                var += norm.moving_variance.asnumpy() / norm.momentum
        for norm, (mean, var) in zip(norms, sums):
            norm.moving_mean.set_data(Tensor((mean / len(batches)).astype(np.float32)))
            norm.moving_variance.set_data(Tensor((var / len(batches)).astype(np.float32)))

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
            logits = model(Tensor(normalize(clips, *input_norm(model)))).asnumpy().astype(np.float64)
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


class GatherDigests(nn.Cell):
    """Every rank's sha256 of its weights (32 bytes each), to check that data-parallel replicas agree."""

    def __init__(self):
        super().__init__()
        self.all_gather = ops.AllGather()

    def construct(self, digest):
        return self.all_gather(digest)


class MindSporeLoop(core.TrainLoop):
    """The MindSpore part of :func:`convgru_zoo.train.fit`: the model (a GRU-RCN's backbone from timm's ImageNet
    weights, module docstring) and a :class:`Trainer`; batches read in the loop's process."""

    progress_suffix = " (mindspore)"

    def __init__(self, config: core.TrainConfig, runtime: core.Runtime, env: Dist):
        super().__init__(config, runtime, env)
        self.device = ms.get_context("device_target")
        kwargs = core.model_kwargs(config, runtime)
        if config.model in RCN_MODELS:
            kwargs["pretrained"] = False  # not MindCV's ImageNet weights: timm's, below (module docstring)
        model = create_model(config.model, "mindspore", **kwargs)
        if starts_from_timm_weights(config):
            from .convgru_rcn import load_timm_imagenet_weights

            load_timm_imagenet_weights(model, RCN_MODELS[config.model].backbone)
        if config.init_weights:
            try:
                image_networks = model_image_networks(config.model)
                arrays = core.fit_init_weights(config, mindspore_to_torch_arrays(model, image_networks=image_networks))
                load_params(model, torch_to_mindspore(arrays, image_networks=image_networks), repr(config.init_weights))
            except ValueError as err:
                raise ConfigError(f"--init-weights must fit {config.model}: {err}") from None
        self.model = model
        self.trainer = Trainer(config.task, model, config.optimizer, config.lr, config.weight_decay, config.momentum,
                               config.loss, config.grad_clip, env.world,
                               config.backbone_lr_scale if config.model in RCN_MODELS else None)

    @staticmethod
    def seed(seed: int) -> None:
        ms.set_seed(seed)

    def restore(self, path) -> dict:
        """Refuses a checkpoint of MindSpore's ``nn.AdamWeightDecay`` (earlier versions' ``--optimizer adamw``)."""
        meta, data = ckpt.read_checkpoint(path)
        state = load_arrays(data)
        if any(name.startswith("adam_m.") for name in state):
            raise ConfigError(f"--resume continues a run with its own optimizer, but {str(path)!r} holds the "
                              f"state of MindSpore's nn.AdamWeightDecay (adam_m.*, adam_v.*), which earlier versions "
                              f"used for --optimizer adamw: it skips AdamW's bias correction, so the run cannot "
                              f"continue alike with torch's AdamW, used now; start a new run in another --out")
        self.trainer.load_state(state)
        return meta

    def batches(self, train_set, start: int):
        config, env = self.config, self.env
        return (train_set.batch(indices) for indices in core.rank_batches(
            start, config.steps, config.batch_size, len(train_set), config.seed, env.rank, env.world))

    def step(self, batch, lr: float) -> tuple:
        return self.trainer.step(batch, lr)

    def recalibrate(self, train_set) -> None:
        self.trainer.recalibrate_batchnorm(train_set, self.config.batch_size)

    def validate(self, val_set) -> dict:
        return validate(self.config.task, self.model, val_set, self.config.batch_size, self.config.loss)

    def rank_rng_states(self) -> list:
        # The loop draws from no Python or NumPy RNG, so every rank's state is rank 0's.
        return [ckpt.rng_state()] * self.env.world

    def save(self, directory, step: int, sidecar, keep: int) -> None:
        """The tensors: every Parameter of the train step under its MindSpore name (model and optimizer)."""
        if sidecar is not None:
            ckpt.write_checkpoint(directory, step, save_arrays(self.trainer.state()), sidecar, keep)

    def digests(self) -> list:
        digest = weights_digest(self.model)
        if self.env.world == 1:
            return [digest]
        gathered = GatherDigests()(Tensor(np.frombuffer(bytes.fromhex(digest), np.uint8).astype(np.int32)))
        return [bytes(row.astype(np.uint8).tolist()).hex() for row in gathered.asnumpy().reshape(self.env.world, -1)]

    def weights(self) -> dict:
        return mindspore_to_torch_arrays(self.model, image_networks=model_image_networks(self.config.model))

    def write_own_weights(self, out) -> None:
        save_mindspore_checkpoint(self.model, out / "model.ckpt")


def run(config: core.TrainConfig, runtime: core.Runtime, env: Dist, resume_from) -> dict:
    """Train (or resume from ``resume_from``, a checkpoint sidecar) in MindSpore, compiled, under msrun's
    communication if a data-parallel job; return the summary."""
    target, index = device_target(runtime.device)
    if target is not None:
        ms.set_device(target, index)
    previous = ms.get_context("mode")
    ms.set_context(mode=ms.GRAPH_MODE)
    if env.world > 1:
        from mindspore.communication import init

        init()
        ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True)
    try:
        return core.fit(config, runtime, env, resume_from, MindSporeLoop)
    finally:
        ms.set_context(mode=previous)
