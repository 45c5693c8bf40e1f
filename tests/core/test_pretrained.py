"""Pretrained weights end to end with files the tests make: shipped copies, a hand-filled offline
Hugging Face cache, timm ``local-dir:``; sha256 checks and the errors for missing/corrupted/unfitting files."""
import dataclasses
import hashlib
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from convgru_zoo import pretrained, specs
from convgru_zoo._files import atomic_write
from helpers import REPO, unpublish

try:
    import safetensors.torch as safetensors_torch
    import timm
    import torch

    import convgru_zoo  # noqa: F401  registers the models with timm
except ImportError:  # the framework-free part still runs
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="needs torch, timm and safetensors")

NAME = "convgru_tiny.mmnist_motion"


def publish(monkeypatch, name, digest, framework="torch"):
    """Record ``digest`` as the published sha256 of ``name`` for this test."""
    weights = dataclasses.replace(specs.PRETRAINED[name], sha256=((framework, digest),))
    monkeypatch.setitem(specs.PRETRAINED, name, weights)


# ---- framework-free part ----------------------------------------------------------------------

def test_atomic_write_returns_the_sha256_and_leaves_nothing_half_written(tmp_path):
    target = tmp_path / "sub" / "w.bin"
    digest = atomic_write(target, lambda tmp: Path(tmp).write_bytes(b"weights"))
    assert target.read_bytes() == b"weights"
    assert digest == hashlib.sha256(b"weights").hexdigest() == pretrained.sha256_of(target)

    def crash(tmp):
        Path(tmp).write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, crash)
    assert target.read_bytes() == b"weights"           # the old file is untouched
    assert sorted(p.name for p in target.parent.iterdir()) == ["w.bin"]  # no temp file left


@pytest.mark.parametrize("umask", [0o022, 0o077])
@pytest.mark.parametrize("writer_mode", [None, 0o400], ids=["as-created", "read-only"])
def test_atomic_write_gives_the_mode_of_any_new_file_under_the_umask(tmp_path, umask, writer_mode):
    """Not mkstemp's 0600, nor the 0400 MindSpore's save_checkpoint leaves: 0644 under umask 022."""
    def write(tmp):
        Path(tmp).write_bytes(b"weights")
        if writer_mode is not None:
            os.chmod(tmp, writer_mode)

    old = os.umask(umask)
    try:
        atomic_write(tmp_path / "w.bin", write)
        (tmp_path / "plain.bin").write_bytes(b"")
    finally:
        os.umask(old)
    mode = (tmp_path / "w.bin").stat().st_mode & 0o777
    assert mode == 0o666 & ~umask == (tmp_path / "plain.bin").stat().st_mode & 0o777


def test_verify_names_the_file_and_the_problem(tmp_path):
    path = tmp_path / "w.safetensors"
    with pytest.raises(pretrained.PretrainedWeightsError, match=f"{path} does not exist"):
        pretrained.verify(path, "0" * 64)
    path.write_bytes(b"abc")
    good = hashlib.sha256(b"abc").hexdigest()
    assert pretrained.verify(path, good.upper()) == path
    with pytest.raises(pretrained.PretrainedWeightsError, match=rf"{path} is corrupted.*sha256 {good}, expected 1{{64}}"):
        pretrained.verify(path, "1" * 64)


def test_unknown_unpublished_and_bad_framework_are_clear(monkeypatch):
    with pytest.raises(pretrained.PretrainedWeightsError, match="unknown pretrained weights 'convgru_huge.x'.*known: "):
        pretrained.weights_file("convgru_huge.x")
    unpublish(monkeypatch, NAME)
    with pytest.raises(pretrained.PretrainedWeightsError, match=f"{NAME} has no published torch weights yet"):
        pretrained.weights_file(NAME)
    with pytest.raises(ValueError, match=r"framework must be one of \('torch', 'mindspore'\), got 'jax'"):
        pretrained.weights_file(NAME, "jax")


def test_shipped_copy_is_used_first_and_checked(tmp_path, monkeypatch):
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path)
    shipped = tmp_path / f"{NAME}.safetensors"
    assert pretrained.shipped_path(NAME) == shipped
    assert pretrained.shipped_path(NAME, "mindspore") == tmp_path / f"{NAME}.ckpt"
    shipped.write_bytes(b"tiny weights")
    publish(monkeypatch, NAME, hashlib.sha256(b"tiny weights").hexdigest())
    assert pretrained.weights_file(NAME) == shipped
    shipped.write_bytes(b"tiny weightz")
    with pytest.raises(pretrained.PretrainedWeightsError, match=f"{shipped} is corrupted"):
        pretrained.weights_file(NAME)


# ---- through timm -----------------------------------------------------------------------------

def save_weights(model, path):
    """Weights of ``model`` as safetensors, written atomically; returns the sha256."""
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    return atomic_write(path, lambda tmp: safetensors_torch.save_file(state, tmp))


def assert_same_weights(model, path, skip=()):
    saved = safetensors_torch.load_file(str(path))
    state = model.state_dict()
    for key, value in saved.items():
        if not key.startswith(skip):
            torch.testing.assert_close(state[key], value, rtol=0, atol=0, msg=key)


@pytest.fixture
def shipped_tiny(tmp_path, monkeypatch):
    """convgru_tiny weights shipped in a (temporary) package weights folder and published."""
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path)
    torch.manual_seed(3)
    source = timm.create_model("convgru_tiny")
    path = tmp_path / f"{NAME}.safetensors"
    publish(monkeypatch, NAME, save_weights(source, path))
    return path


@needs_torch
def test_timm_pretrained_loads_the_checked_shipped_file(shipped_tiny):
    model = timm.create_model("convgru_tiny", pretrained=True)
    assert_same_weights(model, shipped_tiny)
    assert model.pretrained_cfg["file"] == str(shipped_tiny)
    features = timm.create_model("convgru_tiny.mmnist_motion", pretrained=True, features_only=True)
    assert_same_weights(features.model, shipped_tiny, skip=("head.",))


@needs_torch
def test_timm_pretrained_adapts_in_chans_and_classes(shipped_tiny):
    model = timm.create_model("convgru_tiny", pretrained=True, in_chans=1, num_classes=5)
    stem = safetensors_torch.load_file(str(shipped_tiny))["stem.conv.weight"]
    assert stem.shape[1] == 3
    torch.testing.assert_close(model.stem.conv.weight, stem.sum(1, keepdim=True))
    assert model.head.fc.weight.shape == (5, specs.BACKBONES["convgru_tiny"].dims[-1])
    assert_same_weights(model, shipped_tiny, skip=("stem.conv.", "head."))
    x = torch.randn(1, 2, 1, 32, 32)
    rgb = timm.create_model("convgru_tiny", pretrained=True).eval()
    with torch.no_grad():  # a grey clip gives the features of its RGB replica
        torch.testing.assert_close(model.eval().forward_features(x),
                                   rgb.forward_features(x.expand(-1, -1, 3, -1, -1)), atol=1e-5, rtol=1e-4)


@needs_torch
def test_corrupted_or_unfitting_files_fail_before_use(shipped_tiny, monkeypatch):
    data = bytearray(shipped_tiny.read_bytes())
    data[-1] ^= 1
    shipped_tiny.write_bytes(bytes(data))
    with pytest.raises(pretrained.PretrainedWeightsError, match=f"{shipped_tiny} is corrupted"):
        timm.create_model("convgru_tiny", pretrained=True)
    # a file that passes its checksum but holds another variant's weights
    publish(monkeypatch, NAME, save_weights(timm.create_model("convgru_small"), shipped_tiny))
    with pytest.raises(pretrained.PretrainedWeightsError, match=f"(?s){shipped_tiny} does not fit convgru_tiny.*size mismatch"):
        timm.create_model("convgru_tiny", pretrained=True)


@needs_torch
def test_unpublished_weights_are_named_through_timm(monkeypatch):
    name = "convgru_small.mmnist_motion"
    unpublish(monkeypatch, name)
    with pytest.raises(pretrained.PretrainedWeightsError, match=f"{name} has no published torch"):
        timm.create_model("convgru_small", pretrained=True)


HUB_ONLY = [w for w in specs.PRETRAINED.values() if w.sha256 and not w.ships and w.task == "classify"]
needs_hub_only = pytest.mark.skipif(not HUB_ONLY, reason="no backbone is published on the Hub only yet")


@needs_torch
@needs_hub_only
def test_hub_only_weights_offline_with_an_empty_cache_name_the_next_step(monkeypatch, tmp_path):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    name, arch = HUB_ONLY[0].name, HUB_ONLY[0].arch
    with pytest.raises(pretrained.PretrainedWeightsError) as error:
        timm.create_model(arch, pretrained=True)
    assert re.match(rf"{name}: not shipped at .* and convgru-zoo/{name}/model.safetensors could not be fetched "
                    rf"from the Hub or its cache: HF_HUB_OFFLINE is set", str(error.value))
    assert f"huggingface_hub.snapshot_download('convgru-zoo/{name}')" in str(error.value)
    assert (f"model_cards/{name}/model.safetensors: timm.create_model('{arch}', pretrained=True, "
            f"pretrained_cfg_overlay=dict(file=PATH))") in str(error.value)
    with pytest.raises(pretrained.PretrainedWeightsError,
                       match=rf"model_cards/{name}/model.safetensors: convgru_zoo.publishing.release."
                             rf"convert_to_mindspore\(PATH, 'model.ckpt', '{arch}'\), then mindcv.create_model\('{arch}', "
                             rf"checkpoint_file='model.ckpt'\)"):
        pretrained.weights_file(name, "mindspore")


@needs_torch
@needs_hub_only
def test_the_named_next_step_loads_the_checkouts_copy():
    """The step the error above names, with the checkout's file: the published weights, offline."""
    weights = HUB_ONLY[0]
    path = REPO / "model_cards" / weights.name / specs.WEIGHT_FILES["torch"]
    assert pretrained.sha256_of(path) == weights.file_sha256("torch")
    model = timm.create_model(weights.arch, pretrained=True, pretrained_cfg_overlay=dict(file=str(path)))
    state = model.state_dict()
    for key, value in safetensors_torch.load_file(str(path)).items():
        if not key.endswith("num_batches_tracked"):  # a counter timm's loading leaves alone
            torch.testing.assert_close(state[key], value, rtol=0, atol=0, msg=key)


UNREACHABLE_HUB = textwrap.dedent("""
    import sys
    from convgru_zoo import pretrained
    try:
        pretrained.weights_file(sys.argv[1])
    except pretrained.PretrainedWeightsError as e:
        print(e)
""")


@needs_hub_only
@pytest.mark.parametrize("status", [503, 404])
def test_an_unreachable_hub_fails_at_the_first_request(tmp_path, status):
    """huggingface_hub retries a failed download for about half a minute; one request tells enough. A Hub
    without the file (404) is reachable: its own error, then the local copy as the next step."""
    pytest.importorskip("huggingface_hub")
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    import threading

    requests = []

    class Unavailable(BaseHTTPRequestHandler):
        def do_HEAD(self):
            requests.append((self.command, self.path))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_HEAD

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Unavailable)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    name = HUB_ONLY[0].name
    env = dict(os.environ, HF_ENDPOINT=f"http://127.0.0.1:{server.server_port}", HF_HUB_CACHE=str(tmp_path),
               HF_HUB_OFFLINE="0", PYTHONPATH=str(REPO))
    try:
        done = subprocess.run([sys.executable, "-c", UNREACHABLE_HUB, name], env=env, capture_output=True,
                              text=True, timeout=300)
    finally:
        server.shutdown()
        server.server_close()
    assert done.returncode == 0, done.stderr[-3000:]
    hub_file = f"/convgru-zoo/{name}/resolve/main/model.safetensors"
    asked = [request for request in requests if request[1] == hub_file]
    local = f"load a local copy, such as a convgru-zoo checkout's model_cards/{name}/model.safetensors"
    if status == 503:
        assert asked == [("HEAD", hub_file)]
        assert re.search(r"could not be fetched from the Hub or its cache: HfHubHTTPError: .*503", done.stdout)
        assert f"huggingface_hub.snapshot_download('convgru-zoo/{name}')" in done.stdout and local in done.stdout
    else:  # our probe and huggingface_hub's own request, no retries
        assert asked == [("HEAD", hub_file)] * 2
        assert re.search(r"could not be fetched from the Hub or its cache: \w*NotFoundError: ", done.stdout)
        assert f"Next step: {local}" in done.stdout and "snapshot_download" not in done.stdout


@needs_torch
def test_timm_local_dir_loads_a_saved_folder(tmp_path):
    from timm.models import save_for_hf

    torch.manual_seed(4)
    source = timm.create_model("convgru_tiny", num_classes=6)
    save_for_hf(source, tmp_path, safe_serialization=True)
    model = timm.create_model(f"local-dir:{tmp_path}", pretrained=True)
    assert model.num_classes == 6
    assert_same_weights(model, tmp_path / "model.safetensors")


# ---- an offline Hugging Face cache, filled by hand; a fresh interpreter so HF_HUB_OFFLINE applies ----

OFFLINE_CHECK = textwrap.dedent("""
    import dataclasses, sys
    from pathlib import Path
    import torch, timm
    from safetensors.torch import load_file
    from convgru_zoo import pretrained, specs

    name, digest, repo, no_shipped_weights = sys.argv[1:5]
    specs.PRETRAINED[name] = dataclasses.replace(specs.PRETRAINED[name], sha256=(("torch", digest),))
    pretrained.WEIGHTS_DIR = Path(no_shipped_weights)  # the package's own copy would be used first
    path = pretrained.weights_file(name)
    saved = load_file(str(path))
    for model in (timm.create_model("convgru_tiny", pretrained=True),
                  timm.create_model("hf-hub:" + specs.HF_ORG + "/" + name, pretrained=True),
                  torch.hub.load(repo, "convgru_tiny", source="local", pretrained=True)):
        state = model.state_dict()
        assert all(torch.equal(state[k], v) for k, v in saved.items()), "weights differ"
    print("LOADED", path)

    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))  # corrupted in the cache, then gone from it
    for damage in ("corrupted", "missing"):
        try:
            timm.create_model("convgru_tiny", pretrained=True)
        except pretrained.PretrainedWeightsError as e:
            print("ERROR", e)
        path.unlink(missing_ok=True)
""")


@needs_torch
def test_offline_hub_cache_end_to_end(tmp_path):
    """A Hub cache filled by hand, read with HF_HUB_OFFLINE=1 (set before huggingface_hub is imported)."""
    from timm.models import save_for_hf

    cache = tmp_path / "hub"
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / f"models--{specs.HF_ORG}--{NAME}"
    snapshot = repo / "snapshots" / commit
    torch.manual_seed(5)
    save_for_hf(timm.create_model("convgru_tiny"), snapshot, safe_serialization=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    weights = snapshot / specs.WEIGHT_FILES["torch"]

    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(cache), HF_HOME=str(tmp_path / "hf_home"))
    (tmp_path / "no_weights").mkdir()
    done = subprocess.run([sys.executable, "-c", OFFLINE_CHECK, NAME, pretrained.sha256_of(weights), str(REPO),
                           str(tmp_path / "no_weights")],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    loaded, corrupted, missing = done.stdout.strip().splitlines()
    assert loaded == f"LOADED {weights}"
    assert corrupted.startswith(f"ERROR weights file {weights} is corrupted or not the published one: sha256 ")
    assert missing.startswith(f"ERROR {NAME}: not shipped at ")
    assert f"{specs.HF_ORG}/{NAME}/model.safetensors could not be fetched from the Hub or its cache" in missing
