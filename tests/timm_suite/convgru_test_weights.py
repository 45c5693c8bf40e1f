"""pytest plugin for timm's model tests: registers the convgru_* models and publishes test-made weights.

Loaded with ``-p convgru_test_weights`` before timm's test module is collected. Every pretrained tag
in ``convgru_zoo.specs.PRETRAINED`` gets a random-weights file in the folder named by
``CONVGRU_TEST_WEIGHTS_DIR``, shipped there as the package would ship it, with its sha256 recorded,
so timm's pretrained-loading tests run through the real (checked) loading path without a network.
"""
import dataclasses
import os
from pathlib import Path

import safetensors.torch
import timm
import torch

from convgru_zoo import pretrained, specs  # importing convgru_zoo registers the models with timm
from convgru_zoo._files import atomic_write

pretrained.WEIGHTS_DIR = Path(os.environ["CONVGRU_TEST_WEIGHTS_DIR"])
for _name, _weights in list(specs.PRETRAINED.items()):
    torch.manual_seed(0)
    _state = timm.create_model(_weights.arch, num_classes=_weights.num_classes).state_dict()
    _digest = atomic_write(
        pretrained.shipped_path(_name), lambda tmp: safetensors.torch.save_file(_state, tmp))
    specs.PRETRAINED[_name] = dataclasses.replace(_weights, sha256=(("torch", _digest),))
