"""The PyTorch part of the training loop of :mod:`convgru_zoo.train` (:class:`TorchLoop`): one process or
many (``torchrun``: DistributedDataParallel over gloo on CPU, NCCL on GPU), float32 or bf16/fp16 autocast.

A checkpoint's tensor file holds the model's and the optimizer's tensors and every rank's torch
RNG state (``model.*``, ``optim.<param index>.<key>``, ``rng.torch.<rank>``, ``rng.cuda.<rank>``);
its sidecar adds the optimizer's hyper-parameters and the grad-scaler state to the shared ones.
"""
import hashlib
import os
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors
from timm.utils import distribute_bn

from .. import run_files as ckpt
from .. import train as core
from ..data.datasets import input_norm
from ..models import create_model
from ..specs import MEAN, RCN_MODELS, STD
from ..train import CONTEXT_FRAMES, ConfigError, Dist
from .convgru_rcn import load_image_backbone
from .device import autocast_for, resolve_amp, resolve_device


# ---------------------------------------------------------------- checks and devices
def check(config: core.TrainConfig, runtime: core.Runtime, env: Dist) -> None:
    """What only the PyTorch loop can check: its launcher, the device and the AMP mode on it."""
    if env.world > 1 and "WORLD_SIZE" not in os.environ:
        raise ConfigError(f"--framework torch runs data parallel under torchrun (torchrun --nproc_per_node=N -m "
                          f"convgru_zoo.cli train ...), got a job of {env.world} processes from another launcher")
    device = resolve_device(runtime.device, env.local_rank)
    if config.amp == "fp16" and device.type != "cuda":
        raise ConfigError(f"--amp fp16 needs a CUDA device (GradScaler), got --device {device}; use --amp bf16 on CPU")


# ---------------------------------------------------------------- data, loss, optimizer
class StepBatchSampler(torch.utils.data.Sampler):
    """This rank's share of the global batches of steps ``start .. stop-1`` (for a DataLoader)."""

    def __init__(self, start, stop, batch_size, n, seed, rank=0, world=1):
        self.start, self.stop, self.batch_size, self.n, self.seed = start, stop, batch_size, n, seed
        self.rank, self.world = rank, world

    def __len__(self):
        return self.stop - self.start

    def __iter__(self):
        return core.rank_batches(self.start, self.stop, self.batch_size, self.n, self.seed, self.rank, self.world)


def normalize(clip: torch.Tensor, mean=MEAN, std=STD) -> torch.Tensor:
    """:func:`convgru_zoo.data.datasets.normalize` for a tensor, on its device."""
    mean = torch.tensor(mean, dtype=torch.float32, device=clip.device).view(-1, 1, 1)
    std = torch.tensor(std, dtype=torch.float32, device=clip.device).view(-1, 1, 1)
    return (clip - mean) / std


def forward_loss(task: str, model, batch, device, autocast, loss="bce"):
    """(loss, outputs) of one batch; the loss in float32 whatever the autocast dtype.

    Forecasts are frames in [0, 1] (a sigmoid): per-pixel binary cross-entropy keeps a gradient
    where MSE through the sigmoid vanishes once the model predicts the black background everywhere
    (the plateau a small forecaster otherwise sits on at loss ~0.04).
    """
    if task == "forecast":
        clip = batch.to(device, non_blocking=True)
        context, future = clip[:, :CONTEXT_FRAMES], clip[:, CONTEXT_FRAMES:]
        with autocast():
            pred = model(context)
        pred = pred.float()
        if loss == "mse":
            return F.mse_loss(pred, future), pred
        return F.binary_cross_entropy(pred, future), pred
    clip, label = batch
    clip, label = clip.to(device, non_blocking=True), label.to(device, non_blocking=True)
    with autocast():
        logits = model(normalize(clip, *input_norm(model)))
    return F.cross_entropy(logits.float(), label), logits


def param_groups(config: core.TrainConfig, model) -> list:
    """The trained parameters; a GRU-RCN's image backbone in a group of its own whose ``lr_scale`` is
    ``config.backbone_lr_scale`` (the loop sets each group's lr to the schedule's times its scale)."""
    trained = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    if config.model not in RCN_MODELS:
        return [{"params": [p for _, p in trained]}]
    backbone = [p for name, p in trained if name.startswith("backbone.")]
    rest = [p for name, p in trained if not name.startswith("backbone.")]
    return [{"params": rest}] + ([{"params": backbone, "lr_scale": config.backbone_lr_scale}] if backbone else [])


def make_optimizer(config: core.TrainConfig, model):
    groups = param_groups(config, model)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)


def as_arrays(state_dict) -> dict:
    """A state dict as ``{name: np.ndarray}`` (CPU copies), for :mod:`convgru_zoo.run_files`."""
    return {k: v.detach().cpu().numpy() for k, v in state_dict.items()}


def weights_digest(model) -> str:
    """sha256 of every parameter and buffer's bytes, in state-dict order."""
    digest = hashlib.sha256()
    for name, value in model.state_dict().items():
        digest.update(name.encode())
        digest.update(value.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


# ---------------------------------------------------------------- checkpoints
def torch_rng_state() -> dict:
    """This process's torch (and CUDA) RNG states."""
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors["cuda"] = torch.cuda.get_rng_state()
    return tensors


def _optimizer_parts(optimizer):
    """Split ``optimizer.state_dict()`` into tensors and a JSON-able remainder."""
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, entry in state["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{index}.{key}"] = value
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _optimizer_state(tensors, json_part):
    state = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value
    for index, entry in json_part["scalars"].items():
        state.setdefault(int(index), {}).update(entry)
    return {"state": state, "param_groups": json_part["param_groups"]}


def save_checkpoint(directory, step, model, optimizer, sidecar, rank_rng_tensors, keep=2) -> Path:
    """Write checkpoint ``step`` (model, optimizer, every rank's torch RNG + ``sidecar``), keeping the newest
    ``keep`` (0: all); return the sidecar path."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    optim_tensors, optim_json = _optimizer_parts(optimizer)
    tensors.update(optim_tensors)
    for rank, rng in enumerate(rank_rng_tensors):
        tensors.update({f"rng.{kind}.{rank}": value for kind, value in rng.items()})
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}  # no shared storage
    return ckpt.write_checkpoint(directory, step, save_tensors(tensors), dict(sidecar, optimizer=optim_json), keep)


def restore_checkpoint(json_path, model, optimizer, rank=0):
    """Restore model and optimizer from a checkpoint; return (sidecar dict, this rank's torch RNG tensors)."""
    meta, data = ckpt.read_checkpoint(json_path)
    tensors = load_tensors(data)
    model.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
    optimizer.load_state_dict(_optimizer_state(tensors, meta["optimizer"]))
    rng = {kind: tensors[f"rng.{kind}.{rank}"] for kind in ("torch", "cuda") if f"rng.{kind}.{rank}" in tensors}
    return meta, rng


def set_torch_rng_state(tensors) -> None:
    torch.set_rng_state(tensors["torch"])
    if "cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["cuda"])


# ---------------------------------------------------------------- the loop
def _gather_objects(env: Dist, obj):
    if env.world == 1:
        return [obj]
    out = [None] * env.world
    dist.all_gather_object(out, obj)
    return out


@torch.no_grad()
def recalibrate_batchnorm(task, model, dataset, batch_size, device, autocast) -> None:
    """Replace every trained BatchNorm's running statistics by their plain average over the fixed training
    batches of :func:`convgru_zoo.train.recalibration_batches`, under the current weights (why: there).
    BatchNorms a model keeps in eval mode in training (a frozen GRU-RCN backbone's) keep theirs."""
    was_training = model.training
    model.train()
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.training]
    if not norms:
        model.train(was_training)
        return
    momenta = [m.momentum for m in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average over the batches below
    for indices in core.recalibration_batches(len(dataset), batch_size):
        items = dataset.batch(indices)
        batch = torch.from_numpy(items) if task == "forecast" else tuple(map(torch.from_numpy, items))
        forward_loss(task, model, batch, device, autocast)
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum
    model.train(was_training)


@torch.no_grad()
def validate(task, model, dataset, batch_size, device, autocast, loss="bce"):
    """Mean loss (and top-1 for classifiers) over ``dataset``, in order."""
    was_training = model.training
    model.eval()
    total, correct, count = 0.0, 0, 0
    for first in range(0, len(dataset), batch_size):
        items = dataset.batch(range(first, min(first + batch_size, len(dataset))))
        batch = torch.from_numpy(items) if task == "forecast" else tuple(map(torch.from_numpy, items))
        value, out = forward_loss(task, model, batch, device, autocast, loss)
        n = (batch if task == "forecast" else batch[0]).shape[0]
        total += value.item() * n
        count += n
        if task != "forecast":
            correct += (out.argmax(-1).cpu() == batch[1]).sum().item()
    model.train(was_training)
    result = {"val_loss": total / count}
    if task != "forecast":
        result["val_top1"] = correct / count
    return result


class TorchLoop(core.TrainLoop):
    """The PyTorch part of :func:`convgru_zoo.train.fit`: the model on its device (DistributedDataParallel
    over the ranks of a torchrun job), AdamW or SGD with the backbone's lr group, autocast and, for fp16,
    a GradScaler; a DataLoader over :class:`StepBatchSampler` (``--workers``)."""

    def __init__(self, config: core.TrainConfig, runtime: core.Runtime, env: Dist):
        super().__init__(config, runtime, env)
        self.device = resolve_device(runtime.device, env.local_rank)
        model = create_model(config.model, **core.model_kwargs(config, runtime))
        if core.init_weights_are_image_backbone(config):
            try:
                load_image_backbone(model, {k: torch.from_numpy(v) for k, v in core.read_init_weights(config).items()})
            except RuntimeError as err:
                raise ConfigError(f"--init-weights must fit {config.model}'s image backbone: {err}") from None
        elif config.init_weights:
            try:
                arrays = core.fit_init_weights(config, as_arrays(model.state_dict()))
                model.load_state_dict({k: torch.from_numpy(v) for k, v in arrays.items()})
            except RuntimeError as err:
                raise ConfigError(f"--init-weights must fit {config.model}: {err}") from None
        self.model = self.net = model.to(self.device)
        self.optimizer = make_optimizer(config, self.model)
        self.amp = resolve_amp(config.amp, self.device)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp == "fp16")
        self.autocast = autocast_for(self.amp, self.device)
        self.threads = torch.get_num_threads() if self.device.type == "cpu" else None

    @staticmethod
    def seed(seed: int) -> None:
        torch.manual_seed(seed)

    def seed_rank(self, seed: int) -> None:
        self.seed(seed)

    def restore(self, path) -> dict:
        meta, rng_tensors = restore_checkpoint(path, self.model, self.optimizer, rank=self.env.rank)
        if meta["scaler"]:
            self.scaler.load_state_dict(meta["scaler"])
        set_torch_rng_state(rng_tensors)
        return meta

    def batches(self, train_set, start: int):
        config, env = self.config, self.env
        sampler = StepBatchSampler(start, config.steps, config.batch_size, len(train_set), config.seed,
                                   env.rank, env.world)
        # Its own generator: creating the loader must not draw from the (checkpointed) global RNG.
        loader = torch.utils.data.DataLoader(train_set, batch_sampler=sampler, num_workers=self.runtime.workers,
                                             pin_memory=self.device.type == "cuda",
                                             generator=torch.Generator().manual_seed(config.seed))
        if env.world > 1:
            # Each rank normalises its own share of the batch; the running statistics are averaged over the
            # ranks after every step instead (step), so every replica holds the same buffers at all times.
            self.net = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                broadcast_buffers=False)
        self.model.train()
        return loader

    def step(self, batch, lr: float) -> tuple:
        config, optimizer, scaler = self.config, self.optimizer, self.scaler
        for group in optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        loss, _ = forward_loss(config.task, self.net, batch, self.device, self.autocast, config.loss)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(
            self.model.parameters(), config.grad_clip if config.grad_clip > 0 else float("inf"))
        scaler.step(optimizer)
        scaler.update()
        logged = loss.detach().clone()
        if self.env.world > 1:
            distribute_bn(self.model, self.env.world, reduce=True)
            dist.all_reduce(logged)
            logged /= self.env.world
        return logged.item(), float(grad_norm)

    def recalibrate(self, train_set) -> None:
        recalibrate_batchnorm(self.config.task, self.model, train_set, self.config.batch_size, self.device,
                              self.autocast)

    def validate(self, val_set) -> dict:
        return validate(self.config.task, self.model, val_set, self.config.batch_size, self.device, self.autocast,
                        self.config.loss)

    def rank_rng_states(self) -> list:
        return _gather_objects(self.env, ckpt.rng_state())

    def save(self, directory, step: int, sidecar, keep: int) -> None:
        """Also every rank's torch RNG (tensors), the optimizer's hyper-parameters and the grad-scaler state."""
        rank_rng_tensors = _gather_objects(self.env, {k: v.cpu() for k, v in torch_rng_state().items()})
        if sidecar is None:
            return
        sidecar = dict(sidecar, scaler=self.scaler.state_dict() if self.scaler.is_enabled() else {})
        save_checkpoint(directory, step, self.model, self.optimizer, sidecar, rank_rng_tensors, keep=keep)

    def digests(self) -> list:
        return _gather_objects(self.env, weights_digest(self.model))

    def weights(self) -> dict:
        return as_arrays(self.model.state_dict())


def run(config: core.TrainConfig, runtime: core.Runtime, env: Dist, resume_from) -> dict:
    """Train (or resume from ``resume_from``, a checkpoint sidecar) in PyTorch, in the process group of a
    torchrun job if any; return the summary."""
    device = resolve_device(runtime.device, env.local_rank)
    if env.world > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend, rank=env.rank, world_size=env.world)
        dist.barrier()  # every rank has checked --out before rank 0 writes into it
    try:
        return core.fit(config, runtime, env, resume_from, TorchLoop)
    finally:
        if env.world > 1 and dist.is_initialized():
            dist.destroy_process_group()
