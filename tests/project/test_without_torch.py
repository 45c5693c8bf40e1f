"""A MindSpore-only user: with torch, timm and torchvision not importable, the CLI trains, resumes,
evaluates and runs the demo in MindSpore, pretrained weights load (MindCV and the forecaster door),
and our published PyTorch-named files convert, all read without torch."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mindspore")

import convgru_zoo  # noqa: E402
from helpers import MNIST, TESTS, needs_mnist  # noqa: E402

pytestmark = needs_mnist

SCRIPT = r"""
import json, sys
from dataclasses import replace
from pathlib import Path

out, mnist = Path(sys.argv[1]), sys.argv[2]
try:
    import torch
except ImportError:
    pass
else:
    raise SystemExit("torch must not be importable here")

from convgru_zoo import cli, convert, pretrained, specs
from convgru_zoo.run_files import read_weights

run = out / "run"
train = ["train", "--framework", "mindspore", "--task", "forecast", "--model", "convgru_forecaster_tiny",
         "--mnist", mnist, "--out", str(run), "--batch-size", "2", "--num-sequences", "2", "--ckpt-every", "1",
         "--no-progress"]
assert cli.main(train + ["--steps", "1"]) == 0
assert cli.main(train + ["--steps", "2", "--resume"]) == 2   # another config: refused, naming --steps
assert cli.main(["eval", "--framework", "mindspore", "--weights", str(run), "--mnist", mnist, "--num-sequences", "2",
                 "--batch-size", "2", "--no-progress"]) == 0
report = json.loads((run / "eval" / "eval_forecast_mindspore.json").read_text())
assert report["framework"] == "mindspore" and report["metrics"]["num_sequences"] == 2

assert cli.main(["demo", "--train", "--framework", "mindspore", "--mnist", mnist, "--out", str(out / "demo"), "--steps", "1",
                 "--no-progress"]) == 0
assert (out / "demo" / "eval" / "eval_forecast_mindspore.json").is_file()

# Published PyTorch-named weights (here: the run's), sha256-checked, into MindCV and the forecaster door.
import mindcv
from convgru_zoo import create_forecaster

pretrained.WEIGHTS_DIR = out / "weights"
pretrained.WEIGHTS_DIR.mkdir()
for tag, source in (("convgru_forecaster_tiny", run / "model.safetensors"), ("convgru_tiny", None)):
    name = next(n for n, w in specs.PRETRAINED.items() if w.arch == tag)
    path = pretrained.shipped_path(name, "torch")
    if source is None:
        model = mindcv.create_model("convgru_tiny", num_classes=specs.NUM_CLASSES)
        convert.save_mindspore_checkpoint(model, out / "tiny.ckpt")
        from safetensors.numpy import save_file
        save_file(convert.mindspore_to_torch_arrays(model), str(path))
    else:
        path.write_bytes(source.read_bytes())
    specs.PRETRAINED[name] = replace(specs.PRETRAINED[name], sha256=(("torch", pretrained.sha256_of(path)),))

net = mindcv.create_model("convgru_tiny", pretrained=True, num_classes=specs.NUM_CLASSES)
loaded = {p.name: p.asnumpy() for p in net.get_parameters()}
expected = convert.torch_to_mindspore(read_weights(pretrained.shipped_path(
    next(n for n, w in specs.PRETRAINED.items() if w.arch == "convgru_tiny"), "torch"))[0])
assert loaded.keys() == expected.keys() and all((loaded[k] == expected[k]).all() for k in loaded)
checked = mindcv.create_model("convgru_tiny", checkpoint_file=str(out / "tiny.ckpt"), num_classes=specs.NUM_CLASSES)
assert all((p.asnumpy() == loaded[p.name]).all() for p in checked.get_parameters())

fc = create_forecaster("convgru_forecaster_tiny", framework="mindspore", pretrained=True)
trained = convert.torch_to_mindspore(read_weights(run / "model.safetensors")[0])
assert all((p.asnumpy() == trained[p.name]).all() for p in fc.get_parameters())
print("mindspore-only: ok")
"""


def test_mindspore_user_without_torch_trains_evaluates_and_loads_weights(tmp_path):
    package_root = str(Path(convgru_zoo.__file__).parents[1])  # the checkout under test, not another install
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS / "no_torch"), package_root]),
           "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path), str(MNIST)], env=env, capture_output=True,
                          text=True, timeout=900, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    assert "mindspore-only: ok" in done.stdout
