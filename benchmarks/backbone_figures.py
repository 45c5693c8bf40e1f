"""Parameters and forward GFLOPs of each ConvGRU-Net variant at its default clip: the README's table.

FLOPs are those of convolutions and linear layers as counted by ``torch.utils.flop_counter``
(2 per multiply-add); the elementwise gating is not counted. Shapes alone decide both figures, so the
models run on the meta device: nothing is computed.

    python benchmarks/backbone_figures.py --json benchmarks/results/backbone_figures.json

The JSON is the committed results file the README's table is generated from (``convgru-zoo cards``).
"""
import argparse

import torch
from torch.utils.flop_counter import FlopCounterMode

from convgru_zoo import specs
from convgru_zoo.torch.convgru_net import ConvGRUNet


def figures(batch_size: int = 1):
    """One row per variant: params (M) and GFLOPs for a (batch_size, num_frames, *INPUT_SIZE) clip."""
    rows = []
    for arch, spec in specs.BACKBONES.items():
        model = ConvGRUNet(**vars(spec), in_chans=specs.INPUT_SIZE[0], num_classes=specs.NUM_CLASSES,
                           device="meta").eval()
        clip = torch.zeros(batch_size, model.num_frames, *specs.INPUT_SIZE, device="meta")
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            model(clip)
        params = sum(p.numel() for p in model.parameters())
        rows.append((arch, spec.dims, spec.depths, params / 1e6, counter.get_total_flops() / 1e9, tuple(clip.shape)))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = parser.parse_args()
    rows = figures()
    print("| model | dims | depths | params (M) | GFLOPs | clip (B,T,C,H,W) |")
    print("|---|---|---|---|---|---|")
    for arch, dims, depths, params_m, gflops, shape in rows:
        print(f"| {arch} | {dims} | {depths} | {params_m:.3f} | {gflops:.3f} | {shape} |")
    if args.json:
        from convgru_zoo._files import atomic_write_json
        atomic_write_json(args.json, {"command": "python benchmarks/backbone_figures.py", "rows": [
            dict(model=a, dims=list(d), depths=list(p), params_m=round(m, 3), gflops=round(g, 3), clip=list(c))
            for a, d, p, m, g, c in rows]})


if __name__ == "__main__":
    main()
