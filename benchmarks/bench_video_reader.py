"""Is loading the bottleneck? Clips/s of the video-folder reader (PyAV decode, sampling, crop and resize,
through the PyTorch loop's DataLoader with N workers) against the model's training clips/s, same machine.

    python benchmarks/bench_video_reader.py                          # makes its own mp4 clips in a temp folder
    python benchmarks/bench_video_reader.py --data DIR --workers 0 2 --model convgru_small --json out.json

Without ``--data`` it writes ``--clips`` H.264 clips (``--frames`` frames of ``--size`` px, a square moving
over noise) to a temporary folder, deleted afterwards. Run it on a quiet machine.
"""
import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from convgru_zoo import machine  # noqa: E402
from convgru_zoo import train as training  # noqa: E402
from convgru_zoo._files import atomic_write_json  # noqa: E402
from convgru_zoo.data.video_folder import VideoFolderConfig  # noqa: E402
from convgru_zoo.models import create_model, list_models  # noqa: E402
from convgru_zoo.torch.device import autocast_for  # noqa: E402
from convgru_zoo.torch import train as torch_training  # noqa: E402


def make_clips(root, clips, frames, size):
    """``clips`` mp4 files in two class folders: a square moving left or right over noise."""
    import av

    rng = np.random.default_rng(0)
    for i in range(clips):
        direction = 1 if i % 2 else -1
        folder = Path(root) / ("right" if direction > 0 else "left")
        folder.mkdir(parents=True, exist_ok=True)
        with av.open(str(folder / f"clip_{i:03d}.mp4"), "w") as container:
            stream = container.add_stream("libx264", rate=25)
            stream.width = stream.height = size
            stream.pix_fmt, stream.options = "yuv420p", {"preset": "veryfast"}
            for t in range(frames):
                frame = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
                left = (size // 2 + direction * t * size // (2 * frames)) % (size - size // 8)
                frame[size // 3:size // 3 + size // 8, left:left + size // 8] = 230
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)


def reader_clips_per_s(dataset, batch_size, workers, batches):
    """Clips/s of the DataLoader the PyTorch loop builds, over ``batches`` batches after the workers start."""
    sampler = torch_training.StepBatchSampler(0, batches + 1, batch_size, len(dataset), seed=0)
    loader = iter(torch.utils.data.DataLoader(dataset, batch_sampler=sampler, num_workers=workers))
    next(loader)  # workers started, first batch in
    tick = time.perf_counter()
    for _ in range(batches):
        next(loader)
    return batches * batch_size / (time.perf_counter() - tick)


def train_clips_per_s(model_name, batch, num_classes, num_frames, steps):
    """Median training clips/s of ``model_name`` on ``batch`` (one step: forward, loss, backward, AdamW)."""
    config = training.TrainConfig(task="classify", model=model_name)
    model = create_model(model_name, num_classes=num_classes, num_frames=num_frames).train()
    optimizer = torch_training.make_optimizer(config, model)
    autocast = autocast_for("none", torch.device("cpu"))
    seconds = []
    for step in range(steps + 1):
        tick = time.perf_counter()
        loss, _ = torch_training.forward_loss("classify", model, batch, torch.device("cpu"), autocast)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step:  # the first step warms up
            seconds.append(time.perf_counter() - tick)
    return len(batch[0]) / statistics.median(seconds)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=None, help="a folder of clips (default: make some in a temp folder)")
    parser.add_argument("--clips", type=int, default=32, help="clips to make without --data")
    parser.add_argument("--frames", type=int, default=60, help="frames per made clip")
    parser.add_argument("--size", type=int, default=128, help="side of the made clips' frames")
    parser.add_argument("--model", default="convgru_small", choices=list_models("classify"))
    parser.add_argument("--num-frames", type=int, default=10)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--batches", type=int, default=8, help="timed reader batches")
    parser.add_argument("--steps", type=int, default=5, help="timed training steps")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as made:
        root = args.data
        if root is None:
            root = made
            make_clips(root, args.clips, args.frames, args.size)
        data = VideoFolderConfig(root, num_frames=args.num_frames, image_size=args.image_size)
        config = training.TrainConfig(task="classify", model=args.model, num_sequences=10000)
        dataset, _ = training.build_datasets(config, training.Runtime(mnist=None, out="", progress=False, data=data))
        info = machine.describe()
        print(f"# {machine.summary_line(info)}; torch {torch.__version__}")
        source = root if args.data else f"made: {args.frames} frames of {args.size} px, H.264"
        print(f"# {len(dataset.paths)} training clips ({source}); {args.num_frames} frames -> {args.image_size} px, "
              f"batch {args.batch_size}")
        rows = {f"reader, {w} workers": reader_clips_per_s(dataset, args.batch_size, w, args.batches)
                for w in args.workers}
        batch = tuple(map(torch.from_numpy, dataset.batch(range(args.batch_size))))
        rows[f"{args.model} training (float32, {torch.get_num_threads()} threads)"] = train_clips_per_s(
            args.model, batch, len(dataset.classes), args.num_frames, args.steps)
    print("| what | clips/s |")
    print("|---|---|")
    for name, value in rows.items():
        print(f"| {name} | {value:.1f} |")
    if args.json:
        atomic_write_json(args.json, {"machine": info, "command": sys.argv, "clips_per_s": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
