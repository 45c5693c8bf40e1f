"""Every ```python block of README.md and of every model card runs as pasted, each in a fresh process.

The Hub lines read a huggingface_hub cache filled from this checkout's files (each tag's Hub folder as
``convgru-zoo publish`` builds it) with ``HF_HUB_OFFLINE=1``; ``torch.hub.load(specs.GITHUB_REPO, ...)``
reads this checkout (torch.hub's download step answered by it, as tests/models/test_hubconf.py does, and only
for that repository). Nothing else is stood in for: a block that names an undefined variable, a
placeholder or a file it does not fetch fails here.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap

import pytest

from convgru_zoo import specs
from helpers import CARDS_DIR, REPO

pytest.importorskip("huggingface_hub")
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
DOCS = [REPO / "README.md", *sorted(CARDS_DIR.glob("*/README.md"))]
COMMIT = "0" * 39 + "1"  # the revision the filled cache calls main

# Runs before a block that calls torch.hub: its GitHub download step answered by this checkout.
TORCH_HUB = textwrap.dedent("""
    import torch.hub
    def _this_checkout(repo, *args, **kwargs):
        if repo.split(":")[0] != {github!r}:
            raise AssertionError(f"torch.hub repository {{repo!r}} is not specs.GITHUB_REPO {github!r}")
        return {repo!r}
    torch.hub._get_cache_or_reload = _this_checkout
""")


def _blocks():
    for path in DOCS:
        for index, match in enumerate(BLOCK.finditer(path.read_text())):
            yield pytest.param(match.group(1), id=f"{path.relative_to(REPO)}#{index}")


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory):
    """A huggingface_hub cache holding every released tag's Hub repo, built from this checkout's files."""
    from convgru_zoo.publishing import cards, publish

    root = tmp_path_factory.mktemp("hub")
    for name in cards.released_names(CARDS_DIR):
        files = publish.build_folder(name, root / "folders", CARDS_DIR)
        repo = root / "cache" / f"models--{specs.HF_ORG}--{name}"
        (repo / "refs").mkdir(parents=True)
        (repo / "refs" / "main").write_text(COMMIT)
        (repo / "snapshots" / COMMIT).mkdir(parents=True)
        for path_in_repo, local in files.items():
            shutil.copyfile(local, repo / "snapshots" / COMMIT / path_in_repo)
    return root


QUOTED_REPOS = {re.search(r"github\.com/([\w.-]+/[\w.-]+)", json.loads(p.read_text())["url"]).group(1)
                for p in (REPO / "model_cards" / "reference").glob("*.json")}


def test_every_document_has_python_blocks_and_names_the_one_repository():
    for path in DOCS:
        text = path.read_text()
        assert BLOCK.search(text), f"{path} has no python block"
        assert not re.search(r"<(owner|checkout)[^>]*>", text), f"{path} holds a placeholder"
        for repo in re.findall(r'torch\.hub\.load\("([^"]+)"', text):
            assert repo == specs.GITHUB_REPO, f"{path}: torch.hub.load({repo!r})"
        for repo in re.findall(r"github\.com/([\w.-]+/[\w.-]+)", text):  # ours, or a source a card quotes
            assert repo == specs.GITHUB_REPO or repo in QUOTED_REPOS, f"{path}: github.com/{repo}"
        for repo in re.findall(r"hf-hub:([\w.-]+)/", text):
            assert repo == specs.HF_ORG, f"{path}: hf-hub:{repo}/"
    assert f'torch.hub.load("{specs.GITHUB_REPO}"' in (REPO / "README.md").read_text()
    assert f'torch.hub.load("{specs.GITHUB_REPO}"' in (REPO / "hubconf.py").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("code", list(_blocks()))
def test_block_runs_as_pasted(code, hub_cache, tmp_path):
    prelude = TORCH_HUB.format(github=specs.GITHUB_REPO, repo=str(REPO)) if "torch.hub" in code else ""
    (tmp_path / "block.py").write_text(prelude + code)
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(hub_cache / "cache"),
           "HF_HOME": str(tmp_path / "hf"), "TORCH_HOME": str(tmp_path / "torch"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "block.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, f"{code}\n---\n{done.stderr[-3000:]}"
