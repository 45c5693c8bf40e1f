"""Export a backbone or forecaster to ONNX, MINDIR or TorchScript: its whole-clip or its one-step graph.

    convgru-zoo export convgru_small --format onnx --out small.onnx                # clip -> logits
    convgru-zoo export convgru_small --format onnx --step --out small_step.onnx    # frame, states -> ...

Graphs (the step contract: :mod:`convgru_zoo.online`):

- clip: backbone ``clip (B,T,C,H,W) -> logits``; forecaster ``clip (B,input_frames,C,H,W) -> frames``.
- step: ``frame (B,C,H,W), state_0..state_{n-1} -> output, next_state_0..`` (backbone: logits so far;
  forecaster: the next frame). Start from zero states of the shapes ``model.state_shapes`` gives.

ONNX comes from ``torch.onnx.export(dynamo=True)``, with a dynamic batch and frame sides that are any
multiple of the model's total stride (backbone: ``stem_stride * 2**(stages-1)``; GRU-RCN: its image
backbone's coarsest stride; forecaster: ``patch_size``). A backbone's (and a GRU-RCN's) clip graph also
takes any clip length: it is the exported step graph inside an ONNX ``Scan``, because torch.export
unrolls the Python time loop at the example length, and torch's own ``scan`` operator fails in the
ONNX exporter (torch 2.14.1). A forecaster's clip
length is ``input_frames`` by definition. MINDIR (``mindspore.export``) and TorchScript graphs: a
MINDIR graph has the fixed shapes of the example input (``batch``, ``frames``, ``height``,
``width``); TorchScript backbones are scripted (any shape), forecasters traced (the forecaster's
layer loop is not scriptable; any batch and frame size, its own clip length).

Files are written atomically (:mod:`convgru_zoo._files`), and an existing file is replaced only
with ``overwrite=True``.
"""
import os
from pathlib import Path

from .. import specs
from .._files import atomic_write
from ..models import inference_model

FORMATS = {"onnx": ".onnx", "mindir": ".mindir", "torchscript": ".pt"}  # format -> file suffix
FRAMEWORK = {"onnx": "torch", "torchscript": "torch", "mindir": "mindspore"}
ONNX_OPSET = 20


def check_out(out, fmt, overwrite=False) -> Path:
    """The output path for ``fmt``: its suffix must be the format's, and it must not exist unless ``overwrite``."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {sorted(FORMATS)}, got {fmt!r}")
    path = Path(os.fspath(out))
    if path.suffix.lower() != FORMATS[fmt]:
        raise ValueError(f"--out must end in {FORMATS[fmt]} for --format {fmt}, got {str(path)!r}")
    if path.exists() and not overwrite:
        raise FileExistsError(f"--out {str(path)!r} already exists; pass --overwrite to replace it")
    return path


def example_shape(model, batch=None, frames=None, height=None, width=None):
    """(B, T, C, H, W) of the example input: the given sizes, else batch 2 and the model's defaults."""
    channels = model.in_chans if hasattr(model, "in_chans") else model.in_channels
    frames = frames or getattr(model, "input_frames", None) or model.num_frames
    return (batch or 2, frames, channels, height or specs.INPUT_SIZE[1], width or specs.INPUT_SIZE[2])


def size_multiple(model) -> int:
    """What frame sides must be a multiple of for the dynamic-shape graphs: the model's total stride."""
    if hasattr(model, "patch_size"):
        return model.patch_size
    if hasattr(model, "reductions"):  # a GRU-RCN: its image backbone's coarsest level
        return model.reductions[-1]
    return model.feature_info[len(model.stages) - 1]["reduction"] if hasattr(model, "stages") else 1


def export(name, fmt, out, *, pretrained=None, step=False, batch=None, frames=None, height=None, width=None,
           overwrite=False) -> Path:
    """Export model ``name`` (its ``pretrained`` tag's weights, or random ones) in format ``fmt`` to ``out``."""
    check_out(out, fmt, overwrite)
    model = inference_model(name, FRAMEWORK[fmt], pretrained)
    return export_model(model, fmt, out, step=step, shape=example_shape(model, batch, frames, height, width),
                        overwrite=overwrite)


def export_model(model, fmt, out, *, step=False, shape=None, overwrite=False) -> Path:
    """Export an eval-mode ``model`` (PyTorch for onnx/torchscript, MindSpore for mindir) to ``out``.

    ``shape`` (B, T, C, H, W) is the example input (default: :func:`example_shape`); returns the path.
    """
    path = check_out(out, fmt, overwrite)
    shape = shape or example_shape(model)
    write = {"onnx": _write_onnx, "torchscript": _write_torchscript, "mindir": _write_mindir}[fmt]
    atomic_write(path, lambda tmp: write(model, shape, step, tmp))
    return path


def _is_forecaster(model) -> bool:
    return hasattr(model, "input_frames")


def output_name(model, step) -> str:
    if _is_forecaster(model):
        return "next_frame" if step else "frames"
    return "logits"


def state_names(model, prefix="state"):
    side = size_multiple(model)
    return [f"{prefix}_{i}" for i in range(len(model.state_shapes(1, side, side)))]


def _torch_example(model, shape, step):
    import torch

    b, t, c, height, width = shape
    generator = torch.Generator().manual_seed(0)
    clip = torch.rand(shape, generator=generator)
    return (clip[:, 0], model.init_states(b, height, width)) if step else (clip,)


def _export_onnx_step(model, shape):
    """The step graph as an ONNX ModelProto (dynamo exporter), dynamic batch and frame size."""
    import torch

    from ..torch.graphs import StepGraph

    batch, multiple = torch.export.Dim("batch"), size_multiple(model)
    rows, cols = torch.export.Dim("rows", min=1), torch.export.Dim("cols", min=1)
    frame_dims = {0: batch, 2: multiple * rows, 3: multiple * cols}
    state_dims = []
    for _, _, h, w in model.state_shapes(*shape[:1], *shape[3:]):
        state_dims.append({0: batch, 2: (h * multiple // shape[3]) * rows, 3: (w * multiple // shape[4]) * cols})
    program = torch.onnx.export(
        StepGraph(model), _torch_example(model, shape, step=True), dynamo=True, opset_version=ONNX_OPSET,
        input_names=["frame"] + state_names(model),
        output_names=[output_name(model, True)] + state_names(model, "next_state"),
        dynamic_shapes={"frame": frame_dims, "states": state_dims}, verbose=False)
    return program.model_proto


def _export_onnx_forecast(model, shape):
    """A forecaster's clip graph as an ONNX ModelProto: dynamic batch and frame size, its own clip length."""
    import torch

    batch, multiple = torch.export.Dim("batch"), size_multiple(model)
    rows, cols = torch.export.Dim("rows", min=1), torch.export.Dim("cols", min=1)
    # optimize=False: onnxscript 0.7.2's constant folding fails on the SplitToSequence of the batched
    # input projection ('NoneType' object has no attribute 'ndim'); the unoptimised graph is correct.
    program = torch.onnx.export(
        model, _torch_example(model, shape, step=False), dynamo=True, opset_version=ONNX_OPSET,
        input_names=["clip"], output_names=[output_name(model, False)],
        dynamic_shapes={"clip": {0: batch, 3: multiple * rows, 4: multiple * cols}}, verbose=False, optimize=False)
    return program.model_proto


def scan_clip_graph(step_proto, reductions, channels, output):
    """A backbone's clip graph from its step graph: zero states, an ONNX Scan over the clip's frames
    (axis 1), the logits after the last frame.

    ``reductions[i]`` and ``channels[i]`` give state i's stride and depth; ``output`` names the logits.
    """
    import onnx
    from onnx import TensorProto, helper

    body = onnx.GraphProto()
    body.CopyFrom(step_proto.graph)
    frame_input, *state_inputs = body.input
    logits_output, *state_outputs = body.output
    del body.input[:]
    body.input.extend(state_inputs + [frame_input])
    del body.output[:]
    body.output.extend(state_outputs + [logits_output])
    body.name = "step"

    def const(name, values):
        return helper.make_node("Constant", [], [name], value=helper.make_tensor(name, TensorProto.INT64,
                                                                                 [len(values)], values))

    nodes = [helper.make_node("Shape", ["clip"], ["clip_shape"]),
             const("axis_b", [0]), const("axis_h", [3]), const("axis_w", [4])]
    for axis in "bhw":
        nodes.append(helper.make_node("Gather", ["clip_shape", f"axis_{axis}"], [f"size_{axis}"], axis=0))
    initial = []
    for i, (reduction, depth) in enumerate(zip(reductions, channels)):
        nodes += [const(f"reduction_{i}", [reduction]), const(f"depth_{i}", [depth]),
                  helper.make_node("Div", ["size_h", f"reduction_{i}"], [f"rows_{i}"]),
                  helper.make_node("Div", ["size_w", f"reduction_{i}"], [f"cols_{i}"]),
                  helper.make_node("Concat", ["size_b", f"depth_{i}", f"rows_{i}", f"cols_{i}"],
                                   [f"state_shape_{i}"], axis=0),
                  helper.make_node("ConstantOfShape", [f"state_shape_{i}"], [f"initial_state_{i}"],
                                   value=helper.make_tensor("zero", TensorProto.FLOAT, [1], [0.0]))]
        initial.append(f"initial_state_{i}")
    finals = [f"final_state_{i}" for i in range(len(initial))]
    nodes += [helper.make_node("Scan", initial + ["clip"], finals + ["logits_per_frame"], body=body,
                               num_scan_inputs=1, scan_input_axes=[1]),
              helper.make_node("Constant", [], ["last"], value=helper.make_tensor("last", TensorProto.INT64, [], [-1])),
              helper.make_node("Gather", ["logits_per_frame", "last"], [output], axis=0)]
    clip = helper.make_tensor_value_info("clip", TensorProto.FLOAT,
                                         ["batch", "frames", dim_of(frame_input, 1), "height", "width"])
    logits = helper.make_tensor_value_info(output, TensorProto.FLOAT, ["batch", dim_of(logits_output, 1)])
    graph = helper.make_graph(nodes, "convgru_clip", [clip], [logits])
    model = helper.make_model(graph, opset_imports=step_proto.opset_import, functions=step_proto.functions,
                              ir_version=step_proto.ir_version, producer_name="convgru-zoo")
    onnx.checker.check_model(model)
    return model


def dim_of(value_info, axis):
    """The static size (int) or symbolic name of ``value_info``'s dimension ``axis``."""
    dim = value_info.type.tensor_type.shape.dim[axis]
    return dim.dim_value if dim.HasField("dim_value") else dim.dim_param


def _write_onnx(model, shape, step, tmp):
    import onnx

    if step:
        proto = _export_onnx_step(model, shape)
    elif _is_forecaster(model):
        proto = _export_onnx_forecast(model, shape)
    else:
        proto = backbone_clip_graph(model, _export_onnx_step(model, shape))
    onnx.save(proto, tmp)


def backbone_clip_graph(model, step_proto):
    """A backbone's ONNX clip graph around its ONNX step graph (:func:`scan_clip_graph`)."""
    side = size_multiple(model)
    states = model.state_shapes(1, side, side)
    return scan_clip_graph(step_proto, [side // s[2] for s in states], [s[1] for s in states],
                           output_name(model, False))


def _write_torchscript(model, shape, step, tmp):
    import torch

    from ..torch.graphs import StepGraph

    graph = StepGraph(model) if step else model
    with torch.no_grad():
        if _is_forecaster(model):
            scripted = torch.jit.trace(graph, _torch_example(model, shape, step), strict=False)
        else:
            scripted = torch.jit.script(graph)
    torch.jit.save(scripted, tmp)


def _write_mindir(model, shape, step, tmp):
    import mindspore as ms
    import numpy as np

    from ..mindspore.graphs import StepCell

    clip = ms.Tensor(np.random.default_rng(0).random(shape, dtype=np.float32))
    if step:
        b, _, _, height, width = shape
        ms.export(StepCell(model), clip[:, 0], *model.init_states(b, height, width),
                  file_name=tmp[:-len(".mindir")], file_format="MINDIR")
    else:
        ms.export(model, clip, file_name=tmp[:-len(".mindir")], file_format="MINDIR")
