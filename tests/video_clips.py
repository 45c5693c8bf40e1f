"""Small clips for the video-folder tests: a square moving left or right (one frame cannot tell which),
written as mp4/webm with PyAV and as folders of PNG frames."""
from pathlib import Path

import numpy as np

SIZE = 32  # frame side


def moving_square(direction, frames, seed, size=SIZE, colour=True):
    """uint8 (frames, size, size, 3), or (frames, size, size) grey: a bright 8x8 square moving 3 px per frame,
    ``direction`` -1 (left) or 1 (right)."""
    rng = np.random.default_rng(seed)
    top = int(rng.integers(0, size - 8))
    travel = 3 * (frames - 1)
    start = int(rng.integers(0, max(1, size - 8 - travel))) if direction > 0 else size - 8 - int(rng.integers(0, max(1, size - 8 - travel)))
    clip = np.full((frames, size, size, 3), 20, np.uint8)
    for t in range(frames):
        left = int(np.clip(start + direction * 3 * t, 0, size - 8))
        clip[t, top:top + 8, left:left + 8] = (230, 200, 60) if colour else 220
    return clip if colour else clip[..., 0]


def write_video(path, frames, codec="libx264", fps=10):
    """Write uint8 RGB frames (T, H, W, 3) as a video file (mp4: H.264, webm: VP9)."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": "12", "preset": "ultrafast"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return Path(path)


def write_frames(folder, frames):
    """Write frames as 000.png, 001.png, ... in ``folder``."""
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True)
    for t, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"{t:03d}.png")
    return folder


def make_motion_folder(root, clips_per_class=12, frames=6):
    """Classes ``left`` and ``right``: mp4 clips, one webm and one frame folder per class, and split lists
    (the last 4 clips of each class for test, the 4 before for val, the rest for train)."""
    root = Path(root)
    lists = {"train": [], "val": [], "test": []}
    for name, direction in (("left", -1), ("right", 1)):
        (root / name).mkdir(parents=True)
        for i in range(clips_per_class):
            clip = moving_square(direction, frames, seed=1000 * (direction + 1) + i)
            if i == 0:
                path = write_frames(root / name / f"{name}_{i:02d}", clip)
            elif i == 1:
                path = write_video(root / name / f"{name}_{i:02d}.webm", clip, "libvpx-vp9")
            else:
                path = write_video(root / name / f"{name}_{i:02d}.mp4", clip)
            split = "test" if i >= clips_per_class - 4 else "val" if i >= clips_per_class - 8 else "train"
            lists[split].append(f"{name}/{path.name}")
    for split, names in lists.items():
        (root / f"{split}.txt").write_text("".join(f"{n}\n" for n in names))
    return root


def snapshot(root):
    """{relative path: (size, mtime_ns)} of everything under ``root``: proof that nothing was written."""
    root = Path(root)
    return {p.relative_to(root).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}
