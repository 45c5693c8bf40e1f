"""GRU-RCN speed (issue 20): an online step of convgru_rcn_resnet18 against resnet18's own forward, in one run.

Per frame (batch 1, ``--size`` square, default 224): the GRU-RCN's ``model.step`` (one backbone pass
plus one ConvGRU step per level, checks included) against timm's ``resnet18`` classifying one image,
same runtime, timed interleaved (``_timing.interleaved``): PyTorch eager and onnxruntime (both exported
with ``torch.onnx.export(dynamo=True)``; the step graph by ``convgru_zoo.deploy.export``). Goal: the step
within 1.25x of the image model, i.e. the recurrent part adds at most a quarter.

Per clip (batch ``--clip-batch``, ``--frames`` frames, eager): ``model(clip)`` against resnet18 run alone
over the same frames (one batched call), as frames per second.

The levels and width sweep (eager, per frame) is what chose ``specs.RcnSpec``'s defaults: every
``--levels`` x ``--widths`` candidate is timed beside resnet18 with its GFLOPs per frame.

    OMP_NUM_THREADS=1 nice python benchmarks/bench_rcn.py --json benchmarks/results/rcn_resnet18.json
    python benchmarks/bench_rcn.py --rounds 3 --size 160 --levels 2,3,4 1,2,3,4 --widths 32 64
"""
import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import timm  # noqa: E402
import torch  # noqa: E402

from _timing import count_flops, interleaved, write_json  # noqa: E402
from convgru_zoo import machine, specs  # noqa: E402
from convgru_zoo.deploy import export  # noqa: E402

MODEL, IMAGE_MODEL = "convgru_rcn_resnet18", "resnet18"
GOAL = 1.25  # the step's time in units of the image model's forward, same runtime


def no_grad(fn):
    def call():
        with torch.no_grad():
            return fn()
    return call


def steps(model, frames):
    """A callable feeding ``frames`` one at a time through ``model.step`` from zero states."""
    states = model.init_states(1, *frames[0].shape[-2:])

    def call():
        carried = states
        for frame in frames:
            logits, carried = model.step(frame, carried)
        return logits
    return no_grad(call)


def images(model, frames):
    """A callable classifying ``frames`` one at a time with the image model."""
    def call():
        for frame in frames:
            logits = model(frame)
        return logits
    return no_grad(call)


def per_frame_gflops(fn) -> float:
    with torch.no_grad():
        return count_flops(fn) / 1e9


def onnx_sessions(model, image_model, size, folder, threads):
    """onnxruntime sessions of the GRU-RCN's step graph and of the image model; their largest differences to eager."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # no spinning threads between runs
    step_path = export.export_model(model, "onnx", os.path.join(folder, "step.onnx"), step=True,
                                    shape=(1, 1, 3, size, size))
    image_path = os.path.join(folder, "image.onnx")
    torch.onnx.export(image_model, (torch.rand(1, 3, size, size),), image_path, dynamo=True,
                      opset_version=export.ONNX_OPSET, input_names=["image"], output_names=["logits"], verbose=False)
    step = ort.InferenceSession(str(step_path), options, providers=["CPUExecutionProvider"])
    image = ort.InferenceSession(image_path, options, providers=["CPUExecutionProvider"])
    return step, image


def onnx_candidates(model, image_model, frames, folder, threads):
    step, image = onnx_sessions(model, image_model, frames[0].shape[-1], folder, threads)
    names = [i.name for i in step.get_inputs()]
    arrays = [f.numpy() for f in frames]
    zeros = [np.zeros(s, np.float32) for s in model.state_shapes(1, *frames[0].shape[-2:])]

    def rcn():
        states = zeros
        for frame in arrays:
            logits, *states = step.run(None, dict(zip(names, [frame] + states)))
        return logits

    def resnet():
        for frame in arrays:
            logits = image.run(None, {"image": frame})[0]
        return logits

    with torch.no_grad():
        diffs = {"step": float(np.abs(rcn() - steps(model, frames)().numpy()).max()),
                 "image": float(np.abs(resnet() - image_model(frames[-1]).numpy()).max())}
    return {"rcn step": rcn, "image model": resnet}, diffs


def sweep(image_model, frames, levels_list, widths, rounds):
    """Per-frame eager time and GFLOPs of every (levels, width) candidate, each against the image model."""
    candidates, flops = {}, {"image model": per_frame_gflops(lambda: image_model(frames[0]))}
    for levels in levels_list:
        for width in widths:
            torch.manual_seed(0)
            model = timm.create_model(MODEL, out_indices=levels, width=width).eval()
            name = f"levels {','.join(map(str, levels))} width {width}"
            candidates[name] = steps(model, frames)
            states = model.init_states(1, *frames[0].shape[-2:])
            flops[name] = per_frame_gflops(lambda m=model, s=states: m.step(frames[0], s))
    times = interleaved({"image model": images(image_model, frames), **candidates}, rounds)
    return {name: {"ms_per_frame": times[name].median / len(frames) * 1e3, "gflops_per_frame": flops[name],
                   "vs_image_model": times[name].median / times["image model"].median, "spread": times[name].spread}
            for name in times}


def report(results):
    print(f"\n{MODEL} vs {IMAGE_MODEL}, {machine.summary_line(results['machine'])}, load average "
          f"{results['load_average']:.1f} at start; medians of interleaved rounds, spread = (max-min)/median")
    size, n = results["size"], results["frames_per_call"]
    print(f"per frame (batch 1, {size}x{size}, {n} frames per timed call; default levels "
          f"{results['out_indices']}, width {results['width']})")
    print(f"  {'runtime':12} {'rcn step ms':>12} {'image ms':>9} {'ratio':>6}  goal <= {GOAL}x")
    for runtime, row in results["per_frame"].items():
        verdict = "ok" if row["ratio"] <= GOAL else "MISS"
        print(f"  {runtime:12} {row['rcn_ms']:12.2f} {row['image_ms']:9.2f} {row['ratio']:5.2f}x  {verdict}")
    clip = results["per_clip"]
    print(f"clip (batch {clip['shape'][0]}, T={clip['shape'][1]}, eager): rcn {clip['rcn_fps']:.1f} frames/s, "
          f"{IMAGE_MODEL} alone over the frames {clip['image_fps']:.1f} frames/s: {clip['ratio']:.2f}x the time")
    print("levels x width sweep (eager, per frame)")
    print(f"  {'candidate':24} {'ms/frame':>9} {'GFLOPs':>7} {'vs image':>9} {'spread':>7}")
    for name, row in results["sweep"].items():
        print(f"  {name:24} {row['ms_per_frame']:9.2f} {row['gflops_per_frame']:7.2f} {row['vs_image_model']:8.2f}x "
              f"{row['spread']:6.0%}")
    for what, value in results["notes"].items():
        print(f"  {what}: {value}")


def _levels(text):
    return tuple(int(v) for v in text.split(","))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7, help="interleaved timed rounds (median reported)")
    parser.add_argument("--frames", type=int, default=4, help="frames per timed per-frame call")
    parser.add_argument("--clip-batch", type=int, default=2, help="batch of the clip-throughput clips")
    parser.add_argument("--clip-frames", type=int, default=specs.RCN_MODELS[MODEL].num_frames)
    parser.add_argument("--size", type=int, default=224, help="frame side")
    parser.add_argument("--levels", type=_levels, nargs="*", default=[(2, 3, 4), (3, 4), (1, 2, 3, 4)],
                        help="backbone levels of the sweep's candidates, e.g. 2,3,4 (none: no sweep)")
    parser.add_argument("--widths", type=int, nargs="*", default=[32, 64, 128], help="widths of the sweep's candidates")
    parser.add_argument("--threads", type=int, help="threads of torch and onnxruntime (default: torch's own)")
    parser.add_argument("--no-onnx", action="store_true")
    parser.add_argument("--json", metavar="OUT", help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    for flag in ("rounds", "frames", "clip_batch", "clip_frames", "size", "threads"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            parser.error(f"--{flag.replace('_', '-')} must be >= 1, got {value}")
    if args.threads:
        torch.set_num_threads(args.threads)
    load_average = os.getloadavg()[0]
    torch.manual_seed(0)
    model = timm.create_model(MODEL).eval()
    image_model = timm.create_model(IMAGE_MODEL).eval()
    frames = [torch.rand(1, 3, args.size, args.size) for _ in range(args.frames)]
    candidates = {"eager": {"rcn step": steps(model, frames), "image model": images(image_model, frames)}}
    notes = {}
    with tempfile.TemporaryDirectory() as folder:
        if not args.no_onnx:
            candidates["onnxruntime"], diffs = onnx_candidates(model, image_model, frames, folder,
                                                               torch.get_num_threads())
            notes["onnxruntime max|diff| to eager"] = ", ".join(f"{k} {v:.1e}" for k, v in diffs.items())
        times = interleaved({f"{runtime} {name}": fn for runtime, fns in candidates.items()
                             for name, fn in fns.items()}, args.rounds)
    per_frame = {}
    for runtime in candidates:
        rcn, image = times[f"{runtime} rcn step"], times[f"{runtime} image model"]
        per_frame[runtime] = {"rcn_ms": rcn.median / args.frames * 1e3, "image_ms": image.median / args.frames * 1e3,
                              "ratio": rcn.median / image.median, "spread": max(rcn.spread, image.spread)}
    clip = torch.rand(args.clip_batch, args.clip_frames, 3, args.size, args.size)
    clip_times = interleaved({"rcn": no_grad(lambda: model(clip)),
                              "image": no_grad(lambda: image_model(clip.flatten(0, 1)))}, args.rounds)
    n = args.clip_batch * args.clip_frames
    per_clip = {"shape": list(clip.shape), "rcn_fps": n / clip_times["rcn"].median,
                "image_fps": n / clip_times["image"].median,
                "ratio": clip_times["rcn"].median / clip_times["image"].median}
    results = {"model": MODEL, "image_model": IMAGE_MODEL, "machine": machine.describe(), "load_average": load_average,
               "size": args.size, "frames_per_call": args.frames, "out_indices": list(model.out_indices),
               "width": model.width, "goal": GOAL, "per_frame": per_frame, "per_clip": per_clip,
               "sweep": sweep(image_model, frames, args.levels, args.widths, args.rounds) if args.levels else {},
               "notes": notes}
    report(results)
    if args.json:
        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
