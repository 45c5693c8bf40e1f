"""The MindCV door: ``mindcv.create_model`` / ``list_models`` for convgru_tiny/small/base.

Registration and configs, clips and images, ``features_only``/``out_indices``, strict
``checkpoint_file`` and sha256-checked ``pretrained`` loading (with weights files the tests make),
input errors, PYNATIVE and GRAPH mode. Agreement with PyTorch is in test_backbone_parity.py.
"""
import re
import subprocess
import sys

import numpy as np
import pytest

ms = pytest.importorskip("mindspore")
mindcv = pytest.importorskip("mindcv")
ms.set_device("CPU")

from mindspore import Tensor  # noqa: E402

from convgru_zoo import convert, pretrained, specs  # noqa: E402
from convgru_zoo.mindspore import convgru_net  # noqa: E402  (registers the models)
from convgru_zoo.mindspore.convgru_net import ConvGRUNet, adapt_first_conv  # noqa: E402
from convgru_zoo.mindspore.weights import load_params  # noqa: E402
from helpers import assert_same_mindspore_params, mindspore_params, stage_shapes, unpublish  # noqa: E402

VARIANTS = sorted(specs.BACKBONES)
TAG = "convgru_tiny.mmnist_motion"
DIMS = specs.BACKBONES["convgru_tiny"].dims  # what tiny() builds: its stages' channels
STAGES = stage_shapes("convgru_tiny", 2, 32)  # its stages' states on a (2, T, 1, 32, 32) clip


def randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def tiny(**kwargs):
    kwargs.setdefault("num_classes", 5)
    kwargs.setdefault("in_channels", 1)
    net = mindcv.create_model("convgru_tiny", **kwargs)
    net.set_train(False)
    return net


# ----------------------------------------------------------------------------------------------
# registry and configs


def test_list_models_and_configs():
    assert mindcv.list_models("convgru*", exclude_filters="convgru_rcn*") == VARIANTS
    assert mindcv.list_models(module="convgru_net") == VARIANTS
    for arch in VARIANTS:
        assert mindcv.is_model(arch) and arch in convgru_net.__all__
        cfg = mindcv.models.registry.get_pretrained_cfg(arch)
        assert cfg["weights"].startswith(arch + ".") and cfg["weights"] in specs.PRETRAINED
        assert cfg["hf_hub_id"] == f"{specs.HF_ORG}/{cfg['weights']}"
        assert (cfg["num_classes"], cfg["input_size"]) == (specs.NUM_CLASSES, specs.INPUT_SIZE)
        assert (cfg["first_conv"], cfg["classifier"]) == ("stem.conv", "head.fc")
        published = bool(specs.PRETRAINED[cfg["weights"]].sha256)
        assert bool(cfg["url"]) == published
        assert (arch in mindcv.list_models("convgru*", pretrained=True)) == published


@pytest.mark.parametrize("arch", VARIANTS)
def test_create_model_builds_the_spec(arch):
    spec = specs.BACKBONES[arch]
    net = mindcv.create_model(arch, num_classes=11, in_channels=2)
    assert isinstance(net, ConvGRUNet)
    assert (net.num_classes, net.in_channels, net.num_frames) == (11, 2, spec.num_frames)
    assert net.num_features == spec.dims[-1]
    assert [f["chs"] for f in net.feature_info] == list(spec.dims)
    assert [len(stage.blocks) for stage in net.stages] == list(spec.depths)
    assert net.stem.conv.weight.shape == (spec.dims[0], 2, spec.stem_stride, spec.stem_stride)
    assert net.head.fc.weight.shape == (11, spec.dims[-1])


def test_num_frames_is_a_model_argument_not_a_limit():
    net = tiny(num_frames=4)
    assert net.num_frames == 4
    assert net(Tensor(randn(1, 6, 1, 16, 16))).shape == (1, 5)


def test_unknown_or_bad_arguments_are_rejected():
    with pytest.raises(TypeError, match="drop_path_rate"):
        mindcv.create_model("convgru_tiny", drop_path_rate=0.1)
    with pytest.raises(ValueError, match="in_channels"):
        mindcv.create_model("convgru_tiny", in_channels=0)
    with pytest.raises(ValueError, match="out_indices"):
        mindcv.create_model("convgru_tiny", out_indices=[0])
    for bad in ([3], [-4], [], ["0"]):
        with pytest.raises(ValueError, match="out_indices"):
            mindcv.create_model("convgru_tiny", features_only=True, out_indices=bad)


# ----------------------------------------------------------------------------------------------
# forward: clips, images, lengths, features


def test_clip_and_image_forward_in_pynative():
    net = tiny()
    clip = randn(2, 3, 1, 32, 32)
    features = net.forward_features(Tensor(clip))
    assert features.shape == STAGES[-1]
    assert net.forward_head(features, pre_logits=True).shape == (2, DIMS[-1])
    np.testing.assert_allclose(net.forward_head(features).asnumpy(), net(Tensor(clip)).asnumpy(), atol=1e-6)
    clip = clip[..., :16, :16]
    image = clip[:, 0]
    np.testing.assert_allclose(net(Tensor(image)).asnumpy(), net(Tensor(clip[:, :1])).asnumpy(), atol=1e-6)


def test_lengths_stop_each_sample_at_its_last_frame():
    net = tiny()
    clip = randn(2, 3, 1, 16, 16)
    logits = net(Tensor(clip), Tensor(np.array([2, 3], np.int32))).asnumpy()
    np.testing.assert_allclose(logits[0], net(Tensor(clip[:1, :2])).asnumpy()[0], atol=1e-6)
    np.testing.assert_allclose(logits[1], net(Tensor(clip[1:])).asnumpy()[0], atol=1e-6)


def test_num_classes_zero_returns_pooled_features():
    net = tiny(num_classes=0)
    assert net.head.fc is None
    assert net(Tensor(randn(1, 2, 1, 16, 16))).shape == (1, DIMS[-1])


def test_bad_input_is_rejected_before_any_work():
    net = tiny()
    with pytest.raises(ValueError, match="1 channels"):
        net(Tensor(randn(1, 2, 3, 32, 32)))
    with pytest.raises(ValueError, match="clip"):
        net(Tensor(randn(1, 32, 32)))
    with pytest.raises(ValueError, match="at least 16x16"):
        net(Tensor(randn(1, 2, 1, 8, 8)))
    with pytest.raises(ValueError, match="lengths"):
        net(Tensor(randn(2, 2, 1, 16, 16)), Tensor(np.array([1, 3], np.int32)))
    with pytest.raises(TypeError, match="Tensor"):
        net(randn(1, 2, 1, 16, 16))
    with pytest.raises(ValueError, match="1 channels"):
        tiny(features_only=True)(Tensor(randn(1, 2, 3, 32, 32)))


def test_features_only_returns_the_chosen_stage_states():
    clip = Tensor(randn(2, 3, 1, 32, 32))
    full = tiny()
    states = [s.asnumpy() for s in full.forward_stages(clip)]
    extractor = tiny(features_only=True)
    load_params(extractor.net, mindspore_params(full))
    assert extractor.out_channels == list(DIMS)
    features = extractor(clip)
    assert [f.shape for f in features] == STAGES
    for got, want in zip(features, states):
        np.testing.assert_allclose(got.asnumpy(), want, atol=1e-6)
    picked = tiny(features_only=True, out_indices=[0, -1])
    assert picked.out_channels == [DIMS[0], DIMS[-1]]
    assert [f.shape for f in picked(clip)] == [STAGES[0], STAGES[-1]]
    assert [f.shape for f in picked(Tensor(randn(2, 1, 32, 32)))] == [STAGES[0], STAGES[-1]]


@pytest.fixture(scope="module")
def graph_mode_outputs():
    """Logits and features of the same tiny weights, PYNATIVE vs GRAPH (one compile each)."""
    clip = Tensor(randn(2, 3, 1, 32, 32, seed=4))
    net = tiny()
    extractor = tiny(features_only=True, out_indices=(1, 2))
    load_params(extractor.net, mindspore_params(net))
    eager = net(clip).asnumpy(), [f.asnumpy() for f in extractor(clip)]
    previous = ms.get_context("mode")
    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        compiled = net(clip).asnumpy(), [f.asnumpy() for f in extractor(clip)]
    finally:
        ms.set_context(mode=previous)
    return eager, compiled


def test_graph_mode_matches_pynative(graph_mode_outputs):
    (logits, features), (graph_logits, graph_features) = graph_mode_outputs
    np.testing.assert_allclose(graph_logits, logits, atol=1e-5)
    assert [f.shape for f in graph_features] == [STAGES[1], STAGES[2]]  # out_indices=(1, 2)
    for got, want in zip(graph_features, features):
        np.testing.assert_allclose(got, want, atol=1e-5)


# ----------------------------------------------------------------------------------------------
# checkpoint_file: strict (MindCV's checkpoint_path stays MindCV's)


@pytest.mark.parametrize("suffix", [".ckpt", ".safetensors"])
def test_checkpoint_file_loads_exactly(tmp_path, suffix):
    source = tiny()
    path = convert.save_mindspore_checkpoint(source, tmp_path / f"tiny{suffix}")
    assert_same_mindspore_params(mindspore_params(tiny(checkpoint_file=str(path))), mindspore_params(source))
    assert_same_mindspore_params(mindspore_params(tiny(checkpoint_file=str(path), features_only=True)), mindspore_params(source))


def test_load_checkpoint_ema_weights(tmp_path):
    source = tiny()
    ema = {f"ema.{name}": value for name, value in mindspore_params(source).items()}
    path = convert.save_mindspore_checkpoint(dict(mindspore_params(tiny()), **ema), tmp_path / "ema.ckpt")
    net = tiny()
    convgru_net.load_checkpoint(net, path, ema=True)
    assert_same_mindspore_params(mindspore_params(net), mindspore_params(source))


def test_checkpoint_file_errors_name_the_file(tmp_path):
    missing = tmp_path / "missing.ckpt"
    with pytest.raises(FileNotFoundError, match="missing.ckpt"):
        tiny(checkpoint_file=str(missing))
    other = convert.save_mindspore_checkpoint(tiny(num_classes=7), tmp_path / "other.ckpt")
    with pytest.raises(ValueError, match=r"other\.ckpt.*misshapen.*head\.fc\.weight"):
        tiny(checkpoint_file=str(other))
    partial = convert.save_mindspore_checkpoint(
        {k: v for k, v in mindspore_params(tiny()).items() if not k.startswith("stem.")}, tmp_path / "partial.ckpt")
    with pytest.raises(ValueError, match=r"partial\.ckpt.*missing.*stem\.conv\.weight"):
        tiny(checkpoint_file=str(partial))
    extra = convert.save_mindspore_checkpoint(dict(mindspore_params(tiny()), step=np.zeros(1)), tmp_path / "extra.ckpt")
    with pytest.raises(ValueError, match=r"extra\.ckpt.*unexpected \['step'\]"):
        tiny(checkpoint_file=str(extra))
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="garbage.ckpt"):
        tiny(checkpoint_file=str(garbage))
    with pytest.raises(ValueError, match="pretrained and checkpoint_file exclude each other"):
        tiny(checkpoint_file=str(other), pretrained=True)


# ----------------------------------------------------------------------------------------------
# pretrained: tag -> sha256-checked file, shipped in the package folder (here a temp folder)


@pytest.fixture
def publish(tmp_path, monkeypatch):
    """Publish weights for TAG: write them as the package's shipped file and record their sha256 (until then, TAG
    counts as unpublished, whatever the package ships)."""
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path)
    unpublish(monkeypatch, TAG)

    def publish_(framework, params):
        path = pretrained.shipped_path(TAG, framework)
        if framework == "mindspore":
            convert.save_mindspore_checkpoint(params, path)
        else:
            from safetensors.numpy import save_file
            save_file(convert.mindspore_to_torch_arrays(params), str(path))
        weights = specs.PRETRAINED[TAG]
        monkeypatch.setitem(specs.PRETRAINED, TAG, type(weights)(
            weights.arch, weights.tag, weights.description, sha256=((framework, pretrained.sha256_of(path)),)))
        return path

    return publish_


@pytest.mark.parametrize("framework", ["mindspore", "torch"])
def test_pretrained_loads_the_published_weights(publish, framework):
    source = tiny(num_classes=specs.NUM_CLASSES)
    publish(framework, mindspore_params(source))
    net = tiny(pretrained=True, num_classes=specs.NUM_CLASSES)
    assert_same_mindspore_params(mindspore_params(net), mindspore_params(source))
    assert_same_mindspore_params(mindspore_params(tiny(pretrained=True, num_classes=specs.NUM_CLASSES, features_only=True)),
                       mindspore_params(source))


def test_pretrained_adapts_stem_and_classifier(publish):
    source = mindspore_params(tiny(num_classes=specs.NUM_CLASSES))
    publish("mindspore", source)
    net = tiny(pretrained=True, num_classes=10, in_channels=3)
    loaded = mindspore_params(net)
    stem = source["stem.conv.weight"]
    np.testing.assert_allclose(loaded["stem.conv.weight"], np.repeat(stem, 3, axis=1) / 3, rtol=1e-6)
    assert loaded["head.fc.weight"].shape == (10, DIMS[-1])
    for name in source:
        if not name.startswith(("stem.conv.", "head.fc.")):
            np.testing.assert_array_equal(loaded[name], source[name], err_msg=name)
    # a grey frame repeated over the channels gives what the one-channel model gives
    gray = randn(1, 2, 1, 16, 16)
    one = tiny(pretrained=True, num_classes=specs.NUM_CLASSES)
    three = tiny(pretrained=True, num_classes=specs.NUM_CLASSES, in_channels=3)
    np.testing.assert_allclose(three(Tensor(np.repeat(gray, 3, axis=2))).asnumpy(), one(Tensor(gray)).asnumpy(),
                               atol=1e-5)
    np.testing.assert_allclose(adapt_first_conv(np.repeat(stem, 3, axis=1), 1), 3 * stem, rtol=1e-6)


def test_pretrained_errors_name_the_file(publish):
    with pytest.raises(pretrained.PretrainedWeightsError, match="no published"):
        tiny(pretrained=True)
    path = publish("mindspore", mindspore_params(tiny(num_classes=specs.NUM_CLASSES)))
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(pretrained.PretrainedWeightsError, match=f"{re.escape(str(path))}.*sha256"):
        tiny(pretrained=True)
    wrong = publish("mindspore", mindspore_params(mindcv.create_model("convgru_small", in_channels=1)))
    with pytest.raises(pretrained.PretrainedWeightsError, match=f"{re.escape(TAG)}.*{re.escape(str(wrong))}.*misshapen"):
        tiny(pretrained=True, num_classes=specs.NUM_CLASSES)
    with pytest.raises(ValueError, match="mutually exclusive"):
        mindcv.create_model("convgru_tiny", pretrained=True, checkpoint_path=str(wrong))


def test_pretrained_without_num_classes_keeps_the_published_head():
    """MindCV's create_model passes num_classes=1000 when the caller gives none: the shipped 40-class head stays."""
    from convgru_zoo.mindspore.weights import pretrained_params

    published, _ = pretrained_params(TAG)
    net = mindcv.create_model("convgru_tiny", pretrained=True)
    assert net.num_classes == specs.NUM_CLASSES
    assert_same_mindspore_params(mindspore_params(net), published)
    assert mindcv.create_model("convgru_tiny").num_classes == specs.NUM_CLASSES
    # asked for: a new head of that width, even 1000; MindCV's own models keep their 1000 default
    assert mindcv.create_model("convgru_tiny", pretrained=True, num_classes=1000).num_classes == 1000
    assert mindcv.create_model("resnet18").classifier.weight.shape == (1000, 512)


def test_mindcv_loading_is_left_as_mindcv_ships_it(tmp_path):
    """Nothing of MindCV is patched: ``create_model`` still calls MindCV's own loader, which skips a missing
    ``checkpoint_path`` and loads non-strictly, for its models and ours alike (hence ``checkpoint_file``)."""
    from mindcv.models import helpers, model_factory

    assert model_factory.load_model_checkpoint is helpers.load_model_checkpoint
    assert model_factory.load_model_checkpoint.__module__ == "mindcv.models.helpers"
    mindcv.create_model("resnet18", num_classes=3, checkpoint_path=str(tmp_path / "missing.ckpt"))
    source = tiny()
    partial = convert.save_mindspore_checkpoint(
        {k: v for k, v in mindspore_params(source).items() if k.startswith("stem.")}, tmp_path / "partial.ckpt")
    net = tiny(checkpoint_path=str(partial))  # MindCV's lax loading: the stem only, no error
    assert_same_mindspore_params({k: v for k, v in mindspore_params(net).items() if k.startswith("stem.")},
                       {k: v for k, v in mindspore_params(source).items() if k.startswith("stem.")})


def test_import_convgru_zoo_registers_the_models_quietly():
    """What users run: a fresh interpreter, ``import convgru_zoo``, then MindCV; no teardown noise at exit."""
    code = ("import convgru_zoo, mindcv\n"
            "net = mindcv.create_model('convgru_tiny', num_classes=3, in_channels=1)\n"
            "print(mindcv.list_models('convgru*', module='convgru_net'), type(net).__name__)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['convgru_base', 'convgru_small', 'convgru_tiny'] ConvGRUNet"
    assert "Traceback" not in done.stderr and "total_instance_count" not in done.stderr, done.stderr
