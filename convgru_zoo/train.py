"""Train a ConvGRU forecaster (Moving MNIST, 10 -> 10 frames) or backbone (Motion MNIST, 40 classes).

One loop for one process or many (``torchrun``: DistributedDataParallel over gloo on CPU, NCCL on
GPU). What makes a run reproducible and resumable:

- the data order is a function of (seed, step): global sample ``k`` is element ``k % N`` of the
  epoch ``k // N`` permutation drawn from ``seed`` and that epoch, and each rank takes every
  ``world``-th sample of a step's global batch, so any world size sees the same global batches;
- the learning rate is a function of the step, not of a scheduler object's history;
- a checkpoint holds model, optimizer, grad-scaler, the RNG states of every rank and the step, so
  ``--resume`` after a kill continues exactly where the uninterrupted run would be.

Only rank 0 writes: ``metrics.jsonl`` (one JSON line per step, plus validation lines),
``checkpoints/``, and at the end ``model.safetensors`` + ``config.json`` (what ``eval`` reads).
"""
import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from timm.utils import distribute_bn
from tqdm.auto import tqdm

from . import checkpoint as ckpt
from .specs import INPUT_SIZE, MEAN, NUM_CLASSES, STD

TASKS = ("forecast", "classify")
OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("cosine", "constant")
AMP_MODES = ("none", "bf16", "fp16")
FRAMEWORKS = ("torch", "mindspore")
FORECAST_LOSSES = ("bce", "mse")
CONTEXT_FRAMES = 10  # forecast: frames in, and frames out; classify: clip length


@dataclass
class TrainConfig:
    """Everything that decides a run's result. Runtime choices (device, workers) live elsewhere."""
    task: str
    model: str
    framework: str = "torch"      # mindspore: compiled fine-tuning (convgru_zoo.mindspore.train)
    init_weights: str = ""        # start from these weights (run folder or safetensors file)
    steps: int = 1000
    batch_size: int = 16          # global: split over the ranks of a torchrun job
    num_sequences: int = 10000    # training clips generated (the epoch size)
    seed: int = 0
    loss: str = "bce"             # forecast: bce (per-pixel cross-entropy, Srivastava et al.) or mse
    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.01
    momentum: float = 0.9         # sgd only
    schedule: str = "cosine"
    warmup_steps: int = 0
    min_lr: float = 0.0
    amp: str = "none"
    grad_clip: float = 0.0        # 0: no clipping (the norm is still logged)
    ckpt_every: int = 100
    val_every: int = 0            # 0: no validation during training
    val_sequences: int = 64


@dataclass
class Runtime:
    """Where and how a run executes; may differ between a run and its resumption."""
    mnist: str
    out: str
    device: str = "auto"
    workers: int = 0
    progress: bool = True
    resume: bool = False


class ConfigError(ValueError):
    """A bad argument, found before any work is done."""


# ---------------------------------------------------------------- data order and schedule
def _epoch_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(n)


def batch_indices(step: int, batch_size: int, n: int, seed: int):
    """Dataset indices of the global batch of ``step``: a function of (seed, step) only."""
    out, cache = [], {}
    for k in range(step * batch_size, (step + 1) * batch_size):
        epoch = k // n
        if epoch not in cache:
            cache[epoch] = _epoch_permutation(seed, epoch, n)
        out.append(int(cache[epoch][k % n]))
    return out


class StepBatchSampler(torch.utils.data.Sampler):
    """This rank's share of the global batches of steps ``start .. stop-1`` (for a DataLoader)."""

    def __init__(self, start, stop, batch_size, n, seed, rank=0, world=1):
        self.start, self.stop, self.batch_size, self.n, self.seed = start, stop, batch_size, n, seed
        self.rank, self.world = rank, world

    def __len__(self):
        return self.stop - self.start

    def __iter__(self):
        for step in range(self.start, self.stop):
            yield batch_indices(step, self.batch_size, self.n, self.seed)[self.rank::self.world]


def learning_rate(step: int, config: TrainConfig) -> float:
    """Linear warmup over ``warmup_steps``, then constant or cosine decay to ``min_lr``."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    if config.schedule == "constant":
        return config.lr
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return config.min_lr + (config.lr - config.min_lr) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


# ---------------------------------------------------------------- models, data, loss
def build_model(task: str, name: str, **kwargs):
    if task == "forecast":
        from .forecasters import create_forecaster
        return create_forecaster(name, framework="torch", **kwargs)
    import timm  # importing it registers the convgru_* backbones (convgru_zoo._zoo_registration)
    return timm.create_model(name, num_classes=NUM_CLASSES, num_frames=CONTEXT_FRAMES, **kwargs)


def model_names(task: str):
    if task == "forecast":
        from .forecasters import list_forecasters
        return list_forecasters()
    import timm
    return timm.list_models("convgru*")


def build_dataset(task: str, mnist: str, split: str, num_sequences: int):
    from .data.moving_mnist import MotionMNIST, MovingMNIST
    if task == "forecast":
        return MovingMNIST(mnist, split, num_sequences, seq_len=2 * CONTEXT_FRAMES)
    return MotionMNIST(mnist, split, num_sequences, seq_len=CONTEXT_FRAMES, channels=INPUT_SIZE[0])


def normalize(clip):
    """Backbone input: [0, 1] frames (numpy or torch) normalised per channel by the pretrained configs' mean/std."""
    mean = np.reshape(np.float32(MEAN), (-1, 1, 1))
    std = np.reshape(np.float32(STD), (-1, 1, 1))
    if isinstance(clip, np.ndarray):
        return (clip - mean) / std
    return (clip - torch.from_numpy(mean).to(clip.device)) / torch.from_numpy(std).to(clip.device)


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
        logits = model(normalize(clip))
    return F.cross_entropy(logits.float(), label), logits


def make_optimizer(config: TrainConfig, model):
    if config.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                           weight_decay=config.weight_decay)


# ---------------------------------------------------------------- processes and devices
@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self):
        return self.rank == 0


def dist_from_env() -> Dist:
    """The torchrun environment (RANK, WORLD_SIZE, LOCAL_RANK), or a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Dist()
    return Dist(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))


def resolve_device(name: str, env: Dist) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device must name an available device, got {name!r} but CUDA is not available")
        if device.index is None:
            device = torch.device("cuda", env.local_rank)
    return device


def autocast_for(amp: str, device: torch.device):
    """A no-argument context factory: bf16/fp16 autocast on ``device`` or nothing."""
    if amp == "none":
        return lambda: torch.autocast(device.type, enabled=False)
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return lambda: torch.autocast(device.type, dtype=dtype)


def init_weights_state(config: TrainConfig):
    """The state dict ``--init-weights`` names (a run folder or a safetensors file), checked."""
    path = Path(config.init_weights)
    if path.is_dir():
        path = path / "model.safetensors"
    if not path.is_file():
        raise ConfigError(f"--init-weights must be a run folder with model.safetensors or a .safetensors file, "
                          f"got {config.init_weights!r} (not found)")
    try:
        state, meta = ckpt.load_weights(path)
    except ValueError as err:
        raise ConfigError(f"--init-weights must be a readable safetensors file: {err}") from None
    if meta.get("model", config.model) != config.model:
        raise ConfigError(f"--init-weights must hold {config.model} weights, got {meta['model']} weights in {str(path)!r}")
    return state


# ---------------------------------------------------------------- checks before any work
def check_config(config: TrainConfig, runtime: Runtime, env: Dist) -> torch.device:
    """Every check that can fail before work starts; returns the device."""
    if config.task not in TASKS:
        raise ConfigError(f"--task must be one of {TASKS}, got {config.task!r}")
    names = model_names(config.task)
    if config.model not in names:
        raise ConfigError(f"--model must be one of {names} for --task {config.task}, got {config.model!r}")
    if not Path(runtime.mnist).is_dir():
        raise ConfigError(f"--mnist must be a folder holding MNIST idx files, got {runtime.mnist!r} (not a folder)")
    for name in ("steps", "batch_size", "num_sequences", "ckpt_every", "val_sequences"):
        value = getattr(config, name)
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be a positive int, got {value!r}")
    for name in ("warmup_steps", "val_every", "seed"):
        if getattr(config, name) < 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(config, name)!r}")
    for name in ("lr", "weight_decay", "min_lr", "grad_clip", "momentum"):
        value = getattr(config, name)
        if not math.isfinite(value) or value < 0 or (name == "lr" and value == 0):
            rule = "> 0" if name == "lr" else ">= 0"
            raise ConfigError(f"--{name.replace('_', '-')} must be a finite number {rule}, got {value!r}")
    if config.loss not in FORECAST_LOSSES:
        raise ConfigError(f"--loss must be one of {FORECAST_LOSSES}, got {config.loss!r}")
    if config.optimizer not in OPTIMIZERS:
        raise ConfigError(f"--optimizer must be one of {OPTIMIZERS}, got {config.optimizer!r}")
    if config.schedule not in SCHEDULES:
        raise ConfigError(f"--schedule must be one of {SCHEDULES}, got {config.schedule!r}")
    if config.amp not in AMP_MODES:
        raise ConfigError(f"--amp must be one of {AMP_MODES}, got {config.amp!r}")
    if config.batch_size % env.world:
        raise ConfigError(f"--batch-size must be divisible by the number of processes ({env.world}), "
                          f"got {config.batch_size}")
    if runtime.workers < 0:
        raise ConfigError(f"--workers must be >= 0, got {runtime.workers!r}")
    if config.framework not in FRAMEWORKS:
        raise ConfigError(f"--framework must be one of {FRAMEWORKS}, got {config.framework!r}")
    if config.framework == "mindspore":
        for flag, bad in (("--amp", config.amp != "none"), ("--resume", runtime.resume), ("torchrun", env.world > 1)):
            if bad:
                raise ConfigError(f"--framework mindspore fine-tunes in one process in float32 without "
                                  f"checkpoints, got {flag}")
    if config.init_weights:
        init_weights_state(config)
    device = resolve_device(runtime.device, env)
    if config.amp == "fp16" and device.type != "cuda":
        raise ConfigError(f"--amp fp16 needs a CUDA device (GradScaler), got --device {device}; use --amp bf16 on CPU")
    return device


def check_resume(config: TrainConfig, runtime: Runtime, env: Dist):
    """The checkpoint to resume from (or None); refuse to mix two different runs in one folder."""
    out = Path(runtime.out)
    latest = ckpt.latest_checkpoint(out / "checkpoints")
    if not runtime.resume:
        if latest is not None or (out / "metrics.jsonl").exists():
            raise ConfigError(f"--out must be a new or empty run folder, got {str(out)!r} which already holds "
                              f"a run; pass --resume to continue it or choose another folder")
        return None
    if latest is None:
        return None
    sidecar = json.loads(latest.read_text())
    if sidecar["world_size"] != env.world:
        raise ConfigError(f"--resume needs the run's number of processes (torchrun --nproc_per_node), "
                          f"{sidecar['world_size']}, got {env.world}")
    saved = sidecar["config"]
    wanted = dataclasses.asdict(config)
    changed = {k: (saved.get(k), v) for k, v in wanted.items() if saved.get(k) != v}
    if changed:
        listed = "; ".join(f"--{k.replace('_', '-')}: the run has {a!r}, got {b!r}" for k, (a, b) in changed.items())
        raise ConfigError(f"--resume continues the run in {str(out)!r} with its own settings, but {listed}")
    return latest


# ---------------------------------------------------------------- the loop
def _gather_objects(env: Dist, obj):
    if env.world == 1:
        return [obj]
    out = [None] * env.world
    dist.all_gather_object(out, obj)
    return out


def weights_digest(model) -> str:
    """sha256 of every parameter and buffer's bytes, in state-dict order."""
    import hashlib
    digest = hashlib.sha256()
    for name, value in model.state_dict().items():
        digest.update(name.encode())
        digest.update(value.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _metrics_lines_upto(path: Path, step: int):
    if not path.exists():
        return []
    kept = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:  # the half-written last line of a killed run
            continue
        if record["step"] <= step:
            kept.append(line)
    return kept


@torch.no_grad()
def validate(task, model, dataset, batch_size, device, autocast, loss="bce"):
    """Mean loss (and top-1 for classify) over ``dataset``, in order."""
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
        if task == "classify":
            correct += (out.argmax(-1).cpu() == batch[1]).sum().item()
    model.train(was_training)
    result = {"val_loss": total / count}
    if task == "classify":
        result["val_top1"] = correct / count
    return result


def train(config: TrainConfig, runtime: Runtime) -> dict:
    """Run (or resume) training; return the summary rank 0 writes to ``train_summary.json``."""
    env = dist_from_env()
    device = check_config(config, runtime, env)
    resume_from = check_resume(config, runtime, env)
    if config.framework == "mindspore":
        from .mindspore.train import finetune
        init = init_weights_state(config) if config.init_weights else None
        losses = finetune(config, runtime.mnist, runtime.out, init, progress=runtime.progress)
        summary = {"task": config.task, "model": config.model, "steps": config.steps, "framework": "mindspore",
                   "first_loss": losses[0], "last_loss": losses[-1]}
        ckpt.atomic_write_json(Path(runtime.out) / "train_summary.json", summary)
        return summary
    if env.world > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend, rank=env.rank, world_size=env.world)
        dist.barrier()  # every rank has checked --out before rank 0 writes into it
    try:
        return _train(config, runtime, env, device, resume_from)
    finally:
        if env.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def _train(config, runtime, env, device, resume_from):
    out = Path(runtime.out)
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    model = build_model(config.task, config.model)
    if config.init_weights:
        try:
            model.load_state_dict(init_weights_state(config))
        except RuntimeError as err:
            raise ConfigError(f"--init-weights must fit {config.model}: {err}") from None
    model = model.to(device)
    optimizer = make_optimizer(config, model)
    scaler = torch.amp.GradScaler(device.type, enabled=config.amp == "fp16")
    start = 0
    if resume_from is not None:
        meta, rng_tensors = ckpt.load_checkpoint(resume_from, model, optimizer, rank=env.rank)
        start = meta["step"]
        if meta["scaler"]:
            scaler.load_state_dict(meta["scaler"])
        ckpt.set_rng_state(meta["rng"][env.rank], rng_tensors)
    else:
        # Each rank its own stream (for dropout and the like); the model init above is shared.
        torch.manual_seed(config.seed * 1000 + env.rank + 1)
    if env.main:
        out.mkdir(parents=True, exist_ok=True)
        lines = _metrics_lines_upto(out / "metrics.jsonl", start)
        ckpt.atomic_write_bytes(out / "metrics.jsonl", "".join(line + "\n" for line in lines).encode())

    train_set = build_dataset(config.task, runtime.mnist, "train", config.num_sequences)
    val_set = (build_dataset(config.task, runtime.mnist, "val", config.val_sequences)
               if config.val_every and env.main else None)
    sampler = StepBatchSampler(start, config.steps, config.batch_size, len(train_set), config.seed,
                               env.rank, env.world)
    # Its own generator: creating the loader must not draw from the (checkpointed) global RNG.
    loader = torch.utils.data.DataLoader(train_set, batch_sampler=sampler, num_workers=runtime.workers,
                                         pin_memory=device.type == "cuda",
                                         generator=torch.Generator().manual_seed(config.seed))
    net = model
    if env.world > 1:
        # Each rank normalises its own share of the batch; the running statistics are averaged over the
        # ranks after every step instead (below), so every replica holds the same buffers at all times.
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None, broadcast_buffers=False)
    autocast = autocast_for(config.amp, device)
    model.train()

    bar = tqdm(total=config.steps, initial=start, desc=f"train {config.model}", unit="step",
               disable=not (runtime.progress and env.main), dynamic_ncols=True)
    metrics_file = open(out / "metrics.jsonl", "a") if env.main else None
    began = time.perf_counter()
    try:
        for step, batch in enumerate(loader, start):
            tick = time.perf_counter()
            lr = learning_rate(step, config)
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss, _ = forward_loss(config.task, net, batch, device, autocast, config.loss)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            grad_norm = torch.nn.utils.clip_grad_norm_(
                model.parameters(), config.grad_clip if config.grad_clip > 0 else float("inf"))
            scaler.step(optimizer)
            scaler.update()
            if env.world > 1:
                distribute_bn(model, env.world, reduce=True)
            logged = loss.detach().clone()
            if env.world > 1:
                dist.all_reduce(logged)
                logged /= env.world
            done = step + 1
            if env.main:
                seconds = time.perf_counter() - tick
                record = {"step": done, "loss": logged.item(), "lr": lr, "grad_norm": float(grad_norm),
                          "clips_per_s": config.batch_size / seconds, "elapsed_s": time.perf_counter() - began}
                if val_set is not None and done % config.val_every == 0:
                    record.update(validate(config.task, model, val_set, config.batch_size, device, autocast,
                                                   config.loss))
                metrics_file.write(json.dumps(record) + "\n")
                metrics_file.flush()
                bar.update(1)
                bar.set_postfix(loss=f"{record['loss']:.4g}", lr=f"{lr:.3g}")
            if done % config.ckpt_every == 0 or done == config.steps:
                _save(out, done, model, optimizer, scaler, config, runtime, env)
    finally:
        bar.close()
        if metrics_file is not None:
            metrics_file.close()

    digests = _gather_objects(env, weights_digest(model))
    summary = {"task": config.task, "model": config.model, "steps": config.steps, "world_size": env.world,
               "device": str(device), "weights_sha256": digests[0],
               "ranks_agree_on_weights": len(set(digests)) == 1}
    if env.main:
        write_final(out, model, config, summary)
    if not summary["ranks_agree_on_weights"]:
        raise RuntimeError(f"data-parallel ranks ended with different weights: {digests}")
    return summary


def _save(out, step, model, optimizer, scaler, config, runtime, env):
    rng_json, rng_tensors = ckpt.rng_state()
    all_json = _gather_objects(env, rng_json)
    all_tensors = _gather_objects(env, {k: v.cpu() for k, v in rng_tensors.items()})
    if not env.main:
        return
    sidecar = {"config": dataclasses.asdict(config), "rng": all_json, "world_size": env.world,
               "scaler": scaler.state_dict() if scaler.is_enabled() else {},
               "data_position": {"next_step": step, "next_sample": step * config.batch_size,
                                 "epoch": step * config.batch_size // config.num_sequences},
               "mnist": str(runtime.mnist)}
    ckpt.save_checkpoint(out / "checkpoints", step, model, optimizer, sidecar, all_tensors)


def write_final(out: Path, model, config: TrainConfig, summary: dict):
    """``model.safetensors`` (weights, self-describing metadata) + ``config.json`` + the summary."""
    meta = {"task": config.task, "model": config.model, "framework": "torch", "step": config.steps}
    ckpt.save_weights(out / "model.safetensors", model.state_dict(), meta)
    ckpt.atomic_write_json(out / "config.json", {**meta, "train": dataclasses.asdict(config)})
    ckpt.atomic_write_json(out / "train_summary.json", summary)
