"""A folder of the user's clips as a dataset, numpy only (no deep-learning framework imported).

Layout, as video datasets ship::

    DIR/<class>/<clip>.mp4           video files (any container FFmpeg reads: mp4, avi, webm, mkv, ...)
    DIR/<class>/<clip>/0001.png      or folders of frames (png/jpg/bmp, in name order)
    DIR/train.txt, val.txt, test.txt optional split lists: one clip per line, relative to DIR
                                     (``Class/clip.avi [label]`` as UCF101's trainlist01.txt/testlist01.txt)

Forecasting needs no classes: clips directly in DIR (or in subfolders, whose names are then ignored).
Without split lists, each class's clips are split 80/10/10 (train/val/test) in a fixed order,
val and test getting at least one clip each from a class of three or more.

Decoding goes through PyAV: its wheels bundle FFmpeg, so ``pip install`` is the whole set-up on
Linux, macOS and Windows, in a MindSpore-only install too (torchcodec needs FFmpeg from the system
and torch). Frames of a frame folder are read with Pillow.

Every clip is decoded once in full when the dataset is built (``probe``), so an unreadable or
truncated video, a clip shorter than the frames a sample needs and frames of mixed sizes raise a
:class:`BadClipError` naming the file before any training; with ``skip_bad_clips`` such clips are
left out and listed in :attr:`VideoFolder.skipped` instead. Nothing in the folder is ever written.

Sample ``i`` of a training set is clip ``i % num_clips`` with its own temporal jitter, crop and
flip drawn from ``(seed, i)``: a run stays a function of (seed, step), and both frameworks read
identical clips. Evaluation samples are deterministic (centred window, centre crop).
"""
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .transforms import ClipTransform

VIDEO_SUFFIXES = (".mp4", ".avi", ".webm", ".mkv", ".mov", ".m4v", ".mpg", ".mpeg", ".ogv", ".wmv", ".flv", ".gif")
FRAME_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
SPLITS = ("train", "val", "test")
EVAL_SPLITS = (*SPLITS, "all")  # "all": every clip of the folder, to score a folder no run trained on
HOLDOUT_FRACTION = 0.1  # of each class, for val and for test, without split lists
GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")


class BadClipError(ValueError):
    """A clip or a part of the data folder that cannot be used, named in the message."""


@dataclass(frozen=True)
class VideoFolderConfig:
    """Where the clips are and how a sample is made of one (``convgru-zoo train --data DIR ...``)."""
    root: str
    num_frames: int = 10      # frames per sample
    frame_stride: int = 0     # 0: spread over the whole clip (one per equal segment); N: every N-th frame
    image_size: int = 64      # square side of the frames the model sees
    hflip: bool = False       # random horizontal flips in training (off: a flip swaps left and right motion)
    skip_bad_clips: bool = False

    def check(self):
        """Raise ValueError naming the bad setting (before any clip is read)."""
        for name in ("num_frames", "image_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if isinstance(self.frame_stride, bool) or not isinstance(self.frame_stride, int) or self.frame_stride < 0:
            raise ValueError(f"frame_stride must be an int >= 0 (0: spread over the clip), got {self.frame_stride!r}")
        if not Path(self.root).is_dir():
            raise ValueError(f"root must be a folder of clips, got {self.root!r} (not a folder)")
        return self

    @property
    def frames_needed(self):
        """The shortest clip a sample can be taken from."""
        return self.num_frames if self.frame_stride == 0 else (self.num_frames - 1) * self.frame_stride + 1


@dataclass(frozen=True)
class ClipInfo:
    """What :func:`probe` found in one clip."""
    frames: int
    height: int
    width: int
    grey: bool


# ---------------------------------------------------------------- finding clips
def _is_frame_folder(path: Path) -> bool:
    return path.is_dir() and any(_frame_files(path))


def _frame_files(folder: Path):
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in FRAME_SUFFIXES and p.is_file())


def _is_clip(path: Path) -> bool:
    return (path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES) or _is_frame_folder(path)


def find_classes(root, skip_empty=False):
    """(sorted class names, empty class folders): the subfolders of ``root`` that are not clips themselves."""
    root = Path(root)
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and not _is_frame_folder(p))
    empty = [p for p in folders if not any(_is_clip(c) for c in p.iterdir())]
    if empty and not skip_empty:
        raise BadClipError(f"class folder {str(empty[0])!r} holds no clips (video files or folders of frames); "
                           f"remove it or pass --skip-bad-clips")
    return [p.name for p in folders if p not in empty], [str(p) for p in empty]


def find_clips(root, classes):
    """Every clip under ``root`` as ``{path relative to root: class name}``; ``""`` without classes."""
    root = Path(root)
    if not classes:
        clips = [p for p in sorted(root.iterdir()) if _is_clip(p)]
        clips += [c for p in sorted(root.iterdir()) if p.is_dir() and not _is_clip(p)
                  for c in sorted(p.iterdir()) if _is_clip(c)]
        return {p.relative_to(root).as_posix(): "" for p in clips}
    return {f"{name}/{c.name}": name for name in classes for c in sorted((root / name).iterdir()) if _is_clip(c)}


def split_list_path(root, split):
    """``DIR/<split>.txt`` or UCF101's ``DIR/<split>list01.txt``, or None."""
    for name in (f"{split}.txt", f"{split}list01.txt"):
        if (Path(root) / name).is_file():
            return Path(root) / name
    return None


def read_split_list(path, clips, missing):
    """The clips a split list names, in its order; names of missing clips are appended to ``missing``."""
    chosen = []
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        name = Path(text.split()[0]).as_posix()
        if name in clips:
            chosen.append(name)
        else:
            missing.append(f"{path}:{number}: {name} (no such clip under {Path(path).parent})")
    return chosen


def holdout_split(clips, split):
    """Without split lists: 80/10/10 of each class's clips in a fixed shuffled order."""
    by_label = {}
    for name, label in sorted(clips.items()):
        by_label.setdefault(label, []).append(name)
    chosen = []
    for label, names in sorted(by_label.items()):
        order = [names[i] for i in np.random.default_rng([label + 1, len(names)]).permutation(len(names))]
        held = max(1, round(HOLDOUT_FRACTION * len(names))) if len(names) >= 3 else 0
        parts = {"val": order[:held], "test": order[held:2 * held], "train": order[2 * held:]}
        chosen += parts[split]
    return sorted(chosen)


# ---------------------------------------------------------------- decoding
def _video_stream(container, path):
    """The first video stream of an open PyAV container, decoded with threads; BadClipError if there is none."""
    if not container.streams.video:
        raise BadClipError(f"video {str(path)!r} has no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    return stream


def _av():
    try:
        import av
    except ImportError as err:
        raise ImportError(f"reading video files needs PyAV: pip install 'convgru-zoo[video]' ({err})") from None
    return av


def _pil():
    try:
        from PIL import Image
    except ImportError as err:
        raise ImportError(f"reading frame folders needs Pillow: pip install 'convgru-zoo[video]' ({err})") from None
    return Image


def probe(path) -> ClipInfo:
    """Decode every frame of a clip once: its length, frame size and colour; BadClipError naming the file."""
    path = Path(path)
    sizes, grey = set(), True
    if path.is_dir():
        image = _pil()
        files = _frame_files(path)
        for file in files:
            try:
                with image.open(file) as frame:
                    frame.load()
                    sizes.add(frame.size)
                    grey &= frame.mode in GREY_MODES
            except (OSError, ValueError) as err:
                raise BadClipError(f"frame {str(file)!r} is unreadable: {err}") from None
        frames = len(files)
    else:
        av = _av()
        frames = 0
        try:
            with av.open(str(path)) as container:
                stream = _video_stream(container, path)
                declared, seconds, end = stream.frames, _declared_seconds(container, stream), 0.0
                for frame in container.decode(stream):
                    frames += 1
                    sizes.add((frame.width, frame.height))
                    grey &= frame.format.name.startswith("gray")
                    end = frame.time or end
                period = 1 / float(stream.average_rate or stream.guessed_rate or 25)
        except av.FFmpegError as err:
            raise BadClipError(f"video {str(path)!r} is unreadable: {err}") from None
        if declared and frames < declared:
            raise BadClipError(f"video {str(path)!r} is truncated: its header says {declared} frames, "
                               f"{frames} could be decoded")
        if frames and seconds and end + 2 * period < seconds:
            raise BadClipError(f"video {str(path)!r} is truncated: its header says {seconds:.2f} s, frames could "
                               f"be decoded up to {end + period:.2f} s")
    if not frames:
        raise BadClipError(f"clip {str(path)!r} holds no frames")
    if len(sizes) > 1:
        raise BadClipError(f"clip {str(path)!r} has frames of mixed sizes (width, height): {sorted(sizes)}")
    (width, height), = sizes
    return ClipInfo(frames, height, width, bool(grey))


def _declared_seconds(container, stream):
    """The video's duration by its header (the stream's, or the file's when it holds nothing else), or None."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration and len(container.streams) == 1:
        return container.duration / 1e6
    return None


def read_frames(path, indices, grey=False) -> np.ndarray:
    """Frames ``indices`` (ascending or not, repeats allowed) of a clip as uint8 (T, H, W, C), C 1 or 3."""
    path, wanted = Path(path), sorted(set(int(i) for i in indices))
    if path.is_dir():
        image = _pil()
        files = _frame_files(path)
        decoded = {}
        for i in wanted:
            with image.open(files[i]) as frame:
                decoded[i] = np.asarray(frame.convert("L" if grey else "RGB"))
    else:
        decoded, last = {}, wanted[-1]
        with _av().open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for i, frame in enumerate(container.decode(stream)):
                if i in wanted:
                    decoded[i] = frame.to_ndarray(format="gray" if grey else "rgb24")
                if i >= last:
                    break
    if len(decoded) != len(wanted):
        raise BadClipError(f"clip {str(path)!r} changed since it was checked: frame {max(wanted)} is gone")
    frames = np.stack([decoded[int(i)] for i in indices])
    return frames[..., None] if frames.ndim == 3 else frames


def iter_frames(path, grey=False):
    """Every frame of a clip (video file or frame folder) in order, as uint8 (H, W, C), C 1 or 3, one at a
    time: constant memory however long the video (``convgru-zoo stream``)."""
    path = Path(path)
    if path.is_dir():
        image = _pil()
        for file in _frame_files(path):
            with image.open(file) as frame:
                array = np.asarray(frame.convert("L" if grey else "RGB"))
            yield array[..., None] if grey else array
        return
    av = _av()
    try:
        with av.open(str(path)) as container:
            stream = _video_stream(container, path)
            for frame in container.decode(stream):
                array = frame.to_ndarray(format="gray" if grey else "rgb24")
                yield array[..., None] if grey else array
    except av.FFmpegError as err:
        raise BadClipError(f"video {str(path)!r} is unreadable: {err}") from None


def frame_indices(length, num_frames, stride, rng=None) -> np.ndarray:
    """Which ``num_frames`` frames of a ``length``-frame clip a sample takes.

    ``stride`` N >= 1: a window of every N-th frame, placed at random by ``rng`` or centred without;
    ``stride`` 0: one frame from each of ``num_frames`` equal segments of the clip, at a random place
    in it by ``rng`` or its middle without (TSN sampling).
    """
    if stride == 0:
        edges = np.linspace(0, length, num_frames + 1)
        starts, widths = np.floor(edges[:-1]).astype(np.int64), np.maximum(np.floor(np.diff(edges)), 1).astype(np.int64)
        offsets = rng.integers(0, widths) if rng is not None else widths // 2
        return np.minimum(starts + offsets, length - 1)
    span = (num_frames - 1) * stride + 1
    start = int(rng.integers(0, length - span + 1)) if rng is not None else (length - span) // 2
    return start + stride * np.arange(num_frames)


_PROBED = {}  # (path, size, mtime) -> ClipInfo or BadClipError: a dataset built twice decodes once


def _probe_cached(path: Path):
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _PROBED:
        try:
            _PROBED[key] = probe(path)
        except BadClipError as err:
            _PROBED[key] = err
    return _PROBED[key]


# ---------------------------------------------------------------- the dataset
class VideoFolder:
    """One split of a folder of clips, map-style with a vectorised ``batch(indices)``.

    Items: classify, ``(clip float32 (T, C, S, S) in [0, 1], label int64)`` with C = 3 (grey frames as
    three equal channels, the backbones' input); forecast, the clip alone, C = 1 when every training
    clip is grey, else 3. ``num_samples`` (training) repeats the clips with fresh augmentation;
    evaluation splits (``num_samples=None``) hold each clip once, deterministically. ``check_folder``:
    the clips of the other splits are checked too (training does, so that bad data anywhere in the
    folder shows before it starts) and bad ones among them counted in :attr:`skipped`.
    """

    def __init__(self, config: VideoFolderConfig, task="classify", split="train", num_samples=None, seed=0,
                 channels=None, classes=None, check_folder=False, progress=True):
        self.config = config.check()
        if split not in (EVAL_SPLITS if num_samples is None else SPLITS):
            raise ValueError(f"split must be one of {EVAL_SPLITS if num_samples is None else SPLITS}, got {split!r}")
        root = Path(config.root)
        self.task, self.split, self.seed, self.train = task, split, seed, num_samples is not None
        self.skipped = []
        if task == "classify":
            found, empty = find_classes(root, config.skip_bad_clips)
            self.skipped += [f"{folder}: empty class folder" for folder in empty]
            self.classes = list(classes) if classes is not None else found
            unknown = sorted(set(found) - set(self.classes))
            if unknown:
                raise BadClipError(f"class folders {unknown} under {str(root)!r} are not among the model's classes "
                                   f"{self.classes}")
            if not self.classes:
                raise BadClipError(f"{str(root)!r} must hold one subfolder of clips per class, found none")
            clips = {name: self.classes.index(folder) for name, folder in find_clips(root, found).items()}
        else:
            self.classes = []
            clips = {name: -1 for name in find_clips(root, [])}
        names = self._split_names(root, clips)
        others = sorted(set(clips) - set(names)) if check_folder else []
        self.paths, self.labels, self.infos = [], [], []
        for name in tqdm(names + others, desc="check clips", unit="clip", disable=not progress or len(clips) < 50):
            info = self._check(root / name)
            if info is not None and name not in others:
                self.paths.append(root / name)
                self.labels.append(clips[name])
                self.infos.append(info)
        if not self.paths:
            raise BadClipError(f"the {split} split of {str(root)!r} holds no usable clips "
                               f"({len(names)} listed, {len(self.skipped)} skipped)")
        if channels is None:
            channels = 1 if task == "forecast" and all(info.grey for info in self.infos) else 3
        self.channels = channels
        self.num_samples = num_samples if self.train else len(self.paths)
        if self.num_samples < len(self.paths):
            raise ValueError(f"num_samples must be >= the {len(self.paths)} clips of the {split} split (each is "
                             f"seen once per epoch at least), got {num_samples}")
        self.transform = ClipTransform(config.image_size, train=self.train, hflip=config.hflip)

    def _check(self, path):
        """The clip's ClipInfo, or None for a bad clip skipped (else BadClipError naming it)."""
        info, config = _probe_cached(path), self.config
        if not isinstance(info, BadClipError) and info.frames < config.frames_needed:
            info = BadClipError(f"clip {str(path)!r} has {info.frames} frames, shorter than the {config.frames_needed} "
                                f"frames a sample needs (--num-frames {config.num_frames}, --frame-stride "
                                f"{config.frame_stride})")
        if not isinstance(info, BadClipError):
            return info
        if not config.skip_bad_clips:
            raise BadClipError(f"{info} (pass --skip-bad-clips to leave such clips out)")
        self.skipped.append(str(info))
        return None

    def _split_names(self, root, clips):
        if self.split == "all":
            return sorted(clips)
        listed = {split: split_list_path(root, split) for split in SPLITS}
        if not any(listed.values()):
            return holdout_split(clips, self.split)
        if listed[self.split] is None:
            found = [str(p) for p in listed.values() if p]
            raise BadClipError(f"{str(root)!r} has split lists {found} but none for the {self.split} split "
                               f"({self.split}.txt)")
        missing = []
        names = read_split_list(listed[self.split], clips, missing)
        if missing and not self.config.skip_bad_clips:
            raise BadClipError(f"split list names a missing clip: {missing[0]} (pass --skip-bad-clips to leave "
                               f"such lines out)")
        self.skipped += missing
        return names

    def __len__(self):
        return self.num_samples

    def __getitem__(self, index):
        items = self.batch([index])
        return items[0] if isinstance(items, np.ndarray) else tuple(part[0] for part in items)

    def clip(self, index):
        """Sample ``index`` as float32 (T, C, S, S) in [0, 1]."""
        if isinstance(index, bool) or not 0 <= index < self.num_samples:
            raise IndexError(f"index must lie in [0, {self.num_samples}), got {index!r}")
        which = index % len(self.paths)
        info = self.infos[which]
        rng = np.random.default_rng([self.seed, SPLITS.index(self.split), index]) if self.train else None
        chosen = frame_indices(info.frames, self.config.num_frames, self.config.frame_stride, rng)
        frames = read_frames(self.paths[which], chosen, grey=self.channels == 1)
        if frames.shape[-1] != self.channels:
            frames = np.repeat(frames, self.channels, axis=-1)
        return self.transform(frames, rng)

    def batch(self, indices):
        """Clips (B, T, C, S, S) float32, and for classify labels (B,) int64, of the samples ``indices``."""
        clips = np.stack([self.clip(int(i)) for i in indices])
        if self.task == "forecast":
            return clips
        return clips, np.array([self.labels[int(i) % len(self.paths)] for i in indices], np.int64)

    def record(self) -> dict:
        """What a run or report records of its data: settings, classes, channels, clip and skip counts."""
        return {**asdict(self.config), "root": os.fspath(Path(self.config.root).resolve()), "classes": self.classes,
                "channels": self.channels, "clips": {self.split: len(self.paths)},
                "skipped": {self.split: self.skipped}}

    def __repr__(self):
        return (f"VideoFolder({self.config.root!r}, task={self.task!r}, split={self.split!r}, clips={len(self.paths)}, "
                f"classes={len(self.classes)}, skipped={len(self.skipped)})")
