"""Data-parallel training through torchrun: two CPU processes (gloo) train like one process."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from convgru_zoo import cli
from helpers import MNIST, needs_mnist

pytestmark = [needs_mnist, pytest.mark.slow]  # whole training runs
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
STEPS = 3
# SGD: its update is linear in the gradient, so the two runs may differ only by float rounding
# (Adam's first steps are ~lr * sign(g) and amplify rounding of near-zero gradients).
TRAIN = ["train", "--task", "forecast", "--model", "convgru_forecaster_tiny", "--mnist", str(MNIST),
         "--steps", str(STEPS), "--batch-size", "2", "--num-sequences", "8", "--optimizer", "sgd", "--lr", "0.5",
         "--no-progress"]


def torchrun():
    found = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    if found is None:
        pytest.skip("torchrun not found")
    return found


def test_torchrun_two_cpu_processes_agree_with_one_process(tmp_path):
    ddp, single = tmp_path / "ddp", tmp_path / "single"
    subprocess.run([torchrun(), "--standalone", "--nproc_per_node=2", "-m", "convgru_zoo.cli", *TRAIN,
                    "--out", str(ddp)], check=True, env=ENV, timeout=300, cwd=tmp_path)
    summary = json.loads((ddp / "train_summary.json").read_text())
    assert summary["world_size"] == 2
    assert summary["ranks_agree_on_weights"] is True  # both ranks' weight digests, gathered at the end
    lines = (ddp / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == list(range(1, STEPS + 1)), "only rank 0 may log"

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert cli.main([*TRAIN, "--out", str(single)]) == 0  # one process, here
    finally:
        torch.set_num_threads(threads)
    # The global batch of 2 split over 2 ranks, gradients averaged: the same steps as one process.
    a, b = load_file(ddp / "model.safetensors"), load_file(single / "model.safetensors")
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-6, msg=name)
    last = load_file(ddp / "checkpoints" / f"step_{STEPS:07d}.safetensors")
    assert all(torch.equal(a[name], last[f"model.{name}"]) for name in a)



def test_torchrun_backbone_with_batchnorm_keeps_replicas_identical(tmp_path):
    # BatchNorm's running statistics come from each rank's own share of the batch: without averaging
    # them over the ranks, the replicas' buffers drift apart at the first step.
    out = tmp_path / "ddp"
    subprocess.run([torchrun(), "--standalone", "--nproc_per_node=2", "-m", "convgru_zoo.cli", "train",
                    "--task", "classify", "--model", "convgru_tiny", "--mnist", str(MNIST), "--steps", "2",
                    "--batch-size", "4", "--num-sequences", "8", "--no-progress", "--out", str(out)],
                   check=True, env=ENV, timeout=300, cwd=tmp_path)
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["world_size"] == 2 and summary["ranks_agree_on_weights"] is True
    state = load_file(out / "model.safetensors")
    assert state["stem.conv.weight"].shape[1] == 3  # grey digits given as the 3 channels backbones take
    assert not torch.equal(state["stem.norm.running_mean"], torch.zeros_like(state["stem.norm.running_mean"]))
