"""Fuzzing the layers, backbones, forecasters and weights with a careful user's mistakes (issue 11).

Every case is one wrong input, in both frameworks where both have the door: it must end in an
error of the promised type whose message names the argument (``<argument> must be ...``) before
any work, or, where the input is legitimate after all, in correct behaviour. The classes follow
the issue: accepted though wrong, errors from deep inside, huge sizes, user-supplied weights.
"""
import http.server
import threading

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ms = pytest.importorskip("mindspore")
ms.set_device("CPU")
ms.set_context(mode=ms.PYNATIVE_MODE)  # every check here runs in Python before anything is compiled

import mindcv  # noqa: E402
import timm  # noqa: E402

import convgru_zoo  # noqa: E402, F401  (registers the backbones)
from convgru_zoo import create_forecaster, pretrained  # noqa: E402
from convgru_zoo.convert import torch_to_mindspore  # noqa: E402
from convgru_zoo.mindspore import convgru as ms_layers  # noqa: E402
from convgru_zoo.mindspore import convgru_net as ms_net  # noqa: E402
from convgru_zoo.mindspore.weights import load_params  # noqa: E402
from convgru_zoo.torch import convgru as torch_layers  # noqa: E402
from convgru_zoo.torch import convgru_net as torch_net  # noqa: E402

HUGE = 2 ** 40


class TorchTwin:
    name = "torch"
    dtypes = {"float64": torch.float64, "float16": torch.float16, "bfloat16": torch.bfloat16, "int32": torch.int32}
    tensor_name = "torch.Tensor"

    def __init__(self):
        torch.manual_seed(0)
        self.ConvGRU, self.ConvGRUCell = torch_layers.ConvGRU, torch_layers.ConvGRUCell
        self.cell = torch_layers.ConvGRUCell(2, 3, 3)
        self.gru = torch_layers.ConvGRU(2, [3, 4], 3, 2)
        self.backbone = timm.create_model("convgru_tiny", in_chans=1, num_classes=5).eval()
        self.forecaster = create_forecaster(hidden_sizes=(4,), input_frames=2, output_frames=2)

    def x(self, *shape, dtype="float32"):
        array = np.random.default_rng(0).random(shape, dtype=np.float32)
        return torch.from_numpy(array).to(self.dtypes.get(dtype, torch.float32))

    def lengths(self, values):
        return torch.tensor(values)

    def backbone_model(self, **kwargs):
        return timm.create_model("convgru_tiny", in_chans=1, **kwargs)

    def forecaster_model(self, **kwargs):
        return create_forecaster(**kwargs)


class MindSporeTwin(TorchTwin):
    name = "mindspore"
    dtypes = {"float64": ms.float64, "float16": ms.float16, "bfloat16": ms.bfloat16, "int32": ms.int32}
    tensor_name = "mindspore.Tensor"

    def __init__(self):
        ms.set_seed(0)
        self.ConvGRU, self.ConvGRUCell = ms_layers.ConvGRU, ms_layers.ConvGRUCell
        self.cell = ms_layers.ConvGRUCell(2, 3, 3)
        self.gru = ms_layers.ConvGRU(2, [3, 4], 3, 2)
        self.backbone = ms_net.ConvGRUNet(in_channels=1, num_classes=5)
        self.backbone.set_train(False)
        self.forecaster = create_forecaster(framework="mindspore", hidden_sizes=(4,), input_frames=2, output_frames=2)

    def x(self, *shape, dtype="float32"):
        array = np.random.default_rng(0).random(shape, dtype=np.float32)
        return ms.Tensor(array).astype(self.dtypes.get(dtype, ms.float32))

    def lengths(self, values):
        return ms.Tensor(np.asarray(values))

    def backbone_model(self, **kwargs):
        return mindcv.create_model("convgru_tiny", in_channels=1, **kwargs)

    def forecaster_model(self, **kwargs):
        return create_forecaster(framework="mindspore", **kwargs)


@pytest.fixture(scope="module", params=[TorchTwin, MindSporeTwin], ids=["torch", "mindspore"])
def twin(request):
    return request.param()


def clip(t, b=2, steps=3, c=2, size=8, **kw):
    return t.x(b, steps, c, size, size, **kw)


# (id, call on a twin, error type, message pattern, frameworks); the pattern names the argument.
BOTH = ("torch", "mindspore")
CASES = [
    # -- accepted though wrong: states that broadcast, lengths that do not fit, truthy non-booleans
    ("cell_state_batch_1", lambda t: t.cell(t.x(2, 2, 8, 8), t.x(1, 3, 8, 8)), ValueError,
     r"prev_state must have shape \(2, 3, 8, 8\), got \(1, 3, 8, 8\)", BOTH),
    ("cell_state_1x1", lambda t: t.cell(t.x(2, 2, 8, 8), t.x(2, 3, 1, 1)), ValueError,
     r"prev_state must have shape \(2, 3, 8, 8\)", BOTH),
    ("cell_state_dtype", lambda t: t.cell(t.x(1, 2, 8, 8), t.x(1, 3, 8, 8, dtype="float64")), ValueError,
     r"prev_state must be on .* with dtype", BOTH),
    ("cell_clip_as_step", lambda t: t.cell(clip(t)), ValueError, r"input_ must be one step \(B,C,H,W\)", BOTH),
    ("cell_step_numpy", lambda t: t.cell(np.zeros((1, 2, 8, 8), np.float32)), TypeError,
     r"input_ must be a (torch|mindspore)\.Tensor, got ndarray", BOTH),
    ("cell_run_lengths_too_long", lambda t: t.cell.run(clip(t), None, t.lengths([5, 2])), ValueError,
     r"lengths must lie in \[1, T=3\], got \[5\]", ("torch",)),
    ("cell_run_lengths_float", lambda t: t.cell.run(clip(t), None, t.lengths([1.5, 2.0])), ValueError,
     r"lengths must be a 1-D integer tensor", ("torch",)),
    ("cell_run_one_length_for_two", lambda t: t.cell.run(clip(t), None, t.lengths([2])), ValueError,
     r"lengths must hold one length per sample \(B=2\), got 1", ("torch",)),
    ("cell_run_state_batch_1", lambda t: t.cell.run(clip(t), t.x(1, 3, 8, 8)), ValueError,
     r"state must have shape \(2, 3, 8, 8\)", ("torch",)),
    ("cell_run_step", lambda t: t.cell.run(t.x(2, 2, 8, 8)), ValueError, r"x must be a clip \(B,T,C,H,W\)",
     ("torch",)),
    ("gru_hidden_batch_1", lambda t: t.gru(clip(t), [t.x(1, 3, 8, 8), None]), ValueError,
     r"hidden\[0\] must have shape \(2, 3, 8, 8\)", BOTH),
    ("gru_hidden_1x1", lambda t: t.gru(t.x(2, 2, 8, 8), [t.x(2, 3, 1, 1), None]), ValueError,
     r"hidden\[0\] must have shape", BOTH),
    ("gru_hidden_count", lambda t: t.gru(clip(t), [None]), ValueError, r"hidden must hold 2 states", BOTH),
    ("gru_lengths_too_long", lambda t: t.gru(clip(t), None, [4, 1]), ValueError, r"lengths must lie in \[1, T=3\]",
     BOTH),
    ("gru_lengths_zero", lambda t: t.gru(clip(t), None, [0, 1]), ValueError, r"lengths must lie in \[1, T=3\]",
     BOTH),
    ("gru_lengths_float", lambda t: t.gru(clip(t), None, [1.0, 2.0]), ValueError,
     r"lengths must be a 1-D integer tensor", BOTH),
    ("gru_lengths_bool", lambda t: t.gru(clip(t), None, [True, True]), ValueError,
     r"lengths must be a 1-D integer tensor", BOTH),
    ("gru_lengths_2d", lambda t: t.gru(clip(t), None, [[1, 2]]), ValueError, r"lengths must be a 1-D integer", BOTH),
    ("gru_lengths_one_for_two", lambda t: t.gru(clip(t), None, t.lengths([2])), ValueError,
     r"lengths must hold one length per sample \(B=2\)", BOTH),
    ("gru_lengths_on_a_step", lambda t: t.gru(t.x(2, 2, 8, 8), None, [1, 1]), ValueError,
     r"lengths applies to clips", BOTH),
    ("gru_lengths_meta", lambda t: t.gru(clip(t), None, torch.tensor([1, 2], device="meta")), ValueError,
     r"lengths must hold values .* got a tensor on the meta device", ("torch",)),
    ("backbone_lengths_meta", lambda t: t.backbone(t.x(2, 3, 1, 16, 16), torch.tensor([1, 2], device="meta")),
     ValueError, r"lengths must hold values", ("torch",)),
    ("gru_dtype_str", lambda t: t.ConvGRU(2, 3, 3, 1, dtype="float32"), TypeError,
     r"dtype must be a floating dtype, one of .*got 'float32'", BOTH),
    ("gru_dtype_int", lambda t: t.ConvGRU(2, 3, 3, 1, dtype=t.dtypes["int32"]), TypeError,
     r"dtype must be a floating dtype", BOTH),
    ("cell_dtype_str", lambda t: t.ConvGRUCell(2, 3, 3, dtype="float64"), TypeError,
     r"dtype must be a floating dtype, one of .*got 'float64'", BOTH),
    ("bidirectional_str", lambda t: t.ConvGRU(2, 3, 3, 1, bidirectional="False"), TypeError,
     r"bidirectional must be True or False, got 'False'", BOTH),
    ("batch_first_str", lambda t: t.ConvGRU(2, 3, 3, 1, batch_first="False"), TypeError,
     r"batch_first must be True or False, got 'False'", BOTH),
    ("batch_first_int", lambda t: t.ConvGRU(2, 3, 3, 1, batch_first=0), TypeError,
     r"batch_first must be True or False, got 0", BOTH),
    ("im2col_str", lambda t: t.ConvGRU(2, 3, 3, 1, im2col="no"), TypeError, r"im2col must be True or False, got 'no'",
     ("mindspore",)),
    ("features_only_str", lambda t: t.backbone_model(features_only="no"), TypeError,
     r"features_only must be True or False", ("mindspore",)),
    ("hidden_sizes_bytes", lambda t: t.ConvGRU(2, b"\x03", 3, 1), ValueError,
     r"hidden_sizes must be a positive int, got b'\\x03'", BOTH),
    ("hidden_sizes_empty_bytes", lambda t: t.ConvGRU(2, b"", 3, 1), ValueError, r"hidden_sizes must be a positive int",
     BOTH),
    ("kernel_sizes_str", lambda t: t.ConvGRU(2, 3, "3", 1), ValueError, r"kernel_sizes must be a positive odd int",
     BOTH),
    ("n_layers_bool", lambda t: t.ConvGRU(2, 3, 3, True), ValueError, r"n_layers must be a positive int, got True",
     BOTH),
    ("forecaster_hidden_bytes", lambda t: t.forecaster_model(hidden_sizes=b"\x04"), ValueError,
     r"hidden_sizes must be a non-empty sequence", BOTH),
    ("backbone_dims_bytes", lambda t: t.backbone_model(dims=b"\x04\x04\x04"), ValueError,
     r"dims and depths must give one entry per stage", BOTH),
    ("backbone_drop_rate_str", lambda t: t.backbone_model(drop_rate="0.1"), ValueError,
     r"drop_rate must lie in \[0, 1\), got '0.1'", BOTH),
    # -- errors from deep inside: wrong types and dtypes, frames too small, empty clips
    ("gru_x_numpy", lambda t: t.gru(np.zeros((1, 3, 2, 8, 8), np.float32)), TypeError,
     r"x must be a (torch|mindspore)\.Tensor, got ndarray", BOTH),
    ("gru_x_list", lambda t: t.gru([[0.0]]), TypeError, r"x must be a (torch|mindspore)\.Tensor, got list", BOTH),
    ("gru_x_none", lambda t: t.gru(None), TypeError, r"x must be a (torch|mindspore)\.Tensor, got NoneType", BOTH),
    ("gru_clip_t0", lambda t: t.gru(clip(t, steps=0)), ValueError, r"x must hold at least one time step", BOTH),
    ("gru_channels", lambda t: t.gru(clip(t, c=3)), ValueError, r"x must have 2 channels", BOTH),
    ("backbone_frames_15x17", lambda t: t.backbone(t.x(1, 2, 1, 15, 17)), ValueError,
     r"x must be at least 16x16 \(H, W\) for 3 stages after a stride-4 stem", BOTH),
    ("backbone_frames_8x8", lambda t: t.backbone(t.x(1, 2, 1, 8, 8)), ValueError, r"x must be at least 16x16", BOTH),
    ("backbone_frames_16x8", lambda t: t.backbone(t.x(1, 2, 1, 16, 8)), ValueError, r"x must be at least 16x16", BOTH),
    ("backbone_image_8x8", lambda t: t.backbone(t.x(1, 1, 8, 8)), ValueError, r"x must be at least 16x16", BOTH),
    ("backbone_height_0", lambda t: t.backbone(t.x(1, 2, 1, 0, 16)), ValueError, r"x must not have an empty dimension",
     BOTH),
    ("backbone_clip_t0", lambda t: t.backbone(t.x(2, 0, 1, 16, 16)), ValueError, r"x must hold at least one time step",
     BOTH),
    ("backbone_x_numpy", lambda t: t.backbone(np.zeros((1, 2, 1, 16, 16), np.float32)), TypeError,
     r"x must be a (torch|mindspore)\.Tensor", BOTH),
    ("backbone_lengths_too_long", lambda t: t.backbone(t.x(2, 3, 1, 16, 16), [4, 1]), ValueError,
     r"lengths must lie in \[1, T=3\]", BOTH),
    ("backbone_out_indices_3", lambda t: t.backbone_model(features_only=True, out_indices=(3,)), ValueError,
     r"out_indices must be stage indices in \[-3, 3\) for 3 stages, got \(3,\)", BOTH),
    ("backbone_out_indices_empty", lambda t: t.backbone_model(features_only=True, out_indices=()), ValueError,
     r"out_indices must be stage indices .* got \(\)", BOTH),
    ("backbone_out_indices_str", lambda t: t.backbone_model(features_only=True, out_indices=("a",)), ValueError,
     r"out_indices must be stage indices", BOTH),
    ("forecaster_clip_numpy", lambda t: t.forecaster(np.zeros((1, 2, 1, 16, 16), np.float32)), TypeError,
     r"clip must be a (torch|mindspore)", BOTH),
    ("forecaster_clip_int", lambda t: t.forecaster(t.x(1, 2, 1, 16, 16, dtype="int32")), TypeError,
     r"clip must be floating point", BOTH),
    # -- huge sizes: refused by what can be built, before allocating
    ("input_size_1e12", lambda t: t.ConvGRU(10 ** 12, 3, 3, 1), ValueError,
     r"input_size, hidden_sizes, kernel_sizes and n_layers must give parameters that fit in this machine's memory",
     BOTH),
    ("hidden_sizes_2_63", lambda t: t.ConvGRU(2, [2 ** 63], 3, 1), ValueError, r"hidden_sizes.* must give parameters",
     BOTH),
    ("n_layers_2_40", lambda t: t.ConvGRU(2, 3, 3, HUGE), ValueError, r"n_layers must give parameters", BOTH),
    ("n_layers_2_40_with_a_list", lambda t: t.ConvGRU(2, 3, [3, 3], HUGE), ValueError,
     r"kernel_sizes must have n_layers=1099511627776 entries, got 2", BOTH),
    ("cell_hidden_size_2_40", lambda t: t.ConvGRUCell(2, HUGE, 3), ValueError,
     r"input_size, hidden_size and kernel_size must give parameters", BOTH),
    ("backbone_dims_2_40", lambda t: t.backbone_model(dims=(HUGE, 8, 8)), ValueError,
     r"dims, depths and kernel_size must give parameters", BOTH),
    ("forecaster_hidden_2_40", lambda t: t.forecaster_model(hidden_sizes=(HUGE,)), ValueError,
     r"hidden_sizes.* must give parameters", BOTH),
]


@pytest.mark.parametrize("case, call, error, pattern, frameworks", CASES, ids=[c[0] for c in CASES])
def test_a_wrong_input_is_named_before_any_work(twin, case, call, error, pattern, frameworks):
    if twin.name not in frameworks:
        pytest.skip(f"{case}: no such door in {twin.name}")
    with pytest.raises(error, match=pattern):
        call(twin)


@pytest.mark.parametrize("dtype", ["float64", "float16", "bfloat16", "int32"])
@pytest.mark.parametrize("model", ["gru", "backbone", "forecaster"])
def test_an_input_dtype_other_than_the_models_is_named(twin, model, dtype):
    x = {"gru": lambda: clip(twin, dtype=dtype), "backbone": lambda: twin.x(1, 2, 1, 16, 16, dtype=dtype),
         "forecaster": lambda: twin.x(1, 2, 1, 16, 16, dtype=dtype)}[model]()
    name = "clip" if model == "forecaster" else "x"
    expected = (rf"{name} must be floating point" if dtype == "int32" else
                rf"(?i){name} must have the model's dtype (torch\.)?float32 .*, got (torch\.)?{dtype}")
    with pytest.raises(TypeError, match=expected):
        getattr(twin, model)(x)


@pytest.mark.parametrize("num_classes", [-5, 2.5, True, "3"])
def test_reset_classifier_refuses_what_the_constructor_refuses_and_keeps_the_head(num_classes):
    """-5 used to give an Identity head silently, 2.5 an error from inside torch."""
    model = timm.create_model("convgru_tiny", in_chans=1, num_classes=5)
    with pytest.raises(ValueError, match=rf"num_classes must be an int >= 0 .*, got {num_classes!r}"):
        model.reset_classifier(num_classes)
    assert model.num_classes == 5 and model.head.fc.out_features == 5


def test_torch_autocast_still_takes_float32_inputs():
    gru = torch_layers.ConvGRU(2, 3, 3, 1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = gru(torch.rand(1, 2, 2, 8, 8))
    assert out.shape == (1, 2, 3, 8, 8)


# -- legitimate after all: correct behaviour


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_torch_layers_build_with_orthogonal_weights(dtype):
    gru = torch_layers.ConvGRU(2, 3, 3, 1, dtype=dtype)
    weight = gru.ConvGRUCell_00.reset_gate.weight
    assert weight.dtype == dtype
    rows = weight.float().flatten(1)  # orthogonal rows (3 rows of 45): W W^T = I up to half precision
    torch.testing.assert_close(rows @ rows.T, torch.eye(3), atol=2e-2, rtol=0)
    out, _ = gru(torch.rand(1, 2, 2, 8, 8, dtype=dtype))
    assert out.dtype == dtype and torch.isfinite(out).all()


def test_backbone_lengths_as_a_list_equal_lengths_as_a_tensor(twin):
    x = twin.x(2, 3, 1, 16, 16)
    as_list, as_tensor = twin.backbone(x, [3, 1]), twin.backbone(x, twin.lengths([3, 1]))
    np.testing.assert_allclose(np.asarray(as_list.tolist()), np.asarray(as_tensor.tolist()), atol=1e-6)


def test_a_bfloat16_state_dict_converts_and_loads_into_mindspore():
    torch_gru = torch_layers.ConvGRU(2, 3, 3, 1).to(torch.bfloat16)
    params = torch_to_mindspore(torch_gru.state_dict())
    assert all(v.dtype == np.float32 for v in params.values())
    ms_gru = ms_layers.ConvGRU(2, 3, 3, 1)
    load_params(ms_gru, params)
    weight = ms_gru.ConvGRUCell_00.reset_gate.weight.asnumpy()
    np.testing.assert_array_equal(weight, torch_gru.ConvGRUCell_00.reset_gate.weight.detach().float().numpy())


# -- user-supplied weights: a missing or unreadable file is named


def _unreadable_files(folder):
    good = folder / "good.safetensors"
    from safetensors.numpy import save_file

    save_file({"a": np.zeros((64, 64), np.float32)}, str(good))
    data = good.read_bytes()
    files = {"random": np.random.default_rng(0).bytes(256), "empty": b"", "truncated": data[:len(data) // 2]}
    for name, content in files.items():
        (folder / f"{name}.safetensors").write_bytes(content)
    return {name: folder / f"{name}.safetensors" for name in files}


def test_a_missing_pretrained_cfg_file_is_named(tmp_path):
    missing = tmp_path / "nowhere.safetensors"
    with pytest.raises(FileNotFoundError, match=r"pretrained_cfg file must be an existing weights file, got .*nowhere"):
        timm.create_model("convgru_tiny", pretrained=True, pretrained_cfg_overlay=dict(file=str(missing)))


@pytest.mark.parametrize("kind", ["random", "empty", "truncated"])
def test_an_unreadable_weights_file_is_named(tmp_path, kind):
    path = _unreadable_files(tmp_path)[kind]
    with pytest.raises(pretrained.PretrainedWeightsError, match=rf"weights file {path} is not a readable safetensors"):
        timm.create_model("convgru_tiny", pretrained=True, pretrained_cfg_overlay=dict(file=str(path)))
    with pytest.raises(ValueError, match=rf"checkpoint '{path}' is not a readable MindSpore"):
        mindcv.create_model("convgru_tiny", checkpoint_file=str(path))


def test_a_missing_timm_checkpoint_path_is_named_before_the_model_is_built(monkeypatch, tmp_path):
    """timm reads checkpoint_path only after building, and a missing one raises an empty FileNotFoundError."""
    def built(*args, **kwargs):
        raise AssertionError("the model was built before checkpoint_path was checked")

    monkeypatch.setattr(torch_net, "build_model_with_cfg", built)
    missing = tmp_path / "nowhere.pth"
    with pytest.raises(FileNotFoundError,
                       match=rf"checkpoint_path must be an existing checkpoint file, got '{missing}'"):
        timm.create_model("convgru_tiny", checkpoint_path=str(missing))


def test_an_unreachable_hub_repo_in_the_overlay_is_named(monkeypatch, tmp_path):
    """Offline with an empty cache, huggingface_hub's own error names no repo: ours names it and the next step."""
    huggingface_hub = pytest.importorskip("huggingface_hub")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(pretrained.PretrainedWeightsError,
                       match=r"pretrained_cfg hf_hub_id 'convgru-zoo-tests/absent' could not be fetched .* Offline, "
                             r"download it first"):
        timm.create_model("convgru_tiny", pretrained=True,
                          pretrained_cfg_overlay=dict(hf_hub_id="convgru-zoo-tests/absent"))


class FailingHub(http.server.BaseHTTPRequestHandler):
    """A Hub whose every answer is a server error; counts the requests it gets."""
    requests = []

    def log_message(self, *args):
        pass

    def _fail(self):
        FailingHub.requests.append(f"{self.command} {self.path}")
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_HEAD = _fail


def test_an_overlay_hub_repo_that_answers_errors_fails_after_one_request(monkeypatch, tmp_path):
    """huggingface_hub retries a failing Hub for about half a minute; a model built on it fails at the first."""
    huggingface_hub = pytest.importorskip("huggingface_hub")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FailingHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    endpoint = f"http://127.0.0.1:{server.server_port}"
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(huggingface_hub.constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                        endpoint + "/{repo_id}/resolve/{revision}/{filename}")
    FailingHub.requests.clear()
    try:
        with pytest.raises(pretrained.PretrainedWeightsError,
                           match=r"(?s)hf_hub_id 'someone/weights' could not be fetched .*: HfHubHTTPError: .*503.* Offline, "
                                 r"download it first \(huggingface_hub.snapshot_download\('someone/weights'\)\)"):
            timm.create_model("convgru_tiny", pretrained=True, pretrained_cfg_overlay=dict(hf_hub_id="someone/weights"))
    finally:
        server.shutdown()
        server.server_close()
    asked_for_weights = [r for r in FailingHub.requests if "/someone/weights/" in r]  # not huggingface_hub's own calls
    assert asked_for_weights == ["HEAD /someone/weights/resolve/main/model.safetensors"]


@pytest.mark.parametrize("state_dict, error, pattern", [
    (None, TypeError, r"state_dict must be a mapping of parameter names to tensors or arrays, got NoneType"),
    ([torch.zeros(2)], TypeError, r"state_dict must be a mapping .* got list"),
    ({1: torch.zeros(2)}, TypeError, r"state_dict must have str parameter names as keys, got \[1\]"),
    ({"a.weight": torch.zeros(2, device="meta")}, ValueError,
     r"state_dict must hold values, got tensors on the meta device: \['a.weight'\]"),
    ({"a.weight": None}, TypeError,
     r"state_dict must map names to tensors or numeric arrays, got \{'a.weight': 'NoneType'\}"),
], ids=["none", "list", "int_key", "meta", "none_value"])
def test_a_wrong_state_dict_to_convert_is_named(state_dict, error, pattern):
    with pytest.raises(error, match=pattern):
        torch_to_mindspore(state_dict)


def test_verify_names_a_path_that_is_not_one():
    with pytest.raises(TypeError, match=r"path must be a weights file path \(str or os.PathLike\), got NoneType"):
        pretrained.verify(None, "a" * 64)


@pytest.mark.parametrize("sha256", [None, "", "abc", 123, "g" * 64])
def test_verify_names_a_bad_sha256(tmp_path, sha256):
    path = tmp_path / "w.safetensors"
    path.write_bytes(b"x")
    with pytest.raises(TypeError, match=r"sha256 must be a 64-digit hex string"):
        pretrained.verify(path, sha256)
