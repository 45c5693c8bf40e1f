"""torch.hub on a local checkout: list, help and load of every backbone entry point.

``torch.hub.load`` takes ``source="local"``; ``list`` and ``help`` only take a GitHub repo, so they
run here with their download step answered by this checkout (everything after it is torch's code).
"""
import importlib.util
import re
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("timm")

from convgru_zoo import pretrained, specs  # noqa: E402
from convgru_zoo.torch.convgru_net import ConvGRUNet  # noqa: E402
from helpers import REPO as CHECKOUT, unpublish  # noqa: E402

REPO = str(CHECKOUT)


@pytest.fixture
def github_is_this_checkout(monkeypatch):
    """torch.hub.list/help of "<owner>/convgru-zoo" read this checkout instead of downloading it."""
    monkeypatch.setattr(torch.hub, "_get_cache_or_reload", lambda *args, **kwargs: REPO)
    return "convgru-zoo/convgru-zoo"


def test_list_has_one_entry_point_per_backbone(github_is_this_checkout):
    assert set(specs.BACKBONES) <= set(torch.hub.list(github_is_this_checkout, trust_repo=True))


def test_dependencies_are_importable():
    spec = importlib.util.spec_from_file_location("hubconf_under_test", Path(REPO) / "hubconf.py")
    hubconf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hubconf)
    for name in hubconf.dependencies:
        assert importlib.util.find_spec(name), f"hubconf dependency {name} is not importable"


@pytest.mark.parametrize("name", sorted(specs.BACKBONES))
def test_help_documents_the_variant_as_specified(name, github_is_this_checkout):
    doc = torch.hub.help(github_is_this_checkout, name, trust_repo=True)
    spec = specs.BACKBONES[name]
    dims = re.search(r"\(([\d, ]+) channels", doc).group(1)
    assert tuple(int(d) for d in dims.split(",")) == spec.dims, doc
    assert "pretrained:" in doc and "num_classes" in doc


def test_load_builds_the_timm_model_with_its_arguments():
    model = torch.hub.load(REPO, "convgru_tiny", source="local", num_classes=7, num_frames=4).eval()
    assert isinstance(model, ConvGRUNet) and model.num_classes == 7 and model.num_frames == 4
    assert model.pretrained_cfg["hf_hub_id"] == f"{specs.HF_ORG}/convgru_tiny.mmnist_motion"
    with torch.no_grad():
        assert model(torch.randn(2, 3, 3, 32, 32)).shape == (2, 7)
    features = torch.hub.load(REPO, "convgru_small", source="local", features_only=True, out_indices=(1, 2))
    assert features.feature_info.channels() == list(specs.BACKBONES["convgru_small"].dims[1:])


def test_load_rejects_unknown_arguments_and_unpublished_weights(monkeypatch):
    with pytest.raises(TypeError):
        torch.hub.load(REPO, "convgru_tiny", source="local", hidden_dims=8)
    name = "convgru_base.mmnist_motion"
    unpublish(monkeypatch, name)
    with pytest.raises(pretrained.PretrainedWeightsError, match=f"{name} has no published"):
        torch.hub.load(REPO, "convgru_base", source="local", pretrained=True)


def test_load_builds_a_forecaster_that_forecasts_the_asked_horizon(github_is_this_checkout):
    assert {"convgru_forecaster", "convgru_forecaster_tiny"} <= set(
        torch.hub.list(github_is_this_checkout, trust_repo=True))
    model = torch.hub.load(REPO, "convgru_forecaster_tiny", source="local", output_frames=3)
    clip = torch.rand(1, 10, 1, 32, 32)
    assert model(clip).shape == (1, 3, 1, 32, 32)
