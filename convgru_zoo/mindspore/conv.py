"""A 2-D convolution cell with PyTorch's parameter names and layout, fast on every MindSpore device.

Two paths compute it: MindSpore's own convolution (``ops.conv2d``), or ``im2col`` (``ops.unfold``)
followed by one matrix product. On GPU/Ascend the native kernel is the fast one. On CPU, MindSpore
2.10's oneDNN runs a plain-layout (NCHW) convolution through a reference kernel on any CPU with
AVX-512 (``jit_uni_ncsp:conv+ref``, ~60x slower than its AVX2 ``gemm:jit`` kernel on the same
machine), so before its first convolution MindSpore's oneDNN is capped at AVX2
(:func:`onednn_isa_capped`; PyTorch's own oneDNN is not affected) unless ``ONEDNN_MAX_CPU_ISA`` or
``DNNL_MAX_CPU_ISA`` is set. Then the path is chosen at first use by a short probe that times both on
a ConvGRU-sized convolution (:func:`conv_path`, once per process);
``CONVGRU_ZOO_MS_CONV=im2col|native`` or a cell's ``im2col=`` argument overrides it.
Either way ``weight`` is (out, in, k, k) and ``bias`` (out,), exactly like ``torch.nn.Conv2d``, so
weights move between the frameworks unchanged. Measurements: ``docs/mindspore-cpu-speed.md``.
"""
import functools
import math
import os
import sys
import time
from contextlib import contextmanager
from typing import Optional, Tuple

import mindspore as ms
import numpy as np
from mindspore import Parameter, Tensor, nn, ops
from mindspore.common import initializer as init

from .. import _checks

_CELL_MODULE_GLOBALS = vars(sys.modules[nn.Cell.__module__])


class TeardownSafeCell(nn.Cell):
    """``nn.Cell`` whose ``__del__`` is skipped once MindSpore's module globals are torn down.

    At interpreter exit, cells still referenced from ``__main__`` are deleted after
    ``mindspore.nn.cell`` lost its globals, and ``Cell.__del__`` prints an ``AttributeError``
    (``'NoneType' object has no attribute 'total_instance_count'``). Only then is the call skipped;
    at any other time ``Cell.__del__`` runs as usual.
    """

    def __del__(self, _cell_globals=_CELL_MODULE_GLOBALS):
        if _cell_globals.get("Cell") is None:
            return
        super().__del__()


CONV_PATH_ENV = "CONVGRU_ZOO_MS_CONV"
CONV_PATHS = ("im2col", "native")
_chosen = {}  # device target -> (im2col, why)


def conv_path() -> Tuple[bool, str]:
    """(use im2col + matmul, why) for the current device target, decided once per process.

    ``CONVGRU_ZOO_MS_CONV`` (im2col or native) decides if set; else off CPU the native kernel; else
    the faster of the two in :func:`probe_conv_paths`.
    """
    target = ms.get_context("device_target")
    if target not in _chosen:
        forced = os.environ.get(CONV_PATH_ENV, "")
        if forced:
            if forced not in CONV_PATHS:
                raise ValueError(f"{CONV_PATH_ENV} must be one of {CONV_PATHS}, got {forced!r}")
            _chosen[target] = forced == "im2col", f"{CONV_PATH_ENV}={forced}"
        elif target != "CPU":
            _chosen[target] = False, f"the native kernel on {target}"
        else:
            isa = onednn_isa()
            times = probe_conv_paths()
            faster = min(times, key=times.get)
            _chosen[target] = faster == "im2col", (f"faster in a probe on this CPU: im2col + matmul "
                                                   f"{times['im2col'] * 1e3:.1f} ms, native {times['native'] * 1e3:.1f} ms"
                                                   f" ({isa})")
    return _chosen[target]


ONEDNN_ISA_VARIABLES = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")
ONEDNN_ISA_CAP = "AVX2"


@functools.lru_cache(maxsize=None)
def onednn_isa() -> str:
    """Run MindSpore's first CPU convolution under :func:`onednn_isa_capped`, once per process; say what holds.

    Every :class:`Conv2d` built for the CPU calls it, so the cap is in place before any of its kernels runs.
    """
    try:  # the kernel below starts the runtime: pin the CPU first, so a later set_device("CPU") still works
        ms.set_device("CPU")
    except RuntimeError:  # the runtime already runs (its device is then fixed anyway)
        pass
    mode = ms.get_context("mode")
    ms.set_context(mode=ms.PYNATIVE_MODE)
    try:
        with onednn_isa_capped() as said:
            ops.conv2d(ops.ones((1, 1, 3, 3), ms.float32), ops.ones((1, 1, 1, 1), ms.float32)).asnumpy()
    finally:
        ms.set_context(mode=mode)
    return said


@contextmanager
def onednn_isa_capped():
    """Cap MindSpore's oneDNN at AVX2 for what runs inside, unless the user set the ISA; yields what holds.

    oneDNN reads ``ONEDNN_MAX_CPU_ISA`` once, at its first primitive, and keeps it for the process; the
    variable is set only inside, so PyTorch's separate oneDNN, initialised later, reads the user's
    environment. A MindSpore process that ran a convolution before this keeps its first ISA.
    """
    chosen = {name: os.environ[name] for name in ONEDNN_ISA_VARIABLES if os.environ.get(name)}
    if chosen:
        yield "oneDNN ISA as set: " + ", ".join(f"{k}={v}" for k, v in chosen.items())
        return
    os.environ[ONEDNN_ISA_VARIABLES[0]] = ONEDNN_ISA_CAP
    try:
        yield f"MindSpore's oneDNN capped at {ONEDNN_ISA_CAP} unless it ran a primitive before"
    finally:
        os.environ.pop(ONEDNN_ISA_VARIABLES[0], None)


def use_im2col() -> bool:
    """Whether :class:`Conv2d` cells built now (``im2col=None``) take the im2col + matmul path (:func:`conv_path`)."""
    return conv_path()[0]


def probe_conv_paths(repeats: int = 3) -> dict:
    """Seconds per call of both paths (best of ``repeats`` after a warm-up, op by op) on a ConvGRU-sized
    3x3 convolution: 4 x 64 x 16 x 16 -> 64 channels, 75 MFLOP (about 0.25 s on the slow reference kernel)."""
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((4, 64, 16, 16), dtype=np.float32))
    weight = Tensor(rng.standard_normal((64, 64, 3, 3), dtype=np.float32))
    mode = ms.get_context("mode")
    ms.set_context(mode=ms.PYNATIVE_MODE)
    try:
        times = {}
        for path in CONV_PATHS:
            conv2d(x, weight, None, 1, 1, path == "im2col").asnumpy()
            best = math.inf
            for _ in range(repeats):
                start = time.perf_counter()
                conv2d(x, weight, None, 1, 1, path == "im2col").asnumpy()
                best = min(best, time.perf_counter() - start)
            times[path] = best
        return times
    finally:
        ms.set_context(mode=mode)


class Conv2d(TeardownSafeCell):
    """``torch.nn.Conv2d``-compatible convolution (square kernel, zero padding, no groups/dilation).

    ``im2col=None`` takes the path :func:`conv_path` chose for the device target when the cell is
    built; pass True/False to force one. The default init is torch's
    (kaiming-uniform with a = sqrt(5), bias uniform in +-1/sqrt(fan_in)).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, has_bias: bool = True, *, im2col: Optional[bool] = None,
                 dtype=ms.float32):
        super().__init__()
        self.in_channels = _checks.positive_int("in_channels", in_channels)
        self.out_channels = _checks.positive_int("out_channels", out_channels)
        self.kernel_size = _checks.positive_int("kernel_size", kernel_size)
        self.stride = _checks.positive_int("stride", stride)
        if not isinstance(padding, int) or isinstance(padding, bool) or padding < 0:
            raise ValueError(f"padding must be a non-negative int, got {padding!r}")
        self.padding = padding
        self.has_bias = _checks.flag("has_bias", has_bias)
        if ms.get_context("device_target") == "CPU":
            onednn_isa()
        self.im2col = use_im2col() if _checks.optional_flag("im2col", im2col) is None else im2col
        fan_in = in_channels * kernel_size * kernel_size
        shape = (out_channels, in_channels, kernel_size, kernel_size)
        self.weight = Parameter(init.initializer(init.HeUniform(math.sqrt(5)), shape, dtype), name="weight")
        if has_bias:
            bound = 1 / math.sqrt(fan_in)
            self.bias = Parameter(init.initializer(init.Uniform(bound), (out_channels,), dtype), name="bias")
        else:
            self.bias = None

    def extend_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, bias={self.has_bias}, im2col={self.im2col}")

    def construct(self, x):
        return conv2d(x, self.weight, self.bias, self.stride, self.padding, self.im2col)


def conv2d(x, weight, bias=None, stride=1, padding=0, im2col=True):
    """``torch.nn.functional.conv2d`` for NCHW ``x`` and (out, in, k, k) ``weight`` (square kernel).

    With ``im2col`` the result is ``weight`` (out, in*k*k) times the unfolded input; a 1x1 kernel
    at stride 1 skips the unfold. Otherwise ``ops.conv2d`` (the fast kernel on GPU/Ascend).
    """
    out_channels, _, k, _ = weight.shape
    if not im2col:
        y = ops.conv2d(x, weight, None, stride, "pad", padding)
    else:
        b, c, height, width = x.shape
        out_h = (height + 2 * padding - k) // stride + 1
        out_w = (width + 2 * padding - k) // stride + 1
        if k == 1 and stride == 1 and padding == 0:
            cols = x.reshape(b, c, height * width)
        else:
            cols = ops.unfold(x, k, 1, padding, stride)
        y = ops.matmul(weight.reshape(out_channels, -1), cols).reshape(b, out_channels, out_h, out_w)
    if bias is not None:
        y = y + bias.reshape(1, out_channels, 1, 1)
    return y
