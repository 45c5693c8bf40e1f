"""ConvGRU encoder-forecaster: shapes, closed-loop equations, errors, training, PyTorch <-> MindSpore."""
import pytest
import torch

from convgru_zoo.models import create_forecaster, list_forecasters
from convgru_zoo.specs import FORECASTERS, HEAD_KERNEL, HEAD_PRIOR
from convgru_zoo.torch.forecaster import ConvGRUForecaster
from convgru_zoo.torch.reference import reference_step

SMALL = dict(patch_size=4, hidden_sizes=(8, 8), input_frames=3, output_frames=3)  # 32x32 frames


def small_torch_model(seed=0, **overrides):
    torch.manual_seed(seed)
    return ConvGRUForecaster(**{**SMALL, **overrides})


def fixed_clip(batch=2, frames=6, size=32, seed=1):
    """A (B, frames, 1, size, size) clip in [0, 1]: a bright square moving one pixel per frame."""
    generator = torch.Generator().manual_seed(seed)
    clip = 0.1 * torch.rand(batch, frames, 1, size, size, generator=generator)
    for b in range(batch):
        for t in range(frames):
            top, left = 4 + 3 * b + t, 6 + 2 * t
            clip[b, t, 0, top:top + 8, left:left + 8] = 1.0
    return clip


def reference_forecast(model, clip, output_frames):
    """The forecaster written plainly from its description: fold, one step at a time, unfold."""
    p = model.patch_size

    def fold(frame):  # (B,C,H,W) -> (B, C*p*p, H/p, W/p), channel c*p*p + i*p + j
        b, c, h, w = frame.shape
        return frame.reshape(b, c, h // p, p, w // p, p).permute(0, 1, 3, 5, 2, 4).reshape(b, c * p * p, h // p, w // p)

    def unfold(folded):
        b, cpp, h, w = folded.shape
        c = cpp // (p * p)
        return folded.reshape(b, c, p, p, h, w).permute(0, 1, 4, 2, 5, 3).reshape(b, c, h * p, w * p)

    cells = model.convgru.cells
    b, _, _, h, w = clip.shape
    states = [clip.new_zeros(b, cell.hidden_size, h // p, w // p) for cell in cells]

    def advance(frame):
        inp = fold(frame)
        for i, cell in enumerate(cells):
            states[i] = reference_step(cell, inp, states[i])
            inp = states[i]

    for t in range(clip.shape[1]):
        advance(clip[:, t])
    frame = clip[:, -1]
    predictions = []
    for _ in range(output_frames):  # the head reads the last state and the current frame
        frame = unfold(torch.sigmoid(model.head(torch.cat([states[-1], fold(frame)], 1))))
        predictions.append(frame)
        advance(frame)
    return torch.stack(predictions, 1)


# ---------------------------------------------------------------- PyTorch

def test_variants_build_by_name_with_their_spec_and_default_shapes():
    assert list_forecasters() == sorted(FORECASTERS) and "convgru_forecaster" in FORECASTERS
    model = create_forecaster("convgru_forecaster", device="meta")
    spec = FORECASTERS["convgru_forecaster"]
    assert (model.in_chans, model.patch_size, model.input_frames, model.output_frames) == \
        (spec.in_chans, spec.patch_size, spec.input_frames, spec.output_frames)
    folded = spec.in_chans * spec.patch_size ** 2  # channels of a frame folded space-to-depth
    assert model.convgru.input_size == folded and model.convgru.hidden_sizes == list(spec.hidden_sizes)
    assert model.convgru.kernel_sizes == [spec.kernel_size] * len(spec.hidden_sizes)
    # the head reads the last layer's state and the folded frame
    assert tuple(model.head.weight.shape) == (folded, spec.hidden_sizes[-1] + folded, HEAD_KERNEL, HEAD_KERNEL)
    tiny = create_forecaster("convgru_forecaster_tiny", output_frames=4)
    out = tiny(torch.rand(1, FORECASTERS["convgru_forecaster_tiny"].input_frames, 1, 64, 64))
    assert out.shape == (1, 4, 1, 64, 64)


def test_device_and_dtype_reach_every_parameter():
    model = create_forecaster("convgru_forecaster_tiny", device="meta", dtype=torch.float64)
    assert {(p.device.type, p.dtype) for p in model.parameters()} == {("meta", torch.float64)}


def test_predictions_follow_the_closed_loop_equations_in_values_and_gradients():
    model = small_torch_model(in_chans=2, kernel_size=[3, 1])
    clip = torch.rand(2, 3, 2, 32, 24, requires_grad=True)
    out = model(clip)
    expected = reference_forecast(model, clip, 3)
    assert out.shape == (2, 3, 2, 32, 24)
    assert (out - expected).abs().max() <= 1e-5
    weights = torch.randn_like(out)
    params = [clip, *model.parameters()]
    grads = torch.autograd.grad((out * weights).sum(), params)
    ref_grads = torch.autograd.grad((expected * weights).sum(), params)
    for g, r in zip(grads, ref_grads):
        assert (g - r).abs().max() <= 1e-5 * max(1.0, r.abs().max().item())


def test_output_frames_override_extends_the_same_forecast():
    model = small_torch_model()
    clip = fixed_clip(frames=3)
    short, long = model(clip), model(clip, output_frames=7)
    assert short.shape[1] == 3 and long.shape[1] == 7
    torch.testing.assert_close(long[:, :3], short, atol=1e-6, rtol=0)
    assert model(clip, 1).shape == (2, 1, 1, 32, 32)


def test_untrained_head_predicts_the_prior_and_copying_the_frame_is_one_linear_map():
    model = small_torch_model()
    clip = fixed_clip(frames=3)
    with torch.no_grad():
        model.head.weight.zero_()
        torch.testing.assert_close(model(clip), torch.full((2, 3, 1, 32, 32), HEAD_PRIOR), atol=1e-6, rtol=0)
        # The centre tap of the head's frame channels: the first forecast is the last frame, sharpened.
        hidden = model.convgru.hidden_sizes[-1]
        for c in range(16):
            model.head.weight[c, hidden + c, 1, 1] = 40.0
        model.head.bias.fill_(-20.0)
        torch.testing.assert_close(model(clip, output_frames=1)[:, 0], (clip[:, -1] > 0.5).float(), atol=1e-6, rtol=0)


def test_bf16_autocast_forecast_feeds_back_in_the_states_dtype_and_stays_near_float32():
    model = small_torch_model()
    clip = fixed_clip(frames=3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(clip)
    assert out.dtype == torch.float32 and out.shape == (2, 3, 1, 32, 32)
    assert (out - model(clip)).abs().max() < 3e-2


def test_predictions_lie_in_unit_interval_even_for_extreme_weights():
    model = small_torch_model()
    with torch.no_grad():
        model.head.bias.fill_(30.0)
        model.head.bias[::2] = -30.0
    out = model(fixed_clip(frames=3))
    assert out.min() >= 0 and out.max() <= 1
    assert out.min() < 1e-6 and out.max() > 1 - 1e-6


def test_every_parameter_and_the_input_get_a_gradient():
    model = small_torch_model(hidden_sizes=(8, 8, 8))
    clip = fixed_clip(frames=3).requires_grad_()
    model(clip).square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert clip.grad.abs().sum() > 0


def test_a_few_adam_steps_lower_the_loss_on_a_fixed_batch():
    model = small_torch_model()
    clip = fixed_clip(frames=6)
    inputs, targets = clip[:, :3], clip[:, 3:]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(15):
        loss = torch.nn.functional.mse_loss(model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("shape,message", [
    ((2, 3, 1, 32), "5-D"),
    ((2, 4, 1, 32, 32), "input_frames=3"),
    ((2, 3, 3, 32, 32), "in_chans=1"),
    ((2, 3, 1, 30, 32), "divisible by patch_size=4"),
    ((0, 3, 1, 32, 32), "empty"),
])
def test_bad_clip_shapes_are_rejected_naming_what_was_expected(shape, message):
    with pytest.raises(ValueError, match=message):
        small_torch_model()(torch.rand(shape))


def test_bad_clip_type_dtype_and_output_frames_are_rejected():
    model = small_torch_model()
    with pytest.raises(TypeError, match="torch.Tensor"):
        model(fixed_clip(frames=3).numpy())
    with pytest.raises(TypeError, match="floating point"):
        model(torch.zeros(2, 3, 1, 32, 32, dtype=torch.uint8))
    for bad in (0, -1, 2.0):
        with pytest.raises(ValueError, match="output_frames"):
            model(fixed_clip(frames=3), output_frames=bad)


@pytest.mark.parametrize("kwargs,message", [
    (dict(hidden_sizes=()), "hidden_sizes must be a non-empty sequence"),
    (dict(hidden_sizes=64), "hidden_sizes must be a non-empty sequence"),
    (dict(hidden_sizes=(8, 0)), r"hidden_sizes\[1\]"),
    (dict(kernel_size=4), "kernel_size"),
    (dict(kernel_size=[3, 3, 3]), "kernel_size must have n_layers=2"),
    (dict(patch_size=0), "patch_size"),
    (dict(in_chans=0), "in_chans"),
    (dict(input_frames=0), "input_frames"),
    (dict(output_frames=0), "output_frames"),
])
def test_bad_configurations_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ConvGRUForecaster(**{**SMALL, **kwargs})


def test_create_forecaster_rejects_unknown_names_frameworks_and_arguments():
    with pytest.raises(ValueError, match="name must be one of"):
        create_forecaster("convgru_tiny")
    with pytest.raises(ValueError, match="framework must be one of"):
        create_forecaster(framework="jax")
    with pytest.raises(TypeError, match="num_classes"):
        create_forecaster("convgru_forecaster_tiny", num_classes=10)


def test_forecasters_stay_out_of_the_timm_classification_registry():
    timm = pytest.importorskip("timm")
    import convgru_zoo.torch.convgru_net  # noqa: F401  (registers the backbones)
    assert timm.list_models(module="convgru_net") == ["convgru_base", "convgru_small", "convgru_tiny"]  # registration ran
    for name in list_forecasters():  # ... and left the forecasters to create_forecaster
        assert not timm.is_model(name)
        with pytest.raises(RuntimeError, match="Unknown model"):
            timm.create_model(name)


# ---------------------------------------------------------------- MindSpore twin

TWIN = dict(in_chans=2, patch_size=4, hidden_sizes=(8, 8), kernel_size=[3, 1], input_frames=3, output_frames=3)


def twin_clip():
    """(2, 6, 2, 32, 24): the moving square and its mirror image as two channels."""
    clip = fixed_clip(frames=6)
    return torch.cat([clip, clip.flip(-1)], 2)[..., :24]


@pytest.fixture(scope="session")
def ms():
    mindspore = pytest.importorskip("mindspore")
    mindspore.set_device("CPU")
    return mindspore


def load_torch_weights(ms_model, torch_model):
    """Copy a PyTorch forecaster's weights into its MindSpore twin (names map 1:1), strictly.

    Written in place with ``ops.assign``: a function already compiled by ``mindspore.jit`` keeps
    reading the old values after ``set_data`` / ``load_param_into_net`` (measured, MindSpore 2.10).
    """
    from convgru_zoo.convert import torch_to_mindspore
    import mindspore
    arrays = torch_to_mindspore(torch_model.state_dict())
    params = {p.name: p for p in ms_model.get_parameters()}
    assert sorted(params) == sorted(arrays)
    for name, value in arrays.items():
        mindspore.ops.assign(params[name], mindspore.Tensor(value))


def forecast_loss_and_grads(ms_model):
    """(MSE loss, predictions) and the loss gradients of every parameter, for ``ms.value_and_grad``."""
    import mindspore
    from mindspore import ops

    def loss_fn(clip, target):
        predictions = ms_model(clip)
        return ops.mse_loss(predictions, target), predictions

    return mindspore.value_and_grad(loss_fn, None, ms_model.trainable_params(), has_aux=True)


def torch_loss_and_grads(torch_model, clip, target):
    predictions = torch_model(clip)
    loss = torch.nn.functional.mse_loss(predictions, target)
    grads = torch.autograd.grad(loss, list(torch_model.parameters()))
    return loss, predictions, dict(zip([n for n, _ in torch_model.named_parameters()], grads))


@pytest.fixture(scope="session")
def compiled_twin(ms):
    """A MindSpore twin and its loss-and-gradient function compiled once (``mindspore.jit``)."""
    from convgru_zoo.mindspore.forecaster import ConvGRUForecaster as MsForecaster
    model = MsForecaster(**TWIN)
    return model, ms.jit(forecast_loss_and_grads(model))


def assert_twin_matches_torch(ms, ms_model, loss_and_grads):
    torch_model = small_torch_model(seed=3, **TWIN)
    load_torch_weights(ms_model, torch_model)
    clip = twin_clip()
    inputs, target = clip[:, :3], clip[:, 3:]
    (loss, predictions), grads = loss_and_grads(ms.Tensor(inputs.numpy()), ms.Tensor(target.numpy()))
    expected_loss, expected, expected_grads = torch_loss_and_grads(torch_model, inputs, target)
    assert abs(loss.asnumpy() - expected_loss.item()) <= 1e-5
    assert abs(predictions.asnumpy() - expected.detach().numpy()).max() <= 1e-5
    names = [p.name for p in ms_model.trainable_params()]
    assert sorted(names) == sorted(expected_grads)
    for name, grad in zip(names, grads):
        want = expected_grads[name].numpy()
        assert abs(want).max() > 0, name
        assert abs(grad.asnumpy() - want).max() <= 1e-5 * max(1.0, abs(want).max()), name


def test_mindspore_twin_has_the_torch_parameter_names_and_shapes(ms):
    twin = create_forecaster("convgru_forecaster", framework="mindspore")
    torch_model = create_forecaster("convgru_forecaster", device="meta")
    assert {p.name: tuple(p.shape) for p in twin.get_parameters()} == \
        {n: tuple(p.shape) for n, p in torch_model.named_parameters()}


def test_mindspore_twin_matches_torch_in_pynative_mode(ms):
    from convgru_zoo.mindspore.forecaster import ConvGRUForecaster as MsForecaster
    model = MsForecaster(**TWIN)
    assert_twin_matches_torch(ms, model, forecast_loss_and_grads(model))


def test_mindspore_twin_matches_torch_compiled(ms, compiled_twin):
    assert_twin_matches_torch(ms, *compiled_twin)


def test_mindspore_output_frames_override_and_unit_interval(ms):
    torch_model = small_torch_model(seed=3, **TWIN)
    twin = create_forecaster("convgru_forecaster_tiny", framework="mindspore", **TWIN)
    load_torch_weights(twin, torch_model)
    inputs = twin_clip()[:, :3]
    out = twin(ms.Tensor(inputs.numpy()), output_frames=1).asnumpy()
    assert out.shape == (2, 1, 2, 32, 24) and out.min() >= 0 and out.max() <= 1
    expected = torch_model(inputs, output_frames=1).detach().numpy()
    assert abs(out - expected).max() <= 1e-5


def test_mindspore_twin_rejects_what_torch_rejects(ms):
    twin = create_forecaster("convgru_forecaster_tiny", framework="mindspore", **SMALL)
    for shape, message in [((2, 3, 1, 32), "5-D"), ((2, 4, 1, 32, 32), "input_frames=3"),
                           ((2, 3, 3, 32, 32), "in_chans=1"), ((2, 3, 1, 30, 32), "patch_size=4")]:
        with pytest.raises(ValueError, match=message):
            twin(ms.Tensor(torch.rand(shape).numpy()))
    with pytest.raises(ValueError, match="output_frames"):
        twin(ms.Tensor(torch.rand(2, 3, 1, 32, 32).numpy()), output_frames=0)
    with pytest.raises(TypeError, match="floating point"):
        twin(ms.Tensor(torch.zeros(2, 3, 1, 32, 32, dtype=torch.uint8).numpy()))
    with pytest.raises(TypeError, match="mindspore Tensor"):
        twin(torch.rand(2, 3, 1, 32, 32))
    with pytest.raises(ValueError, match="kernel_size"):
        create_forecaster("convgru_forecaster_tiny", framework="mindspore", kernel_size=2)


def test_mindspore_adam_steps_lower_the_loss_on_a_fixed_batch(ms, compiled_twin):
    model, loss_and_grads = compiled_twin
    load_torch_weights(model, small_torch_model(seed=3, **TWIN))
    optimizer = ms.nn.Adam(model.trainable_params(), learning_rate=1e-2)
    clip = twin_clip()
    inputs, target = ms.Tensor(clip[:, :3].numpy()), ms.Tensor(clip[:, 3:].numpy())
    losses = []
    for _ in range(15):
        (loss, _), grads = loss_and_grads(inputs, target)
        optimizer(grads)
        losses.append(float(loss.asnumpy()))
    assert losses[-1] < 0.5 * losses[0]


# ---------------------------------------------------------------- pretrained weights

@pytest.fixture
def published_tiny(monkeypatch, tmp_path):
    """Publish test weights of the tiny forecaster as its tag ``mmnist`` (PyTorch file only), shipped in a temp folder."""
    import dataclasses

    from safetensors.torch import save_file
    from convgru_zoo import pretrained, specs

    torch.manual_seed(5)
    model = create_forecaster("convgru_forecaster_tiny")
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path)
    path = pretrained.shipped_path("convgru_forecaster_tiny.mmnist", "torch")
    save_file(model.state_dict(), str(path))
    weights = dataclasses.replace(specs.PRETRAINED["convgru_forecaster_tiny.mmnist"],
                                  sha256=(("torch", pretrained.sha256_of(path)),))
    monkeypatch.setitem(specs.PRETRAINED, weights.name, weights)
    return model, path


def test_pretrained_loads_the_published_weights_by_true_or_tag(published_tiny):
    model, _ = published_tiny
    for pretrained in (True, "mmnist"):
        loaded = create_forecaster("convgru_forecaster_tiny", pretrained=pretrained, output_frames=2)
        for (name, want), got in zip(model.state_dict().items(), loaded.state_dict().values()):
            assert torch.equal(want, got), name


def test_pretrained_weights_are_refused_when_corrupted_unfitting_or_unknown(published_tiny, monkeypatch):
    from convgru_zoo import specs
    from convgru_zoo.pretrained import PretrainedWeightsError
    _, path = published_tiny
    with pytest.raises(PretrainedWeightsError, match="do not fit"):
        unfitting = tuple(2 * h for h in specs.FORECASTERS["convgru_forecaster_tiny"].hidden_sizes)
        create_forecaster("convgru_forecaster_tiny", pretrained=True, hidden_sizes=unfitting)
    with pytest.raises(PretrainedWeightsError, match="one of the tags"):
        create_forecaster("convgru_forecaster_tiny", pretrained="imagenet")
    path.write_bytes(path.read_bytes()[:-1] + b"\0")
    with pytest.raises(PretrainedWeightsError, match="corrupted"):
        create_forecaster("convgru_forecaster_tiny", pretrained=True)
    monkeypatch.setattr(specs, "PRETRAINED", {})
    with pytest.raises(PretrainedWeightsError, match="no pretrained weights yet"):
        create_forecaster("convgru_forecaster", pretrained=True)


def test_mindspore_pretrained_converts_the_published_torch_weights(ms, published_tiny):
    twin = create_forecaster("convgru_forecaster_tiny", framework="mindspore", pretrained=True,
                             input_frames=3, output_frames=2)
    inputs = fixed_clip(batch=1, frames=3)
    torch_model = create_forecaster("convgru_forecaster_tiny", pretrained=True, input_frames=3, output_frames=2)
    expected = torch_model(inputs).detach().numpy()
    assert abs(twin(ms.Tensor(inputs.numpy())).asnumpy() - expected).max() <= 1e-5
