"""ConvGRU-Net through timm on what timm's own tests never feed: real clips, clip features, T, lengths."""
import pytest
import torch
import torch.nn.functional as F

timm = pytest.importorskip("timm")

import convgru_zoo  # noqa: E402,F401  registers the models
from convgru_zoo import specs  # noqa: E402
from convgru_zoo.torch import convgru_net  # noqa: E402
from convgru_zoo.torch.reference import reference_step  # noqa: E402


def make(name="convgru_tiny", **kwargs):
    torch.manual_seed(0)
    model = timm.create_model(name, **kwargs).eval()
    with torch.no_grad():  # non-trivial norm statistics, so a wrong per-frame reshape would show
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return model


def clip(b=2, t=3, c=3, size=32, seed=1):
    return torch.randn(b, t, c, size, size, generator=torch.Generator().manual_seed(seed))


def reference_logits(model, x):
    """The documented architecture written plainly: per-frame stem, stages of ConvGRU steps, pooled head."""
    def per_frame(block, frames):
        return [block.norm(block.conv(f)) for f in frames]

    frames = per_frame(model.stem, list(x.unbind(1)))
    for i, stage in enumerate(model.stages):
        if i > 0:
            frames = per_frame(stage.downsample, frames)
        for cell in stage.blocks:
            h = frames[0].new_zeros(frames[0].shape[0], cell.hidden_size, *frames[0].shape[-2:])
            states = []
            for f in frames:
                h = reference_step(cell, f, h)
                states.append(h)
            frames = states
    return F.linear(frames[-1].mean((2, 3)), model.head.fc.weight, model.head.fc.bias)


@pytest.mark.parametrize("name", ["convgru_tiny", "convgru_small"])
def test_clip_logits_match_the_documented_architecture(name):
    model = make(name)
    x = clip()
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference_logits(model, x), atol=1e-5, rtol=1e-4)


def test_image_is_a_one_frame_clip_everywhere():
    model = make(features_only=False)
    x = clip(t=1)
    image = x[:, 0]
    with torch.no_grad():
        torch.testing.assert_close(model(image), model(x))
        torch.testing.assert_close(model.forward_features(image), model.forward_features(x))
        for a, b in zip(model.forward_intermediates(image, intermediates_only=True),
                        model.forward_intermediates(x, intermediates_only=True)):
            torch.testing.assert_close(a, b)
        for i, stage in enumerate(model.stages):  # every stage, used alone as a tap, takes an image too
            inp = torch.randn(2, model.feature_info[max(i - 1, 0)]["num_chs"], 8, 8)
            torch.testing.assert_close(stage(inp)[1], stage(inp.unsqueeze(1))[1])


def test_the_clip_length_is_free_and_every_frame_counts():
    model = make()
    x = clip(t=5, size=16)
    with torch.no_grad():
        full = model(x)
        assert full.shape == (2, specs.NUM_CLASSES)
        assert not torch.allclose(full, model(x[:, :4]))       # the last frame changes the result
        assert not torch.allclose(full, model(x.flip(1)))      # so does the order of frames
        assert model(clip(t=8, size=16)).shape == (2, specs.NUM_CLASSES)


def test_num_frames_is_a_model_argument_not_a_config_key():
    model = timm.create_model("convgru_tiny", num_frames=16)
    assert model.num_frames == 16
    assert timm.create_model("convgru_base", device="meta").num_frames == specs.BACKBONES["convgru_base"].num_frames
    assert "num_frames" not in model.pretrained_cfg
    with pytest.raises(ValueError, match="num_frames"):
        timm.create_model("convgru_tiny", num_frames=0)


def test_lengths_end_each_sample_at_its_last_valid_frame():
    model = make()
    x = clip(b=2, t=5)
    with torch.no_grad():
        padded = model.forward_features(x, lengths=torch.tensor([3, 5]))
        torch.testing.assert_close(padded[0], model.forward_features(x[:1, :3])[0], atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(padded[1], model.forward_features(x[1:])[0], atol=1e-6, rtol=1e-5)
        feats = model.forward_intermediates(x, lengths=torch.tensor([2, 5]), intermediates_only=True)
        for got, want in zip(feats, model.forward_intermediates(x[:1, :2], intermediates_only=True)):
            torch.testing.assert_close(got[:1], want, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("lengths, message", [
    (torch.tensor([0, 3]), r"lengths must lie in \[1, T=3\]"),
    (torch.tensor([4, 3]), r"lengths must lie in \[1, T=3\]"),
    (torch.tensor([1.0, 2.0]), "1-D integer tensor"),
    (torch.tensor([True, True]), "1-D integer tensor"),
    (torch.tensor([1, 2, 3]), r"one length per sample \(B=2\)"),
])
def test_bad_lengths_are_named(lengths, message):
    with pytest.raises(ValueError, match=message):
        make()(clip(), lengths=lengths)


@pytest.mark.parametrize("x, message", [
    (torch.randn(2, 3, 32, 32)[:, 0], r"x must be .* got a 3-D shape"),
    (torch.randn(2, 3, 1, 32, 32), r"x must have 3 channels \(dim 2\), got 1"),
])
def test_bad_inputs_are_named(x, message):
    with pytest.raises(ValueError, match=message):
        make()(x)


def test_clip_features_are_each_stages_final_state():
    model = make("convgru_tiny")
    features = make("convgru_tiny", features_only=True)
    spec = specs.BACKBONES["convgru_tiny"]
    reductions = [spec.stem_stride * 2 ** i for i in range(len(spec.dims))]
    assert features.feature_info.channels() == list(spec.dims)
    assert features.feature_info.reduction() == reductions and reductions[-1] == spec.reduction
    x = clip(t=4, size=32)
    with torch.no_grad():
        feats = features(x)
        final, inter = model.forward_intermediates(x)
        assert [tuple(f.shape) for f in feats] == [(2, dim, 32 // r, 32 // r) for dim, r in zip(spec.dims, reductions)]
        for a, b in zip(feats, inter):
            torch.testing.assert_close(a, b)
        torch.testing.assert_close(final, model.forward_features(x))
        torch.testing.assert_close(feats[-1], final)
        # a feature is the stage's state after the last frame: the stage's own run agrees
        stem = model.stem(x)
        torch.testing.assert_close(feats[0], model.stages[0](stem)[1])


def test_out_indices_and_pruning_keep_the_selected_features():
    model = make("convgru_tiny")
    x = clip(t=3)
    with torch.no_grad():
        full = model.forward_intermediates(x, intermediates_only=True)
        first = make("convgru_tiny", features_only=True, out_indices=(0,))(x)
        torch.testing.assert_close(first[0], full[0])
        early = model.forward_intermediates(x, indices=[1], stop_early=True)
        torch.testing.assert_close(early[1][0], full[1])
        torch.testing.assert_close(early[0], full[1])  # stopped early, the final state is stage 1's
        kept = model.prune_intermediate_layers([0, 1])
        assert kept == [0, 1] and len(model.stages) == 2
        assert model.num_features == model.head_hidden_size == specs.BACKBONES["convgru_tiny"].dims[1]  # stage 1's
        pruned = model.forward_intermediates(x, indices=kept, intermediates_only=True)
        for a, b in zip(pruned, full[:2]):
            torch.testing.assert_close(a, b)
        model.reset_classifier(5, "avg")
        assert model(x).shape == (2, 5)


def test_head_api_on_clips():
    model = make("convgru_tiny", num_classes=7)
    x = clip()
    with torch.no_grad():
        feats = model.forward_features(x)
        pooled = model.forward_head(feats, pre_logits=True)
        torch.testing.assert_close(pooled, feats.mean((2, 3)))
        torch.testing.assert_close(model.forward_head(feats), model.get_classifier()(pooled))
        model.reset_classifier(0)
        torch.testing.assert_close(model(x), pooled)
        model.reset_classifier(3, "max")
        assert model(x).shape == (2, 3)


def test_grad_checkpointing_gives_the_same_values_and_gradients():
    x = clip(t=3)
    grads = []
    for checkpointing in (False, True):
        model = make("convgru_tiny").train()
        model.set_grad_checkpointing(checkpointing)
        out = model(x, lengths=torch.tensor([2, 3]))
        out.square().sum().backward()
        grads.append((out.detach(), [p.grad.clone() for p in model.parameters()]))
    torch.testing.assert_close(grads[0][0], grads[1][0])
    for a, b in zip(grads[0][1], grads[1][1]):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_torchscript_and_fx_run_clips_with_lengths():
    from torchvision.models.feature_extraction import create_feature_extractor

    model = make("convgru_tiny")
    x, lengths = clip(t=4), torch.tensor([2, 4])
    with torch.no_grad():
        want = model(x, lengths)
        torch.testing.assert_close(torch.jit.script(model)(x, lengths), want)
        tracer_kwargs = dict(leaf_modules=timm.models.get_notrace_modules(),
                             autowrap_functions=timm.models.get_notrace_functions())
        fx = create_feature_extractor(model, return_nodes=["head"], tracer_kwargs=tracer_kwargs)
        torch.testing.assert_close(fx(x, lengths)["head"], want)


def test_bfloat16_clips():
    model = make("convgru_tiny").to(torch.bfloat16)
    out = model(clip(t=2).to(torch.bfloat16))
    assert out.dtype == torch.bfloat16 and torch.isfinite(out).all()


def test_in_chans_and_device_dtype_arguments():
    assert make("convgru_tiny").stem.conv.weight.shape[1] == 3  # RGB by default, as every timm model
    model = make("convgru_tiny", in_chans=1, dtype=torch.float64)
    assert model.stem.conv.weight.shape[1] == 1
    assert all(p.dtype == torch.float64 for p in model.parameters())
    assert model(clip(c=1).double()).shape == (2, specs.NUM_CLASSES)
    meta = timm.create_model("convgru_base", device="meta")
    assert all(t.is_meta for t in [*meta.parameters(), *meta.buffers()])
    with pytest.raises(TypeError):
        timm.create_model("convgru_tiny", hidden_sizes=(8,))


def test_parameter_names_are_the_stable_ones_the_mindspore_twin_mirrors():
    spec = specs.BACKBONES["convgru_base"]
    names = set(timm.create_model("convgru_base", device="meta").state_dict())
    expected = {f"stem.conv.weight", "head.fc.weight", "head.fc.bias"}
    expected |= {f"stem.norm.{k}" for k in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")}
    for i, depth in enumerate(spec.depths):
        if i:
            expected |= {f"stages.{i}.downsample.conv.weight"}
            expected |= {f"stages.{i}.downsample.norm.{k}"
                         for k in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")}
        for j in range(depth):
            expected |= {f"stages.{i}.blocks.{j}.{gate}.{k}"
                         for gate in ("reset_gate", "update_gate", "out_gate") for k in ("weight", "bias")}
    assert names == expected


def test_pretrained_configs_come_from_specs():
    assert timm.list_models(module="convgru_net") == sorted(specs.BACKBONES)
    # Forecaster tags live in the same table but are not timm classification models.
    assert {w.task for w in specs.PRETRAINED.values()} == {"classify", "forecast"}
    assert sorted(timm.list_pretrained("convgru*")) == sorted(specs.BACKBONE_WEIGHTS)
    for name, weights in specs.BACKBONE_WEIGHTS.items():
        cfg = timm.get_pretrained_cfg(name)
        assert cfg.hf_hub_id == f"{specs.HF_ORG}/{name}"
        assert (cfg.input_size, cfg.num_classes, cfg.mean, cfg.std) == (
            specs.INPUT_SIZE, specs.NUM_CLASSES, specs.MEAN, specs.STD)
        assert cfg.first_conv == "stem.conv" and cfg.classifier == "head.fc"


@pytest.mark.parametrize("kwargs,match", [
    (dict(dims=(8, 16), depths=(1,)), "one entry per stage"),
    (dict(dims=(8, 0), depths=(1, 1)), r"dims\[1\]"),
    (dict(dims=(8, 16), depths=(1, 0)), r"depths\[1\]"),
    (dict(kernel_size=2), "kernel_size"),
    (dict(num_frames=0), "num_frames"),
    (dict(num_classes=-1), "num_classes"),
    (dict(drop_rate=1.0), "drop_rate"),
    (dict(in_chans=0), "in_chans"),
])
def test_bad_architecture_arguments_name_the_argument(kwargs, match):
    args = dict(dims=(8, 16), depths=(1, 1)) | kwargs
    with pytest.raises(ValueError, match=match):
        convgru_net.ConvGRUNet(**args)
