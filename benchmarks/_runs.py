"""Run folders of ``convgru-zoo train`` read by the benchmarks that score a run along its way: the run's
training configuration and the model weights of every checkpoint it kept (``--keep-checkpoints 0``)."""
import argparse
import json
from pathlib import Path

from convgru_zoo import run_files as ckpt
from convgru_zoo import train as training


def run_config(run: Path) -> training.TrainConfig:
    """The training configuration of a run folder: its ``config.json`` once finished, else (a run still going)
    the one its newest intact checkpoint records."""
    config_file = run / "config.json"
    if config_file.is_file():
        trained = json.loads(config_file.read_text())["train"]
    elif (newest := ckpt.latest_checkpoint(run / "checkpoints")) is not None:
        trained = json.loads(newest.read_text())["config"]
    else:
        raise SystemExit(f"{run} must be a run folder of `convgru-zoo train` (config.json or a checkpoint), got "
                         "neither there")
    return training.TrainConfig(**training.as_trained(trained))


def checkpoint_states(run: Path, every: int = 1):
    """``(step, {name: tensor})`` of every intact checkpoint of a PyTorch run whose step is a multiple of
    ``every``, oldest first; a damaged one is passed over, the others read (and their sha256 checked) once."""
    from safetensors.torch import load as load_tensors

    scored = 0
    for sidecar in ckpt.list_checkpoints(run / "checkpoints"):
        if ckpt.checkpoint_step(sidecar) % every:  # no need to read the others
            continue
        try:
            meta, data = ckpt.read_checkpoint(sidecar)
        except ValueError:  # half-written or damaged
            continue
        scored += 1
        tensors = load_tensors(data)
        yield meta["step"], {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    if not scored:
        raise SystemExit(f"{run}/checkpoints holds no intact checkpoint at a multiple of {every} steps: train "
                         "with --keep-checkpoints 0")


def items_sha256(dataset, batch_size: int) -> str:
    """The sha256 of every item of ``dataset`` in order, as ``evaluate.HashedItems`` feeds it while scoring: which
    clips a score is on, known before any scoring."""
    from convgru_zoo.evaluation.evaluate import HashedItems

    hashed = HashedItems(dataset)
    for first in range(0, len(dataset), batch_size):
        hashed.batch(range(first, min(first + batch_size, len(dataset))))
    return hashed.digest.hexdigest()


def score_and_plot_parser(doc: str, score_help: str):
    """``(parser, score subparser)`` of a script that scores runs into a JSON and plots it: ``score`` with
    ``--mnist``, ``--num-sequences``, ``--batch-size`` and ``--json`` (its own run flags to add), and ``plot``."""
    from convgru_zoo.publishing.release import TEST_SEQUENCES

    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    scoring = sub.add_parser("score", help=score_help)
    scoring.add_argument("--mnist", required=True, help="folder of MNIST idx files (the test clips are made of them)")
    scoring.add_argument("--num-sequences", type=int, default=TEST_SEQUENCES, help="test clips (the release's)")
    scoring.add_argument("--batch-size", type=int, default=50)
    scoring.add_argument("--json", required=True, help="results file; the plot goes beside it (.png)")
    plotting = sub.add_parser("plot", help="draw the plot (beside the JSON, .png) from a results file again")
    plotting.add_argument("--json", required=True)
    return parser, scoring


def check_score_args(parser, args) -> None:
    """The ``score`` flags every such script shares, checked before any work: a usage error naming the flag."""
    if args.num_sequences < 1 or args.batch_size < 1:
        parser.error(f"--num-sequences and --batch-size must be >= 1, got {args.num_sequences}, {args.batch_size}")
    if not Path(args.mnist).is_dir():
        parser.error(f"--mnist must be a folder of MNIST idx files, got {args.mnist!r}")
