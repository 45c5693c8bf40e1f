"""Side-by-side speed of the ConvGRU implementations (issue 2), in one run.

PyTorch: the plain paper reference (one step, three convolutions over cat[x, h] at a time)
against the fast path (``convgru_zoo.torch.ConvGRU`` on the clip), forward and forward+backward,
with achieved GFLOP/s against one large convolution timed in the same run; bfloat16 autocast
against the float32 reference; on a GPU, the fast path with its time loop captured in a CUDA graph.
MindSpore (when installed): the seed's port (plain ``nn.Conv2d`` cells) against
``convgru_zoo.mindspore.ConvGRU`` in PYNATIVE and compiled, on W2 forward.

    python benchmarks/bench_convgru.py                      # all workloads, 7 rounds
    python benchmarks/bench_convgru.py --quick              # short clips, 3 rounds: a smoke run
    python benchmarks/bench_convgru.py -w W2 --rounds 11 --json bench.json
"""
import argparse
import math
import os
import sys
from dataclasses import asdict, dataclass, replace
from typing import Callable, Dict, List, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from _timing import Timing, count_flops, gflops, interleaved, write_json  # noqa: E402
from convgru_zoo.torch import ConvGRU  # noqa: E402
from convgru_zoo.torch.reference import reference_clip  # noqa: E402

# Targets from issue 2.
FAST_VS_LARGE_CONV = 0.85
BF16_SPEEDUP, BF16_TOLERANCE = 1.8, 2e-2
MS_COMPILED_VS_TORCH = 1.5
MINDSPORE_WORKLOADS = ("W2",)  # the issue's MindSpore targets are on W2 forward


@dataclass(frozen=True)
class Workload:
    """A stacked ConvGRU and the clip it runs: (batch, steps, input_size, size, size)."""

    name: str
    label: str
    input_size: int
    hidden_sizes: Tuple[int, ...]
    kernel_sizes: Tuple[int, ...]
    size: int
    batch: int
    steps: int

    def build(self, device=None, dtype=torch.float32) -> Tuple[ConvGRU, torch.Tensor]:
        torch.manual_seed(0)
        model = ConvGRU(self.input_size, list(self.hidden_sizes), list(self.kernel_sizes),
                        len(self.hidden_sizes), device=device, dtype=dtype)
        clip = torch.randn(self.batch, self.steps, self.input_size, self.size, self.size,
                           device=device, dtype=dtype)
        return model, clip

    def largest_layer(self) -> Tuple[int, int, int]:
        """(input channels incl. hidden, output channels of the three gates, kernel) of the costliest layer."""
        layers = []
        inputs = (self.input_size,) + self.hidden_sizes[:-1]
        for c, h, k in zip(inputs, self.hidden_sizes, self.kernel_sizes):
            layers.append((c + h, 3 * h, k))
        return max(layers, key=lambda l: l[0] * l[1] * l[2] ** 2)


WORKLOADS = {
    "W1": Workload("W1", "seed README as a clip", 8, (32, 64, 16), (3, 5, 3), 64, 2, 10),
    "W2": Workload("W2", "Moving-MNIST core", 16, (64, 64, 64), (3, 3, 3), 16, 16, 20),
}


def _loss(out: torch.Tensor) -> torch.Tensor:
    return out.float().square().mean()


def _forward(fn, *args):
    def call():
        with torch.no_grad():
            fn(*args)
    return call


def _forward_backward(params, fn, *args, autocast: Optional[torch.dtype] = None):
    device_type = next(a for a in args if isinstance(a, torch.Tensor)).device.type

    def call():
        for p in params:
            p.grad = None
        with torch.autocast(device_type, dtype=autocast, enabled=autocast is not None):
            out = fn(*args)[0]
        _loss(out).backward()
    return call


def _large_conv(w: Workload, device, forward_only: bool, channels_last: bool):
    """One convolution with all the work in one call: the costliest layer's three gates over all B*T frames."""
    c_in, c_out, k = w.largest_layer()
    layout = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.randn(w.batch * w.steps, c_in, w.size, w.size, device=device).contiguous(memory_format=layout)
    weight = torch.randn(c_out, c_in, k, k, device=device) / math.sqrt(c_in * k * k)
    weight = weight.contiguous(memory_format=layout)
    bias = torch.zeros(c_out, device=device)
    if forward_only:
        return _forward(F.conv2d, x, weight, bias, 1, k // 2)
    x.requires_grad_()
    weight.requires_grad_()
    bias.requires_grad_()
    return _forward_backward([x, weight, bias], lambda *a: (F.conv2d(*a),), x, weight, bias, 1, k // 2)


def cpu_has_bf16() -> bool:
    """True where oneDNN has native bfloat16 kernels (AVX-512 BF16 / AMX); elsewhere bf16 is emulated, ~20x slow."""
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return bool(check()) if check is not None else torch.backends.cpu.get_cpu_capability().startswith("AVX512")


def bench_torch_cpu(w: Workload, rounds: int, bf16: bool) -> dict:
    """float32 reference vs fast path, forward and forward+backward, bf16 autocast, large convolution.

    The large convolution is timed in both memory layouts (NCHW, channels_last); the faster is the
    throughput ceiling the fast path is held against.
    """
    model, clip = w.build()
    params = list(model.parameters())
    candidates = {
        "reference fwd": _forward(reference_clip, model, clip),
        "fast fwd": _forward(model, clip),
        "reference fwd+bwd": _forward_backward(params, reference_clip, model, clip),
        "fast fwd+bwd": _forward_backward(params, model, clip),
    }
    if bf16:
        candidates["fast bf16 fwd+bwd"] = _forward_backward(params, model, clip, autocast=torch.bfloat16)
    for mode in ("fwd", "fwd+bwd"):
        for layout in ("nchw", "channels_last"):
            candidates[f"large conv {layout} {mode}"] = _large_conv(
                w, clip.device, forward_only=mode == "fwd", channels_last=layout == "channels_last")
    flops = {name: count_flops(fn) for name, fn in candidates.items()}
    times = interleaved(candidates, rounds)
    layouts = {}
    for mode in ("fwd", "fwd+bwd"):
        best = min(("nchw", "channels_last"), key=lambda layout: times[f"large conv {layout} {mode}"].median)
        times[f"large conv {mode}"] = times[f"large conv {best} {mode}"]
        flops[f"large conv {mode}"] = flops[f"large conv {best} {mode}"]
        layouts[mode] = best

    result = {"workload": asdict(w), "times": times, "flops": flops, "large_conv_layout": layouts}
    with torch.no_grad():
        ref_out, _ = reference_clip(model, clip)
        fast_out, _ = model(clip)
        result["fast_vs_reference_max_abs_diff"] = (fast_out - ref_out).abs().max().item()
        if bf16:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                bf16_out, _ = model(clip)
            result["bf16_vs_reference_max_abs_diff"] = (bf16_out.float() - ref_out).abs().max().item()
    return result


def _cuda_graphed(step: Callable[[], None]) -> Callable[[], None]:
    """Capture ``step`` (static tensors, no host sync inside) into a CUDA graph; return its replay."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            step()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    return graph.replay


def bench_torch_cuda(w: Workload, rounds: int) -> dict:
    """On a GPU: reference vs fast path vs fast path captured in a CUDA graph (time loop included)."""
    torch.backends.cudnn.benchmark = True
    model, clip = w.build(device="cuda")
    params = list(model.parameters())
    candidates = {
        "reference fwd": _forward(reference_clip, model, clip),
        "fast fwd": _forward(model, clip),
        "fast graphed fwd": _cuda_graphed(_forward(model, clip)),
        "reference fwd+bwd": _forward_backward(params, reference_clip, model, clip),
        "fast fwd+bwd": _forward_backward(params, model, clip),
        "fast graphed fwd+bwd": _cuda_graphed(_forward_backward(params, model, clip)),
    }
    times = interleaved(candidates, rounds, warmup=3, sync=torch.cuda.synchronize)
    return {"workload": asdict(w), "device": torch.cuda.get_device_name(), "times": times}


# --------------------------------------------------------------------------------------------
# MindSpore


def _mindspore_available() -> bool:
    try:
        import mindspore  # noqa: F401
        import convgru_zoo.mindspore  # noqa: F401
    except ImportError:
        return False
    return True


def _mindspore_seed_port(w: Workload):
    """The seed's MindSpore port: plain ``nn.Conv2d`` gate cells over cat[x, h], one step at a time."""
    from mindspore import nn, ops

    class SeedCell(nn.Cell):
        def __init__(self, input_size, hidden_size, kernel_size):
            super().__init__()
            conv = dict(kernel_size=kernel_size, pad_mode="pad", padding=kernel_size // 2, has_bias=True)
            self.reset_gate = nn.Conv2d(input_size + hidden_size, hidden_size, **conv)
            self.update_gate = nn.Conv2d(input_size + hidden_size, hidden_size, **conv)
            self.out_gate = nn.Conv2d(input_size + hidden_size, hidden_size, **conv)

        def construct(self, x, h):
            xh = ops.cat((x, h), 1)
            update = ops.sigmoid(self.update_gate(xh))
            reset = ops.sigmoid(self.reset_gate(xh))
            out = ops.tanh(self.out_gate(ops.cat((x, h * reset), 1)))
            return h * (1 - update) + out * update

    class SeedConvGRU(nn.Cell):
        def __init__(self):
            super().__init__()
            inputs = (w.input_size,) + w.hidden_sizes[:-1]
            self.layers = nn.CellList([SeedCell(c, h, k) for c, h, k in zip(inputs, w.hidden_sizes, w.kernel_sizes)])
            self.hidden_sizes = w.hidden_sizes

        def construct(self, x, hidden):
            states = []
            for i, cell in enumerate(self.layers):
                x = cell(x, hidden[i])
                states.append(x)
            return states

    return SeedConvGRU()


def bench_mindspore(w: Workload, rounds: int, seed_steps: int) -> dict:
    """W forward: the seed port (PYNATIVE, ``seed_steps`` steps, scaled to T) vs ours in PYNATIVE and
    GRAPH_MODE, and the PyTorch fast path, in one interleaved run."""
    import mindspore as ms
    import numpy as np
    from mindspore import Tensor

    from convgru_zoo.convert import torch_to_mindspore
    from convgru_zoo.mindspore import ConvGRU as MsConvGRU
    from convgru_zoo.mindspore.conv import conv_path
    from convgru_zoo.mindspore.weights import load_params

    ms.set_device("CPU")
    im2col, why = conv_path()
    torch_model, torch_clip = w.build()
    clip_np = torch_clip.numpy()
    clip = Tensor(clip_np)
    net = MsConvGRU(w.input_size, list(w.hidden_sizes), list(w.kernel_sizes), len(w.hidden_sizes))
    load_params(net, torch_to_mindspore(torch_model.state_dict()))
    seed = _mindspore_seed_port(w)
    seed_clip = Tensor(clip_np[:, :seed_steps])
    seed_zeros = [Tensor(np.zeros((w.batch, h, w.size, w.size), np.float32)) for h in w.hidden_sizes]

    def ours(mode):
        def call():
            ms.set_context(mode=mode)
            out, _ = net(clip)
            out.asnumpy()  # wait for the result
        return call

    def seed_forward(steps):
        def call():
            hidden = seed_zeros
            for t in range(steps):
                hidden = seed(seed_clip[:, t], hidden)
            hidden[-1].asnumpy()
        return call

    construct = ms.jit(net.construct)

    def jitted():
        ms.set_context(mode=ms.PYNATIVE_MODE)
        construct(clip)[0].asnumpy()

    mode = ms.get_context("mode")
    try:
        ms.set_context(mode=ms.PYNATIVE_MODE)
        times = interleaved({
            "torch fast fwd": _forward(torch_model, torch_clip),
            "ours pynative fwd": ours(ms.PYNATIVE_MODE),
            "ours graph fwd": ours(ms.GRAPH_MODE),  # its warmup call compiles
            "ours jit fwd": jitted,
        }, rounds)
        ms.set_context(mode=ms.GRAPH_MODE)
        graph_out = net(clip)[0].asnumpy()
        ms.set_context(mode=ms.PYNATIVE_MODE)
        seed_forward(1)()  # warm up on one step; then a single timed round: it is ~300x slower
        seed_time = interleaved({"seed port pynative fwd": seed_forward(seed_steps)}, 1, warmup=0)
    finally:
        ms.set_context(mode=mode)
    with torch.no_grad():
        torch_out = torch_model(torch_clip)[0].numpy()
    seed_timing = seed_time["seed port pynative fwd"]
    scale = w.steps / seed_steps
    times["seed port pynative fwd"] = Timing(seed_timing.median * scale, seed_timing.low * scale,
                                             seed_timing.high * scale, seed_timing.rounds)
    return {"workload": asdict(w), "times": times, "seed_steps_timed": seed_steps,
            "conv_path": {"path": "im2col" if im2col else "native", "why": why},
            "graph_vs_torch_max_abs_diff": float(np.abs(graph_out - torch_out).max())}


# --------------------------------------------------------------------------------------------
# Report


def _ratio(a: Timing, b: Timing) -> float:
    """How many times faster ``b`` is than ``a``."""
    return a.median / b.median


def torch_cpu_table(result: dict) -> List[str]:
    t, fl, w = result["times"], result["flops"], result["workload"]
    lines = []
    for mode in ("fwd", "fwd+bwd"):
        ref, fast, large = t[f"reference {mode}"], t[f"fast {mode}"], t[f"large conv {mode}"]
        # Achieved throughput counts the work the fast path does (no conv FLOP is wasted there).
        fast_gf = gflops(fl[f"fast {mode}"], fast.median)
        large_gf = gflops(fl[f"large conv {mode}"], large.median)
        ok = _ratio(ref, fast) >= 1.0 and fast_gf >= FAST_VS_LARGE_CONV * large_gf
        lines.append(f"{w['name']:3} {'f32 ' + mode:12} {ref.median * 1e3:9.1f} {fast.median * 1e3:9.1f} "
                     f"{_ratio(ref, fast):6.2f}x {fast_gf:7.1f} {large_gf:7.1f} {fast_gf / large_gf:5.0%}"
                     f"  {max(ref.spread, fast.spread):5.0%}  {'ok' if ok else 'MISS'}"
                     f"  large conv in {result['large_conv_layout'][mode]}")
    ref, bf16 = t["reference fwd+bwd"], t.get("fast bf16 fwd+bwd")
    if bf16 is None:
        lines.append(f"{w['name']:3} {'bf16 fwd+bwd':12} skipped: no native bfloat16 on this CPU "
                     f"({torch.backends.cpu.get_cpu_capability()}); --bf16 times it anyway (emulated, ~20x slow)")
        return lines
    diff = result["bf16_vs_reference_max_abs_diff"]
    ok = _ratio(ref, bf16) >= BF16_SPEEDUP and diff <= BF16_TOLERANCE
    lines.append(f"{w['name']:3} {'bf16 fwd+bwd':12} {ref.median * 1e3:9.1f} {bf16.median * 1e3:9.1f} "
                 f"{_ratio(ref, bf16):6.2f}x {gflops(result['flops']['fast fwd+bwd'], bf16.median):7.1f} "
                 f"{'':7} {'':5}  {max(ref.spread, bf16.spread):5.0%}  {'ok' if ok else 'MISS'}"
                 f"  max|bf16-f32| {diff:.1e}")
    return lines


def mindspore_table(result: dict) -> str:
    t, w = result["times"], result["workload"]
    seed, pynative, torch_fast = t["seed port pynative fwd"], t["ours pynative fwd"], t["torch fast fwd"]

    def compiled(name, timing):
        ok = timing.median <= MS_COMPILED_VS_TORCH * torch_fast.median  # the seed's speed depends on its conv kernel
        return (f"  ours {name:31} {timing.median * 1e3:10.1f} ms  {_ratio(seed, timing):7.1f}x seed   "
                f"{timing.median / torch_fast.median:5.2f}x torch time   {'ok' if ok else 'MISS'}")
    lines = [
        f"\nMindSpore, {w['name']} forward (target: compiled <= {MS_COMPILED_VS_TORCH:.1f}x the PyTorch fast path's "
        f"time; the seed port for scale, its speed is its convolution kernel's):",
        f"  convolution path: {result['conv_path']['path']} ({result['conv_path']['why']})",
        f"  seed port (nn.Conv2d, PYNATIVE)      {seed.median * 1e3:10.1f} ms  (timed on {result['seed_steps_timed']} "
        f"of {w['steps']} steps, 1 round, scaled per step)",
        f"  ours PYNATIVE                        {pynative.median * 1e3:10.1f} ms  {_ratio(seed, pynative):7.1f}x seed",
        compiled("GRAPH_MODE", t["ours graph fwd"]),
        compiled("mindspore.jit(construct)", t["ours jit fwd"]),
        f"  PyTorch fast path                    {torch_fast.median * 1e3:10.1f} ms  "
        f"(max|graph - torch| {result['graph_vs_torch_max_abs_diff']:.1e})",
    ]
    if t["ours graph fwd"].median > 2 * t["ours jit fwd"].median:
        lines.append("  note: GRAPH_MODE net(clip) is over 2x slower than mindspore.jit of the same construct: "
                     "it recompiles on every call")
    return "\n".join(lines)


def report(results: dict) -> None:
    machine = results["machine"]
    print(f"\nPyTorch {torch.__version__}, CPU {machine['cpu_capability']} (native bf16: "
          f"{'yes' if machine['native_bf16'] else 'no'}), {machine['torch_threads']} threads, load average "
          f"{machine['load_average']:.1f} on {machine['cpus']} CPUs at start; medians of interleaved rounds "
          f"(spread = (max-min)/median of the rounds).")
    print("targets: fast >= reference and >= 85% of the large conv's GFLOP/s; bf16 >= 1.8x the f32 "
          "reference (fwd+bwd), outputs within 2e-2")
    print(f"{'wl':3} {'path':12} {'ref ms':>9} {'ms':>9} {'vs ref':>7} {'GFLOP/s':>7} {'large':>7} "
          f"{'of lg':>5}  {'spread':>6} target")
    for result in results.get("torch_cpu", []):
        for line in torch_cpu_table(result):
            print(line)
    for result in results.get("mindspore", []):
        print(mindspore_table(result))
    for result in results.get("torch_cuda", []):
        t, name = result["times"], result["workload"]["name"]
        print(f"\n{result['device']}: {name}")
        for mode in ("fwd", "fwd+bwd"):
            ref = t[f"reference {mode}"]
            print(f"  {mode:8} reference {ref.median * 1e3:8.2f} ms   fast {_ratio(ref, t[f'fast {mode}']):6.2f}x   "
                  f"fast graphed {_ratio(ref, t[f'fast graphed {mode}']):6.2f}x")


def machine_info() -> dict:
    """What the figures depend on: CPU features, threads, and how busy the machine was."""
    return {
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "native_bf16": cpu_has_bf16(),
        "torch_threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg()[0],
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-w", "--workloads", nargs="+", choices=sorted(WORKLOADS), default=sorted(WORKLOADS))
    parser.add_argument("--rounds", type=int, default=7, help="interleaved timed rounds (median reported)")
    parser.add_argument("--quick", action="store_true", help="clips of 3 steps and 3 rounds: a smoke run")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch CPU part")
    parser.add_argument("--no-mindspore", action="store_true", help="skip the MindSpore part")
    parser.add_argument("--bf16", action="store_true",
                        help="time bfloat16 autocast even on a CPU without native bf16 (skipped there by default)")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's own)")
    parser.add_argument("--seed-steps", type=int, default=1,
                        help="steps of the (~300x slower) MindSpore seed port to time; scaled per step")
    parser.add_argument("--json", metavar="OUT", help="also write every timing to this JSON file")
    args = parser.parse_args(argv)
    for flag in ("rounds", "seed_steps", "threads"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            parser.error(f"--{flag.replace('_', '-')} must be >= 1, got {value}")
    if args.threads:
        torch.set_num_threads(args.threads)
    rounds = 3 if args.quick else args.rounds
    bf16 = args.bf16 or cpu_has_bf16()
    workloads = [WORKLOADS[name] for name in args.workloads]
    if args.quick:
        workloads = [replace(w, steps=3) for w in workloads]

    results: Dict[str, object] = {"machine": machine_info(), "torch_cpu": [], "torch_cuda": [], "mindspore": []}
    for w in workloads:
        print(f"{w.name}: {w.label}: in {w.input_size}, hidden {list(w.hidden_sizes)}, kernels "
              f"{list(w.kernel_sizes)}, {w.size}x{w.size}, batch {w.batch}, T={w.steps}", flush=True)
        if not args.no_torch:
            results["torch_cpu"].append(bench_torch_cpu(w, rounds, bf16))
        if torch.cuda.is_available():
            results["torch_cuda"].append(bench_torch_cuda(w, rounds))
        if not args.no_mindspore and w.name in MINDSPORE_WORKLOADS and _mindspore_available():
            results["mindspore"].append(bench_mindspore(w, rounds, min(args.seed_steps, w.steps)))
    report(results)
    if args.json:
        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
