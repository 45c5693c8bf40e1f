"""Evaluate trained weights on a dataset of :mod:`convgru_zoo.data.datasets` (by default the one the run
trained on: Moving MNIST, Motion MNIST) or a folder of clips, in PyTorch or MindSpore; write JSON and PNGs.

- forecast: MSE and MAE per frame (OpenSTL's convention: summed over a frame's pixels on the 0-1
  scale, averaged over frames and sequences), SSIM and PSNR, each also per predicted step; on
  generated test clips (the ``test`` split, disjoint digits) or the standard fixed test file; the
  same metrics of repeating the last context frame, for scale.
- classify: top-1/top-5 on test clips, accuracy per class of the dataset's grid of classes (Motion
  MNIST: digit x direction), and for contrast the best a one-frame classifier could reach (one frame
  cannot show the direction of motion).

Every report records the sha256 of the test items it saw, so two reports can be shown to use the
same clips.

Files, named ``eval_<task>_<framework>.*`` in the output folder: the metrics JSON, for forecasts a
grid of input / truth / prediction frames and the per-step metric curves; and ``training_curves.png``
from the run's ``metrics.jsonl`` when there is one.
"""
import contextlib
import hashlib
import json
import math
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .. import run_files as ckpt
from . import metrics as zoo_metrics
from . import plots
from ..specs import FRAMEWORKS
from ..models import FRAMES_TASK, TASKS, create_model, list_models
from ..data.datasets import CONTEXT_FRAMES, DATASETS, build_dataset, dataset_names, input_norm, normalize
from ..train import ConfigError, as_trained, check_out_folder, metrics_lines_upto


GENERATED_TEST_SEQUENCES = 1000  # default number of generated test clips


# ---------------------------------------------------------------- which weights
def resolve_weights(weights, task=None, model=None):
    """(``{name: array}`` in PyTorch names, task, model name, run folder or None) of a run folder or a
    safetensors file (read without any framework).

    A run folder holds ``model.safetensors`` and ``metrics.jsonl``; a file written by ``train``
    records task and model in its metadata, other files need ``--task`` and ``--model``.
    """
    path = Path(weights)
    run_dir = None
    if path.is_dir():
        run_dir, path = path, path / "model.safetensors"
        if not path.is_file():
            raise ConfigError(f"--weights must be a run folder holding model.safetensors or a .safetensors file, "
                              f"got the folder {str(run_dir)!r} without model.safetensors (training not finished?)")
    elif not path.is_file():
        raise ConfigError(f"--weights must be a run folder or a .safetensors file, got {str(path)!r} (not found)")
    try:
        state, meta = ckpt.read_weights(path)
    except ValueError as err:
        raise ConfigError(f"--weights must be a readable safetensors file: {err}") from None
    for name, given, recorded in (("task", task, meta.get("task")), ("model", model, meta.get("model"))):
        if given is not None and recorded is not None and given != recorded:
            raise ConfigError(f"--{name} must match the weights, which were trained as {name} {recorded!r}, "
                              f"got {given!r}")
    task, model = task or meta.get("task"), model or meta.get("model")
    if task is None or model is None:
        raise ConfigError(f"--task and --model must be given for weights without metadata, got task={task!r}, "
                          f"model={model!r} for {str(path)!r}")
    if task == FRAMES_TASK:
        raise ConfigError(f"--weights must be a video model's, got {model}'s trained with --task {FRAMES_TASK} (an "
                          f"image backbone: its frame top-1 is the run's val_top1); evaluate the GRU-RCN trained from "
                          f"it (--init-weights)")
    if task not in TASKS:
        raise ConfigError(f"--task must be one of {TASKS}, got {task!r}")
    if model not in list_models(task):
        raise ConfigError(f"--model must be one of {list_models(task)} for --task {task}, got {model!r}")
    return state, task, model, run_dir


# ---------------------------------------------------------------- predictors
class TorchPredictor:
    """Numpy in, numpy out, through a PyTorch model in eval mode."""

    def __init__(self, model_name, state, device="auto", **model_kwargs):
        import torch

        from ..torch.device import resolve_device
        self.torch = torch
        self.device = resolve_device(device)
        self.model = create_model(model_name, **model_kwargs).to(self.device).eval()
        try:
            self.model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
        except RuntimeError as err:
            raise ConfigError(f"--weights must fit {model_name}: {err}") from None

    def __call__(self, x):
        with self.torch.no_grad():
            return self.model(self.torch.from_numpy(np.ascontiguousarray(x)).to(self.device)).float().cpu().numpy()


class MindSporePredictor:
    """The MindSpore twin, run compiled (GRAPH_MODE), loaded with the PyTorch weights converted in memory
    or, given ``checkpoint``, with that MindSpore checkpoint file (what MindCV users load)."""

    def __init__(self, model_name, state, device="auto", checkpoint=None, **model_kwargs):
        import mindspore as ms

        from ..convert import model_image_networks, torch_to_mindspore
        from ..mindspore.device import device_target
        from ..mindspore.weights import load_params, read_mindspore_checkpoint
        target, index = device_target(device)
        if target is not None:
            ms.set_device(target, index)
        self.ms = ms
        self.model = create_model(model_name, "mindspore", **model_kwargs)
        flag = "--weights" if checkpoint is None else "--mindspore-checkpoint"
        try:
            params = (read_mindspore_checkpoint(checkpoint) if checkpoint is not None
                      else torch_to_mindspore(state, image_networks=model_image_networks(model_name)))
            load_params(self.model, params, flag)
        except ValueError as err:
            raise ConfigError(f"{flag} must fit {model_name}: {err}") from None
        self.model.set_train(False)

    def __call__(self, x):
        return self.model(self.ms.Tensor(np.ascontiguousarray(x))).asnumpy()


@contextlib.contextmanager
def framework_mode(framework):
    """MindSpore runs compiled (GRAPH_MODE) here; the previous mode comes back afterwards."""
    if framework != "mindspore":
        yield
        return
    import mindspore as ms
    previous = ms.get_context("mode")
    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        yield
    finally:
        ms.set_context(mode=previous)


# ---------------------------------------------------------------- the evaluations
def _batches(n, batch_size):
    return [list(range(i, min(i + batch_size, n))) for i in range(0, n, batch_size)]


def evaluate_forecast(predict, dataset, batch_size, progress=True):
    """Forecast metrics over ``dataset`` (items (20, 1, H, W)) and the first batch's frames for plots.

    For scale, the metrics also hold those of the trivial forecast that repeats the last context
    frame (``baseline_last_frame``): a model has learnt motion only where it beats that.
    """
    model, last_frame = zoo_metrics.ForecastMetrics(), zoo_metrics.ForecastMetrics()
    example = None
    for indices in tqdm(_batches(len(dataset), batch_size), desc="eval forecast", unit="batch", disable=not progress):
        clips = dataset.batch(indices)
        context, future = clips[:, :CONTEXT_FRAMES], clips[:, CONTEXT_FRAMES:]
        pred = predict(context)
        model.update(pred, future)
        last_frame.update(np.broadcast_to(context[:, -1:], future.shape), future)
        if example is None:
            example = (context, future, pred)
    results = model.compute()
    results["baseline_last_frame"] = last_frame.compute()
    return results, example


def evaluate_classify(predict, dataset, batch_size, grid, progress=True):
    """Top-1/top-5 on whole clips, accuracy per class and per column of the classes' ``grid`` (a
    :class:`convgru_zoo.data.datasets.Dataset`'s; Motion MNIST: digit x direction), and the single-frame ceiling.

    The single-frame baseline is analytic (``metrics.single_frame_ceiling``): one frame shows the
    digit but not its direction, so a one-frame classifier with this model's digit recognition
    scores at most a quarter of it. (Feeding the clip model one frame would measure it off its
    training distribution instead.)
    """
    logits, labels = [], []
    for indices in tqdm(_batches(len(dataset), batch_size), desc="eval classify", unit="batch",
                        disable=not progress):
        clips, batch_labels = dataset.batch(indices)
        logits.append(predict(normalize(clips, *input_norm(predict.model)).astype(np.float32)))
        labels.append(batch_labels)
    logits, labels = np.concatenate(logits), np.concatenate(labels)
    columns = grid[1]
    per_class = zoo_metrics.accuracy_by_group(logits, labels, labels, logits.shape[1])
    return {"num_sequences": len(dataset), "clip": zoo_metrics.topk_accuracy(logits, labels),
            "single_frame_ceiling": zoo_metrics.single_frame_ceiling(logits, labels, len(columns)),
            "per_direction_top1": dict(zip(columns, zoo_metrics.accuracy_by_group(
                logits, labels, labels % len(columns), len(columns)))),
            "per_class_top1": np.reshape(per_class, (-1, len(columns))).tolist(),
            "per_class_count": np.bincount(labels, minlength=logits.shape[1]).reshape(-1, len(columns)).tolist()}


class HashedItems:
    """A dataset whose ``batch`` also feeds every item's bytes, in order, to a sha256: the evaluation's
    proof of which clips it saw (the same digest means bit-identical test data)."""

    def __init__(self, dataset):
        self.dataset, self.digest = dataset, hashlib.sha256()

    def __len__(self):
        return len(self.dataset)

    def batch(self, indices):
        items = self.dataset.batch(indices)
        for part in (items if isinstance(items, tuple) else (items,)):
            self.digest.update(np.ascontiguousarray(part).tobytes())
        return items


def scored_dataset(task, given, run_dir):
    """The name of the dataset to score on: ``--dataset`` if given, else the run's own (its ``config.json``),
    else the task's (``DEFAULT`` of :mod:`convgru_zoo.data.datasets`)."""
    if given is not None and given not in dataset_names(task):
        raise ConfigError(f"--dataset must be one of {dataset_names(task)} for --task {task}, got {given!r}")
    config_file = None if run_dir is None else Path(run_dir) / "config.json"
    if given is None and config_file is not None and config_file.is_file():
        trained = json.loads(config_file.read_text()).get("train")
        if isinstance(trained, dict) and trained.get("task") == task:
            return as_trained(trained)["dataset"]
    return as_trained({"task": task, "dataset": given or ""})["dataset"]


def _test_set(task, dataset, mnist, fixed_test, num_sequences):
    from ..data.moving_mnist import FixedMovingMNIST
    if fixed_test is not None:
        if task != "forecast":
            raise ConfigError(f"--fixed-test applies to --task forecast, got --task {task}")
        if not Path(fixed_test).is_file():
            raise ConfigError(f"--fixed-test must be a .npy file of uint8 (20, N, 64, 64), got {fixed_test!r} (not found)")
        try:
            full = FixedMovingMNIST(fixed_test)
        except ValueError as err:
            raise ConfigError(f"--fixed-test: {err}") from None
        return _FirstN(full, min(num_sequences or len(full), len(full))), {"source": "fixed", "path": str(fixed_test)}
    if mnist is None or not Path(mnist).is_dir():
        raise ConfigError(f"--mnist must be a folder holding MNIST idx files (or give --fixed-test), got {mnist!r}")
    clips = build_dataset(dataset, mnist, "test", num_sequences or GENERATED_TEST_SEQUENCES)
    return clips, {"source": "generated", "dataset": dataset, "split": "test", "seed": clips.seed, "mnist": str(mnist)}


class _FirstN:
    """The first ``n`` items of a dataset with ``batch``."""

    def __init__(self, dataset, n):
        self.dataset, self.n = dataset, n

    def __len__(self):
        return self.n

    def batch(self, indices):
        return self.dataset.batch(indices)


def training_curves(run_dir, path):
    """``training_curves.png`` from a run's metrics.jsonl (train loss, and validation when logged)."""
    log = Path(run_dir) / "metrics.jsonl"
    records = [json.loads(line) for line in metrics_lines_upto(log, math.inf)]  # checked, named if foreign
    train = [r for r in records if "loss" in r]
    if not train:
        return None
    series = {"train loss": ([r["step"] for r in train], [r["loss"] for r in train])}
    val = [r for r in records if "val_loss" in r]
    if val:
        series["validation loss"] = ([r["step"] for r in val], [r["val_loss"] for r in val])
    return plots.save_curves(path, series, title="training", ylabel="loss", log_y=True)


def evaluate(weights, mnist=None, task=None, model=None, fixed_test=None, num_sequences=None, batch_size=32,
             framework="torch", device="auto", out=None, progress=True, data=None, skip_bad_clips=False,
             mindspore_checkpoint=None, split=None, overwrite=False, dataset=None):
    """Evaluate ``weights`` on the test split of ``dataset`` (a name of :mod:`convgru_zoo.data.datasets`, by
    default the run's own) made from ``mnist``, or on the ``split`` of ``data``, a folder of clips
    (:mod:`convgru_zoo.evaluation.folder`); write JSON and PNGs into ``out``; return the report (with ``files``).

    ``out`` defaults to ``<run folder>/eval``, or for a weights file ``eval/<file stem>`` in the current
    folder (never beside a file that may sit inside an installed package); an earlier report there is
    replaced only with ``overwrite``. With ``framework="mindspore"``, ``mindspore_checkpoint`` evaluates
    that file (converted from ``weights``) instead of converting ``weights`` in memory; ``weights`` still
    names task and model."""
    if framework not in FRAMEWORKS:
        raise ConfigError(f"--framework must be one of {FRAMEWORKS}, got {framework!r}")
    if mindspore_checkpoint is not None and framework != "mindspore":
        raise ConfigError(f"--mindspore-checkpoint needs --framework mindspore, got --framework {framework!r}")
    if mindspore_checkpoint is not None and not Path(mindspore_checkpoint).is_file():
        raise ConfigError(f"--mindspore-checkpoint must be a MindSpore .ckpt file, got {str(mindspore_checkpoint)!r} "
                          f"(not found)")
    if split is not None and data is None:
        raise ConfigError(f"--split applies to --data, got --split {split} without it")
    state, task, model, run_dir = resolve_weights(weights, task, model)
    if dataset is not None and data is not None:
        raise ConfigError(f"--dataset names a built-in dataset, which --data replaces, got --dataset {dataset} with --data")
    dataset_name = scored_dataset(task, dataset, run_dir)
    if run_dir is not None:  # a foreign or damaged metrics log is named now, not after the evaluation
        metrics_lines_upto(Path(run_dir) / "metrics.jsonl", math.inf)
    out = check_out_folder("--out", out or (run_dir / "eval" if run_dir is not None else Path("eval", Path(weights).stem)))
    stem = f"eval_{task}_{framework}"
    if (out / f"{stem}.json").exists() and not overwrite:
        raise ConfigError(f"--out {str(out)!r} already holds {stem}.json from an earlier evaluation; pass --overwrite "
                          "to replace it, or another --out")
    model_kwargs = {}
    if data is not None:
        if mnist is not None or fixed_test is not None:
            raise ConfigError(f"--data replaces --mnist and --fixed-test, got --data {data!r} with "
                              f"{'--mnist' if mnist is not None else '--fixed-test'}")
        from .folder import folder_test_set
        dataset, model_kwargs, data = folder_test_set(data, task, state, run_dir, skip_bad_clips, progress, split)
    else:
        model_kwargs = {"num_classes": DATASETS[dataset_name].num_classes} if task == "classify" else {}
        dataset, data = _test_set(task, dataset_name, mnist, fixed_test, num_sequences)
    dataset = HashedItems(dataset)
    with framework_mode(framework):
        predict = (TorchPredictor(model, state, device, **model_kwargs) if framework == "torch"
                   else MindSporePredictor(model, state, device, mindspore_checkpoint, **model_kwargs))
        report = {"task": task, "model": model, "framework": framework,
                  "weights": str(weights if mindspore_checkpoint is None else mindspore_checkpoint), "data": data}
        files = {}
        if task == "forecast":
            results, (context, future, pred) = evaluate_forecast(predict, dataset, batch_size, progress)
            report["metrics"] = results
            files["frames"] = str(plots.save_forecast_grid(
                out / f"{stem}_frames.png", context, future, pred,
                title=f"{model} ({framework}): {context.shape[1]} context frames, then the truth and the forecast"))
            files["per_step"] = str(plots.save_metric_curves(
                out / f"{stem}_per_step.png", results["per_frame"], baseline=results["baseline_last_frame"]["per_frame"],
                title=f"{model} ({framework}) on {results['num_sequences']} clips: metrics per predicted frame"))
        elif data["source"] == "folder":
            from .folder import evaluate_folder_classify, save_folder_classify_figures
            report["metrics"] = evaluate_folder_classify(predict, dataset, data["classes"], batch_size, progress)
            files.update(save_folder_classify_figures(out, stem, model, report["metrics"]))
        else:
            classes = DATASETS[dataset_name]
            report["metrics"] = evaluate_classify(predict, dataset, batch_size, classes.grid, progress)
            files["per_class"] = str(plots.save_accuracy_grid(
                out / f"{stem}_per_class.png", report["metrics"]["per_class_top1"], *classes.grid,
                title=f"{model} ({framework}): top-1 per {' and '.join(classes.grid_axes)}",
                counts=report["metrics"]["per_class_count"]))
        data["sha256"] = dataset.digest.hexdigest()
    if run_dir is not None and (curves := training_curves(run_dir, out / "training_curves.png")):
        files["training_curves"] = str(curves)
    files["json"] = str(out / f"{stem}.json")
    report["files"] = files
    ckpt.atomic_write_json(out / f"{stem}.json", report)
    return report


def evaluate_from_args(args):
    return evaluate(args.weights, mnist=args.mnist, task=args.task, model=args.model, fixed_test=args.fixed_test,
                    num_sequences=args.num_sequences, batch_size=args.batch_size, framework=args.framework,
                    device=args.device, out=args.out, progress=not args.no_progress, data=args.data,
                    skip_bad_clips=args.skip_bad_clips, mindspore_checkpoint=args.mindspore_checkpoint, split=args.split,
                    overwrite=args.overwrite, dataset=args.dataset)


def summary_line(report):
    """One line: model, framework, how many clips of which data, the headline metrics."""
    m, data = report["metrics"], report["data"]
    where = f" ({data['split']} split of {data['root']})" if data["source"] == "folder" else ""
    if report["task"] == "forecast":
        return (f"{report['model']} ({report['framework']}) on {m['num_sequences']} clips{where}: MSE {m['mse']:.2f} "
                f"MAE {m['mae']:.2f} per frame, SSIM {m['ssim']:.4f}, PSNR {m['psnr']:.2f} dB "
                f"(repeating the last frame: MSE {m['baseline_last_frame']['mse']:.2f}, "
                f"SSIM {m['baseline_last_frame']['ssim']:.4f})")
    if report["data"]["source"] == "folder":
        return (f"{report['model']} ({report['framework']}) on {m['num_sequences']} clips{where} of "
                f"{len(m['classes'])} classes: " + ", ".join(f"{k} {v:.4f}" for k, v in m["clip"].items())
                + f"; skipped clips: {len(data['skipped'][data['split']])}")
    return (f"{report['model']} ({report['framework']}) on {m['num_sequences']} clips: top-1 {m['clip']['top1']:.4f} "
            f"top-5 {m['clip']['top5']:.4f}; the best one frame allows: top-1 {m['single_frame_ceiling']['top1']:.4f} "
            f"top-5 {m['single_frame_ceiling']['top5']:.4f}")
