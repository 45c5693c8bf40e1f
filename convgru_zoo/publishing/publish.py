"""Publish released weights to the Hugging Face Hub: one repo per tag, for PyTorch and MindSpore users alike.

    convgru-zoo publish [TAG ...] [--org ORG] [--dry-run] [--out DIR]

For each tag it builds the Hub repo folder: the model card (``README.md``), the PyTorch safetensors,
the MindSpore checkpoint (``model.ckpt``, readable with plain ``mindspore.load_checkpoint``; none for a GRU-RCN
whose image backbone MindCV has not), a ``config.json`` (timm's, so ``timm.create_model("hf-hub:<org>/<tag>")`` works once convgru_zoo is
imported; the forecaster's architecture and arguments otherwise), the release record, the evaluation
JSONs and the pictures. Every file is checked before anything is uploaded: the sha256 of both weight
files against ``weights/published.json`` (a MindSpore file that is not committed is converted again
and must match), and the card against a fresh rendering of the results. Then, per tag, one
``create_repo`` and one commit through huggingface_hub, with the endpoint and token it reads itself
(``HF_ENDPOINT``, ``HF_TOKEN`` or the login cache). huggingface_hub leaves unchanged files out of a
commit and makes no empty commit, so publishing the same files again changes nothing.
"""
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

from . import cards
from .. import pretrained, specs
from .._files import atomic_write_json, sha256_of
from .release import convert_to_mindspore, result_dir, weights_path


class PublishError(RuntimeError):
    """A tag that cannot be published as it is: missing or corrupted file, stale card, no token, no access."""


def _verified(name, framework, path, expected):
    if not path.is_file():
        raise PublishError(f"{name}: {framework} weights file {path} is missing")
    actual = sha256_of(path)
    if actual != expected:
        raise PublishError(f"{name}: {framework} weights file {path} has sha256 {actual}, but {expected} was "
                           "published (convgru_zoo/weights/published.json); release it again or restore the file")
    return path


def hub_config(weights: specs.PretrainedWeights) -> dict:
    """``config.json`` of the Hub repo: timm's layout for backbones and GRU-RCNs, the architecture and arguments for
    forecasters."""
    if weights.arch in specs.RCN_MODELS:
        return _rcn_hub_config(weights)
    pretrained_cfg = {"hf_hub_id": weights.hf_hub_id, "tag": weights.tag, "input_size": list(weights.input_size),
                      "mean": list(weights.mean), "std": list(weights.std), "num_classes": weights.num_classes,
                      "license": weights.license, "description": weights.description}
    if weights.task == "classify":
        spec = specs.BACKBONES[weights.arch]
        return {"architecture": weights.arch, "num_classes": weights.num_classes, "num_features": spec.dims[-1],
                "global_pool": "avg", "model_args": {"in_chans": weights.input_size[0]},
                "pretrained_cfg": {**pretrained_cfg, "first_conv": "stem.conv", "classifier": "head.fc",
                                   "crop_pct": 1.0, "interpolation": "bilinear"}}
    return {"architecture": weights.arch, "library": "convgru_zoo", "model_args": asdict(specs.FORECASTERS[weights.arch]),
            "pretrained_cfg": pretrained_cfg}


def _rcn_hub_config(weights: specs.PretrainedWeights) -> dict:
    """A GRU-RCN tag's ``config.json``: its timm config as the model registers it (the image backbone's
    normalisation and first convolution, the tag's frame size and classes; needs timm)."""
    from ..torch.convgru_rcn import tagged_cfg

    spec = specs.RCN_MODELS[weights.arch]
    levels = len(spec.out_indices) if spec.out_indices is not None else 3
    cfg = {key: list(value) if isinstance(value, tuple) else value for key, value in tagged_cfg(weights).items()}
    return {"architecture": weights.arch, "num_classes": weights.num_classes,
            "num_features": spec.width * (1 if spec.stacked else levels), "global_pool": "avg",
            "model_args": {"in_chans": weights.input_size[0]}, "pretrained_cfg": {**cfg, "tag": weights.tag}}


def build_folder(name: str, out, cards_dir) -> dict:
    """Write and check the Hub repo folder of ``name`` in ``out/<name>``; return ``{path in repo: local file}``."""
    weights = pretrained.get(name)
    source = result_dir(name, cards_dir)
    if not (source / "release.json").is_file():
        raise PublishError(f"{name}: no release in {source} (release.json missing); run `convgru-zoo release {name} ...`")
    expected = dict(weights.sha256)
    missing = [fw for fw in weights.frameworks if fw not in expected]
    if missing:
        raise PublishError(f"{name}: no published sha256 for {', '.join(missing)} in convgru_zoo/weights/published.json")
    card = source / "README.md"
    if not card.is_file() or card.read_text() != cards.render(name, cards_dir):
        raise PublishError(f"{name}: model card {card} is missing or differs from its results; run `convgru-zoo cards`")
    folder = Path(out) / name
    folder.mkdir(parents=True, exist_ok=True)
    files = {"README.md": card,
             specs.WEIGHT_FILES["torch"]: _verified(name, "torch", weights_path(weights, "torch", cards_dir),
                                                    expected["torch"])}
    if "mindspore" in weights.frameworks:
        ms_file = weights_path(weights, "mindspore", cards_dir)
        if not weights.ships:  # not committed: convert again, byte-for-byte the published file
            ms_file = folder / specs.WEIGHT_FILES["mindspore"]
            convert_to_mindspore(files[specs.WEIGHT_FILES["torch"]], ms_file, weights.arch)
        files[specs.WEIGHT_FILES["mindspore"]] = _verified(name, "mindspore", ms_file, expected["mindspore"])
    atomic_write_json(folder / "config.json", hub_config(weights))
    files["config.json"] = folder / "config.json"
    extras = [*source.glob("*.png"), *source.glob("eval_*.json"), source / "release.json",
              source / cards.COST_CURVE, source / cards.DIGIT_GAP]
    for extra in sorted(path for path in extras if path.is_file()):
        files[extra.name] = extra
    for path_in_repo, local in files.items():
        if local.parent != folder:
            shutil.copyfile(local, folder / path_in_repo)
    return {path_in_repo: folder / path_in_repo for path_in_repo in sorted(files)}


def publish(cards_dir, names=None, org=specs.HF_ORG, dry_run=False, out=None, log=print) -> dict:
    """Build and check every tag's folder, then (unless ``dry_run``) upload each; return ``{name: commit or None}``."""
    names = list(names or cards.released_names(cards_dir))
    if not names:
        raise PublishError(f"nothing to publish: no tag has a release in {cards_dir}")
    for name in names:
        pretrained.get(name)  # unknown tags fail before any work
    workdir = Path(out) if out else Path(tempfile.mkdtemp(prefix="convgru-zoo-publish-"))
    try:
        folders = {name: build_folder(name, workdir, cards_dir) for name in names}
        if dry_run:
            for name, files in folders.items():
                log(f"{org}/{name}: would upload {', '.join(files)} from {workdir / name}")
            return {name: None for name in names}
        return _upload(folders, workdir, org, log)
    finally:
        if out is None:
            shutil.rmtree(workdir, ignore_errors=True)


def _upload(folders, workdir, org, log):
    """Check the token and its access to ``org`` and create every repo, then upload: no upload on a known failure."""
    from huggingface_hub import HfApi, get_token
    from huggingface_hub.errors import HfHubHTTPError

    if get_token() is None:
        raise PublishError("no Hugging Face token: set HF_TOKEN or run `hf auth login` (nothing was uploaded)")
    api = HfApi()

    def hub_call(what, call):
        try:
            return call()
        except HfHubHTTPError as error:
            status = error.response.status_code if error.response is not None else None
            reason = "the token may not write there" if status in (401, 403) else f"HTTP {status}"
            raise PublishError(f"{what} on {api.endpoint} failed ({reason}): {error}") from error

    me = hub_call("checking the token", api.whoami)
    writable = {me["name"], *(o["name"] for o in me.get("orgs", []))}
    if org not in writable:
        raise PublishError(f"--org {org}: the token of {me['name']} may write to {sorted(writable)} only "
                           "(nothing was uploaded)")
    for name in folders:
        hub_call(f"{name}: creating {org}/{name}", lambda: api.create_repo(f"{org}/{name}", exist_ok=True))
    commits = {}
    for name in folders:
        info = hub_call(f"{name}: uploading to {org}/{name}", lambda: api.upload_folder(
            repo_id=f"{org}/{name}", folder_path=workdir / name, commit_message=f"Publish {name} (convgru-zoo)"))
        commits[name] = info.oid
        log(f"{org}/{name}: {info.commit_url}")
    return commits
