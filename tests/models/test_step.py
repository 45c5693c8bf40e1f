"""Online inference (convgru_zoo.online): frame by frame equals the whole clip, in both frameworks.

Backbones: after frame t, ``step`` gives the logits of ``model(clip[:, :t + 1])``. Forecasters: the
context frames, then each prediction fed back, give ``model(clip)``'s frames. Bad frames or states
raise before any work. The step graph scripts and compiles (PyTorch) and compiles in GRAPH_MODE
(MindSpore) with the same results. Tiny models, 32x32 frames, B=2, T=3.
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")

import convgru_zoo  # noqa: E402,F401  (registers the timm models)
from convgru_zoo import create_forecaster, specs  # noqa: E402
from convgru_zoo.torch.graphs import StepGraph  # noqa: E402
from helpers import stage_shapes  # noqa: E402

B, T, C, H, W = 2, 3, 1, 32, 32
TOL = 1e-5


def clip(seed=0):
    return np.random.default_rng(seed).random((B, T, C, H, W), dtype=np.float32)


def torch_backbone():
    torch.manual_seed(0)
    return timm.create_model("convgru_tiny", in_chans=C, num_classes=5).eval()


def torch_forecaster():
    torch.manual_seed(0)
    return create_forecaster("convgru_forecaster_tiny", in_chans=C, input_frames=T, output_frames=2).eval()


def run_backbone(step, states, frames):
    """Logits after every frame of a (B,T,C,H,W) clip, fed one frame at a time."""
    outputs = []
    for t in range(frames.shape[1]):
        logits, states = step(frames[:, t], states)
        outputs.append(logits)
    return outputs


def run_forecaster(step, states, frames, output_frames):
    """The forecast of ``output_frames`` after the context ``frames``, fed one frame at a time."""
    for t in range(frames.shape[1]):
        prediction, states = step(frames[:, t], states)
    predictions = [prediction]
    for _ in range(output_frames - 1):
        prediction, states = step(prediction, states)
        predictions.append(prediction)
    return predictions


@torch.no_grad()
def test_torch_backbone_step_equals_clip_prefixes():
    model, x = torch_backbone(), torch.from_numpy(clip())
    outputs = run_backbone(model.step, model.init_states(B, H, W), x)
    for t, logits in enumerate(outputs):
        torch.testing.assert_close(logits, model(x[:, :t + 1]), atol=TOL, rtol=0)


@torch.no_grad()
def test_torch_forecaster_step_equals_forecast():
    model, x = torch_forecaster(), torch.from_numpy(clip())
    predictions = run_forecaster(model.step, model.init_states(B, H, W), x, model.output_frames)
    torch.testing.assert_close(torch.stack(predictions, 1), model(x), atol=TOL, rtol=0)


def test_torch_init_states_are_zeros_of_the_state_shapes():
    model = torch_backbone()
    states = model.init_states(B, H, W)
    assert [tuple(s.shape) for s in states] == stage_shapes("convgru_tiny", B, H, W)
    assert all(s.dtype == torch.float32 and not s.any() for s in states)
    spec = specs.FORECASTERS["convgru_forecaster_tiny"]
    assert [tuple(s.shape) for s in torch_forecaster().init_states(B, H, W)] == \
        [(B, hidden, H // spec.patch_size, W // spec.patch_size) for hidden in spec.hidden_sizes]


@pytest.mark.parametrize("make", [torch_backbone, torch_forecaster])
def test_torch_step_rejects_bad_frames_and_states(make):
    model = make()
    states = model.init_states(B, H, W)
    frame = torch.rand(B, C, H, W)
    cases = [
        ((torch.rand(B, T, C, H, W), states), ValueError, "frame must be one frame"),
        ((torch.rand(B, C + 1, H, W), states), ValueError, "frame must have 1 channels"),
        ((frame.numpy(), states), TypeError, "frame must be a torch.Tensor"),
        ((frame, None), TypeError, "states must be the list of states"),
        ((frame, states[:-1]), ValueError, f"states must hold {len(states)} states"),
        ((frame, [states[0][:1]] + states[1:]), ValueError, "states[0] must have shape"),
        ((frame, model.init_states(B, H // 2, W // 2)), ValueError, "states[0] must have shape"),
        ((frame, [s.double() for s in states]), ValueError, "states[0] must have the frame's dtype"),
        ((frame, [s.numpy() for s in states]), TypeError, "states[0] must be a Tensor"),
    ]
    for args, error, message in cases:
        with pytest.raises(error, match=message.replace("[", r"\[").replace("]", r"\]")):
            model.step(*args)
    with pytest.raises(ValueError, match="batch must be a positive int"):
        model.init_states(0, H, W)


def test_torch_step_rejects_frame_sizes_the_model_cannot_take():
    with pytest.raises(ValueError, match="frame .* must be at least 16x16"):
        torch_backbone().step(torch.rand(B, C, 8, 8), [])
    with pytest.raises(ValueError, match="must be divisible by 4"):
        torch_forecaster().init_states(B, 30, 32)


@pytest.mark.parametrize("make", [torch_backbone, torch_forecaster])
def test_torch_step_graph_scripts_traces_and_compiles(make):
    """TorchScript (script for backbones, trace for forecasters) and torch.compile of the step graph."""
    model = make()
    frame, states = torch.from_numpy(clip()[:, 0]), model.init_states(B, H, W)
    graph = StepGraph(model)
    with torch.no_grad():
        want, want_states = model.step(frame, states)
        scripted = (torch.jit.script(graph) if make is torch_backbone
                    else torch.jit.trace(graph, (frame, states), strict=False))
        compiled = torch.compile(graph, backend="aot_eager", fullgraph=True)
        for run in (scripted, compiled):
            got, got_states = run(frame, states)
            torch.testing.assert_close(got, want, atol=TOL, rtol=0)
            for a, b in zip(got_states, want_states):
                torch.testing.assert_close(a, b, atol=TOL, rtol=0)


# MindSpore: op by op (step) and compiled (StepCell in GRAPH_MODE, one compile per model).

@pytest.fixture(scope="module")
def ms_models():
    ms = pytest.importorskip("mindspore")
    pytest.importorskip("mindcv")
    ms.set_device("CPU")
    import mindcv

    backbone = mindcv.create_model("convgru_tiny", num_classes=5, in_channels=C)
    forecaster = create_forecaster("convgru_forecaster_tiny", framework="mindspore", in_chans=C, input_frames=T,
                                   output_frames=2)
    backbone.set_train(False)
    forecaster.set_train(False)
    return ms, backbone, forecaster


def test_mindspore_step_equals_clip(ms_models):
    ms, backbone, forecaster = ms_models
    x = ms.Tensor(clip())
    outputs = run_backbone(backbone.step, backbone.init_states(B, H, W), x)
    for t, logits in enumerate(outputs):
        np.testing.assert_allclose(logits.asnumpy(), backbone(x[:, :t + 1]).asnumpy(), atol=TOL, rtol=0)
    predictions = run_forecaster(forecaster.step, forecaster.init_states(B, H, W), x, 2)
    want = forecaster(x).asnumpy()
    np.testing.assert_allclose(np.stack([p.asnumpy() for p in predictions], 1), want, atol=TOL, rtol=0)


def test_mindspore_step_rejects_bad_frames_and_states(ms_models):
    ms, backbone, forecaster = ms_models
    for model in (backbone, forecaster):
        states = model.init_states(B, H, W)
        with pytest.raises(ValueError, match="frame must be one frame"):
            model.step(ms.Tensor(clip()), states)
        with pytest.raises(TypeError, match="frame must be a mindspore"):
            model.step(clip()[:, 0], states)
        with pytest.raises(ValueError, match=r"states\[1\] must have shape"):
            model.step(ms.Tensor(clip()[:, 0]), states[:1] + [states[1][:1]] + states[2:])
        with pytest.raises(ValueError, match="states must hold"):
            model.step(ms.Tensor(clip()[:, 0]), states + states)


def test_mindspore_step_cell_compiles_and_carries_states(ms_models):
    """Three frames through the compiled StepCell equal the op-by-op steps (states fed back); wrapping leaves
    the model's parameter names as they were, so a checkpoint saved afterwards loads as before."""
    ms, backbone, _ = ms_models
    from convgru_zoo.mindspore.graphs import StepCell

    x = ms.Tensor(clip())
    want = run_backbone(backbone.step, backbone.init_states(B, H, W), x)
    names = [p.name for p in backbone.get_parameters()]
    cell = StepCell(backbone)
    assert [p.name for p in backbone.get_parameters()] == names and names[0].startswith("stem.")
    assert [p.name for p in cell.get_parameters()] == names
    cell.set_train(False)
    previous = ms.get_context("mode")
    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        def compiled_step(frame, states):
            output, *new_states = cell(frame, *states)
            return output, new_states
        got = run_backbone(compiled_step, backbone.init_states(B, H, W), x)
    finally:
        ms.set_context(mode=previous)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a.asnumpy(), b.asnumpy(), atol=TOL, rtol=0)
