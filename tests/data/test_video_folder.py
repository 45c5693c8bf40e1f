"""Your own clips (``--data``): a folder of mp4/webm videos and frame folders whose label needs motion
(a square moving left or right), fine-tuned in seconds in PyTorch and MindSpore, evaluated with
per-class accuracy and a confusion matrix; both frameworks read identical clips; every kind of bad
data stops before training with the file named, or is skipped and counted; the folder is never written."""
import json
import shutil

import numpy as np
import pytest

pytest.importorskip("av")
torch = pytest.importorskip("torch")

from convgru_zoo import cli, specs  # noqa: E402
from convgru_zoo import train as training  # noqa: E402
from convgru_zoo.data import transforms  # noqa: E402
from convgru_zoo.data.video_folder import BadClipError, VideoFolder, VideoFolderConfig, frame_indices  # noqa: E402
from video_clips import make_motion_folder, moving_square, snapshot, write_frames, write_video  # noqa: E402

CLIP = ["--num-frames", "4", "--image-size", "16"]
TINY_FEATURES = specs.BACKBONES["convgru_tiny"].dims[-1]  # convgru_tiny's classifier input


@pytest.fixture(scope="module")
def motion_data(tmp_path_factory):
    """Two classes x 12 clips (mp4, one webm, one frame folder each) with split lists, and its snapshot."""
    root = make_motion_folder(tmp_path_factory.mktemp("clips") / "motion")
    return root, snapshot(root)


@pytest.fixture(scope="module")
def torch_run(motion_data, tmp_path_factory):
    """convgru_tiny trained from scratch on the folder for 30 steps, in PyTorch."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("runs") / "torch"
    assert cli.main(["train", "--task", "classify", "--model", "convgru_tiny", "--data", str(motion_data[0]), *CLIP,
                     "--steps", "30", "--batch-size", "8", "--num-sequences", "64", "--lr", "3e-3",
                     "--ckpt-every", "15", "--out", str(out), "--no-progress"]) == 0
    yield out
    torch.set_num_threads(threads)


def _config(root, **kwargs):
    return VideoFolderConfig(str(root), **{"num_frames": 4, "image_size": 16, **kwargs})


def test_reader_reads_every_layout_and_samples_as_promised(motion_data):
    root, _ = motion_data
    train = VideoFolder(_config(root), "classify", "train", num_samples=40, seed=3, progress=False)
    test = VideoFolder(_config(root), "classify", "test", progress=False)
    assert train.classes == ["left", "right"] and len(train.paths) == 8 and len(train) == 40
    assert {p.suffix for p in train.paths} == {"", ".webm", ".mp4"}  # a frame folder, webm and mp4
    clips, labels = train.batch(range(40))
    assert clips.shape == (40, 4, 3, 16, 16) and clips.dtype == np.float32 and 0 <= clips.min() < clips.max() <= 1
    assert labels.tolist() == [0, 0, 0, 0, 1, 1, 1, 1] * 5          # sample i is clip i % 8
    assert not np.array_equal(clips[0], clips[8])                     # ... with its own jitter and crop
    again = VideoFolder(_config(root), "classify", "train", num_samples=40, seed=3, progress=False).batch([0, 8])[0]
    other = VideoFolder(_config(root), "classify", "train", num_samples=40, seed=4, progress=False).batch([0, 8])[0]
    assert np.array_equal(again, clips[[0, 8]]) and not np.array_equal(other, again)  # a function of (seed, index)
    assert np.array_equal(test.batch([0, 1])[0], test.batch([0, 1])[0]) and len(test) == 8  # evaluation: fixed
    # Frames at a stride from a random place (evaluation: centred), or spread over the clip.
    rng = np.random.default_rng(0)
    assert frame_indices(10, 4, 2, None).tolist() == [1, 3, 5, 7]
    assert all(np.diff(frame_indices(10, 4, 2, rng)).tolist() == [2, 2, 2] for _ in range(20))
    assert frame_indices(12, 4, 0, None).tolist() == [1, 4, 7, 10]
    spread = np.array([frame_indices(12, 4, 0, rng) for _ in range(50)])
    assert (spread // 3 == np.arange(4)).all() and len(np.unique(spread)) > 4  # one per segment, jittered


def test_pillow_fallback_transform_matches_torchvision():
    """A MindSpore-only install (no torchvision) resizes with Pillow: within a grey level or two."""
    frames = moving_square(1, 4, seed=0)
    vision = transforms.ClipTransform(16, train=True, hflip=True)
    pillow = transforms.ClipTransform(16, train=True, hflip=True)
    pillow.backend = None
    for i in range(2):
        a = vision(frames, np.random.default_rng([7, i]))
        b = pillow(frames, np.random.default_rng([7, i]))
        assert a.shape == b.shape == (4, 3, 16, 16)
        assert np.abs(a - b).max() <= 3 / 255


def test_fine_tuning_beats_chance_and_eval_reports_classes_and_confusion(motion_data, torch_run):
    root, before = motion_data
    summary = json.loads((torch_run / "train_summary.json").read_text())
    assert summary["data"]["classes"] == ["left", "right"] and summary["data"]["clips"] == {"train": 8}
    assert cli.main(["eval", "--weights", str(torch_run), "--data", str(root), "--no-progress"]) == 0
    report = json.loads((torch_run / "eval" / "eval_classify_torch.json").read_text())
    assert report["data"]["split"] == "test"  # the folder it trained on: only the clips it did not see
    metrics = report["metrics"]
    assert metrics["num_sequences"] == 8 and set(metrics["clip"]) == {"top1", "top2"}
    assert metrics["clip"]["top1"] >= 0.75, metrics            # chance: 0.5 (direction of motion)
    assert set(metrics["per_class_top1"]) == {"left", "right"}
    assert np.sum(metrics["confusion_matrix"]) == 8 and np.trace(metrics["confusion_matrix"]) >= 6
    assert (torch_run / "eval" / "eval_classify_torch_confusion.png").stat().st_size > 0
    assert snapshot(root) == before  # nothing in the data folder was written


def test_eval_scores_another_folder_whole_and_says_how_many_clips(motion_data, torch_run, tmp_path, capsys):
    """The run's own folder: its test split; any other folder: every clip (--split chooses); an earlier
    report is replaced only with --overwrite."""
    held_out = tmp_path / "held_out"
    shutil.copytree(motion_data[0], held_out)
    out = tmp_path / "ev"
    evaluate = ["eval", "--weights", str(torch_run), "--data", str(held_out), "--out", str(out), "--no-progress"]
    assert cli.main(evaluate) == 0
    assert f"on 24 clips (all split of {held_out}) of 2 classes" in capsys.readouterr().out
    report = json.loads((out / "eval_classify_torch.json").read_text())
    assert report["data"]["split"] == "all" and np.sum(report["metrics"]["confusion_matrix"]) == 24
    assert cli.main(evaluate + ["--split", "test"]) == cli.EXIT_USAGE
    assert "already holds eval_classify_torch.json from an earlier evaluation; pass --overwrite" in capsys.readouterr().err
    assert json.loads((out / "eval_classify_torch.json").read_text()) == report
    assert cli.main(evaluate + ["--split", "test", "--overwrite"]) == 0
    assert f"on 8 clips (test split of {held_out})" in capsys.readouterr().out
    assert json.loads((out / "eval_classify_torch.json").read_text())["data"]["split"] == "test"
    assert cli.main(["eval", "--weights", str(torch_run), "--mnist", str(held_out), "--split", "all"]) == cli.EXIT_USAGE
    assert "--split applies to --data, got --split all without it" in capsys.readouterr().err


def test_both_frameworks_read_identical_clips(motion_data, torch_run):
    """The PyTorch loop's DataLoader (two workers) and the MindSpore loop's ``batch`` give the same bytes."""
    from convgru_zoo.torch.train import StepBatchSampler
    config = training.TrainConfig(task="classify", model="convgru_tiny", batch_size=4, num_sequences=24, seed=5)
    runtime = training.Runtime(mnist=None, out="unused", progress=False,
                               data=_config(motion_data[0]))
    train_set, _ = training.build_datasets(config, runtime)
    loader = torch.utils.data.DataLoader(train_set, num_workers=2,
                                         batch_sampler=StepBatchSampler(0, 3, 4, len(train_set), config.seed))
    for step, (clips, labels) in enumerate(loader):
        indices = training.batch_indices(step, 4, len(train_set), config.seed)
        ms_clips, ms_labels = train_set.batch(indices)  # what convgru_zoo.mindspore.train feeds its step
        assert np.array_equal(clips.numpy(), ms_clips) and np.array_equal(labels.numpy(), ms_labels)


def test_resume_continues_the_run_and_refuses_other_data_settings(motion_data, torch_run, capsys):
    args = ["train", "--task", "classify", "--model", "convgru_tiny", "--data", str(motion_data[0]),
            "--steps", "30", "--batch-size", "8", "--num-sequences", "64", "--lr", "3e-3", "--ckpt-every", "15",
            "--out", str(torch_run), "--no-progress", "--resume", "--image-size", "16"]
    assert cli.main(args + ["--num-frames", "5"]) == 2
    assert "--resume continues the run" in capsys.readouterr().err
    assert cli.main(args + ["--num-frames", "4"]) == 0


def test_mindspore_fine_tunes_the_pytorch_run_on_the_folder(motion_data, torch_run, tmp_path):
    pytest.importorskip("mindspore")
    from convgru_zoo.run_files import read_weights
    out = tmp_path / "ms"
    assert cli.main(["train", "--framework", "mindspore", "--init-weights", str(torch_run), "--task", "classify",
                     "--model", "convgru_tiny", "--data", str(motion_data[0]), *CLIP, "--steps", "2",
                     "--batch-size", "4", "--num-sequences", "8", "--lr", "1e-4", "--out", str(out),
                     "--no-progress"]) == 0
    state, meta = read_weights(out / "model.safetensors")
    assert meta["framework"] == "mindspore" and state["head.fc.weight"].shape == (2, TINY_FEATURES)
    assert json.loads((out / "train_summary.json").read_text())["data"]["classes"] == ["left", "right"]


def test_a_new_head_for_the_folders_classes_when_starting_from_other_weights(motion_data, torch_run, tmp_path):
    """Weights for 2 classes fine-tune on a 3-class folder: the classifier is new, the rest is kept."""
    root = tmp_path / "three"
    shutil.copytree(motion_data[0], root, ignore=shutil.ignore_patterns("*.txt"))
    shutil.copytree(root / "left", root / "still")
    out = tmp_path / "run"
    assert cli.main(["train", "--task", "classify", "--model", "convgru_tiny", "--data", str(root), *CLIP,
                     "--init-weights", str(torch_run), "--steps", "1", "--batch-size", "2", "--num-sequences", "30",
                     "--lr", "1e-9", "--schedule", "constant", "--optimizer", "sgd", "--weight-decay", "0",
                     "--momentum", "0", "--out", str(out), "--no-progress"]) == 0
    from convgru_zoo.run_files import read_weights
    start, tuned = read_weights(torch_run / "model.safetensors")[0], read_weights(out / "model.safetensors")[0]
    assert tuned["head.fc.weight"].shape == (3, TINY_FEATURES)
    np.testing.assert_allclose(tuned["stem.conv.weight"], start["stem.conv.weight"], atol=1e-6)


def test_forecasting_on_a_folder_of_clips_without_classes(tmp_path):
    root = tmp_path / "clips"
    root.mkdir()
    for i in range(4):
        grey = moving_square(1 if i % 2 else -1, 22, seed=i, colour=False)
        write_frames(root / f"clip_{i}", grey)
    write_frames(root / "more" / "clip_x", moving_square(1, 22, seed=9, colour=False))  # a subfolder: no class
    out = tmp_path / "run"
    assert cli.main(["train", "--task", "forecast", "--model", "convgru_forecaster_tiny", "--data", str(root),
                     "--image-size", "16", "--steps", "2", "--batch-size", "2", "--num-sequences", "4",
                     "--out", str(out), "--no-progress"]) == 0
    data = json.loads((out / "train_summary.json").read_text())["data"]
    assert data["channels"] == 1 and data["classes"] == [] and data["num_frames"] == 20
    assert cli.main(["eval", "--weights", str(out), "--data", str(root), "--no-progress"]) == 0
    report = json.loads((out / "eval" / "eval_forecast_torch.json").read_text())
    assert report["metrics"]["num_sequences"] == 1 and {"mse", "ssim"} <= set(report["metrics"])
    assert (out / "eval" / "eval_forecast_torch_frames.png").is_file()


# ---------------------------------------------------------------- bad data
def _small_folder(root):
    for name, direction in (("left", -1), ("right", 1)):
        for i in range(3):
            write_frames(root / name / f"{name}_{i}", moving_square(direction, 5, seed=i))
    return root


def _truncated(root):
    path = write_video(root / "left" / "cut.mp4", moving_square(-1, 12, seed=0))
    path.write_bytes(path.read_bytes()[: int(0.9 * path.stat().st_size)])
    return path, "truncated"


def _unreadable(root):
    path = root / "right" / "junk.webm"
    path.write_bytes(b"not a video at all" * 20)
    return path, "unreadable"


def _short(root):
    return write_frames(root / "left" / "short", moving_square(-1, 3, seed=0)), "shorter than the 4"


def _mixed_sizes(root):
    path = write_frames(root / "right" / "mixed", moving_square(1, 5, seed=0))
    from PIL import Image
    Image.fromarray(moving_square(1, 1, seed=0, size=24)[0]).save(path / "002.png")
    return path, "mixed sizes"


def _empty_class(root):
    (root / "nothing").mkdir()
    return root / "nothing", "holds no clips"


def _missing_in_list(root):
    lists = {"train": ["left/left_0", "left/left_1", "right/right_0", "right/right_1", "left/gone.mp4"],
             "test": ["left/left_2", "right/right_2"]}
    for split, names in lists.items():
        (root / f"{split}.txt").write_text("\n".join(names) + "\n")
    return root / "train.txt", "missing clip"


@pytest.mark.parametrize("make_bad", [_truncated, _unreadable, _short, _mixed_sizes, _empty_class, _missing_in_list])
def test_bad_data_is_named_before_training_or_skipped_and_counted(make_bad, tmp_path, capsys):
    root = _small_folder(tmp_path / "data")
    bad, what = make_bad(root)
    before = snapshot(root)
    out = tmp_path / "run"
    args = ["train", "--task", "classify", "--model", "convgru_tiny", "--data", str(root), *CLIP, "--steps", "1",
            "--batch-size", "2", "--num-sequences", "8", "--out", str(out), "--no-progress"]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and what in err and "--skip-bad-clips" in err, err
    assert not out.exists()  # stopped before any work
    train = VideoFolder(_config(root, skip_bad_clips=True), "classify", "train", 8, check_folder=True, progress=False)
    assert sum(str(bad) in line for line in train.skipped) == 1 and str(bad) not in map(str, train.paths)
    assert snapshot(root) == before


def test_skipped_clips_are_counted_in_the_run_summary(tmp_path):
    root = _small_folder(tmp_path / "data")
    bad, _ = _truncated(root)
    out = tmp_path / "run"
    assert cli.main(["train", "--task", "classify", "--model", "convgru_tiny", "--data", str(root), *CLIP,
                     "--skip-bad-clips", "--steps", "1", "--batch-size", "2", "--num-sequences", "8",
                     "--out", str(out), "--no-progress"]) == 0
    skipped = json.loads((out / "train_summary.json").read_text())["data"]["skipped"]
    assert sum(len(v) for v in skipped.values()) == 1 and str(bad) in json.dumps(skipped)


def test_exactly_one_data_source_and_video_flags_only_with_data(tmp_path, capsys):
    base = ["train", "--task", "classify", "--model", "convgru_tiny", "--out", str(tmp_path / "r")]
    with pytest.raises(SystemExit) as exit_:
        cli.main(base)
    assert exit_.value.code == 2 and "--mnist --data" in capsys.readouterr().err.replace("/", " ")
    with pytest.raises(SystemExit):
        cli.main(base + ["--mnist", str(tmp_path), "--data", str(tmp_path)])
    assert cli.main(base + ["--mnist", str(tmp_path), "--num-frames", "4"]) == 2
    assert "--num-frames applies to --data" in capsys.readouterr().err
    root = _small_folder(tmp_path / "data")
    assert cli.main(base[:-1] + [str(root / "run"), "--data", str(root)]) == 2
    assert "--out must lie outside --data" in capsys.readouterr().err
    with pytest.raises(BadClipError, match="shorter than the 9 frames"):
        VideoFolder(_config(root, num_frames=9), "classify", "train", progress=False)
