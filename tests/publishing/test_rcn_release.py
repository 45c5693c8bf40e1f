"""A GRU-RCN tag through `release`, `cards` and `publish`, on stand-in tags this test trains (two steps of a recipe)
and releases into a stand-in checkout: convgru_rcn_mobilenetv3_large_100, whose backbone MindCV has not (PyTorch
only: the card says so, no MindSpore file anywhere), and convgru_rcn_resnet18 (slow: converted to MindSpore and
scored there too). The card says what the model is from its spec, the Hub folder's config.json is the model's
timm config (the backbone's normalisation, the tag's frame size) and timm loads that folder to the released
model's outputs. Also the README's generated GRU-RCN tables and the clip transform of RCN names."""
import dataclasses
import json
import shutil
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")
pytest.importorskip("huggingface_hub")
from huggingface_hub import ModelCard  # noqa: E402

import convgru_zoo  # noqa: E402,F401  (registers the models)
from convgru_zoo import cli, models, pretrained, specs  # noqa: E402
from convgru_zoo.data import clips, create_clip_transform  # noqa: E402
from convgru_zoo.publishing import cards, publish, release  # noqa: E402
from helpers import MNIST, REPO, needs_mnist  # noqa: E402

ARCH = "convgru_rcn_mobilenetv3_large_100"
NAME = f"{ARCH}.standin"


def _train_and_release(tmp_path_factory, arch):
    """A stand-in tag of ``arch`` trained by `train --recipe` and released into a stand-in checkout:
    ``(root, run, record, weights as published)``."""
    if not MNIST.is_dir():
        pytest.skip(f"MNIST digits not found in {MNIST}")
    name = f"{arch}.standin"
    root = tmp_path_factory.mktemp("rcn-release")
    shutil.copytree(REPO / "model_cards" / cards.REFERENCE.parent, root / "cards" / cards.REFERENCE.parent)
    recipe = specs._recipe(task="classify", model=arch, steps=2, batch_size=2, lr=1e-3, weight_decay=0.05,
                           warmup_steps=0, min_lr=0.0, val_every=1, dataset="motion_mnist", ckpt_every=1,
                           num_sequences=4, val_sequences=2, pretrained_backbone=False, freeze_backbone=False)
    weights = specs.PretrainedWeights(arch, "standin", specs._MMNIST_MOTION, recipe=recipe)
    patch, threads = pytest.MonkeyPatch(), torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        patch.setitem(specs.PRETRAINED, name, weights)
        patch.setattr(release, "TEST_SEQUENCES", 4)
        run = root / "run"
        assert cli.main(["train", "--recipe", name, "--mnist", str(MNIST), "--out", str(run), "--no-progress"]) == 0
        record = release.release(name, run, MNIST, cards_dir=root / "cards", train_threads=1, progress=False)
    finally:
        patch.undo()
        torch.set_num_threads(threads)
    return root, run, record, dataclasses.replace(
        weights, sha256=tuple(sorted((fw, f["sha256"]) for fw, f in record["files"].items())))


@pytest.fixture(scope="module")
def rcn_release(tmp_path_factory):
    return _train_and_release(tmp_path_factory, ARCH)


@pytest.fixture
def as_published(rcn_release, monkeypatch):
    root, _, _, weights = rcn_release
    monkeypatch.setitem(specs.PRETRAINED, NAME, weights)
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", root / "none")  # the tag does not ship: its card folder holds it
    return root


@needs_mnist
def test_a_gru_rcn_tag_without_mindcv_releases_pytorch_only(rcn_release):
    root, run, record, weights = rcn_release
    assert weights.frameworks == ("torch",) and set(record["files"]) == {"torch"}
    folder = root / "cards" / NAME
    assert (folder / "model.safetensors").read_bytes() == (run / "model.safetensors").read_bytes()
    assert (folder / "eval_classify_torch.json").is_file() and not (folder / "eval_classify_mindspore.json").exists()
    assert json.loads((root / release.SHIPPED / "published.json").read_text()) == {
        NAME: {"torch": record["files"]["torch"]["sha256"]}}


@needs_mnist
def test_the_card_describes_the_gru_rcn_from_its_spec(as_published):
    root = as_published
    assert cards.write_cards(root / "cards", [NAME]) == [NAME]
    card = ModelCard.load(root / "cards" / NAME / "README.md")
    text = card.text
    assert specs.RCN_MODELS[ARCH].summary() in text and "GRU-RCN video classifier" in text
    assert "PyTorch (timm) only: MindCV has no mobilenetv3_large_100." in text
    assert "MindSpore" not in text.split("## Results")[1].split("## Training")[0]  # no MindSpore row
    assert "gru-rcn" in card.data.tags and "mindspore" not in card.data.tags
    assert "mindcv" not in text and f'timm.create_model("{NAME}", pretrained=True)' in text
    evaluation = json.loads((root / "cards" / NAME / "eval_classify_torch.json").read_text())["metrics"]
    stated = {r.metric_name: r.metric_value for r in card.data.eval_results}
    assert stated["top-1"] == pytest.approx(evaluation["clip"]["top1"], abs=1e-6)


@needs_mnist
def test_publish_builds_a_folder_timm_loads_to_the_released_outputs(as_published, tmp_path):
    root = as_published
    cards.write_cards(root / "cards", [NAME])
    lines = []
    publish.publish(root / "cards", [NAME], dry_run=True, out=tmp_path, log=lines.append)
    folder = tmp_path / NAME
    assert sorted(p.name for p in folder.iterdir() if p.suffix != ".png") == [
        "README.md", "config.json", "eval_classify_torch.json", "model.safetensors", "release.json"]
    config = json.loads((folder / "config.json").read_text())
    backbone = clips.rcn_backbone_config(ARCH)
    cfg = config["pretrained_cfg"]
    assert config["architecture"] == ARCH and config["num_classes"] == specs.NUM_CLASSES == cfg["num_classes"]
    assert cfg["input_size"] == list(specs.INPUT_SIZE)  # the frames the tag was trained on, not ImageNet's 224
    assert (cfg["mean"], cfg["std"]) == (list(backbone["mean"]), list(backbone["std"]))  # what training normalised by
    assert cfg["hf_hub_id"] == specs.PRETRAINED[NAME].hf_hub_id and cfg["tag"] == "standin"

    clip = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 3, 3, 64, 64), dtype=np.float32))
    from convgru_zoo.run_files import read_weights
    released = {k: torch.from_numpy(v) for k, v in read_weights(root / "cards" / NAME / "model.safetensors")[0].items()}
    expected = timm.create_model(ARCH).eval()
    expected.load_state_dict(released)
    with torch.no_grad():
        loaded = timm.create_model(f"local-dir:{folder}", pretrained=True).eval()
        torch.testing.assert_close(loaded(clip), expected(clip), rtol=0, atol=0)
    assert loaded.pretrained_cfg["input_size"] == specs.INPUT_SIZE
    assert create_clip_transform(loaded).image_size == 64 == create_clip_transform(NAME).image_size


def test_readme_gru_rcn_speed_table_is_its_json():
    assert cards.write_readme(REPO / "README.md", REPO / "model_cards", check=True) is False, \
        "regenerate with `convgru-zoo cards`"
    run = json.loads((REPO / cards.RCN_SPEED).read_text())
    text = (REPO / "README.md").read_text()
    for row in run["per_frame"].values():
        assert f"| {row['rcn_ms']:.1f} ms | {row['image_ms']:.1f} ms | {row['ratio']:.2f}x |" in text
    assert f"`model(clip)` {run['per_clip']['rcn_fps']:.1f} frames/s" in text


def test_readme_transfer_table_is_its_json_once_measured(tmp_path):
    (tmp_path / "cards").mkdir()
    assert "Not measured yet" in cards._rcn_transfer_table(tmp_path / "cards")
    point = lambda step, hours, top1: {"step": step, "cpu_hours": hours, "top1": top1, "top5": 1.0}  # noqa: E731
    results = {"machine": {"cpu": "AMD EPYC", "cores": 2, "avx512": True, "native_bf16": True, "torch_threads": 1},
               "test_set": {"dataset": "motion_mnist", "split": "test", "seed": 0, "num_sequences": 1000, "sha256": "0"},
               "frames": {"model": "resnet18", "steps": 800, "cpu_hours": 0.2, "val_digit_top1": 0.98},
               "rcn": {"model": "convgru_rcn_resnet18", "points": [point(100, 0.3, 0.5), point(200, 0.4, 0.91)]},
               "scratch": {"model": "convgru_tiny", "points": [point(100, 0.1, 0.2), point(400, 0.4, 0.8)]},
               "at_equal_cpu": {"cpu_hours": 0.4, "rcn_top1": 0.91, "scratch_top1": 0.8}}
    (tmp_path / cards.RCN_TRANSFER).parent.mkdir(parents=True)
    (tmp_path / cards.RCN_TRANSFER).write_text(json.dumps(results))
    table = cards._rcn_transfer_table(tmp_path / "cards")
    assert "| convgru_rcn_resnet18 | frozen resnet18 trained on single frames (800 steps, 0.20 CPU-h, digit top-1 " \
           "0.9800 on validation frames), ConvGRUs trained on clips | 0.9100 | 0.9100 at 0.40 CPU-h |" in table
    assert "| convgru_tiny | from scratch | 0.8000 | 0.8000 at 0.40 CPU-h |" in table
    assert "(benchmarks/results/rcn_transfer.png)" in table


def test_clip_transform_of_a_gru_rcn_name_is_its_backbones_config(monkeypatch):
    by_name = create_clip_transform("convgru_rcn_resnet18")
    model = timm.create_model("convgru_rcn_resnet18")
    by_model = create_clip_transform(model)
    assert (by_name.mean, by_name.std, by_name.image_size) == (by_model.mean, by_model.std, by_model.image_size)
    assert by_name.mean == tuple(model.pretrained_cfg["mean"]) != specs.MEAN
    frames = np.random.default_rng(0).integers(0, 256, (2, 48, 48, 3), dtype=np.uint8)
    np.testing.assert_array_equal(by_name(frames), by_model(frames))
    for module in ("timm", "timm.models"):  # as on a MindSpore-only install
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ImportError, match=r"convgru_rcn_resnet18 normalises its frames as its image backbone "
                                          r"'resnet18' in timm's registry: that needs timm"):
        create_clip_transform("convgru_rcn_resnet18")
    assert create_clip_transform("convgru_tiny").mean == specs.MEAN  # the zoo's own backbones need no timm


@needs_mnist
@pytest.mark.slow
def test_a_gru_rcn_tag_over_a_mindcv_backbone_releases_and_publishes_both_frameworks(tmp_path_factory, tmp_path,
                                                                                      monkeypatch):
    pytest.importorskip("mindspore")
    root, _, record, weights = _train_and_release(tmp_path_factory, "convgru_rcn_resnet18")
    name = weights.name
    assert weights.frameworks == specs.FRAMEWORKS and set(record["files"]) == set(specs.FRAMEWORKS)
    reports = {fw: json.loads((root / "cards" / name / f"eval_classify_{fw}.json").read_text()) for fw in specs.FRAMEWORKS}
    assert reports["torch"]["data"]["sha256"] == reports["mindspore"]["data"]["sha256"] == record["test_set"]["sha256"]
    np.testing.assert_allclose(reports["mindspore"]["metrics"]["clip"]["top5"], reports["torch"]["metrics"]["clip"]["top5"])
    monkeypatch.setitem(specs.PRETRAINED, name, weights)
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", root / "none")
    cards.write_cards(root / "cards", [name])
    text = (root / "cards" / name / "README.md").read_text()
    assert f"| {name} (MindSpore, same file converted) |" in text
    assert f'create_model("convgru_rcn_resnet18", framework="mindspore", pretrained="standin")' in text
    publish.publish(root / "cards", [name], dry_run=True, out=tmp_path, log=lambda line: None)
    from convgru_zoo._files import sha256_of
    assert sha256_of(tmp_path / name / "model.ckpt") == record["files"]["mindspore"]["sha256"]  # converted again
