"""Online serving speed (issue 10): per-frame latency and clip throughput across runtimes, in one run.

Candidates, all with the same weights: PyTorch eager (``model.step``, checks included; ``model(clip)``),
``torch.compile`` (inductor) of the step graph and of the model, onnxruntime on the exported ONNX
step and clip graphs (``convgru_zoo.deploy.export``), and compiled MindSpore (``StepCell`` and the net in
GRAPH_MODE). Figures are ratios to PyTorch eager, every runtime timed in the same interleaved rounds
(``_timing.interleaved``), so a change in the machine's load falls on all of them alike.

Per frame: batch 1, one frame at a time with the states carried (``--frames`` per timed call, so
the time per frame is the call's time divided by it). Beside it, the time of the same step's
convolutions alone: every ``aten.convolution`` one eager step runs, captured with their real
inputs and replayed back to back. Goal: the fastest runtime serves a frame in under 1.2x that.

    python benchmarks/bench_online.py                                   # convgru_small, 7 rounds
    python benchmarks/bench_online.py --model convgru_tiny --rounds 3 --threads 2 --json online.json
"""
import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

from _timing import interleaved, write_json  # noqa: E402
from convgru_zoo.deploy import export  # noqa: E402
from convgru_zoo import machine, models, specs  # noqa: E402
from convgru_zoo.torch.graphs import StepGraph  # noqa: E402

CONV_GOAL = 1.2  # the fastest runtime's time per frame, in units of the step's convolutions alone


class _CaptureConvolutions(TorchDispatchMode):
    """Records every convolution (op, args, kwargs) run inside it."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten.convolution.default:
            self.calls.append((func, args, kwargs or {}))
        return func(*args, **(kwargs or {}))


def step_convolutions(model, frame, states, repeat):
    """A callable replaying ``repeat`` times the convolutions of one eager ``model.step(frame, states)``,
    and their count per step."""
    capture = _CaptureConvolutions()
    with torch.no_grad(), capture:
        model.step(frame, states)
    calls = capture.calls

    def replay():
        with torch.no_grad():
            for _ in range(repeat):
                for func, args, kwargs in calls:
                    func(*args, **kwargs)
    return replay, len(calls)


def frames_loop(step, frames, states):
    """A callable feeding ``frames`` (a list) one at a time through ``step(frame, states)``, states carried."""
    def call():
        carried = states
        for frame in frames:
            output, carried = step(frame, carried)
        return output
    return call


def torch_candidates(model, clip, frames_per_call):
    """Per-frame and per-clip candidates of PyTorch eager and torch.compile, and the compile times."""
    b, _, _, height, width = clip.shape
    frames = [clip[:1, t % clip.shape[1]] for t in range(frames_per_call)]
    states = model.init_states(1, height, width)
    compiled_step = torch.compile(StepGraph(model))
    compiled_model = torch.compile(model)

    def no_grad(fn):
        def call():
            with torch.no_grad():
                return fn()
        return call

    started = time.perf_counter()
    no_grad(frames_loop(compiled_step, frames[:2], states))()
    step_compile = time.perf_counter() - started
    started = time.perf_counter()
    no_grad(lambda: compiled_model(clip))()
    clip_compile = time.perf_counter() - started
    per_frame = {"torch eager": no_grad(frames_loop(model.step, frames, states)),
                 "torch.compile": no_grad(frames_loop(compiled_step, frames, states))}
    per_clip = {"torch eager": no_grad(lambda: model(clip)), "torch.compile": no_grad(lambda: compiled_model(clip))}
    return per_frame, per_clip, {"torch.compile step": step_compile, "torch.compile clip": clip_compile}


def onnx_candidates(model, clip, frames_per_call, folder, threads):
    """onnxruntime sessions of the exported step and clip graphs; their largest difference to PyTorch."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # onnxruntime's threads spin after each run by default, stealing the CPU from the candidates timed next.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    b, t, c, height, width = clip.shape
    shape = (2, t, c, height, width)
    sessions = {step: ort.InferenceSession(
        str(export.export_model(model, "onnx", os.path.join(folder, f"{step}.onnx"), step=step, shape=shape)),
        options, providers=["CPUExecutionProvider"]) for step in (True, False)}
    names = [i.name for i in sessions[True].get_inputs()]
    x = clip.numpy()
    frames = [x[:1, i % t] for i in range(frames_per_call)]
    zeros = [np.zeros(s, np.float32) for s in model.state_shapes(1, height, width)]

    def onnx_step(frame, states):
        output, *states = sessions[True].run(None, dict(zip(names, [frame] + states)))
        return output, states

    with torch.no_grad():
        want = model(clip).numpy()
    diff = float(np.abs(sessions[False].run(None, {"clip": x})[0] - want).max())
    return ({"onnxruntime": frames_loop(onnx_step, frames, zeros)},
            {"onnxruntime": lambda: sessions[False].run(None, {"clip": x})}, diff)


def mindspore_candidates(name, model, clip, frames_per_call):
    """Compiled MindSpore (GRAPH_MODE): the StepCell per frame, the net per clip; its largest difference."""
    import mindspore as ms

    from convgru_zoo import convert
    from convgru_zoo.mindspore.conv import conv_path
    from convgru_zoo.mindspore.graphs import StepCell
    from convgru_zoo.mindspore.weights import load_params

    ms.set_device("CPU")
    ms.device_context.cpu.op_tuning.threads_num(torch.get_num_threads())  # the same threads as PyTorch
    net = models.inference_model(name, "mindspore")
    load_params(net, convert.torch_to_mindspore(model.state_dict()), "the PyTorch model's")
    cell = StepCell(net)
    cell.set_train(False)
    b, t, _, height, width = clip.shape
    x = ms.Tensor(clip.numpy())
    frames = [ms.Tensor(clip[:1, i % t].numpy()) for i in range(frames_per_call)]
    zeros = net.init_states(1, height, width)

    def ms_step(frame, states):
        output, *states = cell(frame, *states)
        return output, states

    ms.set_context(mode=ms.GRAPH_MODE)
    with torch.no_grad():
        want = model(clip).numpy()
    diff = float(np.abs(net(x).asnumpy() - want).max())
    im2col, why = conv_path()
    step_loop = frames_loop(ms_step, frames, zeros)
    return ({"MindSpore compiled": lambda: step_loop().asnumpy()},
            {"MindSpore compiled": lambda: net(x).asnumpy()}, diff,
            f"{'im2col + matmul' if im2col else 'native'} convolution ({why})")


def report(name, results, frames_per_call, clip_shape):
    per_frame, per_clip = results["per_frame"], results["per_clip"]
    eager_frame, eager_clip = per_frame["torch eager"].median, per_clip["torch eager"].median
    conv = results["convolutions"].median / frames_per_call
    print(f"\n{name}, {machine.summary_line(results['machine'])}, load average {results['load_average']:.1f} at start; "
          "medians of interleaved rounds, spread = (max-min)/median")
    print(f"per frame (batch 1, {clip_shape[-2]}x{clip_shape[-1]}, {frames_per_call} frames per timed call); "
          f"the step's {results['convolution_calls']} convolutions alone: {conv * 1e3:.2f} ms")
    print(f"  {'runtime':20} {'ms/frame':>9} {'vs eager':>9} {'vs convs':>9} {'spread':>7}")
    for runtime, timing in per_frame.items():
        seconds = timing.median / frames_per_call
        print(f"  {runtime:20} {seconds * 1e3:9.2f} {eager_frame / timing.median:8.2f}x {seconds / conv:8.2f}x "
              f"{timing.spread:6.0%}")
    fastest = min(per_frame, key=lambda r: per_frame[r].median)
    ratio = per_frame[fastest].median / frames_per_call / conv
    print(f"  goal: fastest ({fastest}) within {CONV_GOAL}x of the convolutions alone: {ratio:.2f}x "
          f"{'ok' if ratio <= CONV_GOAL else 'MISS'}")
    print(f"clip throughput (batch {clip_shape[0]}, T={clip_shape[1]}, {clip_shape[-2]}x{clip_shape[-1]})")
    print(f"  {'runtime':20} {'clips/s':>9} {'vs eager':>9} {'spread':>7}")
    for runtime, timing in per_clip.items():
        print(f"  {runtime:20} {clip_shape[0] / timing.median:9.1f} {eager_clip / timing.median:8.2f}x "
              f"{timing.spread:6.0%}")
    for what, value in results["notes"].items():
        print(f"  {what}: {value}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted(specs.BACKBONES), default="convgru_small")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved timed rounds (median reported)")
    parser.add_argument("--frames", type=int, default=10, help="frames per timed per-frame call")
    parser.add_argument("--clip-batch", type=int, default=8, help="batch of the clip-throughput clips")
    parser.add_argument("--size", type=int, default=specs.INPUT_SIZE[1], help="frame side")
    parser.add_argument("--threads", type=int, help="threads of torch, onnxruntime (default: torch's own)")
    parser.add_argument("--no-mindspore", action="store_true")
    parser.add_argument("--json", metavar="OUT", help="also write every timing to this JSON file")
    args = parser.parse_args(argv)
    for flag in ("rounds", "frames", "clip_batch", "size", "threads"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            parser.error(f"--{flag.replace('_', '-')} must be >= 1, got {value}")
    if args.threads:
        torch.set_num_threads(args.threads)
    load_average = os.getloadavg()[0]
    torch.manual_seed(0)
    model = models.inference_model(args.model)
    frames = model.num_frames
    clip = torch.rand(args.clip_batch, frames, model.in_chans, args.size, args.size)
    convolutions, calls = step_convolutions(model, clip[:1, 0], model.init_states(1, args.size, args.size),
                                             args.frames)
    per_frame, per_clip, compile_seconds = torch_candidates(model, clip, args.frames)
    notes = {f"{k} compile": f"{v:.1f} s" for k, v in compile_seconds.items()}
    with tempfile.TemporaryDirectory() as folder:
        onnx_frame, onnx_clip, diff = onnx_candidates(model, clip, args.frames, folder, torch.get_num_threads())
        per_frame.update(onnx_frame)
        per_clip.update(onnx_clip)
        notes["onnxruntime clip graph max|diff| to torch"] = f"{diff:.1e}"
        if not args.no_mindspore:
            # Interleaved with the others: on PyTorch's thread count its runtime no longer slows PyTorch
            # (docs/mindspore-cpu-speed.md); timed alone afterwards, it met another load than they did.
            ms_frame, ms_clip, diff, path = mindspore_candidates(args.model, model, clip, args.frames)
            per_frame.update(ms_frame)
            per_clip.update(ms_clip)
            notes["MindSpore compiled clip max|diff| to torch"] = f"{diff:.1e}"
            notes["MindSpore convolution path"] = path
        frame_times = interleaved({"convolutions": convolutions, **per_frame}, args.rounds)
        clip_times = interleaved(per_clip, args.rounds)
    results = {"model": args.model, "machine": machine.describe(), "load_average": load_average,
               "convolutions": frame_times.pop("convolutions"), "convolution_calls": calls,
               "per_frame": frame_times, "per_clip": clip_times, "frames_per_call": args.frames,
               "clip_shape": list(clip.shape), "notes": notes}
    report(args.model, results, args.frames, tuple(clip.shape))
    if args.json:
        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
