"""`import convgru_zoo` registers the backbones with timm and MindCV, whichever is imported first, also when
a model file is what imports its library (as ``create_model`` does in a fresh process)."""
import subprocess
import sys

import pytest

from convgru_zoo import specs


def _run(code):
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_importing_the_package_imports_no_framework():
    assert _run("import sys, convgru_zoo; print('torch' in sys.modules, 'mindspore' in sys.modules)") == \
        ["False", "False"]


@pytest.mark.parametrize("order", ["import convgru_zoo, timm", "import timm, convgru_zoo",
                                   "import convgru_zoo; from timm.models import list_models as _",
                                   "import convgru_zoo.torch.convgru_net"])
def test_timm_lists_the_models_in_either_import_order(order):
    names = _run(f"{order}; import timm; print(*timm.list_models('convgru*'))")
    assert names == sorted([*specs.BACKBONES, *specs.RCN_MODELS])  # the GRU-RCN models too


@pytest.mark.parametrize("order", ["import convgru_zoo, mindcv", "import mindcv, convgru_zoo",
                                   "import convgru_zoo.mindspore.convgru_net"])
def test_mindcv_lists_the_models_in_either_import_order(order):
    pytest.importorskip("mindcv")
    names = _run(f"{order}; import mindcv; print(*mindcv.list_models('convgru*'))")
    # the GRU-RCN variants whose image network MindCV has, too
    assert names == sorted([*specs.BACKBONES, *(n for n, spec in specs.RCN_MODELS.items() if spec.mindcv_backbone)])
