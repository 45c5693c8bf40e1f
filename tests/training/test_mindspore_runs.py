"""MindSpore training runs: ``--resume`` after a real SIGKILL ends with the same weights and log as an
uninterrupted run (as tests/training/test_resume.py for PyTorch), and msrun data parallel on CPU matches one process."""
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mindspore")

import convgru_zoo  # noqa: E402
from convgru_zoo.run_files import list_checkpoints, read_weights  # noqa: E402
from helpers import MNIST, kill_at_first_checkpoint, needs_mnist  # noqa: E402

pytestmark = [needs_mnist, pytest.mark.slow]  # whole training runs

STEPS = 8
# One thread everywhere: the same kernels in every run, so the comparison can be bitwise; the checkout under
# test on the path (the launchers start the installed script).
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
       "PYTHONPATH": str(Path(convgru_zoo.__file__).parents[1])}


def train(out, *extra):
    return [sys.executable, "-m", "convgru_zoo.cli", "train", "--framework", "mindspore", "--task", "forecast",
            "--model", "convgru_forecaster_tiny", "--mnist", str(MNIST), "--out", str(out), "--steps", str(STEPS),
            "--batch-size", "2", "--num-sequences", "6", "--ckpt-every", "2", "--val-every", "4",
            "--val-sequences", "2", "--warmup-steps", "2", "--grad-clip", "0.015", "--seed", "3", "--no-progress",
            *extra]


def test_mindspore_resume_after_sigkill_matches_uninterrupted_run(tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    proc = subprocess.Popen(train(killed), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    outcome = {}
    killer = threading.Thread(target=kill_at_first_checkpoint, args=(proc, killed / "checkpoints", outcome))
    killer.start()
    done = subprocess.run(train(straight), env=ENV, capture_output=True, text=True, timeout=600)
    killer.join()
    assert done.returncode == 0, done.stderr
    assert outcome["returncode"] == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (killed / "model.safetensors").exists()
    saved = [int(p.stem.split("_")[1]) for p in list_checkpoints(killed / "checkpoints")]
    assert saved and max(saved) < STEPS

    resumed = subprocess.run(train(killed, "--resume"), env=ENV, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    a, meta = read_weights(straight / "model.safetensors")
    b, _ = read_weights(killed / "model.safetensors")
    assert meta["framework"] == "mindspore" and a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)

    def log(run):
        return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    keys = ("step", "loss", "lr", "grad_norm", "val_loss")
    assert [[r.get(k) for k in keys] for r in log(killed)] == [[r.get(k) for k in keys] for r in log(straight)]
    assert [r["step"] for r in log(straight)] == list(range(1, STEPS + 1))
    assert [r["step"] for r in log(straight) if "val_loss" in r] == [4, 8]
    assert [p.name for p in list_checkpoints(straight / "checkpoints")] == ["step_0000006.json", "step_0000008.json"]
    # the norm is logged before clipping: steps above 0.015 were clipped, and resumed alike
    assert any(r["grad_norm"] > 0.015 for r in log(straight))


def test_msrun_data_parallel_matches_one_process(tmp_path):
    """Two msrun workers on CPU, one sample each, end where one process with the whole batch does."""
    common = ["train", "--framework", "mindspore", "--task", "forecast", "--model", "convgru_forecaster_tiny",
              "--mnist", str(MNIST), "--steps", "2", "--batch-size", "2", "--num-sequences", "4", "--seed", "1",
              "--no-progress"]
    cli = shutil.which("convgru-zoo", path=os.path.dirname(sys.executable))
    msrun = shutil.which("msrun", path=os.path.dirname(sys.executable))
    env = {**ENV, "PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])}
    job = subprocess.Popen([msrun, "--worker_num=2", "--local_worker_num=2", "--master_port=8139", "--join=True",
                            f"--log_dir={tmp_path / 'logs'}", cli, *common, "--out", str(tmp_path / "dp")], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    single = subprocess.run([cli, *common, "--out", str(tmp_path / "one")], env=env, capture_output=True, text=True,
                            timeout=600)
    assert single.returncode == 0, single.stderr
    assert job.wait(timeout=600) == 0, "msrun job failed: see its logs"
    summary = json.loads((tmp_path / "dp" / "train_summary.json").read_text())
    assert summary["world_size"] == 2 and summary["ranks_agree_on_weights"]
    a, _ = read_weights(tmp_path / "dp" / "model.safetensors")
    b, _ = read_weights(tmp_path / "one" / "model.safetensors")
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-5, atol=1e-6, err_msg=name)


def test_resume_refuses_a_checkpoint_of_the_old_adamweightdecay_and_changes_nothing(tmp_path, capsys):
    """Runs saved before the loop used torch's AdamW hold nn.AdamWeightDecay's moments (adam_m.*, adam_v.*), which
    lack the bias correction: they cannot continue alike, so --resume names why and leaves the run as it was."""
    from safetensors.numpy import load as load_arrays
    from safetensors.numpy import save as save_arrays

    from convgru_zoo import cli
    from convgru_zoo.run_files import read_checkpoint, write_checkpoint

    out = tmp_path / "old"
    args = train(out)[3:]  # the command line after `python -m convgru_zoo.cli`
    steps = args.index("--steps") + 1
    args[steps] = "2"
    args[args.index("--ckpt-every") + 1] = "1"
    args[args.index("--val-every") + 1] = "0"
    assert cli.main(args) == 0
    latest = sorted((out / "checkpoints").glob("step_*.json"))[-1]
    meta, data = read_checkpoint(latest)
    renamed = {name.replace("exp_avg_sq.", "adam_v.").replace("exp_avg.", "adam_m."): value
               for name, value in load_arrays(data).items()}
    assert sum(name.startswith("adam_m.") for name in renamed) == 14  # one for each of the model's parameters
    write_checkpoint(out / "checkpoints", meta["step"], save_arrays(renamed), meta)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    assert cli.main([*args, "--resume"]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "holds the state of MindSpore's nn.AdamWeightDecay (adam_m.*, adam_v.*)" in err
    assert "it skips AdamW's bias correction" in err and "start a new run in another --out" in err
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
