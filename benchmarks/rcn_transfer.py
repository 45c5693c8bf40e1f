"""The transfer experiment of issue 20 (docs/gru-rcn.md, "Transfer"): top-1 on the fixed test set against CPU-hours.

Three runs of ``convgru-zoo train``, all with ``--keep-checkpoints 0``: ``--frames``, an image backbone trained on
single Motion MNIST frames (``--task classify_frames``); ``--rcn``, a GRU-RCN over it, backbone frozen
(``--init-weights FRAMES_RUN --freeze-backbone``); ``--scratch``, ``convgru_tiny`` from scratch. Every checkpoint of
the two clip runs is scored on the fixed test set ``convgru-zoo release`` scores tags on (the first 1000 clips of
the ``test`` split, seed 0; digits never seen in training, by any of the three runs), at the CPU-hours the run had
spent by its step: ``metrics.jsonl``'s ``cpu_s`` (the training process's CPU time, so a shared machine's other
jobs do not count), resumed segments added up; the GRU-RCN's include the whole frame training. A checkpoint
between two BatchNorm recalibrations of the run gets its statistics recomputed first, on the batches the
training loop uses (``convgru_zoo.train.recalibration_batches``): what the run would have done at that step.

    python benchmarks/rcn_transfer.py score --mnist DIR --frames RUN_F --rcn RUN_R --scratch RUN_S \\
        --json benchmarks/results/rcn_transfer.json          # then the plot, beside it as .png
    python benchmarks/rcn_transfer.py plot --json benchmarks/results/rcn_transfer.json   # the plot again

The JSON is what the plot, ``convgru-zoo cards``' README table and the docs quote: each run's points (step,
CPU-hours, top-1, top-5), the frame training's cost and digit top-1, and the comparison at equal CPU time.
"""
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from convgru_zoo import machine  # noqa: E402
from convgru_zoo import train as training  # noqa: E402
from convgru_zoo._files import atomic_write_json  # noqa: E402
from convgru_zoo.data.datasets import DATASETS, build_dataset, input_norm, normalize  # noqa: E402
from convgru_zoo.evaluation import evaluate, plots  # noqa: E402
from _runs import check_score_args, checkpoint_states, run_config, score_and_plot_parser  # noqa: E402

DATASET = "motion_mnist"  # the clips both clip runs train and are scored on


def cpu_hours_by_step(run: Path) -> dict:
    """``{step: CPU-hours spent by then}`` from a run's ``metrics.jsonl``: ``cpu_s`` restarts at every resume, so
    each segment adds to what the segments before it spent."""
    lines = training.metrics_lines_upto(run / "metrics.jsonl", float("inf"))
    records = [json.loads(line) for line in lines]
    if not records or not all("cpu_s" in r for r in records):
        raise SystemExit(f"{run}/metrics.jsonl must log cpu_s at every step (a run of this version), got "
                         f"{'no records' if not records else 'records without it'}")
    spent, before, previous = {}, 0.0, None
    for record in records:
        if previous is not None and record["cpu_s"] < previous:  # a resumed segment starts its clock again
            before += previous
        spent[record["step"]] = (before + record["cpu_s"]) / 3600
        previous = record["cpu_s"]
    return spent


def score_run(run: Path, mnist, num_sequences: int, batch_size: int, offset_hours: float = 0.0, progress=print) -> dict:
    """Every checkpoint of a clip run scored on the fixed test set, at the CPU-hours spent by its step (plus
    ``offset_hours``, a pre-training's)."""
    import torch

    from convgru_zoo.models import create_model
    from convgru_zoo.torch import train as torch_training
    from convgru_zoo.torch.device import autocast_for

    config, cpu = run_config(run), cpu_hours_by_step(run)
    if config.task != "classify" or training.resolve_dataset(config.task, config.dataset) != DATASET:
        raise SystemExit(f"{run} must be a run of --task classify on {DATASET}, got --task {config.task} "
                         f"--dataset {config.dataset or '(its default)'}")
    runtime = training.Runtime(mnist=str(mnist), out=str(run), progress=False)
    train_set, _ = training.build_datasets(config, runtime)
    test_set = build_dataset(DATASET, mnist, "test", num_sequences)
    kwargs = training.model_kwargs(config, runtime)
    if "pretrained" in kwargs:  # a GRU-RCN: every weight comes from the checkpoints
        kwargs["pretrained"] = False
    model = create_model(config.model, **kwargs)
    cpu_device, no_autocast = torch.device("cpu"), autocast_for("none", torch.device("cpu"))
    points = []
    for step, state in checkpoint_states(run):
        model.load_state_dict(state)
        recalibrated = not training.recalibrates_at(step, config)
        if recalibrated:  # its statistics are those the loop would have computed at this step
            torch_training.recalibrate_batchnorm(config.task, model, train_set, config.batch_size, cpu_device,
                                                 no_autocast)
        model.eval()
        logits, labels = [], []
        with torch.no_grad():
            for first in range(0, len(test_set), batch_size):
                clips, batch_labels = test_set.batch(range(first, min(first + batch_size, len(test_set))))
                logits.append(model(torch.from_numpy(normalize(clips, *input_norm(model)))).numpy())
                labels.append(batch_labels)
        logits, labels = np.concatenate(logits), np.concatenate(labels)
        top = np.argsort(-logits, 1)
        points.append({"step": step, "cpu_hours": offset_hours + cpu[step],
                       "top1": float(np.mean(top[:, 0] == labels)),
                       "top5": float(np.mean((top[:, :5] == labels[:, None]).any(1))),
                       "batchnorm_recomputed": recalibrated})
        progress(f"{run.name}: step {step}, {points[-1]['cpu_hours']:.3f} CPU-h, top-1 {points[-1]['top1']:.4f}")
    return {"model": config.model, "run": run.name, "train": training.settings_in_use(
        {k: v for k, v in vars(config).items() if k != "init_weights"}), "points": points}


def _test_digest(mnist, num_sequences) -> str:
    """sha256 of the fixed test set's clips and labels, in order (as ``convgru-zoo eval`` records it)."""
    items = evaluate.HashedItems(build_dataset(DATASET, mnist, "test", num_sequences))
    for first in range(0, len(items), 64):
        items.batch(range(first, min(first + 64, len(items))))
    return items.digest.hexdigest()


def frames_record(run: Path) -> dict:
    """What the frame training was and cost: model, steps, CPU-hours, its last validation digit top-1."""
    config, cpu = run_config(run), cpu_hours_by_step(run)
    if config.task != training.FRAMES_TASK:
        raise SystemExit(f"--frames must be a run of --task {training.FRAMES_TASK}, got --task {config.task} in {run}")
    records = [json.loads(line) for line in training.metrics_lines_upto(run / "metrics.jsonl", float("inf"))]
    validated = [r for r in records if "val_top1" in r]
    return {"model": config.model, "run": run.name, "steps": max(cpu), "cpu_hours": cpu[max(cpu)],
            "val_digit_top1": validated[-1]["val_top1"] if validated else None,
            "train": training.settings_in_use({k: v for k, v in vars(config).items() if k != "init_weights"})}


def at_equal_cpu(rcn: dict, scratch: dict) -> dict:
    """Both runs' top-1 at the largest budget both reached: each run's last checkpoint within it."""
    budget = min(rcn["points"][-1]["cpu_hours"], scratch["points"][-1]["cpu_hours"])

    def within(run):
        reached = [p for p in run["points"] if p["cpu_hours"] <= budget + 1e-12]
        return reached[-1] if reached else None

    best = {name: within(run) for name, run in (("rcn", rcn), ("scratch", scratch))}
    top1 = {name: (p["top1"] if p else None) for name, p in best.items()}
    return {"cpu_hours": budget, "rcn_top1": top1["rcn"], "scratch_top1": top1["scratch"],
            "rcn_step": best["rcn"] and best["rcn"]["step"], "scratch_step": best["scratch"] and best["scratch"]["step"],
            "rcn_beats_scratch": None if None in top1.values() else top1["rcn"] > top1["scratch"]}


def plot(results: dict, path) -> Path:
    """Top-1 against CPU-hours of both runs, the frame training's cost marked on the GRU-RCN's line."""
    rcn, scratch = results["rcn"], results["scratch"]
    series = {f"{rcn['model']} (frozen {results['frames']['model']} trained on frames)": (
                  [results["frames"]["cpu_hours"]] + [p["cpu_hours"] for p in rcn["points"]],
                  [1 / DATASETS[DATASET].num_classes] + [p["top1"] for p in rcn["points"]]),
              f"{scratch['model']} from scratch": ([0.0] + [p["cpu_hours"] for p in scratch["points"]],
                                                   [1 / DATASETS[DATASET].num_classes] + [p["top1"] for p in scratch["points"]])}
    return plots.save_curves(path, series, xlabel="CPU-hours (training process)", ylabel="top-1, fixed test set",
                             title=f"Motion MNIST, {results['test_set']['num_sequences']} test clips\n(each line starts at chance "
                                   "where its clip training starts)")


def score(args) -> dict:
    frames = frames_record(Path(args.frames))
    rcn_config = run_config(Path(args.rcn))
    if not rcn_config.freeze_backbone or rcn_config.model not in training.RCN_MODELS:
        raise SystemExit(f"--rcn must be a GRU-RCN run with --freeze-backbone, got --model {rcn_config.model}"
                         f"{'' if rcn_config.freeze_backbone else ' without --freeze-backbone'}")
    rcn = score_run(Path(args.rcn), args.mnist, args.num_sequences, args.batch_size, frames["cpu_hours"])
    scratch = score_run(Path(args.scratch), args.mnist, args.num_sequences, args.batch_size)
    results = {"machine": machine.describe(), "test_set": {"dataset": DATASET, "split": "test", "seed": 0,
                                                           "num_sequences": args.num_sequences,
                                                           "sha256": _test_digest(args.mnist, args.num_sequences)},
               "frames": frames, "rcn": rcn, "scratch": scratch, "at_equal_cpu": at_equal_cpu(rcn, scratch)}
    atomic_write_json(args.json, results)
    return results


def main(argv=None) -> int:
    parser, scoring = score_and_plot_parser(__doc__, "score every checkpoint of the runs; write the JSON and the plot")
    scoring.add_argument("--frames", required=True, help="run folder of the frame training (--task classify_frames)")
    scoring.add_argument("--rcn", required=True, help="run folder of the GRU-RCN (--init-weights FRAMES --freeze-backbone)")
    scoring.add_argument("--scratch", required=True, help="run folder of convgru_tiny from scratch")
    args = parser.parse_args(argv)
    if args.command == "score":
        check_score_args(parser, args)
        results = score(args)
    else:
        results = json.loads(Path(args.json).read_text())
    picture = plot(results, Path(args.json).with_suffix(".png"))
    equal = results["at_equal_cpu"]
    print(f"at {equal['cpu_hours']:.3f} CPU-hours: {results['rcn']['model']} top-1 {equal['rcn_top1']}, "
          f"{results['scratch']['model']} top-1 {equal['scratch_top1']}; plot {picture}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
