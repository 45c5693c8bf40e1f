"""A new backbone size is one ``specs.BACKBONES`` entry: timm, MindCV and torch.hub create it, untagged."""
import json
import subprocess
import sys

import pytest

from helpers import REPO

pytest.importorskip("timm")
pytest.importorskip("mindcv")

NEW_SIZE = f"""
import json
from convgru_zoo import specs
specs.BACKBONES["convgru_nano"] = specs.BackboneSpec(dims=(8, 16), depths=(1, 2))
import convgru_zoo, mindcv, mindspore, timm, torch

clip = torch.rand(2, 3, 3, 32, 32)
out = {{"timm": timm.list_models("convgru_nano"), "mindcv": mindcv.list_models("convgru_nano")}}
model = timm.create_model("convgru_nano", num_classes=5)
out["timm_logits"] = list(model(clip).shape)
out["timm_stages"] = [len(stage.blocks) for stage in model.stages]
hub = torch.hub.load({str(REPO)!r}, "convgru_nano", source="local", num_classes=5)
out["hub_logits"] = list(hub(clip).shape)
out["hub_doc"] = __import__("hubconf").convgru_nano.__doc__
net = mindcv.create_model("convgru_nano", num_classes=5)
out["mindcv_logits"] = list(net(mindspore.Tensor(clip.numpy())).shape)
for create in (lambda: timm.create_model("convgru_nano", pretrained=True),  # timm's own message
               lambda: mindcv.create_model("convgru_nano", pretrained=True),
               lambda: convgru_zoo.create_model("convgru_nano", "torch", pretrained=True)):
    try:
        create()
    except RuntimeError as error:  # PretrainedWeightsError is one
        out.setdefault("untagged", []).append(str(error))
print(json.dumps(out))
"""


@pytest.mark.slow
def test_a_new_size_is_one_spec_entry():
    done = subprocess.run([sys.executable, "-c", NEW_SIZE], capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.splitlines()[-1])
    assert out["timm"] == out["mindcv"] == ["convgru_nano"]
    assert out["timm_logits"] == out["hub_logits"] == out["mindcv_logits"] == [2, 5]
    assert out["timm_stages"] == [1, 2]
    assert "(8, 16 channels; 1, 2 layers)" in out["hub_doc"] and "(B, T, 3, H, W)" in out["hub_doc"]
    assert len(out["untagged"]) == 3 and all("convgru_nano" in e and "pretrained" in e for e in out["untagged"])
