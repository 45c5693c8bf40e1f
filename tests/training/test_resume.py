"""`convgru-zoo train --resume` after a real SIGKILL ends with the same weights as an uninterrupted run."""
import json
import os
import signal
import subprocess
import sys
import threading

import pytest
import torch
from safetensors.torch import load_file

from convgru_zoo import cli
from helpers import MNIST, kill_at_first_checkpoint, needs_mnist

pytestmark = [needs_mnist, pytest.mark.slow]  # whole training runs

STEPS = 8
# One thread everywhere: the same kernels in every run, so the comparison can be bitwise.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def train_args(out, *extra):
    return ["train", "--task", "forecast", "--model", "convgru_forecaster_tiny", "--mnist", str(MNIST),
            "--out", str(out), "--steps", str(STEPS), "--batch-size", "2", "--num-sequences", "6",
            "--ckpt-every", "2", "--warmup-steps", "2", "--grad-clip", "1.0", "--seed", "3", "--no-progress", *extra]


def test_resume_after_sigkill_matches_uninterrupted_run(tmp_path, one_thread):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "convgru_zoo.cli", *train_args(killed)], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    outcome = {}
    killer = threading.Thread(target=kill_at_first_checkpoint, args=(proc, killed / "checkpoints", outcome))
    killer.start()
    assert cli.main(train_args(straight)) == 0  # the uninterrupted run, here, meanwhile
    killer.join()
    assert outcome["returncode"] == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (killed / "model.safetensors").exists()
    saved = sorted(int(p.stem.split("_")[1]) for p in (killed / "checkpoints").glob("step_*.json"))
    assert saved and max(saved) < STEPS

    assert cli.main(train_args(killed, "--resume")) == 0
    a, b = load_file(straight / "model.safetensors"), load_file(killed / "model.safetensors")
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name

    def losses(run):
        return [(r["step"], r["loss"]) for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())]
    assert losses(killed) == losses(straight), "each step logged once, with the uninterrupted run's loss"
    assert [step for step, _ in losses(killed)] == list(range(1, STEPS + 1))
