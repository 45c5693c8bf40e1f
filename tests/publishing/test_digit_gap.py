"""benchmarks/digit_gap.py: a classifier's top-1 on clips of the digit images it trained on and of those it never
saw, for its release and earlier ones, the table its card shows.

What a user of the card relies on: each row is the weights it names (an earlier release read from git as
committed, checked by its recorded sha256), scored through the released model's own normalisation (a real tag
scores far above chance, fresh weights at chance), and the card marks which row is the weights it ships."""
import hashlib
import json
import os
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("huggingface_hub")

from convgru_zoo import specs  # noqa: E402
from convgru_zoo.publishing import cards, publish, release  # noqa: E402
from helpers import CARDS_DIR, MNIST, REPO, needs_mnist  # noqa: E402

SCRIPT = REPO / "benchmarks" / "digit_gap.py"
TAG = "convgru_tiny.mmnist_motion"  # ships in the package: real weights that know digits
pytestmark = needs_mnist


def _git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


def _score(cards_dir, json_path, *before):
    return subprocess.run([sys.executable, str(SCRIPT), "--mnist", str(MNIST), "--tag", TAG, "--cards", str(cards_dir),
                           "--num-sequences", "20", "--json", str(json_path), *(f"--before={rev}" for rev in before)],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.fixture
def repo(tmp_path):
    """A repository holding the tag's release, whose first commit released freshly initialised weights instead:
    ``(repo, that commit, its weights' sha256)``."""
    import torch
    from safetensors.torch import save_file

    from convgru_zoo.models import create_model

    repo = tmp_path / "repo"
    shipped = release.weights_path(specs.PRETRAINED[TAG], "torch", repo / "model_cards")
    shipped.parent.mkdir(parents=True)
    shutil.copytree(CARDS_DIR / TAG, repo / "model_cards" / TAG)
    record_path = repo / "model_cards" / TAG / "release.json"
    torch.manual_seed(0)
    fresh = create_model("convgru_tiny", num_classes=40)
    save_file({k: v.contiguous() for k, v in fresh.state_dict().items()}, str(shipped))
    fresh_sha256 = hashlib.sha256(shipped.read_bytes()).hexdigest()
    record = json.loads(record_path.read_text())
    record["files"]["torch"]["sha256"], record["trained"]["steps"] = fresh_sha256, 7
    record_path.write_text(json.dumps(record))
    _git(repo.parent, "init", "-q", str(repo))
    _git(repo, "add", ".")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "fresh weights")
    shutil.copyfile(release.weights_path(specs.PRETRAINED[TAG], "torch", CARDS_DIR), shipped)
    shutil.copyfile(CARDS_DIR / TAG / "release.json", record_path)
    return repo, _git(repo, "rev-parse", "--short", "HEAD"), fresh_sha256


def test_rows_are_the_named_weights_and_the_card_marks_this_release(repo, tmp_path):
    repo, revision, fresh_sha256 = repo
    results = tmp_path / "gap.json"
    done = _score(repo / "model_cards", results, revision)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(results.read_text())
    before, now = report["releases"]
    assert report["digit_images"] == {"train": 8000, "val": 1000, "test": 1000}
    from convgru_zoo.data.moving_mnist import MotionMNIST
    from convgru_zoo.evaluation.evaluate import HashedItems
    test_clips = HashedItems(MotionMNIST(MNIST, "test", 20, seq_len=10, channels=3, seed=1))
    test_clips.batch(range(20))
    assert report["clips_sha256"]["test"] == test_clips.digest.hexdigest()  # the clips, however many rows
    assert (before["revision"], before["sha256"], before["steps"]) == (revision, fresh_sha256, 7)
    recorded = json.loads((CARDS_DIR / TAG / "release.json").read_text())
    assert (now["revision"], now["sha256"]) == (None, recorded["files"]["torch"]["sha256"])
    assert max(before["top1"].values()) < 0.3           # chance is 1/40
    assert min(now["top1"].values()) >= 0.8             # the released tiny: 0.968 on the fixed test set
    assert now["gap"] == pytest.approx(now["top1"]["train"] - now["top1"]["test"])

    shutil.copyfile(results, repo / "model_cards" / TAG / cards.DIGIT_GAP)
    text = cards.render(TAG, repo / "model_cards")
    assert "### Digits learnt, or digit images memorised" in text
    assert f"| release at `{revision}` | 7 | no | {before['top1']['train']:.4f} |" in text
    assert f"| this release | {recorded['trained']['steps']} | no | {now['top1']['train']:.4f} |" in text
    assert f"--tag {TAG} --before {revision} --seed 1 --num-sequences 20 --json" in text  # the command that made it
    (repo / "model_cards" / TAG / "README.md").write_text(text)
    shutil.copyfile(release.weights_path(specs.PRETRAINED[TAG], "mindspore", CARDS_DIR),
                    release.weights_path(specs.PRETRAINED[TAG], "mindspore", repo / "model_cards"))
    assert cards.DIGIT_GAP in publish.build_folder(TAG, tmp_path / "staged", repo / "model_cards")  # the Hub holds it
    (repo / "model_cards" / TAG / cards.DIGIT_GAP).unlink()
    assert "### Digits learnt" not in cards.render(TAG, repo / "model_cards")


def test_an_earlier_release_whose_file_is_not_the_recorded_one_is_refused(repo, tmp_path):
    repo, revision, fresh_sha256 = repo
    shipped = release.weights_path(specs.PRETRAINED[TAG], "torch", repo / "model_cards")
    _git(repo, "add", str(shipped))  # the real weights under the fresh weights' release.json
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "weights without their record")
    done = _score(repo / "model_cards", tmp_path / "gap.json", "HEAD")
    assert done.returncode != 0 and not (tmp_path / "gap.json").exists()
    assert f"{TAG}'s PyTorch file at HEAD has sha256" in done.stderr and f"records {fresh_sha256}" in done.stderr


@pytest.mark.parametrize("flag, value", [("--seed", "-1"), ("--num-sequences", "0")])
def test_bad_arguments_are_refused_naming_the_flag_before_any_scoring(tmp_path, flag, value):
    done = subprocess.run([sys.executable, str(SCRIPT), "--mnist", str(MNIST), "--tag", TAG, flag, value,
                           "--json", str(tmp_path / "gap.json")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and not (tmp_path / "gap.json").exists()
    assert f"{flag} must be" in done.stderr and f"got {value}" in done.stderr
