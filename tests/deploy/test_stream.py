"""``convgru-zoo stream`` and the ``export`` command line: frames from a folder (Pillow) or a video (PyAV).

The per-frame answers are the model's ``step`` outputs, which equal its output on the clip so far;
a PNG curve is written; files and sources that cannot be used exit with status 2 before any work.
"""
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")
av = pytest.importorskip("av")
Image = pytest.importorskip("PIL.Image")

from convgru_zoo import cli, models  # noqa: E402
from convgru_zoo.deploy import stream  # noqa: E402

FRAMES, SIZE = 4, 32


def frames_array(seed=0):
    """(T, H, W, 3) uint8 frames of a bright square moving right."""
    video = np.zeros((FRAMES, SIZE, SIZE, 3), np.uint8)
    for t in range(FRAMES):
        video[t, 8:16, 4 + 4 * t:12 + 4 * t] = 255
    return video


@pytest.fixture
def frame_folder(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for t, frame in enumerate(frames_array()):
        Image.fromarray(frame).save(folder / f"{t:03d}.png")
    (folder / "notes.txt").write_text("not a frame")
    return folder


@pytest.fixture
def video_file(tmp_path):
    path = tmp_path / "clip.mp4"
    with av.open(str(path), "w") as container:
        video = container.add_stream("mpeg4", rate=5)
        video.width = video.height = SIZE
        video.pix_fmt = "yuv420p"
        for frame in frames_array():
            container.mux(video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(video.encode())
    return path


def test_read_frames_from_a_folder_and_a_video(frame_folder, video_file):
    from_folder = list(stream.read_frames(frame_folder, 3))
    np.testing.assert_array_equal(np.stack(from_folder), frames_array())
    from_video = list(stream.read_frames(video_file, 1))
    assert len(from_video) == FRAMES and all(f.shape == (SIZE, SIZE, 1) and f.dtype == np.uint8 for f in from_video)


def test_stream_answers_equal_the_model_on_the_clip_so_far(frame_folder):
    torch.manual_seed(0)
    model = models.inference_model("convgru_tiny")
    results = stream.stream(model, "torch", frame_folder, SIZE)
    clip = (frames_array().transpose(0, 3, 1, 2)[None] / np.float32(255) - 0.5) / 0.5  # as training normalises
    with torch.no_grad():
        for t, probabilities, _ in results:
            want = torch.softmax(model(torch.from_numpy(clip[:, :t + 1])), -1)[0].numpy()
            np.testing.assert_allclose(probabilities, want, atol=1e-5, rtol=0)


def test_stream_command_prints_every_frame_and_plots(video_file, tmp_path, capsys):
    out = tmp_path / "curve.png"
    assert cli.main(["stream", "convgru_forecaster_tiny", str(video_file), "--size", "32", "--pretrained", "mmnist",
                     "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines[:FRAMES]] == [f"frame {t}" for t in range(FRAMES)]
    assert "next-frame MSE (sum over the frame's pixels)" in lines[0] and lines[-1] == f"plot: {out}"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_forecaster_error_is_summed_over_the_frame_as_the_cards_report_it():
    frame = np.zeros((1, 4, 4), np.float32)
    prediction = frame + 0.5  # 16 pixels off by 0.5: per frame 16 * 0.25 = 4, per pixel 0.25
    lines, series = stream.forecaster_report([(0, prediction, frame), (1, prediction, frame)])
    assert lines[0] == "frame 0: next-frame MSE (sum over the frame's pixels) 4.000"
    np.testing.assert_allclose(series[stream.MSE_NAME][1], [4.0])


@pytest.mark.parametrize("pretrained", ["mmnist_motion", "convgru_tiny.mmnist_motion"])
def test_stream_names_classes_by_the_tags_label_names(frame_folder, pretrained, capsys):
    assert cli.main(["stream", "convgru_tiny", str(frame_folder), "--pretrained", pretrained, "--top", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == FRAMES
    assert all(re.fullmatch(r"frame \d: digit \d, (up|down)-(left|right) [01]\.\d{3}, digit \d, "
                            r"(up|down)-(left|right) [01]\.\d{3}", line) for line in lines), lines


def test_stream_runs_random_weights_only_when_asked_and_says_so(frame_folder, capsys):
    assert cli.main(["stream", "convgru_tiny", str(frame_folder)]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "--pretrained TAG must be given (tags of convgru_tiny: ['mmnist_motion'])" in err
    assert "--random-weights" in err
    assert cli.main(["stream", "convgru_tiny", str(frame_folder), "--random-weights"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "convgru_tiny: random weights (--random-weights): the answers below mean nothing"
    assert lines[1].startswith("frame 0: class ")
    assert cli.main(["stream", "convgru_tiny", str(frame_folder), "--random-weights",
                     "--pretrained", "mmnist_motion"]) == cli.EXIT_USAGE
    assert "exclude each other" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["stream", "convgru_tiny", "{missing}", "--random-weights"], "neither a video file nor a folder of frames"),
    (["stream", "convgru_tiny", "{empty}", "--random-weights"], "holds no .png/.jpg/.jpeg/.bmp frames"),
    (["stream", "convgru_tiny", "{empty}", "--random-weights", "--out", "{existing}"],
     "--out .* already exists; pass --overwrite"),
    (["stream", "convgru_tiny", "{empty}", "--random-weights", "--out", "{empty}/curve.jpg"],
     "--out must name a .png file"),
    (["stream", "convgru_tiny", "{empty}", "--pretrained", "convgru_small.mmnist_motion"],
     r"one of the tags of convgru_tiny \['mmnist_motion'\] \(or convgru_tiny.<tag>\)"),
    (["export", "convgru_tiny", "--format", "onnx", "--out", "{existing_onnx}"], "--out .* already exists"),
    (["export", "convgru_tiny", "--format", "mindir", "--out", "{empty}/m.onnx"], r"--out must end in \.mindir"),
    (["export", "convgru_tiny", "--format", "onnx", "--pretrained", "nope", "--out", "{empty}/m.onnx"],
     "nope"),
])
def test_commands_reject_bad_files_and_tags_with_status_2(argv, message, tmp_path, capsys):
    empty, existing, existing_onnx = tmp_path / "empty", tmp_path / "existing.png", tmp_path / "existing.onnx"
    empty.mkdir()
    for path in (existing, existing_onnx):
        path.write_bytes(b"user file")
    names = dict(missing=tmp_path / "missing.mp4", empty=empty, existing=existing, existing_onnx=existing_onnx)
    assert cli.main([a.format(**names) for a in argv]) == cli.EXIT_USAGE
    assert re.search(message, capsys.readouterr().err)
    assert existing.read_bytes() == existing_onnx.read_bytes() == b"user file"
