"""Run folders of ``convgru-zoo train`` read by the benchmarks that score a run along its way: the run's
training configuration and the model weights of every checkpoint it kept (``--keep-checkpoints 0``)."""
import json
from pathlib import Path

from convgru_zoo import run_files as ckpt
from convgru_zoo import train as training


def intact_checkpoints(run: Path) -> list:
    """Sidecar paths of a run's intact checkpoints, oldest first."""
    return [p for p in ckpt.list_checkpoints(run / "checkpoints") if ckpt.checkpoint_problem(p) is None]


def run_config(run: Path) -> training.TrainConfig:
    """The training configuration of a run folder: its ``config.json`` once finished, else (a run still going)
    the one its newest intact checkpoint records."""
    config_file = run / "config.json"
    if config_file.is_file():
        trained = json.loads(config_file.read_text())["train"]
    elif found := intact_checkpoints(run):
        trained = ckpt.read_checkpoint(found[-1])[0]["config"]
    else:
        raise SystemExit(f"{run} must be a run folder of `convgru-zoo train` (config.json or a checkpoint), got "
                         "neither there")
    return training.TrainConfig(**training.as_trained(trained))


def checkpoint_states(run: Path, every: int = 1):
    """``(step, {name: tensor})`` of every intact checkpoint of a PyTorch run whose step is a multiple of
    ``every``, oldest first."""
    from safetensors.torch import load as load_tensors

    found = intact_checkpoints(run)
    if not found:
        raise SystemExit(f"{run}/checkpoints holds no intact checkpoint: train with --keep-checkpoints 0")
    for sidecar in found:
        meta, data = ckpt.read_checkpoint(sidecar)
        if meta["step"] % every:
            continue
        tensors = load_tensors(data)
        yield meta["step"], {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
