"""Run a model online over a video file or a folder of frames, one frame at a time (``convgru-zoo stream``).

    convgru-zoo stream convgru_tiny clip.mp4 --pretrained mmnist_motion --out curve.png   # top classes per frame
    convgru-zoo stream convgru_forecaster frames/ --pretrained mmnist --out mse.png      # next-frame error

Frames are read one at a time with the ecosystem's readers (:func:`convgru_zoo.data.video_folder.iter_frames`:
PyAV, FFmpeg inside, for video files; Pillow for a folder of frames), in the model's channels (grey or
RGB), and made the model's input by its clip transform (:func:`convgru_zoo.data.create_clip_transform`:
the centred square resized to ``size``, as evaluation on a folder of clips does, normalised by the model's
pretrained config). The model runs through ``step`` (:mod:`convgru_zoo.online`), so memory stays constant however
long the video: a backbone reports its class probabilities after every frame (named by the tag's
``label_names``), a forecaster the squared error of its prediction of each next frame, summed over the
frame's pixels as the cards' per-frame MSE is.

Weights are a published tag's (``pretrained``) or, only when asked for (``random_weights``), untrained ones.
"""
from pathlib import Path

import numpy as np

from .. import specs
from ..models import inference_model
from ..pretrained import weights_name

def read_frames(source, channels):
    """Frames of ``source`` (a video file or a folder of frames) as uint8 (H, W, channels), one at a time."""
    from ..data.video_folder import FRAME_SUFFIXES, _is_clip, iter_frames

    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"source {str(source)!r} is neither a video file nor a folder of frames")
    if source.is_dir() and not _is_clip(source):
        raise ValueError(f"source folder {str(source)!r} holds no {'/'.join(FRAME_SUFFIXES)} frames")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {channels!r}")
    yield from iter_frames(source, grey=channels == 1)


def softmax(logits):
    shifted = np.exp(logits - logits.max(-1, keepdims=True))
    return shifted / shifted.sum(-1, keepdims=True)


def stepper(model, framework):
    """``step(frame (C,H,W) array) -> output array`` running ``model.step`` with the states carried."""
    states = None
    if framework == "torch":
        import torch

        def step(frame):
            nonlocal states
            x = torch.from_numpy(frame[None])
            states = model.init_states(1, *frame.shape[1:]) if states is None else states
            with torch.no_grad():
                output, states = model.step(x, states)
            return output[0].numpy()
    else:
        import mindspore as ms

        def step(frame):
            nonlocal states
            states = model.init_states(1, *frame.shape[1:]) if states is None else states
            output, states = model.step(ms.Tensor(frame[None]), states)
            return output.asnumpy()[0]
    return step


def stream(model, framework, source, size=specs.INPUT_SIZE[1]):
    """Per-frame results of ``model`` over ``source``: a list of (frame index, output, input frame).

    Backbones: the output is the class probabilities after that frame. Forecasters: the output is
    the prediction of the next frame.
    """
    from ..data.clips import create_clip_transform

    forecaster = hasattr(model, "input_frames")
    transform = create_clip_transform(model, image_size=size)
    step = stepper(model, framework)
    results = []
    for index, frame in enumerate(read_frames(source, transform.channels)):
        frame = transform(frame)[0, 0]  # a forecaster's is the frame in [0, 1], which it predicts
        output = step(frame)
        results.append((index, output if forecaster else softmax(output), frame))
    return results


MSE_NAME = "next-frame MSE (sum over the frame's pixels)"


def backbone_report(results, top=3, label_names=()):
    """(lines, series): a line per frame with its top classes, and each finally-top class's probability per
    frame; classes are named by ``label_names`` when given, else "class N"."""
    probabilities = np.stack([p for _, p, _ in results])
    names = list(label_names) or [f"class {c}" for c in range(probabilities.shape[1])]
    lines = []
    for index, p in enumerate(probabilities):
        best = np.argsort(p)[::-1][:top]
        lines.append(f"frame {index}: " + ", ".join(f"{names[c]} {p[c]:.3f}" for c in best))
    frames = np.arange(len(probabilities))
    final_top = np.argsort(probabilities[-1])[::-1][:top]
    return lines, {names[c]: (frames, probabilities[:, c]) for c in final_top}


def forecaster_report(results):
    """(lines, series): each prediction's squared error against the frame that came next, summed over its pixels."""
    errors = [float(np.sum((prediction - results[i + 1][2]) ** 2)) for i, (_, prediction, _) in
              enumerate(results[:-1])]
    lines = [f"frame {i}: {MSE_NAME} {e:.3f}" for i, e in enumerate(errors)]
    lines.append(f"frame {len(results) - 1}: (no next frame to compare)")
    return lines, {MSE_NAME: (np.arange(len(errors)), np.asarray(errors))}


def run(name, source, framework="torch", pretrained=None, size=specs.INPUT_SIZE[1], out=None, top=3,
        overwrite=False, random_weights=False):
    """``convgru-zoo stream``: print a line per frame and, with ``out``, plot the per-frame curve (PNG).

    ``pretrained`` (a tag or ``<model>.<tag>``) or ``random_weights=True``, not both, must be given; ``out``
    must end in .png and is replaced only with ``overwrite``; all are checked before any work.
    """
    if not pretrained and not random_weights:
        tags = [w.tag for w in specs.PRETRAINED.values() if w.arch == name]
        raise ValueError(f"--pretrained TAG must be given (tags of {name}: {tags}), or --random-weights to "
                         "stream untrained weights, got neither")
    if pretrained and random_weights:
        raise ValueError(f"--pretrained and --random-weights exclude each other, got --pretrained {pretrained} "
                         "and --random-weights")
    if out is not None and Path(out).suffix.lower() != ".png":
        raise ValueError(f"--out must name a .png file, got {str(out)!r}")
    if out is not None and Path(out).exists() and not overwrite:
        raise FileExistsError(f"--out {str(out)!r} already exists; pass --overwrite to replace it")
    model = inference_model(name, framework, pretrained or False)
    if random_weights:
        print(f"{name}: random weights (--random-weights): the answers below mean nothing")
    results = stream(model, framework, source, size)
    forecaster = hasattr(model, "input_frames")
    label_names = specs.PRETRAINED[weights_name(name, pretrained)].label_names if pretrained else ()
    lines, series = forecaster_report(results) if forecaster else backbone_report(results, top, label_names)
    for line in lines:
        print(line)
    if out is not None:
        from ..evaluation.plots import save_curves

        if forecaster and len(results) < 2:
            raise ValueError(f"source {str(source)!r} has one frame: a forecaster's error needs two to plot")
        save_curves(out, series, title=f"{name} on {Path(source).name}", xlabel="frame",
                    ylabel=MSE_NAME if forecaster else "probability")
        print(f"plot: {out}")
    return results
