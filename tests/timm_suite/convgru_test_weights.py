"""pytest plugin for timm's model tests: registers the convgru_* models and makes every backbone tag loadable offline.

Loaded with ``-p convgru_test_weights`` before timm's test module is collected. Every backbone tag in
``convgru_zoo.specs.PRETRAINED`` gets a file in the folder named by ``CONVGRU_TEST_WEIGHTS_DIR``,
shipped there as the package ships weights: the real published file where there is one (from the
package or its ``model_cards/`` folder, same sha256), else random test-made weights with their sha256
recorded. timm's pretrained-loading tests so run through the real (checked) loading path, offline.
"""
import dataclasses
import os
import shutil
from pathlib import Path

import safetensors.torch
import timm
import torch

from convgru_zoo import pretrained, specs  # importing convgru_zoo registers the models with timm
from convgru_zoo.publishing import release
from convgru_zoo._files import atomic_write

_published = {name: release.weights_path(w, "torch", Path(__file__).resolve().parents[2] / release.CARDS) for name, w in specs.BACKBONE_WEIGHTS.items()
              if w.file_sha256("torch")}
pretrained.WEIGHTS_DIR = Path(os.environ["CONVGRU_TEST_WEIGHTS_DIR"])
pretrained.WEIGHTS_DIR.mkdir(parents=True, exist_ok=True)
for _name, _weights in specs.BACKBONE_WEIGHTS.items():
    if _name in _published:
        shutil.copyfile(_published[_name], pretrained.shipped_path(_name))
        continue
    torch.manual_seed(0)
    _state = timm.create_model(_weights.arch, num_classes=_weights.num_classes).state_dict()
    _digest = atomic_write(
        pretrained.shipped_path(_name), lambda tmp: safetensors.torch.save_file(_state, tmp))
    specs.PRETRAINED[_name] = dataclasses.replace(_weights, sha256=(("torch", _digest),))
