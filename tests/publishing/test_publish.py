"""`convgru-zoo publish` end to end with no network: every file checked before any upload, one commit per
tag to a loopback stand-in of the Hub, nothing new on a second publish, and from an empty cache every door
(hf_hub_download, timm by name and hf-hub:, MindCV, the forecaster door, plain MindSpore) loads what was
published and gives the outputs of the local files."""
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("huggingface_hub")
from conftest import RELEASED_BACKBONE, RELEASED_NAME  # noqa: E402
from convgru_zoo.publishing import publish  # noqa: E402
from convgru_zoo.publishing.release import SHIPPED  # noqa: E402
from convgru_zoo import specs  # noqa: E402
from helpers import TESTS  # noqa: E402
from hub_standin import HubStandIn  # noqa: E402

NAMES = [RELEASED_BACKBONE, RELEASED_NAME]
TOKENS = {"tok-writer": ("tester", [specs.HF_ORG]), "tok-outsider": ("outsider", [])}

# Runs in a fresh process (huggingface_hub reads HF_ENDPOINT and the token at import): the test releases
# seen as published, the package folder given by argv[2] (empty: everything comes from the Hub).
PRELUDE = textwrap.dedent("""
    import dataclasses, json, sys
    from pathlib import Path
    from convgru_zoo import pretrained, specs
    root, package = Path(sys.argv[1]), Path(sys.argv[2])
    for name, spec in json.loads((root / "specs.json").read_text()).items():
        specs.PRETRAINED[name] = dataclasses.replace(
            specs.PRETRAINED[name], recipe=tuple(map(tuple, spec["recipe"])), sha256=tuple(map(tuple, spec["sha256"])))
    pretrained.WEIGHTS_DIR = package
""")
PUBLISH = PRELUDE + textwrap.dedent("""
    from convgru_zoo.publishing import publish
    print(json.dumps(publish.publish(root / "cards", sys.argv[3:], log=lambda line: None)))
""")
LOAD = PRELUDE + textwrap.dedent("""
    import numpy as np, torch, timm, mindspore as ms, mindcv
    from huggingface_hub import hf_hub_download
    from convgru_zoo import create_forecaster
    backbone, forecaster = sys.argv[3], sys.argv[4]
    clip = np.load(root / "clip.npy")
    outputs = {}
    with torch.no_grad():
        outputs["timm"] = timm.create_model(backbone, pretrained=True).eval()(torch.from_numpy(clip)).numpy()
        outputs["timm_hf_hub"] = timm.create_model(
            "hf-hub:" + specs.PRETRAINED[backbone].hf_hub_id, pretrained=True).eval()(torch.from_numpy(clip)).numpy()
        context = torch.from_numpy(clip[:, :, :1])
        outputs["forecaster"] = create_forecaster(forecaster.split(".")[0], pretrained=True).eval()(context).numpy()
    net = mindcv.create_model(backbone.split(".")[0], pretrained=True, num_classes=specs.NUM_CLASSES)
    net.set_train(False)
    outputs["mindcv"] = net(ms.Tensor(clip)).asnumpy()
    ms_forecaster = create_forecaster(forecaster.split(".")[0], framework="mindspore", pretrained=True)
    ms_forecaster.set_train(False)
    outputs["forecaster_mindspore"] = ms_forecaster(ms.Tensor(clip[:, :, :1])).asnumpy()
    ckpt = ms.load_checkpoint(hf_hub_download(specs.PRETRAINED[backbone].hf_hub_id, "model.ckpt"))
    outputs["ckpt_keys"] = np.array(sorted(ckpt))
    np.savez(root / "outputs.npz", **outputs)
""")


@pytest.fixture
def workspace(released, released_backbone, tmp_path):
    """A private copy of the test releases (tests may damage it) and the spec file the subprocesses read."""
    root = released[0]
    for part in (SHIPPED, "cards"):
        shutil.copytree(root / part, tmp_path / part)
    weights = {released[3].name: released[3], released_backbone[3].name: released_backbone[3]}
    (tmp_path / "specs.json").write_text(json.dumps(
        {name: {"recipe": w.recipe, "sha256": w.sha256} for name, w in weights.items()}))
    return tmp_path, weights


@pytest.fixture
def as_published(workspace, monkeypatch):
    from convgru_zoo.publishing import cards
    from convgru_zoo import pretrained
    root, weights = workspace
    for name, w in weights.items():
        monkeypatch.setitem(specs.PRETRAINED, name, w)
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", root / SHIPPED)
    cards.write_cards(cards_dir=root / "cards")
    return root


def run(script, root, package, *args, env):
    done = subprocess.run([sys.executable, "-c", script, str(root), str(package), *args], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def hub_env(hub, root, token="tok-writer"):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    return {**env, "HF_ENDPOINT": hub.url, "HF_TOKEN": token, "HF_HUB_DISABLE_XET": "1", "HF_HOME": str(root / "hf"),
            "HF_HUB_DISABLE_TELEMETRY": "1", "OMP_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])}


def test_dry_run_builds_checked_folders(as_published):
    root = as_published
    lines = []
    assert publish.publish(root / "cards", NAMES, dry_run=True, out=root / "out", log=lines.append) == \
        {name: None for name in NAMES}
    for name in NAMES:
        folder = root / "out" / name
        assert {"README.md", "model.safetensors", "model.ckpt", "config.json", "release.json"} <= \
            {p.name for p in folder.iterdir()}
        assert any(p.suffix == ".png" for p in folder.iterdir())
        config = json.loads((folder / "config.json").read_text())
        assert config["architecture"] == name.split(".")[0]
        assert config["pretrained_cfg"]["hf_hub_id"] == specs.PRETRAINED[name].hf_hub_id
    assert json.loads((root / "out" / RELEASED_BACKBONE / "config.json").read_text())["num_classes"] == 40
    assert all("would upload" in line for line in lines)


@pytest.mark.parametrize("damage, message", [
    ("corrupt", "torch weights file .* has sha256"),
    ("remove", "torch weights file .* is missing"),
    ("stale_card", "model card .* differs from its results"),
])
def test_a_bad_file_stops_everything_before_any_upload(as_published, damage, message):
    root = as_published
    weights_file = root / SHIPPED / f"{RELEASED_BACKBONE}.safetensors"
    if damage == "corrupt":
        data = bytearray(weights_file.read_bytes())
        data[-1] ^= 1
        weights_file.write_bytes(bytes(data))
    elif damage == "remove":
        weights_file.unlink()
    else:
        card = root / "cards" / RELEASED_BACKBONE / "README.md"
        card.write_text(card.read_text() + "\nhand-edited\n")
    with HubStandIn(TOKENS) as hub:
        env = hub_env(hub, root)
        done = subprocess.run([sys.executable, "-c", PUBLISH, str(root), str(root / SHIPPED), *NAMES], env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode != 0
        assert RELEASED_BACKBONE in done.stderr and "PublishError" in done.stderr
        assert __import__("re").search(message, done.stderr)
        assert hub.repos == {} and not [r for r in hub.requests if r[0] == "POST"]


@pytest.mark.parametrize("token, message", [(None, "no Hugging Face token"), ("tok-outsider", "may write to")])
def test_no_token_or_no_access_uploads_nothing(as_published, token, message):
    root = as_published
    with HubStandIn(TOKENS) as hub:
        env = hub_env(hub, root, token)
        if token is None:
            env.pop("HF_TOKEN")
        done = subprocess.run([sys.executable, "-c", PUBLISH, str(root), str(root / SHIPPED), RELEASED_NAME],
                              env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode != 0 and message in done.stderr
        assert hub.repos == {}


def test_publish_then_every_door_loads_it_from_an_empty_cache(as_published):
    root = as_published
    import torch

    from convgru_zoo import create_forecaster
    import timm
    clip = np.random.default_rng(0).random((1, 10, 3, 64, 64), dtype=np.float32)
    np.save(root / "clip.npy", clip)
    with torch.no_grad():  # the recorded outputs: the local (package) files
        expected_logits = timm.create_model(RELEASED_BACKBONE, pretrained=True).eval()(torch.from_numpy(clip)).numpy()
        expected_forecast = create_forecaster(RELEASED_NAME.split(".")[0], pretrained=True).eval()(
            torch.from_numpy(clip[:, :, :1])).numpy()

    with HubStandIn(TOKENS) as hub:
        env = hub_env(hub, root)
        commits = json.loads(run(PUBLISH, root, root / SHIPPED, *NAMES, env=env))
        for name in NAMES:
            repo = hub.repos[f"{specs.HF_ORG}/{name}"]
            assert commits[name] == repo["commits"][-1] and len(repo["commits"]) == 2  # created, one commit
            assert repo["files"]["model.safetensors"] == (root / SHIPPED / f"{name}.safetensors").read_bytes()
            assert repo["files"]["README.md"] == (root / "cards" / name / "README.md").read_bytes()
        again = json.loads(run(PUBLISH, root, root / SHIPPED, *NAMES, env=env))
        assert again == commits and all(len(hub.repos[f"{specs.HF_ORG}/{n}"]["commits"]) == 2 for n in NAMES)

        empty = root / "empty-package"
        empty.mkdir()
        run(LOAD, root, empty, RELEASED_BACKBONE, RELEASED_NAME, env=env)
    outputs = np.load(root / "outputs.npz")
    for door in ("timm", "timm_hf_hub", "mindcv"):
        np.testing.assert_allclose(outputs[door], expected_logits, rtol=1e-4, atol=1e-5, err_msg=door)
    for door in ("forecaster", "forecaster_mindspore"):
        np.testing.assert_allclose(outputs[door], expected_forecast, rtol=1e-4, atol=1e-5, err_msg=door)
    assert "stem.conv.weight" in set(outputs["ckpt_keys"])
