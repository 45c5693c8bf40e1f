"""Fixtures shared by the test modules."""
import hashlib

import pytest


@pytest.fixture
def one_thread():
    """Run torch on one thread: tiny training steps are several times slower on two busy cores."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


RELEASED_NAME = "convgru_forecaster_tiny.mmnist"
RELEASED_BACKBONE = "convgru_tiny.mmnist_motion"


@pytest.fixture(scope="session")
def release_root(tmp_path_factory):
    """A stand-in repository for the test releases: the package weights folder (``release.SHIPPED``, where
    release writes the shipped files and ``published.json``), ``cards/`` with the checkout's quoted
    references, and the backbone figures."""
    import shutil

    from convgru_zoo.publishing import cards
    from helpers import CARDS_DIR, REPO

    root = tmp_path_factory.mktemp("release")
    shutil.copytree(CARDS_DIR / cards.REFERENCE.parent, root / "cards" / cards.REFERENCE.parent)
    (root / cards.BACKBONE_FIGURES).parent.mkdir(parents=True)
    for results in (cards.BACKBONE_FIGURES, cards.SERVING, cards.RCN_SPEED):  # what the README's generated tables read
        shutil.copyfile(REPO / results, root / results)
    return root


def _train_and_release(root, name):
    """Train a two-step version of ``name``'s recipe with `train --recipe` and release it into ``root``;
    return ``(run, release record, its spec as published)``."""
    import dataclasses

    from convgru_zoo import cli, specs
    from convgru_zoo.publishing import release
    from helpers import MNIST

    if not MNIST.is_dir():
        pytest.skip(f"MNIST digits not found in {MNIST}")
    torch = pytest.importorskip("torch")
    recipe = dict(specs.PRETRAINED[name].recipe, steps=2, batch_size=2, num_sequences=4, val_every=1,
                  val_sequences=2, ckpt_every=1)
    weights = dataclasses.replace(specs.PRETRAINED[name], recipe=tuple(sorted(recipe.items())))
    patch, threads = pytest.MonkeyPatch(), torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        patch.setitem(specs.PRETRAINED, name, weights)
        patch.setattr(release, "TEST_SEQUENCES", 4)
        run = root / f"run-{name}"
        assert cli.main(["train", "--recipe", name, "--mnist", str(MNIST), "--out", str(run), "--no-progress"]) == 0
        record = release.release(name, run, MNIST, cards_dir=root / "cards", progress=False)  # threads: the log's
    finally:
        patch.undo()
        torch.set_num_threads(threads)
    digests = tuple(sorted((fw, f["sha256"]) for fw, f in record["files"].items()))
    return run, record, dataclasses.replace(weights, sha256=digests)


@pytest.fixture(scope="session")
def released(release_root):
    """A two-step recipe of the tiny forecaster, trained and released (converted, evaluated in both
    frameworks, recorded) into ``release_root``: ``(root, run, record, weights)``."""
    return (release_root, *_train_and_release(release_root, RELEASED_NAME))


@pytest.fixture(scope="session")
def released_backbone(release_root):
    """The same for the tiny backbone."""
    return (release_root, *_train_and_release(release_root, RELEASED_BACKBONE))


@pytest.fixture
def published(released, monkeypatch):
    """The released test forecaster seen as published: its spec, package folder and published.json in place."""
    from convgru_zoo import pretrained, specs
    from convgru_zoo.publishing.release import SHIPPED

    root, _, _, weights = released
    monkeypatch.setitem(specs.PRETRAINED, RELEASED_NAME, weights)
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", root / SHIPPED)
    monkeypatch.setattr(specs, "PUBLISHED_FILE", root / SHIPPED / "published.json")
    return released


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """``serve(timm name, state dict)``: a Hugging Face cache holding that model's ImageNet weights file where
    timm's default tag looks for it (``timm/<name>.<tag>``), read offline."""
    timm = pytest.importorskip("timm")
    safetensors_torch = pytest.importorskip("safetensors.torch")
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))

    def serve(name, state):
        repo = tmp_path / f"models--{timm.models.get_pretrained_cfg(name).hf_hub_id.replace('/', '--')}"
        commit = hashlib.sha1(name.encode()).hexdigest()
        (repo / "snapshots" / commit).mkdir(parents=True, exist_ok=True)
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / "main").write_text(commit)
        safetensors_torch.save_file(state, repo / "snapshots" / commit / "model.safetensors")
    return serve


@pytest.fixture(scope="session")
def short_motion_clips(tmp_path_factory):
    """A folder of clips (tests/video_clips.py): classes left and right, 10 clips of 4 frames each, 32x32."""
    pytest.importorskip("av")
    from video_clips import make_motion_folder

    return make_motion_folder(tmp_path_factory.mktemp("clips") / "motion", clips_per_class=10, frames=4)
