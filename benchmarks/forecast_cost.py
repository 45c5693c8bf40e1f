"""What a forecaster's training buys (issue 18): MSE and SSIM per frame on the fixed test set against CPU-hours.

Every kept checkpoint (``--keep-checkpoints 0``) of each ``--run`` whose step is a multiple of ``--every`` is
scored on the fixed test set ``convgru-zoo release`` scores tags on (the first 1000 clips of the generated
``test`` split, seed 0); each ``--tag`` adds a released forecaster as one point (its ``release.json`` and
evaluation, on the same clips, checked by their sha256). Each point records its cost two ways: as the cards
count it (each resumed segment's wall-clock hours up to the checkpoint's step times the threads it trained with:
``--train-threads``, else what the run's log records of each segment, else its ``train_summary.json``) and
the training process's CPU time, which the plot shows: on a shared machine a run's wall-clock hours also count
the time other jobs held its cores.

    python benchmarks/forecast_cost.py score --mnist DIR --run RUN --tag convgru_forecaster.mmnist \\
        --tag convgru_forecaster_tiny.mmnist --train-threads 1 --every 1000 \\
        --json model_cards/convgru_forecaster.mmnist/cost_curve.json       # the plot beside it, .png
    python benchmarks/forecast_cost.py plot --json model_cards/convgru_forecaster.mmnist/cost_curve.json

The JSON in a tag's card folder is what its card's cost table and plot come from (``convgru-zoo cards``).
"""
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from convgru_zoo import machine  # noqa: E402
from convgru_zoo import train as training  # noqa: E402
from convgru_zoo._files import atomic_write_json  # noqa: E402
from convgru_zoo.data.datasets import build_dataset  # noqa: E402
from convgru_zoo.evaluation import evaluate, plots  # noqa: E402
from convgru_zoo.publishing import cards  # noqa: E402
from convgru_zoo.publishing.release import (CPU_HOURS_FROM, threads_per_segment, training_cost,  # noqa: E402
                                            training_time)
from _runs import check_score_args, checkpoint_states, items_sha256, run_config, score_and_plot_parser  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DATASET = "moving_mnist"  # the clips the forecasters train and are scored on


def run_threads(run: Path, given) -> list:
    """The threads each segment of ``run`` trained with (``release.threads_per_segment``): ``given``
    (``--train-threads``) or None for the run's own record of them."""
    summary = run / "train_summary.json"
    try:
        return threads_per_segment(training_time(training.metrics_lines_upto(run / "metrics.jsonl", float("inf"))),
                                   given, json.loads(summary.read_text()) if summary.is_file() else {}, run)
    except training.ConfigError as err:
        raise SystemExit(str(err)) from None


def cost_at(run: Path, per_segment: list, steps) -> dict:
    """``{step: (CPU-hours as the cards count them, process CPU-hours)}`` at ``steps`` of a run's log, its
    segments trained on ``per_segment`` threads: what ``convgru-zoo release`` would count had the run ended there."""
    lines = training.metrics_lines_upto(run / "metrics.jsonl", float("inf"))
    line_of = {json.loads(line)["step"]: end for end, line in enumerate(lines, 1)}
    cost = {}
    for step in steps:
        spent = training_time(lines[:line_of[step]])
        counted = training_cost(spent, per_segment[:spent["segments"]], world=1, gpu=False)
        cost[step] = (counted["cpu_hours"], counted.get("process_cpu_hours"))
    return cost


def score_run(run: Path, test_set, threads, every: int, batch_size: int, progress=print) -> dict:
    """Every ``every``-th kept checkpoint of a forecast run scored on ``test_set``, at the CPU-hours spent by it."""
    import torch

    from convgru_zoo.models import create_model

    config = run_config(run)
    if config.task != "forecast" or config.framework != "torch":
        raise SystemExit(f"--run must be a PyTorch run of --task forecast, got --task {config.task} --framework "
                         f"{config.framework} in {run}")
    per_segment = run_threads(run, threads)  # before any scoring: a missing count fails now
    model = create_model(config.model, **training.model_kwargs(config, training.Runtime(mnist=None, out=str(run))))
    scored = []
    for step, state in checkpoint_states(run, every):
        model.load_state_dict(state)
        model.eval()
        with torch.no_grad():
            metrics, _ = evaluate.evaluate_forecast(lambda clips: model(torch.from_numpy(clips)).numpy(), test_set,
                                                    batch_size, progress=False)
        scored.append((step, metrics))
        progress(f"{run.name}: step {step}, MSE {metrics['mse']:.2f}, SSIM {metrics['ssim']:.4f}")
    cost = cost_at(run, per_segment, [step for step, _ in scored])
    points = [{"step": step, "cpu_hours": cost[step][0], "process_cpu_hours": cost[step][1], "mse": metrics["mse"],
               "ssim": metrics["ssim"]} for step, metrics in scored]
    return {"label": f"{config.model}, {config.steps}-step schedule ({run.name})", "run": run.name, "model": config.model,
            "params_m": sum(p.numel() for p in model.parameters()) / 1e6, "steps": config.steps,
            "train": training.settings_in_use(vars(config)), "points": points}


def released_point(tag: str, cards_dir: Path, test_sha256: str) -> dict:
    """A released forecaster as one point: its recipe's steps, CPU-hours and fixed-test-set scores."""
    folder = cards_dir / tag
    if not (folder / "release.json").is_file() or not (folder / "eval_forecast_torch.json").is_file():
        raise SystemExit(f"--tag must name a released forecaster with a folder in {cards_dir}, got {tag!r}")
    release = json.loads((folder / "release.json").read_text())
    metrics = json.loads((folder / "eval_forecast_torch.json").read_text())["metrics"]
    if release["test_set"]["sha256"] != test_sha256:
        raise SystemExit(f"{tag} was scored on other clips (sha256 {release['test_set']['sha256']}) than these "
                         f"({test_sha256})")
    return {"label": f"{tag} (released)", "tag": tag, "model": release["recipe"]["model"],
            "params_m": cards.parameter_count(tag, cards_dir) / 1e6, "steps": release["trained"]["steps"],
            "cpu_hours": release["trained"]["cpu_hours"], "process_cpu_hours": release["trained"].get("process_cpu_hours"),
            "mse": metrics["mse"], "ssim": metrics["ssim"]}


def plot(results: dict, path) -> Path:
    """MSE per frame against the training process's CPU-hours: a line per run, a point per released tag (a tag
    whose log predates CPU timing at its wall-clock hours x threads, so labelled); the table has the details."""
    series = {f"{run['model']}, {run['steps']} steps ({run['run']})": ([p["process_cpu_hours"] for p in run["points"]],
                                                                       [p["mse"] for p in run["points"]])
              for run in results["runs"]}  # one line per run folder: two runs of a model and schedule both drawn
    for tag in results["released"]:
        timed = tag["process_cpu_hours"] is not None
        series[tag["tag"] if timed else f"{tag['tag']} (wall x threads)"] = (
            [tag["process_cpu_hours"] if timed else tag["cpu_hours"]], [tag["mse"]])
    return plots.save_curves(path, series, xlabel="CPU-hours (the training process's CPU time)",
                             ylabel="MSE per frame, fixed test set (lower is better)",
                             title=f"Moving MNIST forecasts, {results['test_set']['num_sequences']} test clips:\n"
                                   "quality against training cost")


def score(args) -> dict:
    test_set = build_dataset(DATASET, args.mnist, "test", args.num_sequences)
    digest = items_sha256(test_set, args.batch_size)
    released = [released_point(tag, Path(args.cards), digest) for tag in args.tag]
    runs = [score_run(Path(run), test_set, args.train_threads, args.every, args.batch_size) for run in args.run]
    results = {"machine": machine.describe(), "cpu_hours_from": CPU_HOURS_FROM, "every": args.every,
               "test_set": {"dataset": DATASET, "split": "test", "seed": 0, "num_sequences": args.num_sequences,
                            "sha256": digest},
               "runs": runs, "released": released}
    atomic_write_json(args.json, results)
    return results


def _hours(point) -> str:
    process = point["process_cpu_hours"]
    return (f"{'-' if process is None else f'{process:.2f}'} process CPU-hours "
            f"({point['cpu_hours']:.2f} wall-clock hours x threads)")


def main(argv=None) -> int:
    parser, scoring = score_and_plot_parser(__doc__, "score the runs' checkpoints and the tags; write the JSON and the plot")
    scoring.add_argument("--run", action="append", default=[], help="a forecast run folder (repeat for several)")
    scoring.add_argument("--tag", action="append", default=[], help="a released forecaster, e.g. convgru_forecaster.mmnist")
    scoring.add_argument("--cards", default=str(REPO / "model_cards"), help="the released tags' folders")
    scoring.add_argument("--train-threads", type=int, help="threads the runs trained with (default: each run's record of them)")
    scoring.add_argument("--every", type=int, default=1000, help="score checkpoints at multiples of this step")
    args = parser.parse_args(argv)
    if args.command == "score":
        check_score_args(parser, args)
        if args.every < 1 or (args.train_threads is not None and args.train_threads < 1):
            parser.error(f"--every and --train-threads must be >= 1, got {args.every}, {args.train_threads}")
        if not args.run and not args.tag:
            parser.error("give at least one --run or --tag, got neither")
        results = score(args)
    else:
        results = json.loads(Path(args.json).read_text())
    picture = plot(results, Path(args.json).with_suffix(".png"))
    for run in results["runs"]:
        last = run["points"][-1]
        print(f"{run['label']}: step {last['step']}, {_hours(last)}, MSE {last['mse']:.2f}, SSIM {last['ssim']:.4f}")
    for tag in results["released"]:
        print(f"{tag['label']}: {_hours(tag)}, MSE {tag['mse']:.2f}, SSIM {tag['ssim']:.4f}")
    print(f"plot {picture}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
