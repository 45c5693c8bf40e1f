"""`convgru-zoo train --resume` after a real SIGKILL ends with the same weights as an uninterrupted run."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
pytestmark = pytest.mark.skipif(not MNIST.is_dir(), reason=f"MNIST digits not found in {MNIST}")

STEPS = 8
# One thread: the same kernels in every run, so the comparison can be bitwise.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def train_command(out, *extra):
    return [sys.executable, "-m", "convgru_zoo.cli", "train", "--task", "forecast",
            "--model", "convgru_forecaster_tiny", "--mnist", str(MNIST), "--out", str(out),
            "--steps", str(STEPS), "--batch-size", "2", "--num-sequences", "6", "--ckpt-every", "2",
            "--warmup-steps", "2", "--grad-clip", "1.0", "--seed", "3", "--no-progress", *extra]


def final_weights(run):
    return load_file(run / "model.safetensors")


def test_resume_after_sigkill_matches_uninterrupted_run(tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    # Both start together, one thread each: the two cores of a small machine.
    uninterrupted = subprocess.Popen(train_command(straight), env=ENV)
    proc = subprocess.Popen(train_command(killed), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not list((killed / "checkpoints").glob("step_*.json")) and proc.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (killed / "model.safetensors").exists()
    saved = sorted(int(p.stem.split("_")[1]) for p in (killed / "checkpoints").glob("step_*.json"))
    assert saved and max(saved) < STEPS

    subprocess.run(train_command(killed, "--resume"), check=True, env=ENV, timeout=300)
    assert uninterrupted.wait(timeout=300) == 0
    a, b = final_weights(straight), final_weights(killed)
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name

    steps = [json.loads(line)["step"] for line in (killed / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, STEPS + 1)), "metrics.jsonl must hold each step once after the resume"
    losses = [json.loads(line)["loss"] for line in (straight / "metrics.jsonl").read_text().splitlines()]
    resumed = [json.loads(line)["loss"] for line in (killed / "metrics.jsonl").read_text().splitlines()]
    assert losses == resumed
