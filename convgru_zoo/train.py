"""Train a ConvGRU forecaster (Moving MNIST, 10 -> 10 frames) or backbone (Motion MNIST, 40 classes), or either
on another dataset of :mod:`convgru_zoo.data.datasets` (``--dataset``) or a folder of clips (``--data``); or a
GRU-RCN's image backbone on single frames (``--task classify_frames``: Motion MNIST frames by digit), which
then starts the GRU-RCN (``--init-weights``, its weights landing in the model's ``backbone``).

What every run shares, whatever the framework (nothing here imports one):

- the configuration (:class:`TrainConfig`) and its checks, made before any work;
- the data order, a function of (seed, step): global sample ``k`` is element ``k % N`` of the
  epoch ``k // N`` permutation drawn from ``seed`` and that epoch, and each rank takes every
  ``world``-th sample of a step's global batch, so any world size sees the same global batches;
- the learning rate, a function of the step;
- the run folder: ``metrics.jsonl`` (one JSON line per step, plus validation figures; the first line of the
  run and of each ``--resume`` also names the threads and precision it trained with), ``checkpoints/``
  (:mod:`convgru_zoo.run_files`), and at the end ``model.safetensors`` (PyTorch names, whatever the
  framework) + ``config.json`` + ``train_summary.json``; only rank 0 writes.

- the loop's skeleton (:func:`fit`): seeding, resuming, the steps with their learning rate, the metrics
  log, BatchNorm recalibration, validation, checkpoints, the final weights and summary, and the check
  that data-parallel ranks end with the same weights.

What only a framework knows sits behind :class:`TrainLoop` in the framework's module
(:data:`TRAIN_LOOPS`, chosen by ``config.framework``), which also has ``check(config, runtime, env)``
and ``run(config, runtime, env, resume_from) -> summary`` (its process set-up around :func:`fit`).
``--resume`` after a kill continues exactly where the uninterrupted run would be.
"""
import dataclasses
import json
import math
import os
import tempfile
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Optional

import numpy as np
from tqdm.auto import tqdm

from . import run_files as ckpt
from ._checks import ConfigError
from .data.datasets import CONTEXT_FRAMES, DATASETS, build_dataset, dataset_names, resolve_dataset
from .data.mnist import load_digits
from .data.moving_mnist import split_indices
from .data.video_folder import BadClipError, VideoFolderConfig
from .models import FRAMES_TASK, TASKS, list_models
from .specs import FRAMEWORKS, RCN_MODELS

OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("cosine", "constant")
AMP_MODES = ("none", "bf16", "fp16", "auto")  # auto: bf16 where the device computes it natively
FORECAST_LOSSES = ("bce", "mse")
TRAIN_LOOPS = {"torch": "convgru_zoo.torch.train", "mindspore": "convgru_zoo.mindspore.train"}


@dataclass
class TrainConfig:
    """Everything that decides a run's result. Runtime choices (device, workers) live elsewhere."""
    task: str
    model: str
    dataset: str = ""             # a data.datasets.DATASETS name; "": the task's own (DEFAULT there); "" with --data
    framework: str = "torch"      # which training loop (TRAIN_LOOPS)
    init_weights: str = ""        # start from these weights (run folder or safetensors file)
    steps: int = 1000
    batch_size: int = 16          # global: split over the ranks of a data-parallel job
    num_sequences: int = 10000    # training clips generated (the epoch size)
    augment: bool = False         # Moving MNIST: a random affine and stroke width of each training clip's digits
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
    # GRU-RCN models (specs.RCN_MODELS) only:
    pretrained_backbone: bool = True  # start from the image backbone's ImageNet weights (timm's)
    freeze_backbone: bool = False     # train only the ConvGRUs, projections and head
    backbone_lr_scale: float = 1.0    # the backbone's learning rate relative to --lr


def settings_in_use(fields: dict) -> dict:
    """:class:`TrainConfig` fields (a dict, as configs and recipes record them) less those the run ignores:
    ``loss`` outside forecasting (classifiers train with cross-entropy), ``momentum`` outside SGD and the
    image-backbone settings outside GRU-RCN models."""
    ignored = ({"loss"} if fields.get("task") != "forecast" else set()) | (
        {"momentum"} if fields.get("optimizer") != "sgd" else set()) | (
        set() if fields.get("model") in RCN_MODELS else {"pretrained_backbone", "freeze_backbone", "backbone_lr_scale"})
    return {key: value for key, value in fields.items() if key not in ignored}


@dataclass
class Runtime:
    """Where and how a run executes; may differ between a run and its resumption (except ``data``,
    which a checkpoint records and ``--resume`` checks)."""
    mnist: Optional[str]
    out: str
    device: str = "auto"
    workers: int = 0
    progress: bool = True
    resume: bool = False
    data: Optional[VideoFolderConfig] = None  # the user's folder of clips instead of Moving MNIST
    keep_checkpoints: int = 2  # the newest checkpoints kept; 0 keeps every one (to score a run along its way)


@dataclass
class Dist:
    """This process's place in a data-parallel job (torchrun or msrun), or a single process."""
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self):
        return self.rank == 0


def dist_from_env() -> Dist:
    """The launcher's environment: torchrun (RANK, WORLD_SIZE, LOCAL_RANK), msrun (MS_WORKER_NUM,
    RANK_ID; msrun also runs the script as its scheduler, MS_ROLE=MS_SCHED, which serves the job
    from ``mindspore.communication.init()`` and never trains), else a single process."""
    if os.environ.get("MS_ROLE") in ("MS_WORKER", "MS_SCHED") and int(os.environ.get("MS_WORKER_NUM", "1")) > 1:
        rank = int(os.environ.get("RANK_ID", "0")) if os.environ["MS_ROLE"] == "MS_WORKER" else 0
        return Dist(rank, int(os.environ["MS_WORKER_NUM"]), rank)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Dist()
    return Dist(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))


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


def rank_batches(start: int, stop: int, batch_size: int, n: int, seed: int, rank: int = 0, world: int = 1):
    """This rank's share of the global batches of steps ``start .. stop-1``."""
    for step in range(start, stop):
        yield batch_indices(step, batch_size, n, seed)[rank::world]


BN_RECALIBRATION_BATCHES = 8  # training batches whose statistics replace BatchNorm's running averages


def recalibration_batches(n: int, batch_size: int):
    """Index ranges of the fixed training batches (items from 0) whose plain-average BatchNorm statistics
    replace the running averages ("precise BN"), before each validation and before the final weights.

    The exponential running averages trail the weights (a stem's scale is free under BatchNorm, so it drifts
    fast) and can score far below the same weights with fresh statistics (docs/design.md). Fixed items draw
    no randomness, so data-parallel replicas
    stay identical and a resumed run equals an uninterrupted one; both loops use the same items.
    """
    stop = min(n, BN_RECALIBRATION_BATCHES * batch_size)
    return [range(first, min(first + batch_size, stop)) for first in range(0, stop, batch_size)]


def recalibrates_at(done: int, config: TrainConfig) -> bool:
    """Whether the loop recomputes BatchNorm statistics after step ``done``: before validating, and at the end."""
    return (bool(config.val_every) and done % config.val_every == 0) or done == config.steps


def learning_rate(step: int, config: TrainConfig) -> float:
    """Linear warmup over ``warmup_steps``, then constant or cosine decay to ``min_lr``."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    if config.schedule == "constant":
        return config.lr
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return config.min_lr + (config.lr - config.min_lr) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


# ---------------------------------------------------------------- data
def build_datasets(config: TrainConfig, runtime: Runtime, val: bool = False):
    """(training set, validation set or None) of the run's data: the dataset ``config.dataset`` names, or
    ``--data``'s folder, whose training split repeats its clips over ``num_sequences`` samples per epoch,
    each with its own seeded augmentation, and whose validation split holds each val clip once."""
    if runtime.data is None:
        name = resolve_dataset(config.task, config.dataset)
        return (build_dataset(name, runtime.mnist, "train", config.num_sequences, config.augment),
                build_dataset(name, runtime.mnist, "val", config.val_sequences) if val else None)
    from .data.video_folder import VideoFolder
    try:
        train_set = VideoFolder(runtime.data, config.task, "train", config.num_sequences, config.seed,
                                check_folder=True, progress=runtime.progress)
        val_set = (VideoFolder(runtime.data, config.task, "val", channels=train_set.channels,
                               classes=train_set.classes, progress=runtime.progress) if val else None)
    except (BadClipError, ValueError, ImportError) as err:
        raise ConfigError(f"--data: {err}") from None
    return train_set, val_set


def model_kwargs(config: TrainConfig, runtime: Runtime) -> dict:
    """:func:`convgru_zoo.models.create_model`'s arguments for the run's data: the dataset's classes, or
    ``--data``'s classes, clip length or channels; a GRU-RCN's backbone settings."""
    rcn = ({"pretrained": config.pretrained_backbone and not config.init_weights,
            "freeze_backbone": config.freeze_backbone} if config.model in RCN_MODELS else {})
    if runtime.data is None:
        dataset = DATASETS[resolve_dataset(config.task, config.dataset)]
        return {**rcn, "num_classes": dataset.num_classes} if config.task != "forecast" else rcn
    train_set, _ = build_datasets(config, runtime)
    if config.task == "forecast":
        return {"in_chans": train_set.channels}
    return {**rcn, "num_classes": len(train_set.classes), "num_frames": runtime.data.num_frames}


def data_record(config: TrainConfig, runtime: Runtime) -> Optional[dict]:
    """What a run records of ``--data`` (settings, classes, channels, clips, skipped clips), or None."""
    if runtime.data is None:
        return None
    train_set, val_set = build_datasets(config, runtime, val=bool(config.val_every))
    record = train_set.record()
    if val_set is not None:
        record["clips"]["val"], record["skipped"]["val"] = len(val_set.paths), val_set.skipped
    return record


def read_init_weights(config: TrainConfig) -> dict:
    """The ``{name: array}`` (PyTorch names) ``--init-weights`` names (a run folder or a safetensors file): the
    model's own weights, or for a GRU-RCN those of its image backbone trained with ``--task classify_frames``
    (:func:`init_weights_are_image_backbone`)."""
    path = Path(config.init_weights)
    if path.is_dir():
        path = path / "model.safetensors"
    if not path.is_file():
        raise ConfigError(f"--init-weights must be a run folder with model.safetensors or a .safetensors file, "
                          f"got {config.init_weights!r} (not found)")
    try:
        arrays, meta = ckpt.read_weights(path)
    except ValueError as err:
        raise ConfigError(f"--init-weights must be a readable safetensors file: {err}") from None
    recorded = meta.get("model", config.model)
    if recorded != config.model and not _image_backbone_of(config, meta):
        also = (f" or, trained with --task {FRAMES_TASK}, its image backbone {RCN_MODELS[config.model].backbone}'s"
                if config.model in RCN_MODELS else "")
        raise ConfigError(f"--init-weights must hold {config.model} weights{also}, got {recorded} weights"
                          f"{' (task ' + meta['task'] + ')' if 'task' in meta else ''} in {str(path)!r}")
    return arrays


def _image_backbone_of(config: TrainConfig, meta: dict) -> bool:
    return (config.model in RCN_MODELS and meta.get("task") == FRAMES_TASK
            and meta.get("model") == RCN_MODELS[config.model].backbone)


def init_weights_are_image_backbone(config: TrainConfig) -> bool:
    """Whether ``--init-weights`` holds the image backbone of the GRU-RCN ``config.model`` (a ``--task
    classify_frames`` run of it, timm's names, classifier included), to load into the model's ``backbone``,
    rather than the model's own weights. Reads the file's metadata only."""
    if not config.init_weights:
        return False
    path = Path(config.init_weights)
    return _image_backbone_of(config, ckpt.read_weights_metadata(path / "model.safetensors" if path.is_dir() else path))


CLASSIFIER = "head.fc."  # the backbones' classifier (PyTorch names)


def fit_init_weights(config: TrainConfig, own: dict) -> dict:
    """``--init-weights`` as a full state for a model whose own state is ``own`` (``{name: array}``):
    a classifier for another number of classes is replaced by the model's new one, so a backbone
    fine-tunes on the folder's classes; any other mismatch is left to the strict load to report."""
    arrays = read_init_weights(config)
    for name, value in own.items():
        if name.startswith(CLASSIFIER) and name in arrays and arrays[name].shape != value.shape:
            arrays[name] = value
    return arrays


# ---------------------------------------------------------------- checks before any work
def _loop(framework: str):
    return import_module(TRAIN_LOOPS[framework])


def check_backbone_settings(config: TrainConfig) -> None:
    """The image-backbone settings: for GRU-RCN models only, and a learning-rate scale only for a trained backbone."""
    if config.model not in RCN_MODELS:
        given = [flag for flag, field, default in (("--no-pretrained-backbone", "pretrained_backbone", True),
                                                   ("--freeze-backbone", "freeze_backbone", False),
                                                   ("--backbone-lr-scale", "backbone_lr_scale", 1.0))
                 if getattr(config, field) != default]
        if given:
            raise ConfigError(f"{given[0]} applies to the GRU-RCN models {sorted(RCN_MODELS)}, got --model {config.model}")
    if not (isinstance(config.backbone_lr_scale, (int, float)) and math.isfinite(config.backbone_lr_scale)
            and config.backbone_lr_scale >= 0):
        raise ConfigError(f"--backbone-lr-scale must be a finite number >= 0, got {config.backbone_lr_scale!r}")
    if config.freeze_backbone and config.backbone_lr_scale != 1.0:
        raise ConfigError(f"--backbone-lr-scale applies to a trained backbone, got {config.backbone_lr_scale} with "
                          f"--freeze-backbone")


def check_config(config: TrainConfig, runtime: Runtime, env: Dist) -> None:
    """Every check that can fail before work starts, the framework's own included."""
    if config.task not in TASKS:
        raise ConfigError(f"--task must be one of {TASKS}, got {config.task!r}")
    names = list_models(config.task)
    if config.model not in names:
        raise ConfigError(f"--model must be one of {names} for --task {config.task}, got {config.model!r}")
    if config.dataset and runtime.data is not None:
        raise ConfigError(f"--dataset names a built-in dataset, which --data replaces, got --dataset {config.dataset} "
                          f"with --data")
    if config.dataset and config.dataset not in dataset_names(config.task):
        raise ConfigError(f"--dataset must be one of {dataset_names(config.task)} for --task {config.task}, "
                          f"got {config.dataset!r}")
    check_backbone_settings(config)
    if config.task == FRAMES_TASK and runtime.data is not None:
        raise ConfigError(f"--task {FRAMES_TASK} trains on single frames of the Motion MNIST clips made from --mnist, "
                          f"got --data")
    if config.task == FRAMES_TASK and config.framework != "torch":
        raise ConfigError(f"--task {FRAMES_TASK} trains timm's image models: --framework must be torch, got "
                          f"{config.framework}")
    if runtime.data is not None:
        check_video_data(config, runtime)
    elif not Path(runtime.mnist).is_dir():
        raise ConfigError(f"--mnist must be a folder holding MNIST idx files, got {runtime.mnist!r} (not a folder)")
    else:
        try:  # read (and so check) the digits now, not after the model is built and the run folder made
            images, _ = load_digits(runtime.mnist)
        except (OSError, ValueError) as err:
            raise ConfigError(f"--mnist must be a folder of readable MNIST idx files, got {runtime.mnist!r}: {err}") from None
        try:
            split_indices(len(images), "train")  # every split needs digits of its own
        except ValueError as err:
            raise ConfigError(f"--mnist must hold enough digit images for the train, val and test splits, got "
                              f"{len(images)} in {runtime.mnist!r}: {err}") from None
    for name in ("steps", "batch_size", "num_sequences", "ckpt_every", "val_sequences"):
        value = getattr(config, name)
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be a positive int, got {value!r}")
    for name in ("warmup_steps", "val_every"):
        if getattr(config, name) < 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(config, name)!r}")
    if not isinstance(config.seed, int) or not 0 <= config.seed < 2 ** 32:
        raise ConfigError(f"--seed must be an int in [0, 2**32 - 1] (NumPy's seeds), got {config.seed!r}")
    for name in ("lr", "weight_decay", "min_lr", "grad_clip", "momentum"):
        value = getattr(config, name)
        if not math.isfinite(value) or value < 0 or (name == "lr" and value == 0):
            rule = "> 0" if name == "lr" else ">= 0"
            raise ConfigError(f"--{name.replace('_', '-')} must be a finite number {rule}, got {value!r}")
    for flag, value, allowed in (("--loss", config.loss, FORECAST_LOSSES), ("--optimizer", config.optimizer, OPTIMIZERS),
                                 ("--schedule", config.schedule, SCHEDULES), ("--amp", config.amp, AMP_MODES),
                                 ("--framework", config.framework, FRAMEWORKS)):
        if value not in allowed:
            raise ConfigError(f"{flag} must be one of {allowed}, got {value!r}")
    if config.batch_size % env.world:
        raise ConfigError(f"--batch-size must be divisible by the number of processes ({env.world}), "
                          f"got {config.batch_size}")
    if runtime.workers < 0:
        raise ConfigError(f"--workers must be >= 0, got {runtime.workers!r}")
    if not isinstance(runtime.keep_checkpoints, int) or runtime.keep_checkpoints < 0:
        raise ConfigError(f"--keep-checkpoints must be an int >= 0 (0: every one), got {runtime.keep_checkpoints!r}")
    if runtime.keep_checkpoints != Runtime.keep_checkpoints and config.framework != "torch":
        raise ConfigError(f"--keep-checkpoints applies to --framework torch (MindSpore runs keep their newest "
                          f"{Runtime.keep_checkpoints}), got --framework {config.framework}")
    if config.init_weights:
        read_init_weights(config)
        if init_weights_are_image_backbone(config) and config.framework != "torch":
            raise ConfigError(f"--init-weights with the image backbone of {config.model} (a --task {FRAMES_TASK} "
                              f"run) loads in --framework torch, got --framework {config.framework}")
    try:
        loop = _loop(config.framework)
    except ImportError as err:
        raise ConfigError(f"--framework {config.framework} needs {config.framework} installed "
                          f"(pip install 'convgru-zoo[{config.framework}]'): {err}") from None
    loop.check(config, runtime, env)


def check_video_data(config: TrainConfig, runtime: Runtime) -> None:
    """``--data``'s settings for the task, then every clip of the splits the run reads, decoded once."""
    data = runtime.data
    try:
        data.check()
    except ValueError as err:
        raise ConfigError(f"--data: {err}") from None
    if config.task == "forecast" and (data.num_frames != 2 * CONTEXT_FRAMES or data.frame_stride < 1):
        raise ConfigError(f"--task forecast reads {CONTEXT_FRAMES} frames and predicts {CONTEXT_FRAMES}: it needs "
                          f"--num-frames {2 * CONTEXT_FRAMES} consecutive frames at a --frame-stride >= 1, got "
                          f"--num-frames {data.num_frames} --frame-stride {data.frame_stride}")
    root, out = Path(data.root).resolve(), Path(runtime.out).resolve()
    if out == root or root in out.parents:
        raise ConfigError(f"--out must lie outside --data (nothing is ever written there), got {runtime.out!r} "
                          f"inside {data.root!r}")
    data_record(config, runtime)


def check_out_folder(flag: str, path) -> Path:
    """``path`` as a folder that exists and can be written to, or can be made: no file at it or in its way.

    Only trying tells whether a folder can be made (root writes anywhere, /proc takes no folders, a
    mount may be read-only): a uniquely named one is made and removed in the deepest existing folder.
    """
    path = Path(path)
    try:
        for folder in (path, *path.parents):
            if folder.exists():  # raises for a name too long
                if not folder.is_dir():
                    raise ConfigError(f"{flag} must be a folder, got {str(path)!r} where {str(folder)!r} is a file")
                break
        if folder == path:
            if not os.access(path, os.W_OK | os.X_OK):
                raise PermissionError(f"no permission to write in {str(path)!r}")
        else:
            os.rmdir(tempfile.mkdtemp(prefix=".convgru-zoo-probe-", dir=folder))
    except OSError as err:
        raise ConfigError(f"{flag} must be a folder that can be made or written to, got {str(path)!r}: "
                          f"{err.strerror or err} in {str(folder)!r}") from None
    return path


def check_resume(config: TrainConfig, runtime: Runtime, env: Dist):
    """The checkpoint to resume from (or None). Nothing a user made is ever overwritten: a new run needs
    a new or empty ``--out``; ``--resume`` needs a run of ours there, with an intact checkpoint if any."""
    out = check_out_folder("--out", runtime.out)
    found = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    if not runtime.resume:
        if found:
            raise ConfigError(f"--out must be a new or empty run folder, got {str(out)!r} which holds {found[:5]}; "
                              f"pass --resume to continue a run there or choose another folder")
        return None
    sidecars = ckpt.list_checkpoints(out / "checkpoints")
    latest = ckpt.latest_checkpoint(out / "checkpoints")
    if latest is None:
        if sidecars:
            problems = "; ".join(f"{p.name}: {ckpt.checkpoint_problem(p)}" for p in sidecars)
            raise ConfigError(f"--resume needs an intact checkpoint in {str(out / 'checkpoints')!r}, got none: "
                              f"{problems}. Nothing was changed; move the folder aside to start again")
        if found and "metrics.jsonl" not in found:
            raise ConfigError(f"--resume continues a run of ours, got {str(out)!r} holding {found[:5]} without "
                              f"metrics.jsonl or checkpoints; choose another --out")
        metrics_lines_upto(out / "metrics.jsonl", 0)
        return None
    sidecar = json.loads(latest.read_text())
    if not isinstance(sidecar.get("config"), dict) or not isinstance(sidecar.get("world_size"), int):
        raise ConfigError(f"--resume needs a checkpoint of ours, got {str(latest)!r} without 'config' or 'world_size'")
    metrics_lines_upto(out / "metrics.jsonl", sidecar["step"])
    if sidecar["world_size"] != env.world:
        raise ConfigError(f"--resume needs the run's number of processes, {sidecar['world_size']}, got {env.world}")
    if sidecar.get("data") != data_record(config, runtime):
        raise ConfigError(f"--resume continues the run in {str(out)!r} on its own data, {sidecar.get('data')}, "
                          f"got {data_record(config, runtime)}")
    saved, wanted = as_trained(sidecar["config"]), as_trained(dataclasses.asdict(config))
    changed = {k: (saved.get(k), v) for k, v in wanted.items() if saved.get(k) != v}
    if changed:
        listed = "; ".join(f"--{k.replace('_', '-')}: the run has {a!r}, got {b!r}" for k, (a, b) in changed.items())
        raise ConfigError(f"--resume continues the run in {str(out)!r} with its own settings, but {listed}")
    return latest


def as_trained(recorded: dict) -> dict:
    """A recorded run configuration (a checkpoint's ``config``, ``config.json``'s ``train``) as the run
    trained: a field the run predates at its default, and the task's own dataset where none is named, so
    runs from before a field existed resume and release as they did."""
    trained = {f.name: f.default for f in dataclasses.fields(TrainConfig) if f.default is not dataclasses.MISSING}
    trained.update(recorded)
    if not trained["dataset"] and trained.get("task") in TASKS:
        trained["dataset"] = resolve_dataset(trained["task"])
    return trained


# ---------------------------------------------------------------- the run folder
def metrics_lines_upto(path: Path, step: int):
    """The lines of a metrics log up to ``step`` (a killed run's later or half-written lines dropped)."""
    if not path.exists():
        return []
    kept = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        try:
            record = json.loads(line)
        except ValueError:  # the half-written last line of a killed run
            continue
        if not isinstance(record, dict) or not isinstance(record.get("step"), int):
            raise ConfigError(f"{path} line {number} must be a metrics record with an int 'step', got {line[:80]!r}")
        if record["step"] <= step:
            kept.append(line)
    return kept


def open_metrics_log(out: Path, start: int):
    """``out/metrics.jsonl`` opened for appending, holding exactly the lines of steps up to ``start``."""
    out.mkdir(parents=True, exist_ok=True)
    lines = metrics_lines_upto(out / "metrics.jsonl", start)
    ckpt.atomic_write_bytes(out / "metrics.jsonl", "".join(line + "\n" for line in lines).encode())
    return open(out / "metrics.jsonl", "a")


def checkpoint_sidecar(config: TrainConfig, runtime: Runtime, step: int, rank_rng: list) -> dict:
    """The JSON half of a checkpoint as every loop writes it (:meth:`TrainLoop.save` adds its own keys): config,
    every rank's RNG state, the data position, the data."""
    return {"config": dataclasses.asdict(config), "rng": rank_rng, "world_size": len(rank_rng),
            "data_position": {"next_step": step, "next_sample": step * config.batch_size,
                              "epoch": step * config.batch_size // config.num_sequences},
            "mnist": str(runtime.mnist), "data": data_record(config, runtime)}


def write_final(out: Path, arrays: dict, config: TrainConfig, summary: dict) -> None:
    """``model.safetensors`` (PyTorch names, self-describing metadata) + ``config.json`` + the summary,
    which also records the machine (CPU, threads, GPU) so a release can state what the training cost."""
    from . import machine

    meta = {"task": config.task, "model": config.model, "framework": config.framework, "step": config.steps}
    ckpt.write_weights(out / "model.safetensors", arrays, meta)
    ckpt.atomic_write_json(out / "config.json", {**meta, "train": dataclasses.asdict(config)})
    ckpt.atomic_write_json(out / "train_summary.json", {**summary, "machine": machine.describe()})


# ---------------------------------------------------------------- the loop
class TrainLoop(ABC):
    """A framework's part of a run, built by :func:`fit` after seeding: the model (started from
    ``--init-weights`` or pretrained weights), its optimizer, steps, BatchNorm recalibration, validation,
    checkpoint state and the collectives of a data-parallel job. :func:`fit` owns the rest."""

    device = ""  # the summary's device
    amp = "none"  # the summary's precision
    threads = None  # CPU threads the steps run on, where the framework tells
    progress_suffix = ""  # after "train MODEL" on the progress bar

    def __init__(self, config: TrainConfig, runtime: Runtime, env: Dist):
        self.config, self.runtime, self.env = config, runtime, env

    @staticmethod
    @abstractmethod
    def seed(seed: int) -> None:
        """Seed the framework's global RNG (before the model is built: every rank builds the same one)."""

    def seed_rank(self, seed: int) -> None:
        """Give this rank its own stream for the randomness of training steps, in a run that does not resume
        (a resumed run restores the stream instead); nothing where the framework's ops seed themselves."""

    @abstractmethod
    def restore(self, path: Path) -> dict:
        """Load the model's and optimizer's state (and this rank's framework RNG) from the checkpoint whose
        sidecar is ``path``; return the sidecar."""

    @abstractmethod
    def batches(self, train_set, start: int):
        """This rank's batches of ``train_set`` for steps ``start .. config.steps - 1``, the model ready to train."""

    @abstractmethod
    def step(self, batch, lr: float) -> tuple:
        """One optimizer step at learning rate ``lr`` (times each group's scale); return (loss averaged over
        the ranks, the gradients' global norm before clipping), as floats."""

    @abstractmethod
    def recalibrate(self, train_set) -> None:
        """Replace the trained BatchNorms' running statistics by their plain average over
        :func:`recalibration_batches` of ``train_set``, under the current weights."""

    @abstractmethod
    def validate(self, val_set) -> dict:
        """``{"val_loss": ...}`` (and ``val_top1`` for classifiers) over ``val_set``, in order, in eval mode."""

    @abstractmethod
    def rank_rng_states(self) -> list:
        """Every rank's Python and NumPy RNG states (:func:`convgru_zoo.run_files.rng_state`), rank order."""

    @abstractmethod
    def save(self, directory: Path, step: int, sidecar: Optional[dict], keep: int) -> None:
        """Write checkpoint ``step`` into ``directory`` with ``sidecar`` plus the loop's own keys, keeping the
        newest ``keep``. Every rank calls it; rank 0 writes (the others pass ``sidecar=None``)."""

    @abstractmethod
    def digests(self) -> list:
        """Every rank's sha256 of its model's weights, rank order."""

    @abstractmethod
    def weights(self) -> dict:
        """The model's weights as ``{name: array}`` under PyTorch names (``model.safetensors``)."""

    def write_own_weights(self, out: Path) -> None:
        """The framework's own weights file beside ``model.safetensors``, if it has one."""


def fit(config: TrainConfig, runtime: Runtime, env: Dist, resume_from, loop_type) -> dict:
    """Train (or resume from ``resume_from``, a checkpoint sidecar) with ``loop_type`` (a :class:`TrainLoop`);
    return the summary. Only rank 0 writes (metrics, checkpoints, final weights); every rank steps,
    recalibrates and takes part in the collectives of checkpoints and the final weights check."""
    out = Path(runtime.out)
    loop_type.seed(config.seed)
    np.random.seed(config.seed)
    loop = loop_type(config, runtime, env)
    start = 0
    if resume_from is not None:
        sidecar = loop.restore(resume_from)
        ckpt.set_rng_state(sidecar["rng"][env.rank])
        start = sidecar["step"]
    else:
        loop.seed_rank(config.seed * 1000 + env.rank + 1)  # the model above is every rank's; dropout is not
    metrics_file = open_metrics_log(out, start) if env.main else None
    train_set, val_set = build_datasets(config, runtime, val=bool(config.val_every and env.main))
    bar = tqdm(total=config.steps, initial=start, desc=f"train {config.model}{loop.progress_suffix}", unit="step",
               disable=not (runtime.progress and env.main), dynamic_ncols=True)
    # The first record of each segment (the run, then each --resume) says what it trained with: a run resumed
    # on another machine may differ (threads, the precision --amp auto picks); releases count cost per segment.
    segment = {"amp": loop.amp, **({"threads": loop.threads} if loop.threads else {})}
    began, cpu_began = time.perf_counter(), time.process_time()
    try:
        for step, batch in enumerate(loop.batches(train_set, start), start):
            tick = time.perf_counter()
            lr = learning_rate(step, config)
            loss, grad_norm = loop.step(batch, lr)
            done = step + 1
            if recalibrates_at(done, config):
                loop.recalibrate(train_set)
            if env.main:
                record = {"step": done, "loss": loss, "lr": lr, "grad_norm": grad_norm,
                          "clips_per_s": config.batch_size / (time.perf_counter() - tick),
                          "elapsed_s": time.perf_counter() - began, "cpu_s": time.process_time() - cpu_began,
                          **segment}
                segment = {}
                if val_set is not None and done % config.val_every == 0:
                    record.update(loop.validate(val_set))
                metrics_file.write(json.dumps(record) + "\n")
                metrics_file.flush()
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4g}", lr=f"{lr:.3g}")
            if done % config.ckpt_every == 0 or done == config.steps:
                rank_rng = loop.rank_rng_states()
                sidecar = checkpoint_sidecar(config, runtime, done, rank_rng) if env.main else None
                loop.save(out / "checkpoints", done, sidecar, runtime.keep_checkpoints)
    finally:
        bar.close()
        if metrics_file is not None:
            metrics_file.close()

    digests = loop.digests()
    summary = {"task": config.task, "model": config.model, "steps": config.steps, "world_size": env.world,
               "device": str(loop.device), "amp": loop.amp, "weights_sha256": digests[0],
               "ranks_agree_on_weights": len(set(digests)) == 1}
    if env.main:
        loop.write_own_weights(out)
        write_final(out, loop.weights(), config, summary)
    if not summary["ranks_agree_on_weights"]:
        raise RuntimeError(f"data-parallel ranks ended with different weights: {digests}")
    return summary


def train(config: TrainConfig, runtime: Runtime) -> dict:
    """Run (or resume) training in ``config.framework``; return the summary rank 0 writes."""
    env = dist_from_env()
    check_config(config, runtime, env)
    resume_from = check_resume(config, runtime, env)
    summary = _loop(config.framework).run(config, runtime, env, resume_from)
    if runtime.data is not None:
        summary["data"] = data_record(config, runtime)
        if env.main:  # eval reads the classes and the sampling from here
            ckpt.atomic_write_json(Path(runtime.out) / "train_summary.json", summary)
    return summary
