"""The MindSpore loop's optimizer steps are the PyTorch loop's: the same weights and batch, three steps of
``--optimizer adamw`` or ``sgd`` under a warmup schedule (a GRU-RCN's backbone at its own learning rate), end
at the same parameters. MindSpore's ``nn.AdamWeightDecay`` (no bias correction: a first step 3.2x torch's)
and its exemption of BatchNorm's gamma and beta from weight decay both fail this."""
import numpy as np
import pytest

ms = pytest.importorskip("mindspore")
torch = pytest.importorskip("torch")
ms.set_device("CPU")

from convgru_zoo import convert  # noqa: E402
from convgru_zoo import train as core  # noqa: E402
from convgru_zoo.models import create_model  # noqa: E402

STEPS = 3
NOISE = 1e-6  # a gradient element this small (not zero) is float32 noise: the loss is ~1, summed over many terms
CASES = {  # id: (model, its keyword arguments, optimizer, backbone_lr_scale, MindSpore mode)
    "adamw-graph": ("convgru_tiny", {"num_classes": 3}, "adamw", 1.0, ms.GRAPH_MODE),  # the loop's mode
    "sgd": ("convgru_tiny", {"num_classes": 3}, "sgd", 1.0, ms.PYNATIVE_MODE),
    "adamw-rcn-backbone-lr": ("convgru_rcn_resnet18", {"width": 8, "num_classes": 3, "pretrained": False},
                              "adamw", 0.5, ms.PYNATIVE_MODE),
}


@pytest.fixture
def case(request):
    """One of ``CASES``, run in its MindSpore mode (the previous mode restored after)."""
    previous = ms.get_context("mode")
    ms.set_context(mode=CASES[request.param][-1])
    yield CASES[request.param]
    ms.set_context(mode=previous)


@pytest.mark.parametrize("case", CASES, indirect=True)
def test_optimizer_steps_match_the_pytorch_loop(case):
    from convgru_zoo.mindspore.train import Trainer
    from convgru_zoo.mindspore.weights import load_params
    from convgru_zoo.torch import train as torch_training

    arch, kwargs, optimizer, backbone_lr_scale, _ = case
    # weight decay large enough to show; the schedule's rate changes every step
    config = core.TrainConfig(task="classify", model=arch, optimizer=optimizer, lr=1e-4, weight_decay=1.0,
                              warmup_steps=2, steps=STEPS, backbone_lr_scale=backbone_lr_scale)
    torch.manual_seed(0)
    model = create_model(arch, **kwargs).train()
    net = create_model(arch, "mindspore", **kwargs)
    load_params(net, convert.torch_to_mindspore(model.state_dict(), image_networks=convert.model_image_networks(arch)))
    channels = 3 if arch in core.RCN_MODELS else 1
    clips = np.random.default_rng(1).random((2, 2, channels, 32, 32), dtype=np.float32)
    labels = np.array([0, 2])
    batch = (torch.from_numpy(clips), torch.from_numpy(labels))

    opt = torch_training.make_optimizer(config, model)
    trainer = Trainer("classify", net, optimizer, config.lr, config.weight_decay, config.momentum,
                      backbone_lr_scale=backbone_lr_scale if arch in core.RCN_MODELS else None)
    start = {name: p.detach().numpy().copy() for name, p in model.named_parameters()}
    # Elements whose gradient is float32 noise at some step: AdamW divides a gradient by its root mean square
    # (plus eps=1e-8), so there the two frameworks' noise gives updates as different as their signs.
    noise = {name: np.zeros(value.shape, bool) for name, value in start.items()}
    for step in range(STEPS):
        lr = core.learning_rate(step, config)
        for group in opt.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        loss, _ = torch_training.forward_loss("classify", model, batch, torch.device("cpu"),
                                              torch_training.autocast_for("none", torch.device("cpu")))
        opt.zero_grad()
        loss.backward()
        for name, param in model.named_parameters():
            grad = np.abs(param.grad.numpy())
            noise[name] |= (grad > 0) & (grad < NOISE)
        opt.step()
        trainer.step((clips, labels), lr)

    got = convert.mindspore_to_torch_arrays(net, image_networks=convert.model_image_networks(arch))
    for name, param in model.named_parameters():
        want = param.detach().numpy()
        assert not np.array_equal(want, start[name]), name  # every parameter trained and decayed (BatchNorm's too)
        # A step moves a parameter by up to ~lr (the old nn.AdamWeightDecay: 3.2x at first): with a gradient, the same
        # parameters to float32 rounding; without one (noise), within lr.
        signal = ~noise[name]
        np.testing.assert_allclose(got[name][signal], want[signal], rtol=0, atol=1e-2 * config.lr, err_msg=name)
        np.testing.assert_allclose(got[name], want, rtol=0, atol=config.lr, err_msg=name)
    # most elements are held to float32 rounding
    assert sum(value.sum() for value in noise.values()) < 0.5 * sum(value.size for value in noise.values())
