"""Pretrained weights: a tag such as ``convgru_small.mmnist_motion`` -> a checked local file.

One mechanism for every door (timm, MindCV, torch.hub) and both frameworks; nothing here
imports a framework. A tag's file is looked up

1. in the package folder ``convgru_zoo/weights/<arch>.<tag><ext>`` (small weights may ship there,
   so ``pretrained=True`` works offline), else
2. in the Hugging Face Hub's cache, else on the Hub (``HF_ORG/<arch>.<tag>``) through
   ``huggingface_hub.hf_hub_download``; offline (``HF_HUB_OFFLINE=1`` or no connection) it fails at
   once, naming the next step,

and is used only if its sha256 matches the one recorded in ``convgru_zoo.specs.PRETRAINED``.
Weights are written with ``convgru_zoo._files.atomic_write``, which returns the sha256 to record.
"""
import os
import re
from pathlib import Path
from typing import Optional

from . import specs
from ._files import sha256_of

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


class PretrainedWeightsError(RuntimeError):
    """Weights that cannot be used: unknown tag, unpublished, missing, corrupted or not fitting."""


def get(name: str) -> specs.PretrainedWeights:
    """The spec of pretrained weights ``<arch>.<tag>``."""
    try:
        return specs.PRETRAINED[name]
    except KeyError:
        known = ", ".join(sorted(specs.PRETRAINED))
        raise PretrainedWeightsError(f"unknown pretrained weights {name!r}; known: {known}") from None


def weights_name(arch: str, pretrained) -> str:
    """``"<arch>.<tag>"`` of the weights ``pretrained`` selects: True (the first tag of ``arch`` in
    ``specs.PRETRAINED``), a tag or its full name ``"<arch>.<tag>"``. Raises :class:`PretrainedWeightsError`
    when there is none."""
    if pretrained is True:
        default = specs.default_weights(arch)
        if default is None:
            raise PretrainedWeightsError(f"{arch} has no pretrained weights yet (no tag for it in "
                                         "convgru_zoo.specs.PRETRAINED); use pretrained=False")
        return default.name
    tags = [w.tag for w in specs.PRETRAINED.values() if w.arch == arch]
    tag = pretrained.removeprefix(f"{arch}.") if isinstance(pretrained, str) else None
    if tag not in tags:
        raise PretrainedWeightsError(f"pretrained must be True, False or one of the tags of {arch} {tags} "
                                     f"(or {arch}.<tag>), got {pretrained!r}")
    return f"{arch}.{tag}"


def by_hf_hub_id(hf_hub_id: Optional[str]) -> Optional[specs.PretrainedWeights]:
    """The spec whose Hub repo is ``hf_hub_id``, or None when that repo is not one of ours."""
    return next((w for w in specs.PRETRAINED.values() if w.hf_hub_id == hf_hub_id), None)


def verify(path, sha256: str) -> Path:
    """Return ``path`` if the file exists and its sha256 is ``sha256``; raise naming the file otherwise."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a weights file path (str or os.PathLike), got {type(path).__name__}")
    if not isinstance(sha256, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", sha256):
        raise TypeError(f"sha256 must be a 64-digit hex string, got {sha256!r}")
    path = Path(path)
    if not path.is_file():
        raise PretrainedWeightsError(f"weights file {path} does not exist")
    actual = sha256_of(path)
    if actual != sha256.lower():
        raise PretrainedWeightsError(
            f"weights file {path} is corrupted or not the published one: sha256 {actual}, expected {sha256}; "
            "delete it so it is fetched again")
    return path


def shipped_name(name: str, framework: str = "torch") -> str:
    """The file name of a shipped copy of ``name``'s ``framework`` file (in the package's ``weights`` folder)."""
    return f"{name}{Path(specs.WEIGHT_FILES[_framework(framework)]).suffix}"


def shipped_path(name: str, framework: str = "torch") -> Path:
    """Where the installed package keeps a shipped copy of ``name``'s ``framework`` file."""
    return WEIGHTS_DIR / shipped_name(name, framework)


def weights_file(name: str, framework: str = "torch", cache_dir=None) -> Path:
    """Local path of ``name``'s ``framework`` weights, checked against the recorded sha256.

    Uses the copy shipped in the package when there is one, else downloads from (or reads the cache
    of) the Hub. Raises :class:`PretrainedWeightsError` naming the file and the problem.
    """
    weights = get(name)
    expected = weights.file_sha256(_framework(framework))
    if expected is None:
        raise PretrainedWeightsError(
            f"{name} has no published {framework} weights yet (no sha256 recorded in convgru_zoo.specs.PRETRAINED)")
    shipped = shipped_path(name, framework)
    if shipped.exists():
        return verify(shipped, expected)
    return verify(_hub_download(weights, specs.WEIGHT_FILES[framework], cache_dir, shipped), expected)


def _hub_download(weights: specs.PretrainedWeights, filename: str, cache_dir, shipped: Path) -> Path:
    """The Hub's file, from the cache when it is there (the sha256 pins its content), else downloaded.

    An unreachable Hub fails at the first try, naming the next step: huggingface_hub would otherwise
    retry for about half a minute before failing with an error that names neither.
    """
    try:
        import huggingface_hub
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError:
        raise PretrainedWeightsError(
            f"{weights.name}: not shipped at {shipped} and huggingface_hub is not installed to fetch "
            f"{weights.hf_hub_id}/{filename} (pip install 'convgru-zoo[hub]')") from None
    where = dict(revision=weights.revision, cache_dir=cache_dir)
    not_here = (f"{weights.name}: not shipped at {shipped} and {weights.hf_hub_id}/{filename} could not be "
                "fetched from the Hub or its cache")
    try:
        return Path(huggingface_hub.hf_hub_download(weights.hf_hub_id, filename, local_files_only=True, **where))
    except LocalEntryNotFoundError:
        pass
    reason = hub_unreachable(weights.hf_hub_id, [filename], **where)
    if reason:
        raise PretrainedWeightsError(f"{not_here}: {reason}. {_next_step(weights, filename)}")
    try:
        return Path(huggingface_hub.hf_hub_download(weights.hf_hub_id, filename, **where))
    except Exception as e:  # no such file on the Hub, the connection lost mid-download, a full disk
        local = _local_copy(weights, filename)
        raise PretrainedWeightsError(f"{not_here}: {type(e).__name__}: {e}" + (
            f"\nNext step: {local}" if local else "")) from e


def hub_unreachable(repo_id: str, filenames, revision=None, cache_dir=None) -> Optional[str]:
    """Why the Hub repo ``repo_id`` cannot give any of ``filenames`` now, or None when it can.

    None of them is in the cache and ``HF_HUB_OFFLINE`` is set, or the one request made (for the first
    file, no retries) fails to connect or meets a server error. A loader checks this first to fail at once
    where huggingface_hub would retry for about half a minute; a Hub that answers "no such repo or file"
    is reachable: the download that follows names what is missing.
    """
    import huggingface_hub
    from huggingface_hub.errors import HfHubHTTPError

    if any(isinstance(huggingface_hub.try_to_load_from_cache(repo_id, f, cache_dir=cache_dir, revision=revision), str)
           for f in filenames):
        return None
    if huggingface_hub.constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set and the cache does not hold it"
    try:
        huggingface_hub.get_hf_file_metadata(huggingface_hub.hf_hub_url(repo_id, filenames[0], revision=revision))
    except HfHubHTTPError as e:
        status = e.response.status_code if e.response is not None else None
        return None if status is not None and status < 500 else f"{type(e).__name__}: {e}"
    except Exception as e:  # no connection, a timeout
        return f"{type(e).__name__}: {e}"
    return None


def _next_step(weights: specs.PretrainedWeights, filename: str) -> str:
    """What to do when the Hub cannot be reached: fetch the file once online, or use a local copy."""
    step = (f"Next step: download it once while online (huggingface_hub.snapshot_download("
            f"{weights.hf_hub_id!r})), then it loads offline from the cache")
    local = _local_copy(weights, filename)
    return f"{step}; or {local}" if local else step


def _local_copy(weights: specs.PretrainedWeights, filename: str) -> str:
    """How to load a local copy of a backbone's PyTorch file (a checkout keeps each released backbone's in
    ``model_cards/<arch>.<tag>/``), or "" for a forecaster."""
    if weights.task != "classify":
        return ""
    local = f"model_cards/{weights.name}/{specs.WEIGHT_FILES['torch']}"
    if filename == specs.WEIGHT_FILES["torch"]:
        return (f"load a local copy, such as a convgru-zoo checkout's {local}: timm.create_model("
                f"{weights.arch!r}, pretrained=True, pretrained_cfg_overlay=dict(file=PATH))")
    return (f"convert a local copy of its PyTorch file, such as a convgru-zoo checkout's {local}: "
            f"convgru_zoo.publishing.release.convert_to_mindspore(PATH, 'model.ckpt', {weights.arch!r}), then "
            f"mindcv.create_model({weights.arch!r}, checkpoint_file='model.ckpt')")


def _framework(framework: str) -> str:
    if framework not in specs.WEIGHT_FILES:
        raise ValueError(f"framework must be one of {specs.FRAMEWORKS}, got {framework!r}")
    return framework
