"""Fixtures shared by the test modules."""
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


@pytest.fixture(scope="session")
def released(tmp_path_factory):
    """A two-step recipe of the tiny forecaster, trained by `train --recipe` and released (converted,
    evaluated in both frameworks, recorded) into temporary package and card folders.

    Returns ``(tmp, run, record, weights)``; the ``published`` fixture makes a test see it as published.
    """
    import dataclasses

    from convgru_zoo import cli, pretrained, release, specs
    from helpers import MNIST

    if not MNIST.is_dir():
        pytest.skip(f"MNIST digits not found in {MNIST}")
    torch = pytest.importorskip("torch")
    tmp = tmp_path_factory.mktemp("release")
    recipe = dict(specs.PRETRAINED[RELEASED_NAME].recipe, steps=2, batch_size=2, num_sequences=4, val_every=1,
                  val_sequences=2, ckpt_every=1)
    weights = dataclasses.replace(specs.PRETRAINED[RELEASED_NAME], recipe=tuple(sorted(recipe.items())))
    patch, threads = pytest.MonkeyPatch(), torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        patch.setitem(specs.PRETRAINED, RELEASED_NAME, weights)
        patch.setattr(pretrained, "WEIGHTS_DIR", tmp / "package")
        patch.setattr(specs, "PUBLISHED_FILE", tmp / "package" / "published.json")
        patch.setattr(release, "TEST_SEQUENCES", 4)
        run = tmp / "run"
        assert cli.main(["train", "--recipe", RELEASED_NAME, "--mnist", str(MNIST), "--out", str(run),
                         "--no-progress"]) == 0
        record = release.release(RELEASED_NAME, run, MNIST, cards_dir=tmp / "cards", train_threads=1, progress=False)
    finally:
        patch.undo()
        torch.set_num_threads(threads)
    digests = tuple(sorted((fw, f["sha256"]) for fw, f in record["files"].items()))
    return tmp, run, record, dataclasses.replace(weights, sha256=digests)


@pytest.fixture
def published(released, monkeypatch):
    """The released test weights seen as published: their spec, package folder and published.json in place."""
    from convgru_zoo import pretrained, specs

    tmp, _, _, weights = released
    monkeypatch.setitem(specs.PRETRAINED, RELEASED_NAME, weights)
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp / "package")
    monkeypatch.setattr(specs, "PUBLISHED_FILE", tmp / "package" / "published.json")
    return released
