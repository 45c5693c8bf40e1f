"""PyTorch (timm) and MindSpore (MindCV) ConvGRU backbones are one architecture.

The same weights (torch state dict -> convgru_zoo.convert -> MindSpore) give the same logits, stage
features, BatchNorm running statistics and gradients, within float32 tolerance (max abs diff
<= 1e-5), for every variant, in PYNATIVE mode and compiled (GRAPH mode, once per variant).
The ``features_only`` door itself is tested in test_mindcv.py.
"""
from dataclasses import asdict

import numpy as np
import pytest

ms = pytest.importorskip("mindspore")
torch = pytest.importorskip("torch")
pytest.importorskip("mindcv")
pytest.importorskip("timm")
ms.set_device("CPU")

import mindcv  # noqa: E402
from mindspore import Tensor, nn  # noqa: E402

from convgru_zoo import convert, specs  # noqa: E402
from convgru_zoo.mindspore.weights import load_params  # noqa: E402
from convgru_zoo.torch.convgru_net import ConvGRUNet as TorchConvGRUNet  # noqa: E402

VARIANTS = sorted(specs.BACKBONES)
CLIP = (2, 3, 1, 32, 32)  # B, T, C, H, W
NUM_CLASSES = 7
TOL = 1e-5


def max_diff(a, b):
    return float(np.abs(np.asarray(a) - np.asarray(b)).max())


def torch_model(arch):
    """A torch backbone with random weights and non-trivial BatchNorm statistics and affines."""
    torch.manual_seed(VARIANTS.index(arch))
    model = TorchConvGRUNet(**asdict(specs.BACKBONES[arch]), in_chans=CLIP[2], num_classes=NUM_CLASSES)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
    return model


def mindspore_twin(model, arch):
    """The MindCV model of ``arch`` holding ``model``'s weights."""
    net = mindcv.create_model(arch, num_classes=NUM_CLASSES, in_channels=CLIP[2])
    load_params(net, convert.torch_to_mindspore(model.state_dict()), "the torch model's")
    return net


def clip(seed=0):
    return np.random.default_rng(seed).standard_normal(CLIP).astype(np.float32)


@torch.no_grad()
def torch_outputs(model, x):
    """Eval-mode (logits, every stage's final state) of a torch model."""
    model.eval()
    xt = torch.from_numpy(x)
    logits = model(xt).numpy()
    features = [f.numpy() for f in model.forward_intermediates(xt, intermediates_only=True)]
    return logits, features


@pytest.fixture(scope="module")
def pairs():
    return {arch: torch_model(arch) for arch in VARIANTS}


class LogitsAndFeatures(nn.Cell):
    """The model's logits and every stage's final state from one (compiled) call."""

    def __init__(self, net):
        super().__init__(auto_prefix=False)
        self.net = net

    def construct(self, x):
        states = self.net.forward_stages(x)
        return self.net.forward_head(states[-1]), states


def mindspore_outputs(net, x):
    net.set_train(False)
    logits, features = LogitsAndFeatures(net)(Tensor(x))
    return logits.asnumpy(), [f.asnumpy() for f in features]


def assert_outputs_match(ms_outputs, torch_outputs_):
    (ms_logits, ms_features), (logits, features) = ms_outputs, torch_outputs_
    assert max_diff(ms_logits, logits) <= TOL
    assert [f.shape for f in ms_features] == [f.shape for f in features]
    for i, (ms_f, torch_f) in enumerate(zip(ms_features, features)):
        assert max_diff(ms_f, torch_f) <= TOL, f"stage {i}"


@pytest.mark.parametrize("arch", VARIANTS)
def test_eval_logits_and_features_match_torch_in_pynative(arch, pairs):
    x = clip()
    assert_outputs_match(mindspore_outputs(mindspore_twin(pairs[arch], arch), x), torch_outputs(pairs[arch], x))


def test_image_is_a_one_frame_clip_in_both_frameworks(pairs):
    model = pairs["convgru_tiny"]
    image = clip()[:, 0]
    with torch.no_grad():
        model.eval()
        expected = model(torch.from_numpy(image)).numpy()
    net = mindspore_twin(model, "convgru_tiny")
    net.set_train(False)
    assert max_diff(net(Tensor(image)).asnumpy(), expected) <= TOL
    assert max_diff(net(Tensor(image[:, None])).asnumpy(), expected) <= TOL


@pytest.mark.parametrize("arch", VARIANTS)
def test_train_mode_batchnorm_forward_and_running_stats_match_torch(arch, pairs):
    model = torch_model(arch)  # a fresh copy: this test updates its running statistics
    net = mindspore_twin(model, arch)
    x = clip(1)
    model.train()
    with torch.no_grad():
        logits = model(torch.from_numpy(x)).numpy()
    net.set_train(True)
    assert max_diff(net(Tensor(x)).asnumpy(), logits) <= TOL
    after = convert.mindspore_to_torch_arrays(net)
    stats = {k: v for k, v in model.state_dict().items() if "running_" in k}
    assert stats
    for name, value in stats.items():
        assert max_diff(after[name], value.numpy()) <= TOL, name


def test_gradients_match_torch(pairs):
    """Gradients of a loss on the logits w.r.t. every parameter and the input, train mode."""
    model = torch_model("convgru_tiny")
    net = mindspore_twin(model, "convgru_tiny")
    x = clip(2)
    weights = np.random.default_rng(3).standard_normal((CLIP[0], NUM_CLASSES)).astype(np.float32)
    model.train()
    xt = torch.from_numpy(x).requires_grad_()
    (model(xt) * torch.from_numpy(weights)).sum().backward()
    grads_and_buffers = {**dict(model.named_buffers()), **{n: p.grad for n, p in model.named_parameters()}}
    torch_grads = convert.torch_to_mindspore(grads_and_buffers)  # buffers only mark the BatchNorm layers

    net.set_train(True)
    params = net.trainable_params()
    grad_fn = ms.value_and_grad(lambda a: (net(a) * Tensor(weights)).sum(), 0, params)
    _, (grad_x, grads) = grad_fn(Tensor(x))
    assert {p.name for p in params} == {n for n in torch_grads if "moving_" not in n}
    assert max_diff(grad_x.asnumpy(), xt.grad) <= TOL
    for param, grad in zip(params, grads):
        expected = torch_grads[param.name]
        assert max_diff(grad.asnumpy(), expected) <= TOL * max(1.0, float(np.abs(expected).max())), param.name


@pytest.fixture(scope="module")
def compiled_outputs(pairs):
    """Each variant's eval logits and stage features from the MindCV model compiled in GRAPH mode.

    One compile per variant (each takes seconds), then the previous mode is restored.
    """
    previous = ms.get_context("mode")
    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        return {arch: mindspore_outputs(mindspore_twin(pairs[arch], arch), clip()) for arch in VARIANTS}
    finally:
        ms.set_context(mode=previous)


@pytest.mark.parametrize("arch", VARIANTS)
def test_compiled_logits_and_features_match_torch(arch, pairs, compiled_outputs):
    assert_outputs_match(compiled_outputs[arch], torch_outputs(pairs[arch], clip()))
