"""Fuzzing the command line with a careful user's mistakes (issue 11): nothing a user made is ever
overwritten, and a failed command leaves nothing behind.

Each case runs ``convgru-zoo train`` or ``eval`` with one mistake (bad MNIST files, a bad device,
seed or output folder, a foreign or damaged run folder) and asserts the usage exit status, a
message naming the argument (or the file), and that the folders involved are byte for byte and
mtime for mtime what they were before: nothing created, nothing changed.
"""
import gzip
import json
import re
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from convgru_zoo import cli, run_files
from helpers import MNIST, needs_mnist

pytestmark = pytest.mark.usefixtures("one_thread")

TRAIN = ["train", "--task", "forecast", "--model", "convgru_forecaster_tiny", "--steps", "2", "--batch-size", "2",
         "--num-sequences", "4", "--no-progress"]


def snapshot(folder):
    """Every file under ``folder`` with its bytes and mtime: what 'nothing changed' compares."""
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}


def refused(argv, capsys, *messages):
    """Run the CLI; assert it exits with the usage status and prints each of ``messages`` (substrings)."""
    try:
        code = cli.main(argv)
    except SystemExit as exit_:
        code = exit_.code
    err = capsys.readouterr().err
    assert code == cli.EXIT_USAGE, err
    assert all(message in err for message in messages), err


# ---------------------------------------------------------------- bad MNIST data, checked before anything is made
def idx_bytes(array, code=0x08, dims=None):
    """An idx file: magic (0, 0, dtype code, ndim), big-endian uint32 dimensions, then the data."""
    dims = array.shape if dims is None else dims
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + array.tobytes()


def write_mnist(folder, images=None, labels=None, image_file=None, label_file=None):
    """A small MNIST 'train' pair in ``folder`` (gzipped), with either file replaced by raw bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (20, 28, 28), dtype=np.uint8) if images is None else images
    labels = rng.integers(0, 10, 20, dtype=np.uint8) if labels is None else labels
    image_file = gzip.compress(idx_bytes(images)) if image_file is None else image_file
    label_file = gzip.compress(idx_bytes(labels)) if label_file is None else label_file
    if image_file is not False:
        (folder / "train-images-idx3-ubyte.gz").write_bytes(image_file)
    if label_file is not False:
        (folder / "train-labels-idx1-ubyte.gz").write_bytes(label_file)
    return folder


GOOD_IMAGES = np.random.default_rng(1).integers(0, 256, (20, 28, 28), dtype=np.uint8)  # incompressible
BAD_MNIST = {
    "empty_folder": (lambda d: d.mkdir() or d, "holds no MNIST idx files"),
    "truncated_gz": (lambda d: write_mnist(d, image_file=gzip.compress(idx_bytes(GOOD_IMAGES))[:100]),
                     "cannot read idx file"),
    "plain_text_gz": (lambda d: write_mnist(d, image_file=b"these are not the digits\n"), "cannot read idx file"),
    "bad_magic": (lambda d: write_mnist(d, image_file=gzip.compress(b"\x12\x34" + idx_bytes(GOOD_IMAGES)[2:])),
                  "bad magic number"),
    "missing_labels": (lambda d: write_mnist(d, label_file=False), "has only half of the MNIST 'train' pair"),
    "count_mismatch": (lambda d: write_mnist(d, labels=np.zeros(19, np.uint8)), "holds 19 labels for 20 images"),
    "float_idx": (lambda d: write_mnist(d, image_file=gzip.compress(idx_bytes(GOOD_IMAGES.astype(">f4"), code=0x0D))),
                  "must hold uint8 images"),
    "header_2_31_images": (lambda d: write_mnist(d, image_file=gzip.compress(
        idx_bytes(GOOD_IMAGES, dims=(2 ** 31, 28, 28)))), "but its header"),
}


@pytest.mark.parametrize("framework", ["torch", "mindspore"])
@pytest.mark.parametrize("kind", sorted(BAD_MNIST))
def test_bad_mnist_data_is_refused_before_anything_is_made(tmp_path, capsys, kind, framework):
    make, message = BAD_MNIST[kind]
    mnist = make(tmp_path / "mnist")
    before = snapshot(tmp_path)
    refused(TRAIN + ["--framework", framework, "--mnist", str(mnist), "--out", str(tmp_path / "run")], capsys,
            "--mnist must be a folder of readable MNIST idx files", message)
    assert snapshot(tmp_path) == before  # no run folder, no metrics.jsonl


@pytest.mark.parametrize("framework", ["torch", "mindspore"])
@pytest.mark.parametrize("digits", [2, 5])
def test_too_few_digits_for_the_splits_are_refused_before_anything_is_made(tmp_path, capsys, framework, digits):
    """Readable files, but too few digit images for disjoint train, val and test splits (5 leave val empty)."""
    mnist = write_mnist(tmp_path / "mnist", images=GOOD_IMAGES[:digits], labels=np.zeros(digits, np.uint8))
    before = snapshot(tmp_path)
    refused(TRAIN + ["--framework", framework, "--mnist", str(mnist), "--out", str(tmp_path / "run")], capsys,
            f"--mnist must hold enough digit images for the train, val and test splits, got {digits} in")
    assert snapshot(tmp_path) == before  # no run folder, no metrics.jsonl


# ---------------------------------------------------------------- bad arguments, checked before anything is made
@needs_mnist
@pytest.mark.parametrize("args, message", [
    (["--device", "bogus"], "--device must be auto, cpu, cuda or cuda:N, got 'bogus'"),
    (["--device", "meta"], "--device must be auto, cpu, cuda or cuda:N, got 'meta'"),
    (["--device", "cuda:x"], "--device must be auto, cpu, cuda or cuda:N"),
    (["--seed", str(2 ** 32)], f"--seed must be an int in [0, 2**32 - 1] (NumPy's seeds), got {2 ** 32}"),
    (["--seed", str(2 ** 70)], "--seed must be an int in [0, 2**32 - 1]"),
    (["--framework", "mindspore", "--device", "bogus"], "--device must be auto, cpu, cuda or cuda:N, got 'bogus'"),
])
def test_bad_device_and_seed_are_refused_before_anything_is_made(tmp_path, capsys, args, message):
    before = snapshot(tmp_path)
    refused(TRAIN + ["--mnist", str(MNIST), "--out", str(tmp_path / "run")] + args, capsys, message)
    assert snapshot(tmp_path) == before


@needs_mnist
@pytest.mark.parametrize("framework", ["torch", "mindspore"])
@pytest.mark.parametrize("out, message", [
    ("notes.txt", "--out must be a folder, got"),
    ("notes.txt/run", "is a file"),
])
def test_out_over_a_file_is_refused_and_the_file_kept(tmp_path, capsys, framework, out, message):
    (tmp_path / "notes.txt").write_text("my notes\n")
    before = snapshot(tmp_path)
    refused(TRAIN + ["--framework", framework, "--mnist", str(MNIST), "--out", str(tmp_path / out)], capsys, message)
    assert snapshot(tmp_path) == before


@needs_mnist
@pytest.mark.parametrize("out", ["/proc/convgru-zoo-test/run", "x" * 300 + "/run"], ids=["under_proc", "name_too_long"])
def test_out_that_cannot_be_made_is_refused_before_anything_is_made(tmp_path, capsys, out):
    """Only making a folder tells (root may write anywhere, /proc takes no folders): one is made and removed again."""
    if out.startswith("/proc") and not Path("/proc/self").is_dir():
        pytest.skip("no /proc here")
    out = out if out.startswith("/") else str(tmp_path / out)
    before = snapshot(tmp_path)
    refused(TRAIN + ["--mnist", str(MNIST), "--out", out], capsys,
            f"--out must be a folder that can be made or written to, got '{out}'")
    assert snapshot(tmp_path) == before


# ---------------------------------------------------------------- another tool's folder, a damaged run of ours
@needs_mnist
@pytest.mark.parametrize("resume", [False, True])
def test_another_tools_model_folder_is_never_overwritten(tmp_path, capsys, resume):
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "model.safetensors").write_bytes(b"their weights")
    (theirs / "config.json").write_text('{"architecture": "resnet50"}\n')
    before = snapshot(tmp_path)
    message = "--resume continues a run of ours" if resume else "--out must be a new or empty run folder"
    refused(TRAIN + ["--mnist", str(MNIST), "--out", str(theirs)] + (["--resume"] if resume else []), capsys, message)
    assert snapshot(tmp_path) == before


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished 2-step run with a checkpoint at each step: what the damage cases start from."""
    if not MNIST.is_dir():
        pytest.skip(f"MNIST digits not found in {MNIST}")
    out = tmp_path_factory.mktemp("fuzz_cli") / "run"
    assert cli.main(TRAIN + ["--mnist", str(MNIST), "--out", str(out), "--ckpt-every", "1"]) == 0
    return out


def corrupt_tensors(run):
    for tensors in (run / "checkpoints").glob("*.safetensors"):
        data = tensors.read_bytes()
        tensors.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))


def json_list(run):
    for sidecar in (run / "checkpoints").glob("*.json"):
        sidecar.write_text("[1, 2]\n")


def without_sha256(run):
    for sidecar in (run / "checkpoints").glob("*.json"):
        meta = json.loads(sidecar.read_text())
        del meta["sha256"]
        sidecar.write_text(json.dumps(meta))


def tensors_elsewhere(run, name="../../../model.safetensors"):
    for sidecar in (run / "checkpoints").glob("*.json"):
        sidecar.write_text(json.dumps(dict(json.loads(sidecar.read_text()), tensors=name)))


def tensors_dotdot(run):
    tensors_elsewhere(run, "..")


def metrics_without_step(run):
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"loss": 0.5}\n')


@pytest.mark.parametrize("damage, message", [
    (corrupt_tensors, "does not match its sha256"),
    (json_list, "step_0000002.json: not a convgru-zoo/train-checkpoint/1 sidecar"),
    (without_sha256, "step_0000002.json: no 'tensors' file name or 'sha256' entry"),
    (tensors_elsewhere, "step_0000002.json: 'tensors' must be 'step_0000002.safetensors', got '../../../model"),
    (tensors_dotdot, "step_0000002.json: 'tensors' must be 'step_0000002.safetensors', got '..'"),
    (metrics_without_step, "metrics.jsonl line 3 must be a metrics record with an int 'step'"),
], ids=["sha256_mismatch", "json_list", "no_sha256", "tensors_elsewhere", "tensors_dotdot", "metrics_without_step"])
def test_resume_refuses_a_damaged_run_naming_the_file_and_changes_nothing(tmp_path, capsys, finished_run, damage,
                                                                          message):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    damage(run)
    before = snapshot(tmp_path)
    refused(TRAIN + ["--mnist", str(MNIST), "--out", str(run), "--resume", "--steps", "3"], capsys, message)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("damage, message", [
    (corrupt_tensors, "step_0000002.safetensors does not match its sha256"),
    (json_list, "not a convgru-zoo/train-checkpoint/1 sidecar"),
    (without_sha256, "no 'tensors' file name or 'sha256' entry"),
    (tensors_elsewhere, "'tensors' must be 'step_0000002.safetensors', got '../../../model.safetensors'"),
    (tensors_dotdot, "'tensors' must be 'step_0000002.safetensors', got '..'"),
], ids=["sha256_mismatch", "json_list", "no_sha256", "tensors_elsewhere", "tensors_dotdot"])
def test_the_checkpoint_reader_names_the_damaged_sidecar(tmp_path, finished_run, damage, message):
    """What the training loops call on resume: a ValueError naming the file, never a KeyError or TypeError."""
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    damage(run)
    sidecar = run / "checkpoints" / "step_0000002.json"
    with pytest.raises(ValueError, match=re.escape(f"checkpoint {sidecar}: {message}")):
        run_files.read_checkpoint(sidecar)


def test_resume_names_every_checkpoint_that_failed_its_sha256(tmp_path, capsys, finished_run):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    corrupt_tensors(run)
    refused(TRAIN + ["--mnist", str(MNIST), "--out", str(run), "--resume"], capsys,
            "step_0000001.json: step_0000001.safetensors does not match its sha256; "
            "step_0000002.json: step_0000002.safetensors does not match its sha256")


def test_eval_out_over_a_file_fails_before_the_evaluation(tmp_path, capsys, finished_run):
    report = tmp_path / "report.json"
    report.write_text("keep me\n")
    before = snapshot(tmp_path)
    refused(["eval", "--weights", str(finished_run), "--mnist", str(MNIST), "--num-sequences", "2",
             "--out", str(report), "--no-progress"], capsys, "--out must be a folder, got")
    assert snapshot(tmp_path) == before
    assert not (finished_run / "eval").exists()


def test_eval_of_a_run_with_a_foreign_metrics_log_names_it_before_the_evaluation(tmp_path, capsys, finished_run):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    metrics_without_step(run)
    before = snapshot(tmp_path)
    refused(["eval", "--weights", str(run), "--mnist", str(MNIST), "--num-sequences", "2", "--no-progress"], capsys,
            "metrics.jsonl line 3 must be a metrics record with an int 'step'")
    assert snapshot(tmp_path) == before  # no eval/ folder
