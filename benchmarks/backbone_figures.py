"""Parameters and forward GFLOPs of each ConvGRU-Net variant at its default clip: the model docstring's table.

FLOPs are those of convolutions and linear layers as counted by ``torch.utils.flop_counter``
(2 per multiply-add); the elementwise gating is not counted. Shapes alone decide both figures, so the
models run on the meta device: nothing is computed.

    python benchmarks/backbone_figures.py
"""
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
    print("| model | dims | depths | params (M) | GFLOPs | clip (B,T,C,H,W) |")
    print("|---|---|---|---|---|---|")
    for arch, dims, depths, params_m, gflops, shape in figures():
        print(f"| {arch} | {dims} | {depths} | {params_m:.3f} | {gflops:.3f} | {shape} |")


if __name__ == "__main__":
    main()
