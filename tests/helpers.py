"""What several test modules share: the checkout's folders and the MNIST digits beside it."""
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent  # tests/: these helpers, conftest.py and the subprocesses' stand-ins
REPO = TESTS.parent
CARDS_DIR = REPO / "model_cards"  # the checkout's released tags
MNIST = REPO.parent / "shared" / "data" / "mnist"
needs_mnist = pytest.mark.skipif(not MNIST.is_dir(), reason=f"MNIST digits not found in {MNIST}")


def kill_at_first_checkpoint(proc, checkpoints, outcome):
    """SIGKILL ``proc`` as soon as a checkpoint sidecar exists in ``checkpoints`` (run in a thread)."""
    import signal
    import time

    deadline = time.monotonic() + 240
    while not list(checkpoints.glob("step_*.json")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    outcome["returncode"] = proc.wait()


def unpublish(monkeypatch, name):
    """Make the pretrained tag ``name`` look unpublished (no sha256s) for one test."""
    import dataclasses

    from convgru_zoo import specs
    monkeypatch.setitem(specs.PRETRAINED, name, dataclasses.replace(specs.PRETRAINED[name], sha256=()))


def stage_shapes(name, batch, height, width=None):
    """The shape (batch, channels, height, width) of each stage's state of backbone ``name`` on frames of
    ``height`` x ``width`` (default square), as its ``specs.BACKBONES`` entry makes it."""
    from convgru_zoo import specs

    spec, width = specs.BACKBONES[name], height if width is None else width
    strides = [spec.stem_stride * 2 ** i for i in range(len(spec.dims))]
    return [(batch, dim, height // s, width // s) for dim, s in zip(spec.dims, strides)]


def mindspore_params(net):
    """``{name: np.ndarray}`` of a MindSpore cell's parameters."""
    return {p.name: p.asnumpy() for p in net.get_parameters()}


def assert_same_mindspore_params(a, b):
    """Two cells' :func:`mindspore_params` hold the same names and bit-identical values."""
    import numpy as np

    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
