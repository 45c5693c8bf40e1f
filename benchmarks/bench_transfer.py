"""Training-step cost of the transfer experiment's parts at 64x64 (docs/gru-rcn.md, "Transfer"): what picks its backbone.

The experiment trains an image backbone on single Motion MNIST frames (``--task classify_frames``), then only
the ConvGRU part of a GRU-RCN over it, frozen (``--freeze-backbone``), and compares it with ``convgru_tiny``
trained from scratch at equal CPU time. This times, side by side in one run (``_timing.interleaved``), one
training step (forward, loss, backward, AdamW) of each part as ``convgru_zoo.torch.train`` runs it:

- ``frames NAME``: timm image model NAME on ``--frame-batch`` 3x64x64 frames, 10 digit classes;
- ``rcn NAME levels L``: the GRU-RCN over NAME at backbone levels L, backbone frozen, ``--batch-size``
  clips of ``--frames`` frames, 40 classes;
- ``convgru_tiny``: the same clips, every weight trained.

Random inputs (the step's cost does not depend on the pixels). Single-threaded runs (``--threads 1``) are
timed in process CPU time, as ``metrics.jsonl``'s ``cpu_s`` counts a run's cost; with the FLOPs of each step.

    OMP_NUM_THREADS=1 nice python benchmarks/bench_transfer.py --threads 1 --json benchmarks/results/transfer_steps.json
    python benchmarks/bench_transfer.py --rounds 2 --frame-models resnet10t --rcn resnet10t:2,3,4 --batch-size 4
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import timm  # noqa: E402
import torch  # noqa: E402

from _timing import count_flops, interleaved, write_json  # noqa: E402
from convgru_zoo import machine, specs  # noqa: E402
from convgru_zoo import train as training  # noqa: E402
from convgru_zoo.torch import train as torch_training  # noqa: E402
from convgru_zoo.torch.device import autocast_for  # noqa: E402

SIZE = specs.INPUT_SIZE[1]
DIGITS = 10
CPU = torch.device("cpu")


def training_step(config, model, batch):
    """One step of ``model`` on ``batch`` as the PyTorch loop runs it (float32); returns the callable."""
    optimizer = torch_training.make_optimizer(config, model)
    model.train()

    def step():
        loss, _ = torch_training.forward_loss("classify", model, batch, CPU, autocast_for("none", CPU))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return step


def candidates(args):
    """{name: (step callable, trained parameters)} of every part asked for."""
    generator = torch.Generator().manual_seed(0)
    frames = (torch.rand(args.frame_batch, 3, SIZE, SIZE, generator=generator),
              torch.randint(DIGITS, (args.frame_batch,), generator=generator))
    clips = (torch.rand(args.batch_size, args.frames, 3, SIZE, SIZE, generator=generator),
             torch.randint(specs.NUM_CLASSES, (args.batch_size,), generator=generator))
    found = {}
    for name in args.frame_models:
        torch.manual_seed(0)
        model = timm.create_model(name, num_classes=DIGITS)
        config = training.TrainConfig(task=training.FRAMES_TASK, model=name)
        found[f"frames {name}"] = (training_step(config, model, frames), model)
    for backbone, levels in args.rcn:
        torch.manual_seed(0)
        model = timm.create_model("convgru_rcn", backbone=backbone, out_indices=levels, freeze_backbone=True)
        config = training.TrainConfig(task="classify", model="convgru_rcn", freeze_backbone=True)
        found[f"rcn {backbone} levels {','.join(map(str, levels))}"] = (training_step(config, model, clips), model)
    if not args.no_scratch:
        torch.manual_seed(0)
        model = timm.create_model("convgru_tiny")
        config = training.TrainConfig(task="classify", model="convgru_tiny")
        found["convgru_tiny"] = (training_step(config, model, clips), model)
    return found


def _levels(text):
    backbone, _, levels = text.partition(":")
    try:
        return backbone, tuple(int(v) for v in levels.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected BACKBONE:LEVELS such as resnet18:2,3,4, got {text!r}") from None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timed rounds (median reported)")
    parser.add_argument("--frame-models", nargs="*", default=["resnet18", "resnet10t"],
                        help="timm image models trained on single frames")
    parser.add_argument("--frame-batch", type=int, default=64, help="frames per frame-training step")
    parser.add_argument("--rcn", type=_levels, nargs="*",
                        default=[("resnet18", (2, 3, 4)), ("resnet18", (2, 3)), ("resnet10t", (2, 3, 4))],
                        help="GRU-RCN candidates as BACKBONE:LEVELS, backbone frozen")
    parser.add_argument("--batch-size", type=int, default=32, help="clips per clip-training step")
    parser.add_argument("--frames", type=int, default=specs.BACKBONES["convgru_tiny"].num_frames, help="clip length")
    parser.add_argument("--no-scratch", action="store_true", help="leave convgru_tiny out")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's own)")
    parser.add_argument("--json", metavar="OUT", help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    for flag in ("rounds", "frame_batch", "batch_size", "frames", "threads"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            parser.error(f"--{flag.replace('_', '-')} must be >= 1, got {value}")
    if args.threads:
        torch.set_num_threads(args.threads)
    clock = "cpu" if torch.get_num_threads() == 1 else "wall"
    load_average = os.getloadavg()[0]
    found = candidates(args)
    flops = {name: count_flops(step) for name, (step, _) in found.items()}
    times = interleaved({name: step for name, (step, _) in found.items()}, args.rounds,
                        clock=time.process_time if clock == "cpu" else time.perf_counter)
    rows = {}
    for name, (_, model) in found.items():
        items = args.frame_batch if name.startswith("frames") else args.batch_size
        rows[name] = {"s_per_step": times[name].median, "spread": times[name].spread, "items_per_step": items,
                      "ms_per_item": times[name].median / items * 1e3, "gflops_per_step": flops[name] / 1e9,
                      "trained_params_m": sum(p.numel() for p in model.parameters() if p.requires_grad) / 1e6}
    results = {"machine": machine.describe(), "load_average": load_average, "clock": clock, "size": SIZE,
               "frames_per_clip": args.frames, "rows": rows}
    print(f"training steps at {SIZE}x{SIZE}, {machine.summary_line(results['machine'])}, load average "
          f"{load_average:.1f} at start; {clock} time, medians of {args.rounds} interleaved rounds")
    print(f"  {'part':28} {'s/step':>7} {'items':>6} {'ms/item':>8} {'GFLOPs':>7} {'trained M':>9} {'spread':>7}")
    for name, row in rows.items():
        print(f"  {name:28} {row['s_per_step']:7.3f} {row['items_per_step']:6d} {row['ms_per_item']:8.1f} "
              f"{row['gflops_per_step']:7.1f} {row['trained_params_m']:9.3f} {row['spread']:6.0%}")
    if args.json:
        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
