"""A 2-D convolution cell with PyTorch's parameter names and layout, fast on every MindSpore device.

On CPU, MindSpore's own convolution runs oneDNN's reference kernel (~300x slower than PyTorch for
k > 1), while matrix products are fast; so on CPU this cell computes ``im2col`` (``ops.unfold``)
followed by one matrix product. On GPU/Ascend it calls ``ops.conv2d``. Either way ``weight`` is
(out, in, k, k) and ``bias`` (out,), exactly like ``torch.nn.Conv2d``, so weights move between the
frameworks unchanged.
"""
import math
import sys
from typing import Optional

import mindspore as ms
from mindspore import Parameter, nn, ops
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


def use_im2col() -> bool:
    """True where the im2col + matmul path is the fast one: the CPU device target."""
    return ms.get_context("device_target") == "CPU"


class Conv2d(TeardownSafeCell):
    """``torch.nn.Conv2d``-compatible convolution (square kernel, zero padding, no groups/dilation).

    ``im2col=None`` picks the path from the device target when the cell is built
    (:func:`use_im2col`); pass True/False to force one. The default init is torch's
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
        self.has_bias = has_bias
        self.im2col = use_im2col() if im2col is None else bool(im2col)
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
