"""Evaluation on a folder of the user's clips (``convgru-zoo eval --data DIR``): the clips of a split (by
default the test split of the folder the run trained on, every clip of any other folder), sampled as the
run was trained, and for classifiers top-1/top-5, accuracy per class and a confusion matrix.

The run's ``train_summary.json`` records its folder, how its clips were sampled and which class each
output is; weights without a run folder are read with the default sampling and the folder's classes.
"""
import json
from dataclasses import fields
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from . import metrics as zoo_metrics
from . import plots
from ..data.video_folder import EVAL_SPLITS, BadClipError, VideoFolder, VideoFolderConfig
from ..specs import INPUT_SIZE
from ..data.datasets import CONTEXT_FRAMES, input_norm, normalize
from ..train import CLASSIFIER, ConfigError


def run_data_record(run_dir):
    """The ``data`` record of a run trained on ``--data`` (None for other runs or a bare weights file)."""
    summary = Path(run_dir) / "train_summary.json" if run_dir is not None else None
    if summary is None or not summary.is_file():
        return None
    return json.loads(summary.read_text()).get("data")


def folder_test_set(root, task, state, run_dir, skip_bad_clips=False, progress=True, split=None):
    """(``split`` of ``root`` sampled as the run was, build_model kwargs, report's data entry).

    ``split`` None: "test" when ``root`` is the folder the run trained on (its other clips were trained on),
    else "all"."""
    if split is not None and split not in EVAL_SPLITS:
        raise ConfigError(f"--split must be one of {EVAL_SPLITS}, got {split!r}")
    record = run_data_record(run_dir)
    if split is None:
        trained_on = record is not None and Path(record["root"]).resolve() == Path(root).resolve()
        split = "test" if trained_on else "all"
    if record is not None:
        settings = {f.name: record[f.name] for f in fields(VideoFolderConfig) if f.name in record}
        classes, channels = record["classes"], record["channels"]
    else:
        forecast = task == "forecast"
        settings = {"num_frames": 2 * CONTEXT_FRAMES if forecast else CONTEXT_FRAMES, "frame_stride": int(forecast),
                    "image_size": INPUT_SIZE[1]}
        classes, channels = None, None
    config = VideoFolderConfig(**{**settings, "root": str(root), "skip_bad_clips": skip_bad_clips, "hflip": False})
    try:
        dataset = VideoFolder(config, task, split, classes=classes, channels=channels, progress=progress)
    except (BadClipError, ValueError, ImportError) as err:
        raise ConfigError(f"--data: {err}") from None
    if task == "forecast":
        kwargs = {"in_chans": dataset.channels}
    else:
        outputs = state[CLASSIFIER + "weight"].shape[0]
        if outputs != len(dataset.classes):
            raise ConfigError(f"--data must hold the {outputs} classes the weights were trained on, got "
                              f"{len(dataset.classes)}: {dataset.classes}")
        kwargs = {"num_classes": outputs, "num_frames": config.num_frames}
    data = {"source": "folder", "split": split, **dataset.record()}
    return dataset, kwargs, data


def evaluate_folder_classify(predict, dataset, classes, batch_size, progress=True):
    """Top-1/top-5 (top-k for k up to the number of classes), accuracy per class and the confusion matrix
    (rows: true class, columns: predicted) over the test clips."""
    logits, labels = [], []
    for first in tqdm(range(0, len(dataset), batch_size), desc="eval classify", unit="batch", disable=not progress):
        clips, batch_labels = dataset.batch(range(first, min(first + batch_size, len(dataset))))
        logits.append(predict(normalize(clips, *input_norm(predict.model))))
        labels.append(batch_labels)
    logits, labels = np.concatenate(logits), np.concatenate(labels)
    num_classes = len(classes)
    per_class = zoo_metrics.accuracy_by_group(logits, labels, labels, num_classes)
    return {"num_sequences": len(dataset), "classes": list(classes),
            "clip": zoo_metrics.topk_accuracy(logits, labels, ks=sorted({1, min(5, num_classes)})),
            "per_class_top1": dict(zip(classes, per_class)),
            "confusion_matrix": zoo_metrics.confusion_matrix(logits, labels).tolist()}


def save_folder_classify_figures(out, stem, model, metrics):
    """The confusion matrix as PNG; returns ``{kind: path}``."""
    path = plots.save_confusion_matrix(out / f"{stem}_confusion.png", metrics["confusion_matrix"], metrics["classes"],
                                       title=f"{model}: confusion matrix (top-1 {metrics['clip']['top1']:.2f})")
    return {"confusion_matrix": str(path)}
