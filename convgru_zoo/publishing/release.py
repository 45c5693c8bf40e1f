"""Turn a finished training run into published weights and the results every card and README number comes from.

    convgru-zoo train --recipe convgru_tiny.mmnist_motion --mnist DIR --out RUN     (resumable)
    convgru-zoo release convgru_tiny.mmnist_motion --run RUN --mnist DIR

``release`` checks that the run is the recipe's (every ``TrainConfig`` field), then writes

- the PyTorch weights (the run's float32 safetensors) and the MindSpore checkpoint converted from them
  by :mod:`convgru_zoo.convert` (byte-for-byte reproducible; none for a GRU-RCN whose image backbone MindCV
  has not, ``PretrainedWeights.frameworks``): into the checkout's package folder
  (``convgru_zoo/weights/<name>.safetensors|.ckpt``) for tags that ship, else ``model_cards/<name>/``
  (where the MindSpore file is not committed: ``publish`` converts it again and checks its sha256);
- ``model_cards/<name>/``: the run's ``metrics.jsonl``, both frameworks' evaluation on the fixed test
  set (``eval_<task>_<framework>.json`` and pictures), the training curves, and ``release.json`` (recipe,
  machine, training hours, steps, files and their sha256);
- the sha256 of both files into the checkout's ``convgru_zoo/weights/published.json``, which
  ``convgru_zoo.specs`` reads.

Everything is written into the checkout that ``cards_dir`` (its ``model_cards``) belongs to, never into
the installed package: the checkout is what gets committed and built.

The fixed test set is the first ``TEST_SEQUENCES`` clips of the generated ``test`` split (seed 0,
digits disjoint from training): the same for every tag, regenerated bit-exactly from its seed, and
each evaluation JSON records its sha256.
"""
import json
from pathlib import Path

from .. import run_files as ckpt
from .. import machine, pretrained, specs
from .._files import atomic_write_bytes, atomic_write_json, sha256_of
from ..train import ConfigError, as_trained

CARDS = "model_cards"  # the repository's folder of released tags (``<repo>/model_cards/<tag>/``)
SHIPPED = Path("convgru_zoo", "weights")  # the repository's weights that ship in the package, and published.json
TEST_SEQUENCES = 1000


def result_dir(name: str, cards_dir) -> Path:
    return Path(cards_dir) / name


def repository(cards_dir) -> Path:
    """The checkout whose released tags ``cards_dir`` holds (``<repo>/model_cards``)."""
    return Path(cards_dir).parent


def weights_path(weights: specs.PretrainedWeights, framework: str, cards_dir) -> Path:
    """Where the repository keeps ``framework``'s file of ``weights``: its package folder if it ships, else
    its card folder."""
    if weights.ships:
        return repository(cards_dir) / SHIPPED / pretrained.shipped_name(weights.name, framework)
    return result_dir(weights.name, cards_dir) / specs.WEIGHT_FILES[framework]


def check_run_matches_recipe(weights: specs.PretrainedWeights, run: Path) -> dict:
    """The run's ``config.json``, if its training configuration is exactly the recipe (a field the run predates
    at its default); else a ConfigError."""
    config_file = run / "config.json"
    if not (run / "model.safetensors").is_file() or not config_file.is_file():
        raise ConfigError(f"--run must be a finished run folder (model.safetensors, config.json), got {str(run)!r}")
    config = json.loads(config_file.read_text())
    trained, recipe = as_trained(config.get("train", {})), dict(weights.recipe)
    differs = {k: (trained.get(k), v) for k, v in recipe.items() if trained.get(k) != v}
    if differs:
        listed = "; ".join(f"{k}: the run has {a!r}, the recipe {b!r}" for k, (a, b) in sorted(differs.items()))
        raise ConfigError(f"--run must be trained by the recipe of {weights.name}, but {listed}")
    return config


def training_time(metrics_lines) -> dict:
    """Steps, wall-clock hours and (where the log has ``cpu_s``) the process's CPU hours of a run's log, and
    where every segment's first record names them, the threads and precision of each segment.

    A segment (the run, then each ``--resume``) starts at a record naming its precision (``amp``), or in a log
    older than that where ``elapsed_s`` restarts. ``elapsed_s`` and ``cpu_s`` restart at every resume, so the
    segments' last values add up. CPU time is what the training process used, whatever its thread count and
    whatever else shared the machine.
    """
    records = [json.loads(line) for line in metrics_lines if line.strip()]
    starts = [0] + [i for i in range(1, len(records))
                    if "amp" in records[i] or records[i]["elapsed_s"] < records[i - 1]["elapsed_s"]]
    ends = [*starts[1:], len(records)]
    last = [records[end - 1] for end in ends if records]
    result = {"steps": max((r["step"] for r in records), default=0),
              "wall_hours": sum(r["elapsed_s"] for r in last) / 3600, "segments": len(last),
              "segment_hours": [r["elapsed_s"] / 3600 for r in last]}
    if records and all("cpu_s" in r for r in records):
        result["process_cpu_hours"] = sum(r["cpu_s"] for r in last) / 3600
    for key in ("threads", "amp"):
        if records and all(key in records[start] for start in starts):
            result[f"segment_{key}"] = [records[start][key] for start in starts]
    return result


def threads_per_segment(time_spent: dict, given, summary: dict, run) -> list:
    """The threads each segment of ``run`` trained with: ``given`` (``--train-threads``: one count, or one per
    segment), else what its log records of each segment, else its ``train_summary.json``'s count for all."""
    threads = given or time_spent.get("segment_threads") or summary.get("machine", {}).get("torch_threads")
    if threads is None:
        raise ConfigError(f"--train-threads must be given: {str(run)!r} records no training threads (a log "
                          "from before segments recorded them, and no train_summary.json)")
    per_segment = threads if isinstance(threads, list) else [threads]
    if len(per_segment) == 1:
        return per_segment * time_spent["segments"]
    if len(per_segment) != time_spent["segments"]:
        raise ConfigError(f"--train-threads must give one count or one per segment of the run "
                          f"({time_spent['segments']}), got {len(per_segment)}: {threads}")
    return per_segment


CPU_HOURS_FROM = "wall-clock hours x training threads, summed over resumed segments"


def training_cost(time_spent: dict, threads: list, world: int, gpu: bool) -> dict:
    """CPU-hours of a run (none on a GPU), counted one way for every run: each resumed segment's wall-clock
    hours times the threads it trained with, times the ranks, i.e. the cores the training held, which every
    log gives. The process CPU time a newer log records (``cpu_s``) is kept beside it as ``process_cpu_hours``."""
    if gpu:
        return {"cpu_hours": None}
    cost = {"cpu_hours": world * sum(hours * n for hours, n in zip(time_spent["segment_hours"], threads)),
            "cpu_hours_from": CPU_HOURS_FROM}
    if "process_cpu_hours" in time_spent:
        cost["process_cpu_hours"] = time_spent["process_cpu_hours"] * world
    return cost


def _one_or_each(values):
    """The one value every segment shares, the list of each segment's where they differ, None for no list."""
    if not values:
        return None
    return values[0] if len(set(values)) == 1 else values


def convert_to_mindspore(torch_file: Path, ckpt_file: Path, arch: str) -> str:
    """Write the MindSpore checkpoint of a PyTorch safetensors file of the model ``arch``; return its sha256."""
    from ..convert import model_image_networks, save_mindspore_checkpoint, torch_to_mindspore

    state, _ = ckpt.read_weights(torch_file)
    save_mindspore_checkpoint(torch_to_mindspore(state, image_networks=model_image_networks(arch)), ckpt_file)
    return sha256_of(ckpt_file)


def _repo_relative(path: Path, repo: Path) -> str:
    path, repo = Path(path).resolve(), Path(repo).resolve()
    return str(path.relative_to(repo)) if path.is_relative_to(repo) else str(path)


def _relative_report(path: Path, weights_name: str):
    """Rewrite an evaluation JSON so it names files relative to its folder (a committed file has no local paths)."""
    report = json.loads(path.read_text())
    report["weights"] = weights_name
    report["data"].pop("mnist", None)
    report["files"] = {k: Path(v).name for k, v in report["files"].items()}
    atomic_write_json(path, report)
    return report


def release(name: str, run, mnist, cards_dir, train_threads=None, progress=True) -> dict:
    """Check, convert, evaluate and record the run ``run`` as the weights ``name`` into ``cards_dir`` (a
    repository's ``model_cards`` folder, see :data:`CARDS`); return ``release.json``."""
    from ..evaluation import evaluate

    weights = pretrained.get(name)
    run = Path(run)
    config, recipe = check_run_matches_recipe(weights, run), dict(weights.recipe)
    if not Path(mnist).is_dir():
        raise ConfigError(f"--mnist must be a folder holding MNIST idx files, got {str(mnist)!r}")
    summary_file = run / "train_summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.is_file() else {}
    metrics_lines = (run / "metrics.jsonl").read_text().splitlines()
    time_spent = training_time(metrics_lines)
    per_segment = threads_per_segment(time_spent, train_threads, summary, run)

    out, repo = result_dir(name, cards_dir), repository(cards_dir)
    torch_file, ms_file = (weights_path(weights, fw, cards_dir) for fw in ("torch", "mindspore"))
    digests = {"torch": atomic_write_bytes(torch_file, (run / "model.safetensors").read_bytes())}
    if "mindspore" in weights.frameworks:
        digests["mindspore"] = convert_to_mindspore(torch_file, ms_file, weights.arch)
    atomic_write_bytes(out / "metrics.jsonl", "".join(line + "\n" for line in metrics_lines).encode())
    evaluations = {}
    for framework, checkpoint in (("torch", None), ("mindspore", ms_file)):  # each framework reads its own file
        if framework not in weights.frameworks:
            continue
        report = evaluate.evaluate(torch_file, mnist=mnist, num_sequences=TEST_SEQUENCES, framework=framework,
                                   out=out, progress=progress, mindspore_checkpoint=checkpoint, overwrite=True,
                                   dataset=recipe["dataset"])
        evaluations[framework] = _relative_report(Path(report["files"]["json"]), name)
    evaluate.training_curves(out, out / "training_curves.png")

    machine_info = summary.get("machine") or {**machine.describe(), "torch_threads": per_segment[-1]}
    trained = {**{key: time_spent[key] for key in ("steps", "wall_hours", "segments")},
               "threads": _one_or_each(per_segment),
               "amp": _one_or_each(time_spent.get("segment_amp")) or summary.get("amp", config["train"]["amp"]),
               "machine": machine_info,
               **training_cost(time_spent, per_segment, summary.get("world_size", 1), bool(machine_info.get("gpu")))}
    record = {"name": name, "task": weights.task, "recipe": recipe, "trained": trained,
              "command": f"convgru-zoo train --recipe {name} --mnist MNIST_DIR --out RUN_DIR",
              "files": {fw: {"path": _repo_relative(weights_path(weights, fw, cards_dir), repo), "sha256": digest}
                        for fw, digest in digests.items()},
              "test_set": {"split": "test", "seed": evaluations["torch"]["data"]["seed"],
                           "num_sequences": TEST_SEQUENCES, "sha256": evaluations["torch"]["data"]["sha256"]},
              "final_step": config.get("step")}
    atomic_write_json(out / "release.json", record)
    record_published(name, digests, repo / SHIPPED / specs.PUBLISHED_FILE.name)
    return record


def record_published(name: str, digests: dict, path) -> None:
    """Set ``name``'s sha256s in the ``published.json`` at ``path`` (a checkout's, which ``convgru_zoo.specs``
    reads once installed), other entries kept."""
    path = Path(path)
    published = json.loads(path.read_text()) if path.is_file() else {}
    published[name] = dict(sorted(digests.items()))
    atomic_write_json(path, dict(sorted(published.items())))
