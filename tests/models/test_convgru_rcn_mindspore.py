"""GRU-RCN in MindSpore / MindCV, and its agreement with PyTorch / timm.

timm's ResNet weights (made here, random) converted by convgru_zoo.convert give MindCV's ResNet the same
maps and logits (with timm's stem pooling); the whole model agrees with the PyTorch one within 1e-4 of the
outputs' scale (random deep networks reach magnitudes of 100, where float32 itself rounds at ~1e-5).
"""
import numpy as np
import pytest

ms = pytest.importorskip("mindspore")
torch = pytest.importorskip("torch")
mindcv = pytest.importorskip("mindcv")
timm = pytest.importorskip("timm")
ms.set_device("CPU")

from mindspore import Tensor  # noqa: E402

from convgru_zoo import convert  # noqa: E402
from convgru_zoo.mindspore.convgru_rcn import ImageFeatures, mindcv_image_network  # noqa: E402
from convgru_zoo.mindspore.weights import load_params  # noqa: E402
from helpers import assert_same_mindspore_params, mindspore_params  # noqa: E402

TOL = 1e-4
LEVELS = (2, 3, 4)  # strides 8, 16, 32


def randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def max_diff(a, b):
    return float(np.abs(np.asarray(a) - np.asarray(b)).max())


def assert_close(got, want, what=""):
    """``got`` within TOL of ``want``, relative to ``want``'s largest magnitude when that exceeds 1."""
    assert got.shape == want.shape, what
    assert max_diff(got, want) <= TOL * max(1.0, float(np.abs(want).max())), what


def with_batchnorm_statistics(model, seed=0):
    """``model`` with random BatchNorm statistics and affines (fresh ones are the identity), in eval mode."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                for tensor, low, high in ((module.running_mean, -0.5, 0.5), (module.running_var, 0.5, 1.5),
                                          (module.weight, 0.5, 1.5), (module.bias, -0.5, 0.5)):
                    tensor.copy_(torch.rand(tensor.shape, generator=generator) * (high - low) + low)
    return model.eval()


@pytest.fixture(scope="module", params=["resnet18", "resnet50"])
def resnets(request):
    """(arch, a random timm ResNet, MindCV's ResNet holding its weights converted, timm's stem pooling)."""
    arch = request.param
    torch.manual_seed(0)
    model = with_batchnorm_statistics(timm.create_model(arch))
    net = mindcv_image_network(arch)
    load_params(net, convert.torch_to_mindspore(model.state_dict(), image_networks={"": arch}), "timm's")
    net.set_train(False)
    return arch, model, net


@pytest.mark.parametrize("size", [64, 50])  # 50: odd sizes inside (25, 13, 7, 4), where paddings differ most
def test_timm_resnet_weights_give_mindcv_resnet_the_same_maps_and_logits(resnets, size):
    arch, model, net = resnets
    x = randn(2, 3, size, size, seed=size)
    with torch.no_grad():
        logits = model(torch.from_numpy(x)).numpy()
        features = timm.create_model(arch, features_only=True, out_indices=LEVELS)
        features.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("fc.")})
        maps = [m.numpy() for m in features.eval()(torch.from_numpy(x))]
    assert_close(net(Tensor(x)).asnumpy(), logits)
    extractor = ImageFeatures(net, LEVELS)
    assert [f["reduction"] for f in extractor.feature_info] == [8, 16, 32]
    got = [m.asnumpy() for m in extractor(Tensor(x))]
    assert len(got) == len(maps)
    for level, (m, want) in enumerate(zip(got, maps)):
        assert_close(m, want, f"level {LEVELS[level]}")


def test_mindcv_stem_pooling_shifts_the_maps(resnets):
    """Why ``stem_pool`` exists: with MindCV's own ("same") stem pooling the same weights give other maps."""
    arch, model, _ = resnets
    net = mindcv_image_network(arch, stem_pool="mindcv")
    load_params(net, convert.torch_to_mindspore(model.state_dict(), image_networks={"": arch}))
    x = randn(1, 3, 64, 64)
    with torch.no_grad():
        want = timm.create_model(arch, features_only=True, out_indices=LEVELS)
        want.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("fc.")})
        want = want.eval()(torch.from_numpy(x))[0].numpy()
    net.set_train(False)
    assert max_diff(ImageFeatures(net, LEVELS)(Tensor(x))[0].asnumpy(), want) > 1e-2


def test_resnet_names_convert_both_ways_exactly(resnets):
    arch, model, net = resnets
    state = model.state_dict()
    params = convert.torch_to_mindspore(state, image_networks={"": arch})
    assert set(params) == {p.name for p in net.get_parameters()}
    assert "layer2.0.down_sample.0.weight" in params and "classifier.weight" in params
    back = convert.mindspore_to_torch(net, image_networks={"": arch})
    assert set(back) == set(state)
    for name, value in state.items():
        if not name.endswith("num_batches_tracked"):
            assert torch.equal(back[name], value), name
    model.load_state_dict(back)  # strict


def test_image_network_renames_stay_below_their_prefix():
    """Inside a model only the image network's layers are renamed: our own ``head.fc`` and a ConvGRU-Net
    stage's ``downsample`` keep their names."""
    state = {"backbone.layer2.0.downsample.0.weight": np.zeros((2, 2, 1, 1), np.float32),
             "backbone.fc.bias": np.zeros(2, np.float32), "head.fc.weight": np.zeros((2, 2), np.float32),
             "stages.1.downsample.conv.weight": np.zeros((2, 2, 2, 2), np.float32)}
    params = convert.torch_to_mindspore(state, image_networks={"backbone": "resnet18"})
    assert sorted(params) == ["backbone.classifier.bias", "backbone.layer2.0.down_sample.0.weight", "head.fc.weight",
                              "stages.1.downsample.conv.weight"]
    assert sorted(convert.mindspore_to_torch_arrays(params, image_networks={"backbone": "resnet18"})) == sorted(state)


@pytest.mark.parametrize("image_networks, error, pattern", [
    (["resnet18"], TypeError, r"image_networks must be a mapping of name prefixes to MindCV architectures, got list"),
    ({"backbone": "resnet19"}, ValueError, r"image_networks must map str prefixes to one of \[.*'resnet18'.*\], "
                                           r"got \{'backbone': 'resnet19'\}"),
])
def test_bad_image_networks_are_named(image_networks, error, pattern):
    with pytest.raises(error, match=pattern):
        convert.torch_to_mindspore({"a.weight": np.zeros(1)}, image_networks=image_networks)
    with pytest.raises(error, match=pattern):
        convert.mindspore_to_torch_arrays({"a.weight": np.zeros(1)}, image_networks=image_networks)


# ----------------------------------------------------------------------------------------------
# the whole model: PyTorch weights -> convgru_zoo.convert -> MindSpore, same outputs

ARCH = "convgru_rcn_resnet18"
CLIP = (2, 2, 3, 64, 64)  # B, T, C, H, W
WIDTH, NUM_CLASSES = 16, 7


def torch_rcn(stacked):
    from convgru_zoo.torch.convgru_rcn import ConvGRURCN as TorchConvGRURCN

    torch.manual_seed(int(stacked))
    return with_batchnorm_statistics(TorchConvGRURCN("resnet18", (2, 3, 4), width=WIDTH, stacked=stacked,
                                                     num_classes=NUM_CLASSES), seed=int(stacked))


def mindspore_rcn(**kwargs):
    net = mindcv.create_model(ARCH, **{"num_classes": NUM_CLASSES, "width": WIDTH, **kwargs})
    net.set_train(False)
    return net


@pytest.fixture(scope="module", params=[False, True], ids=["independent", "stacked"])
def rcn_twins(request):
    """(torch GRU-RCN with random weights, the MindCV model holding them converted), one per head form."""
    model = torch_rcn(request.param)
    net = mindspore_rcn(stacked=request.param)
    load_params(net, convert.torch_to_mindspore(model.state_dict(), image_networks=convert.model_image_networks(ARCH)),
                "the torch model's")
    return model, net


def test_clip_logits_features_and_lengths_match_torch(rcn_twins):
    model, net = rcn_twins
    x, lengths = randn(*CLIP, seed=3), np.array([1, 2], np.int32)
    with torch.no_grad():
        logits = model(torch.from_numpy(x)).numpy()
        features = model.forward_features(torch.from_numpy(x)).numpy()
        levels = [s.numpy() for s in model.forward_intermediates(torch.from_numpy(x), intermediates_only=True)]
        padded = model(torch.from_numpy(x), torch.from_numpy(lengths)).numpy()
    assert_close(net(Tensor(x)).asnumpy(), logits, "logits")
    assert_close(net.forward_features(Tensor(x)).asnumpy(), features, "features")
    for i, (got, want) in enumerate(zip(net.forward_levels(Tensor(x)), levels)):
        assert_close(got.asnumpy(), want, f"level {i}")
    assert_close(net(Tensor(x), lengths).asnumpy(), padded, "logits with lengths")
    assert_close(net(Tensor(x[:, 0])).asnumpy(), net(Tensor(x[:, :1])).asnumpy(), "an image is a one-frame clip")


def test_step_matches_torch_and_the_clip(rcn_twins):
    model, net = rcn_twins
    x = randn(*CLIP, seed=4)
    states, torch_states = net.init_states(2, 64, 64), model.init_states(2, 64, 64)
    assert [tuple(s.shape) for s in states] == [tuple(s.shape) for s in torch_states]
    for t in range(CLIP[1]):
        logits, states = net.step(Tensor(x[:, t]), states)
        with torch.no_grad():
            torch_logits, torch_states = model.step(torch.from_numpy(x[:, t]), torch_states)
        assert_close(logits.asnumpy(), torch_logits.numpy(), f"step {t}")
    assert_close(logits.asnumpy(), net(Tensor(x)).asnumpy(), "last step vs clip")


def test_state_shapes_are_the_levels_at_odd_sizes(rcn_twins):
    _, net = rcn_twins
    x = Tensor(randn(1, 1, 3, 50, 70))
    assert [tuple(s.shape) for s in net.forward_levels(x)] == net.state_shapes(1, 50, 70)


def test_converted_weights_load_back_into_torch_exactly(rcn_twins):
    model, net = rcn_twins
    back = convert.mindspore_to_torch(net, image_networks=convert.model_image_networks(ARCH))
    state = model.state_dict()
    assert set(back) == set(state)
    for name, value in state.items():
        if not name.endswith("num_batches_tracked"):
            assert torch.equal(back[name], value), name


@pytest.fixture(scope="module")
def graph_mode_outputs():
    """Clip logits and two steps of the stacked model (the independent one's operations and more), compiled
    (GRAPH mode, one compile each) and op by op."""
    from convgru_zoo.mindspore.graphs import StepCell

    net = mindspore_rcn(stacked=True)
    x = Tensor(randn(*CLIP, seed=5))
    states = net.init_states(2, 64, 64)

    def run():
        step = StepCell(net)
        outputs = [net(x).asnumpy()]
        carried = ms.mutable(tuple(states))
        for t in range(CLIP[1]):
            logits, *carried = step(x[:, t], *carried)
            outputs.append(logits.asnumpy())
        return outputs

    eager = run()
    previous = ms.get_context("mode")
    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        compiled = run()
    finally:
        ms.set_context(mode=previous)
    return eager, compiled


def test_graph_mode_matches_pynative(graph_mode_outputs):
    eager, compiled = graph_mode_outputs
    for i, (got, want) in enumerate(zip(compiled, eager)):
        assert_close(got, want, "clip" if i == 0 else f"step {i - 1}")
    assert_close(eager[-1], eager[0], "the last step is the clip")


def test_a_training_step_gives_the_torch_gradients_and_statistics():
    """One training-mode step of the same weights on the same clip: the cross-entropy, every parameter's
    gradient (backbone included) and the BatchNorm statistics it leaves agree with PyTorch."""
    from convgru_zoo.torch.convgru_rcn import ConvGRURCN as TorchConvGRURCN

    torch.manual_seed(2)
    model = with_batchnorm_statistics(TorchConvGRURCN("resnet18", LEVELS, width=8, stacked=True, num_classes=5),
                                      seed=2).train()
    net = mindspore_rcn(width=8, stacked=True, num_classes=5)
    image_networks = convert.model_image_networks(ARCH)
    load_params(net, convert.torch_to_mindspore(model.state_dict(), image_networks=image_networks), "the torch model's")
    net.set_train(True)
    x, labels = randn(2, 2, 3, 32, 32, seed=8), np.array([1, 3], np.int32)
    loss = torch.nn.functional.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(labels).long())
    loss.backward()
    grads = {name: p.grad for name, p in model.named_parameters()}
    want = convert.torch_to_mindspore({name: grads.get(name, value) for name, value in model.state_dict().items()},
                                      image_networks=image_networks)
    weights = net.trainable_params()
    value, got = ms.value_and_grad(lambda clip, y: ms.ops.cross_entropy(net(clip), y), None, weights)(
        Tensor(x), Tensor(labels))
    assert float(value.asnumpy()) == pytest.approx(loss.item(), rel=1e-5)
    assert len(weights) == len(got) == len(dict(model.named_parameters()))
    for param, grad in zip(weights, got):
        assert_close(grad.asnumpy(), want[param.name], param.name)
    statistics = [p for p in net.get_parameters() if "moving_" in p.name]
    assert statistics
    for param in statistics:  # the step's running averages (torch momentum 0.1, MindSpore 0.9)
        assert_close(param.asnumpy(), want[param.name], param.name)


@pytest.mark.slow  # two graph exports
def test_mindir_step_and_clip_graphs_match_the_eager_model(tmp_path):
    """``export --format mindir`` of a GRU-RCN: the clip graph and the step graph (run frame by frame) loaded
    with ``mindspore.load`` + ``nn.GraphCell`` compute what the model does; the step graph's parameters carry
    the model's own names, so a checkpoint's weights replace them by name."""
    from convgru_zoo.deploy import export

    net = mindspore_rcn(width=8)
    other = mindspore_rcn(width=8)  # other random weights, for the step graph by name
    shape = (2, 2, 3, 32, 32)
    paths = [export.export_model(net, "mindir", tmp_path / f"rcn_{step}.mindir", step=step, shape=shape)
             for step in (False, True)]
    clip_graph, step_graph = (ms.nn.GraphCell(ms.load(str(path))) for path in paths)
    x = Tensor(randn(*shape, seed=9))
    want = net(x).asnumpy()
    assert_close(clip_graph(x).asnumpy(), want, "clip graph")
    swapped = ms.nn.GraphCell(ms.load(str(paths[1])), params_init={p.name: p for p in other.get_parameters()})
    for graph, model in ((step_graph, net), (swapped, other)):
        states = model.init_states(2, 32, 32)
        for t in range(shape[1]):
            logits, *states = graph(x[:, t], *states)
        assert_close(logits.asnumpy(), model(x).asnumpy(), "step graph")
    assert max_diff(other(x).asnumpy(), want) > 1e-3  # the swapped weights were used


# ----------------------------------------------------------------------------------------------
# the MindCV door: registration, checkpoints, pretrained weights, options, errors


def test_registered_where_mindcv_has_the_backbone():
    from convgru_zoo import specs

    expected = sorted(name for name, spec in specs.RCN_MODELS.items() if spec.mindcv_backbone)
    assert "convgru_rcn_resnet18" in expected and "convgru_rcn_convnext_tiny" not in expected
    assert mindcv.list_models("convgru_rcn*") == expected
    cfg = mindcv.models.registry.get_pretrained_cfg(ARCH)
    assert (cfg["first_conv"], cfg["classifier"]) == ("backbone.conv1", "head.fc")
    assert cfg["url"] == mindcv.models.registry.get_pretrained_cfg("resnet18")["url"]  # MindCV's ImageNet backbone
    net = mindcv.create_model("convgru_rcn_resnet50", width=8, stacked=True, num_classes=3)
    levels = specs.RCN_MODELS["convgru_rcn_resnet50"].out_indices
    assert (net.num_features, net.reductions, net.out_indices) == (8, (8, 16, 32), levels)
    assert [p.weight.shape[1] for p in net.proj] == [512, 1024, 2048]  # resnet50's levels
    assert mindcv.create_model(ARCH).num_classes == specs.NUM_CLASSES  # MindCV's default 1000 is not asked for


def test_mindcv_checkpoint_path_and_strict_checkpoint_file(rcn_twins, tmp_path):
    _, net = rcn_twins
    path = convert.save_mindspore_checkpoint(net, tmp_path / "rcn.ckpt")
    stacked = net.stacked
    assert_same_mindspore_params(mindspore_params(mindspore_rcn(stacked=stacked, checkpoint_path=str(path))), mindspore_params(net))
    assert_same_mindspore_params(mindspore_params(mindspore_rcn(stacked=stacked, checkpoint_file=str(path))), mindspore_params(net))
    with pytest.raises(ValueError, match=r"rcn\.ckpt.*misshapen.*grus\.1\.reset_gate\.weight"):
        mindspore_rcn(stacked=not stacked, checkpoint_file=str(path))


@pytest.fixture
def mindcv_cache(tmp_path, monkeypatch):
    """MindCV's download folder in ``tmp_path``: a file put where MindCV caches resnet18's ImageNet checkpoint
    is what ``pretrained=True`` loads, no network."""
    import mindcv.utils.download as download

    monkeypatch.setattr(download, "_DEFAULT_DOWNLOAD_ROOT", str(tmp_path))
    url = mindcv.models.registry.get_pretrained_cfg("resnet18")["url"]
    return tmp_path / "models" / url.rsplit("/", 1)[1]


def test_pretrained_loads_mindcv_imagenet_backbone_strictly(mindcv_cache):
    imagenet = mindspore_params(mindcv.create_model("resnet18"))  # MindCV's layout, random values standing in
    mindcv_cache.parent.mkdir()
    convert.save_mindspore_checkpoint(imagenet, mindcv_cache)
    net = mindcv.create_model(ARCH, pretrained=True)
    assert net.stem_pool == "mindcv"  # the network MindCV's weights were trained in
    loaded = {name.removeprefix("backbone."): value for name, value in mindspore_params(net).items()
              if name.startswith("backbone.")}
    assert_same_mindspore_params(loaded, {name: value for name, value in imagenet.items() if not name.startswith("classifier.")})
    grey = mindcv.create_model(ARCH, pretrained=True, in_channels=1)
    np.testing.assert_allclose(grey.backbone.conv1.weight.asnumpy(), imagenet["conv1.weight"].sum(1, keepdims=True),
                               rtol=1e-6)
    convert.save_mindspore_checkpoint({k: v for k, v in imagenet.items() if not k.startswith("layer4.")},
                                      mindcv_cache)
    from convgru_zoo.pretrained import PretrainedWeightsError
    with pytest.raises(PretrainedWeightsError, match=r"ImageNet checkpoint .*missing \['layer4\.0\.bn1\.beta'"):
        mindcv.create_model(ARCH, pretrained=True)


def test_pretrained_tag_loads_our_torch_weights_converted(rcn_twins, tmp_path, monkeypatch):
    """A tag published as PyTorch safetensors only: MindSpore converts it (ResNet names included). The tag's
    classifier has 7 outputs where a tag's has specs.NUM_CLASSES: the model keeps its own new one."""
    from safetensors.torch import save_file

    from convgru_zoo import pretrained, specs

    model, net = rcn_twins
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path)
    weights = specs.PretrainedWeights(ARCH, "test", "weights made by the test")
    path = pretrained.shipped_path(weights.name, "torch")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    monkeypatch.setitem(specs.PRETRAINED, weights.name, specs.PretrainedWeights(
        ARCH, "test", weights.description, sha256=(("torch", pretrained.sha256_of(path)),)))
    from convgru_zoo.models import create_model
    loaded = create_model(ARCH, "mindspore", pretrained="test", num_classes=NUM_CLASSES, width=WIDTH,
                          stacked=net.stacked)
    assert loaded.stem_pool == "timm"
    new_head = {name: value for name, value in mindspore_params(loaded).items() if name.startswith("head.fc.")}
    assert_same_mindspore_params({name: value for name, value in mindspore_params(loaded).items() if name not in new_head},
                       {name: value for name, value in mindspore_params(net).items() if name not in new_head})
    assert new_head["head.fc.weight"].shape == (NUM_CLASSES, net.num_features)


def test_freeze_backbone_keeps_imagenet_statistics_and_weights():
    net = mindcv.create_model(ARCH, width=8, freeze_backbone=True)
    trainable = [p.name for p in net.trainable_params()]
    assert trainable and not any(name.startswith("backbone.") for name in trainable)
    x = Tensor(randn(2, 3, 64, 64))
    net.set_train(False)
    eval_maps = [m.asnumpy() for m in net.image_features(x)]
    before = mindspore_params(net)
    ms.nn.WithLossCell(net, ms.nn.MSELoss()).set_train(True)  # a training wrapper flags every cell as training
    assert net.backbone.bn1.training and net.head.training
    for got, want in zip(net.image_features(x), eval_maps):  # the running statistics, not the batch's
        np.testing.assert_array_equal(got.asnumpy(), want)
    net(Tensor(randn(2, 2, 3, 64, 64)))
    assert_same_mindspore_params(mindspore_params(net), before)  # the statistics stay ImageNet's


def test_features_only_returns_the_levels_final_states(rcn_twins):
    _, net = rcn_twins
    extractor = mindcv.create_model(ARCH, num_classes=NUM_CLASSES, width=WIDTH, stacked=net.stacked,
                                    features_only=True, out_indices=[0, 2])
    load_params(extractor.net, mindspore_params(net))
    extractor.set_train(False)
    x = Tensor(randn(*CLIP, seed=6))
    want = [s.asnumpy() for s in net.forward_levels(x)]
    assert extractor.out_channels == [WIDTH, WIDTH]
    got = extractor(x)
    assert [g.shape for g in got] == [want[0].shape, want[2].shape] == [(2, WIDTH, 8, 8), (2, WIDTH, 2, 2)]
    for g, w in zip(got, [want[0], want[2]]):
        assert_close(g.asnumpy(), w)


@pytest.mark.parametrize("kwargs, error, pattern", [
    (dict(backbone="vgg16"), ValueError, r"backbone must be one of MindCV's networks with a timm twin \[.*'resnet18'"),
    (dict(out_indices=(2, 5)), ValueError, r"out_indices must be increasing feature levels in \[0, 5\) of backbone "
                                           r"'resnet18' \(at strides \[2, 4, 8, 16, 32\]\), got \(2, 5\)"),
    (dict(out_indices=(3, 2)), ValueError, r"out_indices must be increasing feature levels .* got \(3, 2\)"),
    (dict(stem_pool="same"), ValueError, r"stem_pool must be one of \('timm', 'mindcv'\), got 'same'"),
    (dict(width=0), ValueError, r"width"),
    (dict(drop_path_rate=0.1), TypeError, r"drop_path_rate"),
], ids=["backbone", "level_range", "level_order", "stem_pool", "width", "unknown"])
def test_bad_arguments_are_named(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        mindcv.create_model("convgru_rcn", **kwargs)


def test_bad_input_is_rejected_before_any_work(rcn_twins):
    _, net = rcn_twins
    with pytest.raises(ValueError, match="at least 32x32"):
        net(Tensor(randn(1, 2, 3, 16, 16)))
    with pytest.raises(ValueError, match="3 channels"):
        net(Tensor(randn(1, 2, 1, 64, 64)))
    with pytest.raises(ValueError, match="lengths"):
        net(Tensor(randn(2, 2, 3, 64, 64)), np.array([1, 3], np.int32))
    with pytest.raises(ValueError, match=r"states\[0\] must have shape \(2, 16, 8, 8\)"):
        net.step(Tensor(randn(2, 3, 64, 64)), net.init_states(2, 64, 32))


def test_models_create_model_mindspore():
    from convgru_zoo.models import create_model

    assert isinstance(create_model(ARCH, "mindspore", width=8), type(mindspore_rcn()))
    with pytest.raises(ValueError, match=r"no MindSpore version \(MindCV has no convnext_tiny\)"):
        create_model("convgru_rcn_convnext_tiny", "mindspore")


def test_evaluation_converts_an_rcn_state_dict_for_mindspore(rcn_twins):
    """``convgru-zoo eval --framework mindspore`` converts the run's PyTorch weights, ResNet names included."""
    from convgru_zoo.evaluation.evaluate import MindSporePredictor

    model, net = rcn_twins
    predictor = MindSporePredictor(ARCH, model.state_dict(), "cpu", num_classes=NUM_CLASSES, width=WIDTH,
                                   stacked=net.stacked)
    x = randn(*CLIP, seed=7)
    with torch.no_grad():
        assert_close(predictor(x), model(torch.from_numpy(x)).numpy())
