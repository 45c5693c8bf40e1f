"""GRU-RCN models (convgru_zoo.torch.convgru_rcn): ConvGRUs over a timm image backbone's feature levels.

What a user relies on: frame-by-frame equals the whole clip; padded clips; the head is the paper's averaged
per-level classifiers; the backbone runs once per clip; a frozen backbone stays frozen (BatchNorm too);
the image backbone's pretrained config becomes the model's; ``pretrained=True`` puts the backbone's own
ImageNet weights (served offline from a Hugging Face cache the test fills) inside the model, strictly;
clear errors for bad backbones and levels; ONNX step and clip graphs agree with eager. Tiny shapes and
timm's tiny ``test_resnet`` wherever the real backbone is not the point.
"""
import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")

import convgru_zoo  # noqa: E402,F401  (registers the timm models)
from convgru_zoo import models, specs  # noqa: E402
from convgru_zoo.data import create_clip_transform  # noqa: E402

B, T, H, W = 2, 3, 64, 64
TINY = dict(backbone="test_resnet", width=8, num_classes=5)
TOL = 1e-5


def tiny(**kwargs):
    torch.manual_seed(0)
    return timm.create_model("convgru_rcn", **{**TINY, **kwargs}).eval()


def clip(shape=(B, T, 3, H, W), seed=0):
    return torch.from_numpy(np.random.default_rng(seed).standard_normal(shape, dtype=np.float32))


@pytest.mark.parametrize("stacked", [False, True])
@torch.no_grad()
def test_step_equals_the_clip_after_every_frame(stacked):
    model, x = tiny(stacked=stacked), clip()
    states = model.init_states(B, H, W)
    assert [tuple(s.shape) for s in states] == [(B, 8, 8, 8), (B, 8, 4, 4), (B, 8, 2, 2)]
    for t in range(T):
        logits, states = model.step(x[:, t], states)
        torch.testing.assert_close(logits, model(x[:, :t + 1]), rtol=TOL, atol=TOL)
    torch.testing.assert_close(model(x[:, 0]), model(x[:, :1]), rtol=0, atol=0)  # an image is a one-frame clip


@torch.no_grad()
def test_padded_clips_end_at_their_length():
    model, x = tiny(stacked=True), clip()
    padded = model(x, lengths=torch.tensor([T, 1]))
    torch.testing.assert_close(padded[0], model(x[:1])[0], rtol=TOL, atol=TOL)
    torch.testing.assert_close(padded[1], model(x[1:, :1])[0], rtol=TOL, atol=TOL)


@torch.no_grad()
def test_independent_levels_average_per_level_classifiers():
    """GRU-RCN: the logits are the average of one linear classifier per level on its pooled final state."""
    model, x = tiny(), clip()
    states = model.forward_intermediates(x, intermediates_only=True)
    fc = model.get_classifier()
    per_level = [state.mean((2, 3)) @ (len(states) * weight).T + fc.bias
                 for state, weight in zip(states, fc.weight.split(model.width, 1))]
    torch.testing.assert_close(model(x), torch.stack(per_level).mean(0), rtol=TOL, atol=TOL)
    assert model.forward_features(x).shape == (B, 3 * 8, 2, 2)


@torch.no_grad()
def test_stacked_levels_feed_the_next_and_features_are_the_last_state():
    model, x = tiny(stacked=True), clip()
    assert [gru.input_size for gru in model.grus] == [8, 16, 16]
    features, levels = model.forward_intermediates(x)
    assert [tuple(s.shape) for s in levels] == [(B, 8, 8, 8), (B, 8, 4, 4), (B, 8, 2, 2)]
    torch.testing.assert_close(features, levels[-1], rtol=0, atol=0)
    features_only = timm.create_model("convgru_rcn", features_only=True, **TINY)
    assert features_only.feature_info.reduction() == [8, 16, 32]
    assert [f.shape[1:] for f in features_only(x)] == [(8, 8, 8), (8, 4, 4), (8, 2, 2)]
    first_two = timm.create_model("convgru_rcn", features_only=True, out_indices=(0, 1), **TINY)  # timm's: our levels
    assert [f.shape[1:] for f in first_two(x)] == [(8, 8, 8), (8, 4, 4)] and len(first_two.model.grus) == 2


def test_the_backbone_runs_once_per_clip_on_every_frame():
    model, calls = tiny(), []
    model.backbone.register_forward_hook(lambda module, args, out: calls.append(tuple(args[0].shape)))
    with torch.no_grad():
        model(clip())
    assert calls == [(B * T, 3, H, W)]


def test_a_frozen_backbone_gets_no_gradient_and_keeps_its_batchnorm_statistics():
    model = tiny(freeze_backbone=True).train()
    norms = [m for m in model.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and not any(m.training for m in norms) and model.head.training and model.grus.training
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    model(clip()).sum().backward()
    assert all(p.grad is None and not p.requires_grad for p in model.backbone.parameters())
    assert all(p.grad is not None for name, p in model.named_parameters() if not name.startswith("backbone."))
    assert all(torch.equal(before[k], v) for k, v in model.backbone.state_dict().items())


def test_the_image_backbones_config_becomes_the_models():
    resnet = timm.models.get_pretrained_cfg("resnet18")
    model = timm.create_model("convgru_rcn_resnet18", device="meta")
    for key in ("input_size", "interpolation", "crop_pct", "mean", "std"):
        assert model.pretrained_cfg[key] == getattr(resnet, key), key
    assert model.pretrained_cfg["pool_size"] == (7, 7)
    data = timm.data.resolve_data_config(model=model)
    assert data["mean"] == (0.485, 0.456, 0.406) and data["input_size"] == (3, 224, 224)
    assert create_clip_transform(model).mean == resnet.mean
    generic = timm.create_model("convgru_rcn", backbone="test_resnet", device="meta")
    assert generic.pretrained_cfg["input_size"] == (3, 160, 160) and generic.pretrained_cfg["pool_size"] == (5, 5)
    assert generic.pretrained_cfg["first_conv"] + ".weight" in generic.state_dict()
    convnext = timm.create_model("convgru_rcn_convnext_tiny", device="meta")
    assert convnext.pretrained_cfg["first_conv"] + ".weight" in convnext.state_dict()


def test_pretrained_loads_the_served_backbone_weights_strictly(hub_cache):
    torch.manual_seed(1)
    served = timm.create_model("test_resnet").state_dict()
    hub_cache("test_resnet", served)
    model = timm.create_model("convgru_rcn", backbone="test_resnet", pretrained=True)
    inside = model.backbone.state_dict()
    assert set(inside) == set(served) - {"fc.weight", "fc.bias"}
    assert all(torch.equal(inside[k], served[k]) for k in inside)
    assert not torch.equal(tiny().backbone.state_dict()["conv1.0.weight"], served["conv1.0.weight"])
    del served["layer4.0.conv1.weight"]
    hub_cache("test_resnet", served)
    with pytest.raises(RuntimeError, match="layer4.0.conv1.weight"):
        timm.create_model("convgru_rcn", backbone="test_resnet", pretrained=True)


class ImageOnly(torch.nn.Module):
    """A timm model without features_only support (every model of timm 1.0.31 has it: hence one made here)."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.fc = torch.nn.Linear(3, num_classes)


def rcn_test_image_only(pretrained=False, **kwargs):
    return ImageOnly(**kwargs)


def test_bad_backbones_and_levels_are_named_before_anything_is_built():
    if not timm.is_model("rcn_test_image_only"):
        timm.models.register_model(rcn_test_image_only)
    with pytest.raises(ValueError, match="backbone must be the name of a timm model.*'no_such_net'"):
        timm.create_model("convgru_rcn", backbone="no_such_net")
    with pytest.raises(ValueError, match="backbone must support features_only=True in timm, got 'rcn_test_image_only'"):
        timm.create_model("convgru_rcn", backbone="rcn_test_image_only")
    with pytest.raises(ValueError, match=r"out_indices must be increasing feature levels in \[0, 5\) of backbone "
                                         r"'resnet18' \(at strides \[2, 4, 8, 16, 32\]\), got \(3, 4, 5\)"):
        timm.create_model("convgru_rcn_resnet18", out_indices=(3, 4, 5), device="meta")
    with pytest.raises(ValueError, match=r"out_indices must be increasing.*got \(4, 3\)"):
        timm.create_model("convgru_rcn_resnet18", out_indices=(4, 3), device="meta")
    with pytest.raises(ValueError, match="width must be a positive int, got 0"):
        timm.create_model("convgru_rcn", width=0, device="meta")


def test_bad_input_is_named_before_any_work():
    model = tiny()
    with pytest.raises(ValueError, match="x must be at least 32x32"):
        model(clip((B, T, 3, 16, 64)))
    with pytest.raises(ValueError, match="x must have 3 channels"):
        model(clip((B, T, 1, H, W)))
    with pytest.raises(ValueError, match=r"states\[1\] must have shape \(2, 8, 4, 4\)"):
        states = model.init_states(B, H, W)
        model.step(clip()[:, 0], [states[0], states[0], states[2]])


def test_torch_hub_loads_the_gru_rcn_models():
    import importlib.util

    from helpers import REPO

    model = torch.hub.load(str(REPO), "convgru_rcn", source="local", **TINY)
    assert model.backbone.feature_info.reduction() == [8, 16, 32] and model.num_classes == 5
    spec = importlib.util.spec_from_file_location("hubconf_of_rcn_test", REPO / "hubconf.py")
    hubconf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hubconf)
    assert all("GRU-RCN" in getattr(hubconf, name).__doc__ for name in specs.RCN_MODELS)


def test_the_zoo_knows_the_models():
    assert set(specs.RCN_MODELS) <= set(models.list_models("classify"))
    assert not set(specs.RCN_MODELS) & set(models.list_models("forecast"))
    model = models.create_model("convgru_rcn", backbone="test_resnet", width=8, stacked=True, num_classes=3)
    assert model.stacked and model.num_classes == 3 and model.training
    assert "GRU-RCN" in models.hub_doc("convgru_rcn_resnet50")


@pytest.mark.parametrize("stacked", [False, True])
def test_onnx_step_and_clip_graphs_match_eager(tmp_path, stacked):
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    from convgru_zoo.deploy import export

    model = tiny(stacked=stacked)
    path = export.export_model(model, "onnx", tmp_path / "step.onnx", step=True, shape=(2, 3, 3, H, W))
    step = ort.InferenceSession(str(path))
    whole = ort.InferenceSession(export.backbone_clip_graph(model, onnx.load(str(path))).SerializeToString())
    names = [i.name for i in step.get_inputs()]
    for shape in [(1, 3, 3, 32, 32), (3, 2, 3, 64, 96)]:  # other batch, length and frame size than the export's
        x = clip(shape, seed=1)
        with torch.no_grad():
            want = model(x).numpy()
        np.testing.assert_allclose(whole.run(None, {"clip": x.numpy()})[0], want, rtol=1e-4, atol=1e-4)
        states = [np.zeros(s, np.float32) for s in model.state_shapes(shape[0], *shape[-2:])]
        for t in range(shape[1]):
            logits, *states = step.run(None, dict(zip(names, [x[:, t].numpy()] + states)))
        np.testing.assert_allclose(logits, want, rtol=1e-4, atol=1e-4)


def test_backbone_learning_rate_is_a_group_of_its_own():
    from convgru_zoo import train as training
    from convgru_zoo.torch.train import make_optimizer

    model = tiny()
    config = training.TrainConfig(task="classify", model="convgru_rcn", backbone_lr_scale=0.1)
    groups = make_optimizer(config, model).param_groups
    assert [g.get("lr_scale", 1.0) for g in groups] == [1.0, 0.1]
    assert {id(p) for p in groups[1]["params"]} == {id(p) for p in model.backbone.parameters()}
    frozen = make_optimizer(dataclasses.replace(config, backbone_lr_scale=1.0), tiny(freeze_backbone=True))
    assert len(frozen.param_groups) == 1 and not {id(p) for p in model.backbone.parameters()} & {
        id(p) for p in frozen.param_groups[0]["params"]}


def test_train_eval_and_stream_from_the_command_line(short_motion_clips, hub_cache, tmp_path, capsys, one_thread):
    """``train --model convgru_rcn_resnet18 --freeze-backbone`` starts from resnet18's ImageNet weights (served
    offline), trains the rest and leaves the backbone, BatchNorm statistics included, as served."""
    from convgru_zoo import cli, run_files

    torch.manual_seed(2)
    served = timm.create_model("resnet18").state_dict()
    hub_cache("resnet18", served)
    run = tmp_path / "run"
    data = ["--data", str(short_motion_clips), "--num-frames", "3", "--image-size", "32"]
    assert cli.main(["train", "--task", "classify", "--model", "convgru_rcn_resnet18", "--freeze-backbone", *data,
                     "--steps", "2", "--batch-size", "2", "--num-sequences", "4", "--val-every", "2",
                     "--val-sequences", "2", "--out", str(run), "--no-progress"]) == 0
    trained, meta = run_files.read_weights(run / "model.safetensors")
    assert meta["model"] == "convgru_rcn_resnet18"
    backbone = {k[len("backbone."):]: v for k, v in trained.items() if k.startswith("backbone.")}
    assert backbone.keys() == served.keys() - {"fc.weight", "fc.bias"}  # (run files keep scalars as (1,) arrays)
    assert all(np.array_equal(v.ravel(), served[k].numpy().ravel()) for k, v in backbone.items())
    spec = specs.RCN_MODELS["convgru_rcn_resnet18"]  # independent levels: one classifier over every level's state
    assert trained["head.fc.weight"].shape == (2, spec.width * len(spec.out_indices))
    assert cli.main(["eval", "--weights", str(run), "--data", str(short_motion_clips), "--no-progress"]) == 0
    assert (run / "eval" / "eval_classify_torch.json").is_file()
    frames = next(p for p in (short_motion_clips / "left").iterdir() if p.is_dir())
    capsys.readouterr()
    assert cli.main(["stream", "convgru_rcn_resnet18", str(frames), "--random-weights", "--size", "32"]) == 0
    assert "frame 3:" in capsys.readouterr().out


def test_backbone_flags_apply_to_gru_rcn_models_only(tmp_path, capsys):
    from convgru_zoo import cli

    assert cli.main(["train", "--task", "classify", "--model", "convgru_tiny", "--freeze-backbone", "--mnist",
                     str(tmp_path), "--out", str(tmp_path / "run")]) == cli.EXIT_USAGE
    assert "--freeze-backbone applies to the GRU-RCN models" in capsys.readouterr().err
    assert cli.main(["train", "--task", "classify", "--model", "convgru_rcn", "--freeze-backbone",
                     "--backbone-lr-scale", "0.1", "--mnist", str(tmp_path), "--out", str(tmp_path / "run")]) == 2
    assert "--backbone-lr-scale applies to a trained backbone" in capsys.readouterr().err
