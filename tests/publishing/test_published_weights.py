"""The real published weights, offline: every door gives the same outputs for the same tag, the files are
the ones their sha256 names, and the repository keeps them once, within its size budget.

Tags whose files ship in the package run here; the others are fetched from the Hub and are covered by
tests/publishing/test_publish.py against a stand-in. A tag not yet released is skipped, naming it.
"""
import hashlib

import numpy as np
import pytest

from convgru_zoo import pretrained, specs
from convgru_zoo.publishing import release
from convgru_zoo._files import sha256_of
from helpers import CARDS_DIR, REPO

SHIPPED = [w for w in specs.PRETRAINED.values() if w.ships]
MAX_WEIGHTS_MB = 100


def published(weights):
    if not weights.sha256:
        pytest.skip(f"{weights.name} is not released yet")
    return weights


@pytest.mark.parametrize("weights", SHIPPED, ids=lambda w: w.name)
def test_shipped_files_are_the_published_ones(weights):
    published(weights)
    for framework, digest in weights.sha256:
        path = pretrained.shipped_path(weights.name, framework)
        assert sha256_of(path) == digest, path


def test_repository_weights_are_kept_once_within_budget():
    import subprocess

    files = [release.weights_path(w, fw, CARDS_DIR) for w in specs.PRETRAINED.values() for fw, _ in w.sha256]
    files = [f for f in files if f.is_file() and f.is_relative_to(REPO)]
    listed = subprocess.run(["git", "ls-files", "-z", "--", *files], cwd=REPO, capture_output=True)
    if listed.returncode != 0:
        pytest.skip(f"not a git checkout: {REPO}")
    files = [REPO / name for name in listed.stdout.decode().split("\0") if name]  # ignored copies don't count
    digests = [sha256_of(f) for f in files]
    assert len(set(digests)) == len(digests), "the same weights are committed twice"
    assert sum(f.stat().st_size for f in files) <= MAX_WEIGHTS_MB * 2 ** 20


@pytest.mark.parametrize("weights", [w for w in SHIPPED if w.task == "classify"], ids=lambda w: w.name)
def test_every_door_gives_the_same_logits(weights, one_thread):
    published(weights)
    torch = pytest.importorskip("torch")
    import timm

    import convgru_zoo  # noqa: F401  registers the models
    clip = np.random.default_rng(0).random((2, 4, *weights.input_size), dtype=np.float32)
    with torch.no_grad():
        logits = timm.create_model(weights.name, pretrained=True).eval()(torch.from_numpy(clip)).numpy()
        hub = torch.hub.load(str(REPO), weights.arch, source="local", pretrained=True).eval()
        np.testing.assert_allclose(hub(torch.from_numpy(clip)).numpy(), logits, rtol=0, atol=0)
    ms = pytest.importorskip("mindspore")
    import mindcv
    net = mindcv.create_model(weights.arch, pretrained=True, num_classes=weights.num_classes)
    net.set_train(False)
    np.testing.assert_allclose(net(ms.Tensor(clip)).asnumpy(), logits, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("weights", [w for w in SHIPPED if w.task == "forecast"], ids=lambda w: w.name)
def test_both_frameworks_forecast_alike(weights, one_thread):
    published(weights)
    torch = pytest.importorskip("torch")
    from convgru_zoo import create_forecaster
    clip = np.random.default_rng(0).random((2, 10, *weights.input_size), dtype=np.float32)
    with torch.no_grad():
        forecast = create_forecaster(weights.arch, pretrained=True, output_frames=3).eval()(
            torch.from_numpy(clip)).numpy()
        hub = torch.hub.load(str(REPO), weights.arch, source="local", pretrained=True, output_frames=3).eval()
        np.testing.assert_allclose(hub(torch.from_numpy(clip)).numpy(), forecast, rtol=0, atol=0)
    ms = pytest.importorskip("mindspore")
    twin = create_forecaster(weights.arch, framework="mindspore", pretrained=True, output_frames=3)
    twin.set_train(False)
    np.testing.assert_allclose(twin(ms.Tensor(clip)).asnumpy(), forecast, rtol=1e-4, atol=1e-5)


def test_the_wheel_ships_every_released_shipped_file(tmp_path):
    # `pretrained=True` right after `pip install`, offline: the built wheel carries the files and their sha256s.
    import shutil
    import subprocess
    import sys
    import zipfile

    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "convgru_zoo", source / "convgru_zoo",
                    ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "dist"), str(source)], check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("convgru_zoo-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        released = [(w, fw, digest) for w in SHIPPED for fw, digest in w.sha256]
        assert released, "no shipped tag is released"
        for weights, framework, digest in released:
            member = f"convgru_zoo/weights/{pretrained.shipped_path(weights.name, framework).name}"
            assert member in names, member
            assert hashlib.sha256(archive.read(member)).hexdigest() == digest, member
        assert "convgru_zoo/weights/published.json" in names
