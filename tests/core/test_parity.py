"""PyTorch <-> MindSpore: weight conversion both ways, and same weights -> same outputs and gradients.

Float32 throughout; outputs and gradients agree to max abs diff 1e-5 (scaled by the magnitude when
a gradient, a sum over many positions, exceeds 1), in PYNATIVE and compiled (``mindspore.jit``).
"""
import os

import numpy as np
import pytest

ms = pytest.importorskip("mindspore")
torch = pytest.importorskip("torch")
ms.set_device("CPU")

from mindspore import Tensor  # noqa: E402
from mindspore import nn as msnn  # noqa: E402

from convgru_zoo import convert  # noqa: E402
from convgru_zoo.mindspore import Conv2d, ConvGRU  # noqa: E402
from convgru_zoo.mindspore.weights import load_params  # noqa: E402
from convgru_zoo.torch import ConvGRU as TorchConvGRU  # noqa: E402

RNG = np.random.default_rng(1)
torch.manual_seed(1)


def randn(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def assert_float32_close(actual, expected, tol=1e-5):
    expected = np.asarray(expected)
    scale = max(1.0, float(np.abs(expected).max()))
    assert float(np.abs(np.asarray(actual) - expected).max()) <= tol * scale


def twins(*args, **kwargs):
    """A torch ConvGRU and a MindSpore ConvGRU holding its weights, converted by convgru_zoo.convert."""
    model = TorchConvGRU(*args, **kwargs)
    net = ConvGRU(*args, **kwargs)
    load_params(net, convert.torch_to_mindspore(model.state_dict()))
    return model, net


# input, hidden, kernels, layers, (B,T,H,W), options, lengths, initial state given
CASES = {
    "k1-1layer": (3, 4, 1, 1, (2, 3, 5, 5), {}, None, False),
    "k3k5-2layers": (4, [6, 5], [3, 5], 2, (2, 3, 6, 7), {}, None, True),
    "k5k3k1-3layers-time-first": (2, [3, 4, 5], [5, 3, 1], 3, (1, 2, 5, 4), {"batch_first": False}, None, False),
    "bidirectional-lengths": (3, [4, 3], 3, 2, (3, 4, 5, 5), {"bidirectional": True}, [4, 2, 3], True),
}


@pytest.fixture(scope="session", params=list(CASES))
def parity_case(request):
    """Inputs, the torch outputs and gradients, and a MindSpore twin with its loss+grad function."""
    c, hidden, kernels, layers, (b, t, height, width), options, lengths, with_state = CASES[request.param]
    model, net = twins(c, hidden, kernels, layers, **options)
    clip = randn(t, b, c, height, width) if options.get("batch_first") is False else randn(b, t, c, height, width)
    states0 = [randn(b, cell.hidden_size, height, width) for cell in model.cells] if with_state else None

    x_t = torch.from_numpy(clip).requires_grad_()
    out_t, states_t = model(x_t, None if states0 is None else [torch.from_numpy(s) for s in states0],
                            None if lengths is None else torch.tensor(lengths))
    out_w = randn(*out_t.shape)
    state_w = [randn(*s.shape) for s in states_t]
    loss_t = (out_t * torch.from_numpy(out_w)).sum() + sum((s * torch.from_numpy(w)).sum()
                                                          for s, w in zip(states_t, state_w))
    params_t = dict(model.named_parameters())
    grads_t = torch.autograd.grad(loss_t, [x_t, *params_t.values()])
    torch_result = {"out": out_t.detach().numpy(), "states": [s.detach().numpy() for s in states_t],
                    "grad x": grads_t[0].numpy(),
                    "grad params": {n: g.numpy() for n, g in zip(params_t, grads_t[1:])}}

    out_wm, state_wm = Tensor(out_w), [Tensor(w) for w in state_w]

    def loss(x, states, lens):
        out, final = net(x, states, lens)
        total = (out * out_wm).sum()
        for s, w in zip(final, state_wm):
            total = total + (s * w).sum()
        return total, out, final

    weights = net.trainable_params()
    grad_fn = ms.value_and_grad(loss, grad_position=0, weights=weights, has_aux=True)
    inputs = (Tensor(clip),
              None if states0 is None else [Tensor(s) for s in states0],
              None if lengths is None else Tensor(np.array(lengths, np.int32)))
    return {"grad_fn": grad_fn, "inputs": inputs, "names": [p.name for p in weights], "torch": torch_result}


@pytest.mark.parametrize("mode", ["pynative", "jit"])
def test_same_weights_give_same_outputs_and_gradients(parity_case, mode):
    grad_fn = parity_case["grad_fn"] if mode == "pynative" else ms.jit(parity_case["grad_fn"])
    (_, out, states), (grad_x, grad_params) = grad_fn(*parity_case["inputs"])
    expected = parity_case["torch"]
    assert np.abs(out.asnumpy() - expected["out"]).max() <= 1e-5
    assert len(states) == len(expected["states"])
    for s, e in zip(states, expected["states"]):
        assert np.abs(s.asnumpy() - e).max() <= 1e-5
    assert_float32_close(grad_x.asnumpy(), expected["grad x"])
    assert sorted(parity_case["names"]) == sorted(expected["grad params"])
    for name, g in zip(parity_case["names"], grad_params):
        assert_float32_close(g.asnumpy(), expected["grad params"][name])


def test_one_step_with_given_states_matches_torch():
    model, net = twins(3, [5, 4], [3, 5], 2)
    x = randn(2, 3, 6, 5)
    hidden = [randn(2, 5, 6, 5), randn(2, 4, 6, 5)]
    expected = model(torch.from_numpy(x), [torch.from_numpy(h) for h in hidden])
    for s, e in zip(net(Tensor(x), [Tensor(h) for h in hidden]), expected):
        assert np.abs(s.asnumpy() - e.detach().numpy()).max() <= 1e-5


# ----------------------------------------------------------------------------------------------
# Conversion


def test_convgru_round_trip_torch_mindspore_torch_is_exact():
    model = TorchConvGRU(3, [4, 5], [3, 1], 2, bidirectional=True)
    params = convert.torch_to_mindspore(model.state_dict())
    net = ConvGRU(3, [4, 5], [3, 1], 2, bidirectional=True)
    assert sorted(params) == sorted(p.name for p in net.get_parameters())
    load_params(net, params)
    back = convert.mindspore_to_torch(net)
    assert sorted(back) == sorted(model.state_dict())
    for name, value in model.state_dict().items():
        assert torch.equal(back[name], value)
    TorchConvGRU(3, [4, 5], [3, 1], 2, bidirectional=True).load_state_dict(back)  # torch tensors, as named


def _norm_models():
    """The same conv -> BatchNorm -> GroupNorm stack in both frameworks."""
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.GroupNorm(2, 4))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p))
        model[1].running_mean.copy_(torch.randn(4))
        model[1].running_var.copy_(torch.rand(4) + 0.5)
        model[1].num_batches_tracked.fill_(7)
    net = msnn.SequentialCell([Conv2d(3, 4, 3, padding=1), msnn.BatchNorm2d(4), msnn.GroupNorm(2, 4)])
    return model.eval(), net


def test_batchnorm_and_groupnorm_names_map_and_outputs_agree():
    model, net = _norm_models()
    params = convert.torch_to_mindspore(model.state_dict(), norm_prefixes={"2"})
    assert set(params) == {"0.weight", "0.bias", "1.gamma", "1.beta", "1.moving_mean", "1.moving_variance",
                           "2.gamma", "2.beta"}
    assert set(params) == {p.name for p in net.get_parameters()}
    load_params(net, params)
    net.set_train(False)
    x = randn(2, 3, 5, 5)
    assert np.abs(net(Tensor(x)).asnumpy() - model(torch.from_numpy(x)).detach().numpy()).max() <= 1e-5

    back = convert.mindspore_to_torch(net, norm_prefixes={"2"})
    state = model.state_dict()
    assert set(back) == set(state)
    assert back["1.num_batches_tracked"].dtype == torch.int64 and back["1.num_batches_tracked"] == 0
    for name in state:
        if name != "1.num_batches_tracked":
            assert torch.equal(back[name], state[name]), name
    model.load_state_dict(back)  # strict


def test_strict_loading_names_missing_unexpected_and_mismatched():
    net = ConvGRU(3, 4, 3, 1)
    params = convert.torch_to_mindspore(TorchConvGRU(3, 4, 3, 1).state_dict())
    del params["ConvGRUCell_00.out_gate.bias"]
    params["ConvGRUCell_01.out_gate.bias"] = np.zeros(4, np.float32)
    params["ConvGRUCell_00.reset_gate.weight"] = np.zeros((4, 7, 5, 5), np.float32)
    with pytest.raises(ValueError) as err:
        load_params(net, params)
    for name in ("ConvGRUCell_00.out_gate.bias", "ConvGRUCell_01.out_gate.bias", "ConvGRUCell_00.reset_gate.weight"):
        assert name in str(err.value)


@pytest.mark.parametrize("suffix", [".ckpt", ".safetensors"])
def test_checkpoint_saves_atomically_and_loads_back(tmp_path, suffix):
    net = ConvGRU(3, [4, 2], 3, 2)
    path = convert.save_mindspore_checkpoint(net, tmp_path / f"convgru{suffix}")
    assert os.listdir(tmp_path) == [path.name]
    loaded = ms.load_checkpoint(str(path), format=suffix[1:])
    assert set(loaded) == {p.name for p in net.get_parameters()}
    for p in net.get_parameters():
        assert np.array_equal(loaded[p.name].asnumpy(), p.asnumpy())


def test_failed_checkpoint_save_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "convgru.ckpt"
    convert.save_mindspore_checkpoint({"a": np.ones(3, np.float32)}, path)
    old = path.read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(ms, "save_checkpoint", broken)
    with pytest.raises(OSError, match="disk full"):
        convert.save_mindspore_checkpoint({"a": np.zeros(3, np.float32)}, path)
    assert os.listdir(tmp_path) == ["convgru.ckpt"] and path.read_bytes() == old
    with pytest.raises(ValueError, match="path must end in .ckpt or .safetensors"):
        convert.save_mindspore_checkpoint({"a": np.zeros(3, np.float32)}, tmp_path / "convgru.pt")
