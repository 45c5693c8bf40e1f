"""Training throughput (clips/s) of the forecaster and a backbone: the budget of the published weights.

Times the training step of ``convgru_zoo.train`` (forward, loss, backward, grad-norm, AdamW
step) on real Moving MNIST batches generated beforehand, and separately how fast the clips are
generated. Median seconds per step over ``--steps`` timed steps after ``--warmup`` untimed ones.

    python benchmarks/bench_train.py --mnist ../shared/data/mnist                 # defaults below
    python benchmarks/bench_train.py --mnist DIR --amp none bf16 --batch-size 16 --steps 20 --json out.json
    python benchmarks/bench_train.py --mnist DIR --device cuda --amp none bf16 fp16 --batch-size 64

Run it on a quiet machine: on a shared CPU the figures measure the neighbours.
"""
import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from convgru_zoo import train as training  # noqa: E402
from convgru_zoo.torch import train as torch_training  # noqa: E402
from convgru_zoo._files import atomic_write_json  # noqa: E402
from convgru_zoo.data.datasets import DEFAULT, build_dataset  # noqa: E402
from convgru_zoo.models import create_model  # noqa: E402
from convgru_zoo.torch.device import autocast_for, resolve_device  # noqa: E402

TASK_OF = {"convgru_forecaster": "forecast", "convgru_forecaster_tiny": "forecast",
           "convgru_tiny": "classify", "convgru_small": "classify", "convgru_base": "classify"}


def step_seconds(model_name, batch_size, amp, device, steps, warmup, mnist):
    """(median, min, max) seconds of one training step, and clips/s of data generation."""
    task = TASK_OF[model_name]
    config = training.TrainConfig(task=task, model=model_name, batch_size=batch_size, amp=amp)
    torch.manual_seed(0)
    model = create_model(model_name).to(device).train()
    optimizer = torch_training.make_optimizer(config, model)
    scaler = torch.amp.GradScaler(device.type, enabled=amp == "fp16")
    autocast = autocast_for(amp, device)
    dataset = build_dataset(DEFAULT[task], mnist, "train", max(batch_size, 64))
    start = time.perf_counter()
    batch = dataset.batch(range(batch_size))
    generate = batch_size / (time.perf_counter() - start)
    batch = torch.from_numpy(batch) if task == "forecast" else tuple(torch.from_numpy(b) for b in batch)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def one_step():
        loss, _ = torch_training.forward_loss(task, model, batch, device, autocast)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), float("inf"))
        scaler.step(optimizer)
        scaler.update()

    for _ in range(warmup):
        one_step()
    seconds = []
    for _ in range(steps):
        sync()
        tick = time.perf_counter()
        one_step()
        sync()
        seconds.append(time.perf_counter() - tick)
    return statistics.median(seconds), min(seconds), max(seconds), generate


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mnist", required=True, help="folder of MNIST idx files")
    parser.add_argument("--models", nargs="+", default=["convgru_forecaster", "convgru_small"], choices=sorted(TASK_OF))
    parser.add_argument("--amp", nargs="+", default=["none", "bf16"], choices=training.AMP_MODES)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=10, help="timed steps")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    machine = {"device": str(device), "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
               "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
               "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None}
    print(f"# training throughput on {machine}; batch {args.batch_size}, median of {args.steps} steps")
    print("| model | amp | s/step (min-max) | clips/s | data clips/s |")
    print("|---|---|---|---|---|")
    rows = []
    for name in args.models:
        for amp in args.amp:
            if amp == "fp16" and device.type != "cuda":
                continue
            try:
                median, low, high, generate = step_seconds(name, args.batch_size, amp, device, args.steps,
                                                           args.warmup, args.mnist)
            except (RuntimeError, ValueError) as err:  # a model that cannot train in this mode: say so, go on
                rows.append({"model": name, "amp": amp, "batch_size": args.batch_size, "error": str(err)})
                print(f"| {name} | {amp} | failed: {err} | | |", flush=True)
                continue
            row = {"model": name, "amp": amp, "batch_size": args.batch_size, "seconds_per_step": median,
                   "min": low, "max": high, "clips_per_s": args.batch_size / median, "data_clips_per_s": generate}
            rows.append(row)
            print(f"| {name} | {amp} | {median:.3f} ({low:.3f}-{high:.3f}) | {row['clips_per_s']:.1f} | "
                  f"{generate:.0f} |", flush=True)
    if args.json:
        atomic_write_json(args.json, {"machine": machine, "command": sys.argv, "results": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
