"""Exports (convgru_zoo.deploy.export): ONNX, MINDIR and TorchScript graphs compute what the PyTorch model does.

ONNX: onnxruntime runs the clip graph and the one-step graph on several batch sizes, clip lengths
and frame sizes, within 1e-4 of PyTorch, and the step graph run in a loop equals the clip. MINDIR:
``mindspore.load`` + ``nn.GraphCell`` of both graphs against PyTorch with the same weights.
TorchScript: the saved files load and agree. Files are never overwritten unless asked. Tiny models;
each graph is exported once per module.
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from convgru_zoo.deploy import export  # noqa: E402
from convgru_zoo import models  # noqa: E402

TOL = 1e-4
BACKBONE, FORECASTER = "convgru_tiny", "convgru_forecaster_tiny"
# (B, T, H, W) the ONNX graphs are run on; the example input the export traced is (2, T, 64, 64).
BACKBONE_SHAPES = [(1, 3, 32, 32), (3, 5, 16, 48), (2, 1, 64, 64)]
FORECASTER_SHAPES = [(1, 32, 32), (3, 16, 48)]


def frames(shape, seed=0):
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def torch_model(name):
    torch.manual_seed(0)
    return models.inference_model(name)


@pytest.fixture(scope="module")
def onnx_graphs(tmp_path_factory):
    """{(name, step): (torch model, onnxruntime session)}, each graph exported once."""
    import onnx

    folder = tmp_path_factory.mktemp("onnx")
    graphs = {}
    for name in (BACKBONE, FORECASTER):
        model = torch_model(name)
        for step in (True, False):
            if name == BACKBONE and not step:  # the clip graph export_model writes, without a second export
                proto = export.backbone_clip_graph(model, onnx.load(str(folder / f"{name}_True.onnx")))
                graphs[name, step] = model, ort.InferenceSession(proto.SerializeToString())
                continue
            path = export.export_model(model, "onnx", folder / f"{name}_{step}.onnx", step=step)
            graphs[name, step] = model, ort.InferenceSession(str(path))
    return graphs


def onnx_step_loop(session, model, clip, feedback=0):
    """Run an ONNX step graph over a clip's frames (then ``feedback`` predictions fed back); outputs per step."""
    b, _, _, height, width = clip.shape
    states = [np.zeros(s, np.float32) for s in model.state_shapes(b, height, width)]
    inputs = [i.name for i in session.get_inputs()]
    outputs = []
    for frame in list(clip.transpose(1, 0, 2, 3, 4)) + [None] * feedback:
        frame = outputs[-1] if frame is None else frame
        output, *states = session.run(None, dict(zip(inputs, [frame] + states)))
        outputs.append(output)
    return outputs


def test_onnx_backbone_graphs_match_pytorch_on_any_batch_length_and_size(onnx_graphs):
    model, clip_graph = onnx_graphs[BACKBONE, False]
    _, step_graph = onnx_graphs[BACKBONE, True]
    assert [i.name for i in step_graph.get_inputs()] == ["frame", "state_0", "state_1", "state_2"]
    for b, t, height, width in BACKBONE_SHAPES:
        clip = frames((b, t, model.in_chans, height, width))
        with torch.no_grad():
            want = model(torch.from_numpy(clip)).numpy()
        got = clip_graph.run(None, {"clip": clip})[0]
        np.testing.assert_allclose(got, want, atol=TOL, rtol=0)
        np.testing.assert_allclose(onnx_step_loop(step_graph, model, clip)[-1], want, atol=TOL, rtol=0)


def test_onnx_forecaster_graphs_match_pytorch(onnx_graphs):
    model, clip_graph = onnx_graphs[FORECASTER, False]
    _, step_graph = onnx_graphs[FORECASTER, True]
    for b, height, width in FORECASTER_SHAPES:
        clip = frames((b, model.input_frames, model.in_chans, height, width))
        with torch.no_grad():
            want = model(torch.from_numpy(clip)).numpy()
        np.testing.assert_allclose(clip_graph.run(None, {"clip": clip})[0], want, atol=TOL, rtol=0)
        steps = onnx_step_loop(step_graph, model, clip, feedback=model.output_frames - 1)
        np.testing.assert_allclose(np.stack(steps[model.input_frames - 1:], 1), want, atol=TOL, rtol=0)


def test_torchscript_files_load_and_match(tmp_path):
    backbone, forecaster = torch_model(BACKBONE), torch_model(FORECASTER)
    clip = torch.from_numpy(frames((1, 4, backbone.in_chans, 32, 32)))
    scripted = torch.jit.load(str(export.export_model(backbone, "torchscript", tmp_path / "b.pt")))
    step = torch.jit.load(str(export.export_model(forecaster, "torchscript", tmp_path / "f.pt", step=True)))
    frame = torch.from_numpy(frames((3, 1, 16, 32)))
    with torch.no_grad():
        torch.testing.assert_close(scripted(clip), backbone(clip), atol=TOL, rtol=0)
        got, got_states = step(frame, forecaster.init_states(3, 16, 32))
        want, want_states = forecaster.step(frame, forecaster.init_states(3, 16, 32))
    torch.testing.assert_close(got, want, atol=TOL, rtol=0)
    torch.testing.assert_close(got_states[-1], want_states[-1], atol=TOL, rtol=0)


def test_export_never_overwrites_unless_asked_and_checks_the_suffix(tmp_path):
    out = tmp_path / "model.onnx"
    out.write_bytes(b"user file")
    with pytest.raises(FileExistsError, match="--out .*model.onnx.* already exists; pass --overwrite"):
        export.export(BACKBONE, "onnx", out)
    assert out.read_bytes() == b"user file"
    with pytest.raises(ValueError, match=r"--out must end in \.mindir for --format mindir"):
        export.export(BACKBONE, "mindir", tmp_path / "model.onnx")
    with pytest.raises(ValueError, match="format must be one of"):
        export.export(BACKBONE, "tflite", tmp_path / "model.tflite")


def test_the_cli_offers_every_format_of_the_table(capsys):
    from convgru_zoo import cli
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["export", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "{" + ",".join(sorted(export.FORMATS)) + "}" in text  # the --format choices
    assert all(f"{f.suffix} ({name})" in text and f"{name}: {f.title} of the {f.framework} model" in text
               for name, f in export.FORMATS.items())


def test_a_failed_export_leaves_no_file(tmp_path, monkeypatch):
    import dataclasses

    def fail(*args):
        raise RuntimeError("exporter failed")
    monkeypatch.setitem(export.FORMATS, "torchscript", dataclasses.replace(export.FORMATS["torchscript"], write=fail))
    with pytest.raises(RuntimeError, match="exporter failed"):
        export.export_model(torch_model(FORECASTER), "torchscript", tmp_path / "f.pt")
    assert list(tmp_path.iterdir()) == []


# MINDIR: exported from the MindSpore twin holding the PyTorch model's weights.

@pytest.fixture(scope="module")
def mindir_graphs(tmp_path_factory):
    ms = pytest.importorskip("mindspore")
    pytest.importorskip("mindcv")
    ms.set_device("CPU")
    from convgru_zoo import convert
    from convgru_zoo.mindspore.weights import load_params

    folder = tmp_path_factory.mktemp("mindir")
    graphs = {}
    for name, step, shape in [(BACKBONE, False, (2, 3, None, 32, 32)), (BACKBONE, True, (2, 1, None, 32, 32)),
                              (FORECASTER, True, (2, 1, None, 32, 32))]:
        model = torch_model(name)
        net = models.inference_model(name, "mindspore")
        load_params(net, convert.torch_to_mindspore(model.state_dict()), "the PyTorch model's")
        shape = shape[:2] + (model.in_chans,) + shape[3:]
        path = export.export_model(net, "mindir", folder / f"{name}_{step}.mindir", step=step, shape=shape)
        graphs[name, step] = model, ms.nn.GraphCell(ms.load(str(path))), shape
    return ms, graphs


def test_mindir_graphs_match_pytorch(mindir_graphs):
    ms, graphs = mindir_graphs
    model, graph, shape = graphs[BACKBONE, False]
    clip = frames(shape)
    with torch.no_grad():
        want = model(torch.from_numpy(clip)).numpy()
    np.testing.assert_allclose(graph(ms.Tensor(clip)).asnumpy(), want, atol=TOL, rtol=0)
    for name in (BACKBONE, FORECASTER):
        model, graph, (b, _, c, height, width) = graphs[name, True]
        clip = frames((b, 3, c, height, width))
        states = model.init_states(b, height, width)
        ms_states = [ms.Tensor(s.numpy()) for s in states]
        for t in range(3):
            with torch.no_grad():
                want, states = model.step(torch.from_numpy(clip[:, t]), states)
            got, *ms_states = graph(ms.Tensor(clip[:, t]), *ms_states)
            np.testing.assert_allclose(got.asnumpy(), want.numpy(), atol=TOL, rtol=0)
        np.testing.assert_allclose(ms_states[-1].asnumpy(), states[-1].numpy(), atol=TOL, rtol=0)
