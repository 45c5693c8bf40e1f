"""MindSpore ConvGRU core: the conv cell, paper equations, seed layout, sequences, modes, errors.

Agreement with PyTorch (same weights -> same outputs and gradients) is in test_parity.py.
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

ms = pytest.importorskip("mindspore")
torch = pytest.importorskip("torch")
ms.set_device("CPU")

from mindspore import Tensor, nn, ops  # noqa: E402

from convgru_zoo.mindspore.weights import load_params  # noqa: E402
from convgru_zoo.mindspore import Conv2d, ConvGRU, ConvGRUCell, load_seed_params  # noqa: E402
from convgru_zoo.mindspore.convgru import tanh  # noqa: E402

RNG = np.random.default_rng(0)


def randn(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def max_diff(a, b):
    return float(np.abs(np.asarray(a) - np.asarray(b)).max())


# ----------------------------------------------------------------------------------------------
# Conv2d: torch's conv2d, by im2col + matmul (CPU) or ops.conv2d


@pytest.mark.parametrize("im2col", [True, False])
@pytest.mark.parametrize("c,o,k,stride,padding,size", [
    (3, 4, 3, 1, 1, 9),   # ConvGRU gate
    (3, 5, 4, 4, 0, 16),  # patchify stem
    (4, 6, 2, 2, 0, 8),   # downsampling
    (2, 3, 1, 1, 0, 5),   # 1x1
    (3, 4, 5, 2, 2, 11),  # odd size, stride and padding together
])
def test_conv2d_matches_torch_in_outputs_and_gradients(im2col, c, o, k, stride, padding, size):
    conv = Conv2d(c, o, k, stride, padding, im2col=im2col)
    assert [p.name for p in conv.get_parameters()] == ["weight", "bias"]
    assert conv.weight.shape == (o, c, k, k) and conv.bias.shape == (o,)
    x = randn(2, c, size, size)
    xt, wt, bt = (torch.from_numpy(a).requires_grad_() for a in (x, conv.weight.asnumpy(), conv.bias.asnumpy()))
    yt = torch.nn.functional.conv2d(xt, wt, bt, stride=stride, padding=padding)
    weights = randn(*yt.shape)
    (yt * torch.from_numpy(weights)).sum().backward()
    grad_fn = ms.value_and_grad(lambda a: (conv(a) * Tensor(weights)).sum(), 0, conv.trainable_params())
    _, (gx, (gw, gb)) = grad_fn(Tensor(x))
    assert max_diff(conv(Tensor(x)).asnumpy(), yt.detach()) <= 1e-5
    assert max_diff(gx.asnumpy(), xt.grad) <= 1e-5
    assert max_diff(gw.asnumpy(), wt.grad) <= 1e-5 * max(1.0, wt.grad.abs().max().item())
    assert max_diff(gb.asnumpy(), bt.grad) <= 1e-5 * max(1.0, bt.grad.abs().max().item())


def test_onednn_cap_holds_only_inside_and_yields_to_the_users_setting(monkeypatch):
    from convgru_zoo.mindspore.conv import onednn_isa_capped

    for name in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"):
        monkeypatch.delenv(name, raising=False)
    with onednn_isa_capped() as said:
        assert os.environ["ONEDNN_MAX_CPU_ISA"] == "AVX2" and "capped at AVX2" in said
    assert "ONEDNN_MAX_CPU_ISA" not in os.environ  # PyTorch's oneDNN, initialised later, reads the user's
    monkeypatch.setenv("DNNL_MAX_CPU_ISA", "ALL")
    with onednn_isa_capped() as said:
        assert "ONEDNN_MAX_CPU_ISA" not in os.environ and said == "oneDNN ISA as set: DNNL_MAX_CPU_ISA=ALL"


def test_mindspore_convolution_never_runs_onednns_reference_kernel(tmp_path):
    """On AVX-512 CPUs MindSpore 2.10's oneDNN runs NCHW convolutions by a reference kernel unless capped."""
    script = tmp_path / "probe.py"
    script.write_text("import numpy as np, mindspore as ms, torch\n"
                      "from convgru_zoo.mindspore.conv import Conv2d\n"
                      "conv = Conv2d(8, 8, 3, padding=1, im2col=False)\n"
                      "ms.set_device('CPU')  # still allowed after building a cell (which ran a kernel)\n"
                      "y = conv(ms.Tensor(np.ones((1, 8, 8, 8), np.float32)))\n"
                      "print('ok', y.shape)\n")
    env = {k: v for k, v in os.environ.items() if k not in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")}
    env.update(ONEDNN_VERBOSE="1", CONVGRU_ZOO_MS_CONV="")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0 and "ok (1, 8, 8, 8)" in done.stdout, done.stderr[-2000:]
    convolutions = [line.split(",")[6] for line in done.stdout.splitlines() if ",primitive,exec,cpu,convolution," in line]
    assert convolutions and not [impl for impl in convolutions if "ref" in impl], convolutions


def test_conv2d_path_is_probed_once_on_cpu_and_the_environment_overrides_it(monkeypatch):
    from convgru_zoo.mindspore import conv as conv_module

    monkeypatch.delenv(conv_module.CONV_PATH_ENV, raising=False)
    monkeypatch.setattr(conv_module, "_chosen", {})
    calls = []
    monkeypatch.setattr(conv_module, "probe_conv_paths", lambda: calls.append(1) or {"im2col": 0.2, "native": 0.1})
    assert Conv2d(4, 4, 3).im2col is False and Conv2d(4, 4, 3).im2col is False and calls == [1]  # probed once
    assert conv_module.conv_path()[1].startswith("faster in a probe on this CPU: im2col + matmul 200.0 ms, native 100.0 ms")
    for forced, im2col in (("im2col", True), ("native", False)):
        monkeypatch.setattr(conv_module, "_chosen", {})
        monkeypatch.setenv(conv_module.CONV_PATH_ENV, forced)
        assert Conv2d(4, 4, 3).im2col is im2col and Conv2d(4, 4, 3, im2col=not im2col).im2col is not im2col
    monkeypatch.setattr(conv_module, "_chosen", {})
    monkeypatch.setenv(conv_module.CONV_PATH_ENV, "fast")
    with pytest.raises(ValueError, match="CONVGRU_ZOO_MS_CONV must be one of .'im2col', 'native'., got 'fast'"):
        Conv2d(4, 4, 3)


def test_the_conv_path_probe_times_both_paths():
    from convgru_zoo.mindspore.conv import probe_conv_paths

    times = probe_conv_paths(repeats=1)
    assert set(times) == {"im2col", "native"} and all(0 < t < 30 for t in times.values())


def test_conv2d_init_like_torch_and_rejects_bad_sizes():
    conv = Conv2d(16, 64, 3)
    bound = 1 / np.sqrt(16 * 9)  # torch: kaiming_uniform(a=sqrt(5)) weights, bias in +-1/sqrt(fan_in)
    for p in (conv.weight.asnumpy(), conv.bias.asnumpy()):
        assert np.abs(p).max() <= bound and np.abs(p).max() > 0.9 * bound
    with pytest.raises(ValueError, match="kernel_size"):
        Conv2d(2, 3, 0)
    with pytest.raises(ValueError, match="padding"):
        Conv2d(2, 3, 3, padding=-1)


def test_tanh_form_is_within_float32_of_exact_tanh():
    x = np.linspace(-12, 12, 4001, dtype=np.float32)
    assert max_diff(tanh(Tensor(x)).asnumpy(), np.tanh(x.astype(np.float64))) <= 2e-6


# ----------------------------------------------------------------------------------------------
# The seed's MindSpore port, written from the paper's equations with plain nn.Conv2d cells.


class SeedPortCell(nn.Cell):
    """The seed's cell: three nn.Conv2d over cat[x, h] (its parameter names), the paper's update."""

    def __init__(self, input_size, hidden_size, kernel_size):
        super().__init__()
        conv = dict(pad_mode="pad", padding=kernel_size // 2, has_bias=True)
        self.reset_gate = nn.Conv2d(input_size + hidden_size, hidden_size, kernel_size, **conv)
        self.update_gate = nn.Conv2d(input_size + hidden_size, hidden_size, kernel_size, **conv)
        self.out_gate = nn.Conv2d(input_size + hidden_size, hidden_size, kernel_size, **conv)

    def construct(self, x, h):
        xh = ops.cat([x, h], 1)
        z = ops.sigmoid(self.update_gate(xh))
        r = ops.sigmoid(self.reset_gate(xh))
        n = tanh(self.out_gate(ops.cat([x, r * h], 1)))
        return (1 - z) * h + z * n


def seed_port(input_size, hidden_sizes, kernel_sizes):
    """The seed's cells in a CellList, and its checkpoint names ``cells.N...`` (as the seed saved them).

    (The seed stored the list as ``self.cells``, which MindSpore 2.10 no longer accepts, so the
    ``cells.`` prefix is added here.)
    """
    sizes = [input_size] + hidden_sizes[:-1]
    cells = nn.CellList([SeedPortCell(i, h, k) for i, h, k in zip(sizes, hidden_sizes, kernel_sizes)])
    for p in cells.get_parameters():
        p.set_data(Tensor(RNG.standard_normal(p.shape).astype(np.float32) * 0.3))
    return cells, {f"cells.{p.name}": p for p in cells.get_parameters()}


def seed_steps(cells, clip):
    """Run the seed port step by step over a (B,T,C,H,W) clip: (last layer outputs, final states)."""
    b, t, _, height, width = clip.shape
    states = [np.zeros((b, c.out_gate.out_channels, height, width), np.float32) for c in cells]
    outputs = []
    for step in range(t):
        inp = Tensor(clip[:, step])
        for i, cell in enumerate(cells):
            inp = cell(inp, Tensor(states[i]))
            states[i] = inp.asnumpy()
        outputs.append(states[-1])
    return np.stack(outputs, 1), states


def test_seed_params_load_and_give_the_seed_ports_outputs():
    cells, seed_params = seed_port(3, [4, 5, 3], [3, 5, 1])
    net = ConvGRU(3, [4, 5, 3], [3, 5, 1], 3)
    load_seed_params(net, seed_params)
    clip = randn(2, 3, 3, 6, 5)
    out, states = net(Tensor(clip))
    ref_out, ref_states = seed_steps(cells, clip)
    assert max_diff(out.asnumpy(), ref_out) <= 1e-5
    for s, r in zip(states, ref_states):
        assert max_diff(s.asnumpy(), r) <= 1e-5
    step_states = net(Tensor(clip[:, 0]))
    for s, r in zip(step_states, seed_steps(cells, clip[:, :1])[1]):
        assert max_diff(s.asnumpy(), r) <= 1e-5


def test_seed_params_load_is_strict_and_names_the_offenders():
    _, seed_params = seed_port(3, [4, 5], [3, 3])
    net = ConvGRU(3, [4, 5], [3, 3], 2)
    before = {p.name: p.asnumpy().copy() for p in net.get_parameters()}
    bad = dict(seed_params)
    del bad["cells.1.out_gate.bias"]
    bad["cells.2.reset_gate.weight"] = bad["cells.0.reset_gate.weight"]
    bad["cells.0.update_gate.weight"] = np.zeros((4, 7, 5, 5), np.float32)
    with pytest.raises(ValueError) as err:
        load_seed_params(net, bad)
    for name in ("cells.1.out_gate.bias", "cells.2.reset_gate.weight", "cells.0.update_gate.weight"):
        assert name in str(err.value)
    after = {p.name: p.asnumpy() for p in net.get_parameters()}
    assert all(np.array_equal(before[n], after[n]) for n in before), "a failed load changed parameters"


# ----------------------------------------------------------------------------------------------
# Layers


def test_parameter_names_and_shapes_equal_torch_state_dict():
    from convgru_zoo.torch import ConvGRU as TorchConvGRU

    for bidirectional in (False, True):
        net = ConvGRU(3, [4, 5], [3, 5], 2, bidirectional=bidirectional)
        model = TorchConvGRU(3, [4, 5], [3, 5], 2, bidirectional=bidirectional)
        ours = {p.name: tuple(p.shape) for p in net.get_parameters()}
        assert ours == {k: tuple(v.shape) for k, v in model.state_dict().items()}
        assert [c.hidden_size for c in net.cells()] == [c.hidden_size for c in model.cells]


def test_init_is_orthogonal_weights_and_zero_bias():
    cell = ConvGRUCell(4, 6, 3)
    for gate in (cell.reset_gate, cell.update_gate, cell.out_gate):
        w = gate.weight.asnumpy().reshape(gate.weight.shape[0], -1)
        assert max_diff(w @ w.T, np.eye(w.shape[0])) <= 1e-5
        assert not gate.bias.asnumpy().any()


def test_seed_api_one_step_returns_per_layer_states_and_continues_from_them():
    net = ConvGRU(input_size=3, hidden_sizes=[4, 6], kernel_sizes=[3, 5], n_layers=2)
    x = Tensor(randn(2, 3, 7, 9))
    states = net(x)
    assert [s.shape for s in states] == [(2, 4, 7, 9), (2, 6, 7, 9)]
    again = net(x, states)
    inp = x
    for cell, h, a in zip(net.cells(), states, again):
        inp = cell(inp, h)
        assert np.array_equal(a.asnumpy(), inp.asnumpy())


def test_streaming_step_by_step_and_in_pieces_equals_whole_clip():
    net = ConvGRU(3, [5, 4], 3, 2)
    clip = randn(2, 4, 3, 6, 6)
    out, states = net(Tensor(clip))
    first, mid = net(Tensor(clip[:, :2]))
    rest, pieces = net(Tensor(clip[:, 2:]), mid)
    assert max_diff(np.concatenate([first.asnumpy(), rest.asnumpy()], 1), out.asnumpy()) <= 1e-6
    stepped = None
    for t in range(clip.shape[1]):
        stepped = net(Tensor(clip[:, t]), stepped)
    for s, p, w in zip(stepped, pieces, states):
        assert max_diff(s.asnumpy(), w.asnumpy()) <= 1e-6
        assert max_diff(p.asnumpy(), w.asnumpy()) <= 1e-6


def test_lengths_give_each_samples_own_last_valid_state_in_both_directions():
    net = ConvGRU(2, [3, 4], 3, 2, bidirectional=True)
    clip = randn(3, 4, 2, 5, 5)
    lengths = [4, 1, 3]
    out, states = net(Tensor(clip), lengths=lengths)
    for i, n in enumerate(lengths):
        own_out, own_states = net(Tensor(clip[i:i + 1, :n]))
        assert max_diff(out.asnumpy()[i, :n], own_out.asnumpy()[0]) <= 1e-6
        assert not out.asnumpy()[i, n:].any()
        for s, own in zip(states, own_states):
            assert max_diff(s.asnumpy()[i], own.asnumpy()[0]) <= 1e-6


def test_time_first_equals_batch_first_transposed():
    net = ConvGRU(2, 3, 3, 1)
    time_first = ConvGRU(2, 3, 3, 1, batch_first=False)
    load_params(time_first, {p.name: p for p in net.get_parameters()})
    clip = randn(2, 4, 2, 5, 5)
    out, states = net(Tensor(clip))
    out_t, states_t = time_first(Tensor(clip.transpose(1, 0, 2, 3, 4)))
    assert np.array_equal(out_t.asnumpy().transpose(1, 0, 2, 3, 4), out.asnumpy())
    assert np.array_equal(states_t[0].asnumpy(), states[0].asnumpy())


def test_every_parameter_gets_a_gradient():
    net = ConvGRU(2, [3, 4], [3, 1], 2, bidirectional=True)
    clip = Tensor(randn(1, 3, 2, 4, 4))
    grad_fn = ms.grad(lambda x: net(x)[0].sum(), None, net.trainable_params())
    grads = grad_fn(clip)
    assert len(grads) == len(net.trainable_params()) == 24
    assert all(np.abs(g.asnumpy()).sum() > 0 for g in grads)


# ----------------------------------------------------------------------------------------------
# Compiled: GRAPH_MODE agrees with PYNATIVE (mindspore.jit is exercised by test_parity.py)


@pytest.fixture(scope="module")
def graph_mode_results():
    """One net run in PYNATIVE, then in GRAPH_MODE (clip with lengths, and one step); mode restored."""
    net = ConvGRU(2, [3, 4], [3, 1], 2)
    clip, lengths, hidden = Tensor(randn(2, 3, 2, 5, 5)), [3, 2], [Tensor(randn(2, 3, 5, 5)), None]
    pynative = net(clip, hidden, lengths), net(clip[:, 0])
    mode = ms.get_context("mode")
    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        graph = net(clip, hidden, lengths), net(clip[:, 0])
        with pytest.raises(ValueError, match="hidden"):
            net(clip, [hidden[0]], lengths)
    finally:
        ms.set_context(mode=mode)
    return pynative, graph


def test_graph_mode_equals_pynative(graph_mode_results):
    ((out, states), step), ((g_out, g_states), g_step) = graph_mode_results
    assert max_diff(g_out.asnumpy(), out.asnumpy()) <= 1e-6
    for a, b in zip(list(g_states) + list(g_step), states + step):
        assert max_diff(a.asnumpy(), b.asnumpy()) <= 1e-6


class Parent(nn.Cell):
    """A user's cell holding a ConvGRU: compiled, it calls the ConvGRU's construct, not its __call__."""

    def __init__(self):
        super().__init__()
        self.gru = ConvGRU(2, 3, 3, 1)

    def construct(self, x):
        return self.gru(x)[0]


def test_a_convgru_inside_a_compiled_parent_names_wrong_channels_while_compiling(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # a failed compile writes rank_0/ into the working folder
    mode = ms.get_context("mode")
    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        with pytest.raises(ValueError, match=r"x must have 2 channels \(dim 2\), got 3 in shape \(1, 2, 3, 4, 4\)"):
            Parent()(Tensor(randn(1, 2, 3, 4, 4)))
    finally:
        ms.set_context(mode=mode)


# ----------------------------------------------------------------------------------------------
# Bad input: clear errors naming the argument, raised before any computation


@pytest.fixture
def guarded_net(monkeypatch):
    net = ConvGRU(3, [4, 5], [3, 3], 2)

    def computed(*args, **kwargs):
        raise AssertionError("construct ran before the arguments were checked")

    monkeypatch.setattr(net, "construct", computed)
    return net


@pytest.mark.parametrize("call,match", [
    (lambda: (randn(2, 3, 6),), "x must be a step"),
    (lambda: (randn(2, 4, 6, 6),), "x must have 3 channels"),
    (lambda: (randn(2, 0, 3, 6, 6),), "empty sequence"),
    (lambda: (randn(2, 3, 6, 6), [randn(2, 4, 6, 6)]), "hidden must hold 2 states"),
    (lambda: (randn(2, 3, 6, 6), [randn(2, 4, 6, 6), randn(2, 5, 6, 7)]), r"hidden\[1\] must have shape"),
    (lambda: (randn(2, 3, 6, 6), [randn(2, 4, 6, 6).astype(np.float16), None]), r"hidden\[0\] must be on CPU with dtype Float32"),
    (lambda: (randn(2, 4, 3, 6, 6), None, [4, 5]), r"lengths must lie in \[1, T=4\]"),
    (lambda: (randn(2, 4, 3, 6, 6), None, [4]), "lengths must hold one length per sample"),
    (lambda: (randn(2, 4, 3, 6, 6), None, [2.0, 3.0]), "lengths must be a 1-D integer"),
    (lambda: (randn(2, 3, 6, 6), None, [1, 1]), "lengths applies to clips"),
])
def test_bad_input_is_refused_before_computing(guarded_net, call, match):
    args = [Tensor(a) if isinstance(a, np.ndarray) else a for a in call()]
    if len(args) > 1 and isinstance(args[1], list):
        args[1] = [Tensor(h) if isinstance(h, np.ndarray) else h for h in args[1]]
    with pytest.raises(ValueError, match=match):
        guarded_net(*args)


def test_bad_construction_names_the_argument():
    with pytest.raises(ValueError, match="kernel_sizes"):
        ConvGRU(3, [4, 5], [3, 4], 2)
    with pytest.raises(ValueError, match="hidden_sizes"):
        ConvGRU(3, [4, 0], 3, 2)
    with pytest.raises(ValueError, match="n_layers=2 entries"):
        ConvGRU(3, [4, 5, 6], 3, 2)
    with pytest.raises(ValueError, match="kernel_size"):
        ConvGRUCell(3, 4, 2)
    with pytest.raises(TypeError, match=r"x must be a mindspore\.Tensor"):
        ConvGRU(3, 4, 3, 1)(randn(1, 3, 4, 4))
    with pytest.raises(ValueError, match="bidirectional"):
        ConvGRU(3, 4, 3, 1, bidirectional=True)(Tensor(randn(1, 3, 4, 4)))


# ----------------------------------------------------------------------------------------------
# Interpreter exit


def test_no_cell_del_noise_at_interpreter_exit():
    """Our cells stay quiet at exit, while a plain MindSpore cell in the same script shows the noise."""
    script = textwrap.dedent("""
        import mindspore as ms, mindcv  # mindcv changes teardown order so that the noise shows
        from mindspore import nn
        ms.set_device("CPU")
        from convgru_zoo.mindspore import ConvGRU
        net = ConvGRU(3, 4, 3, 1)
        plain = nn.Dense(2, 3)
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    # Exactly one report: the control's; our five cells (model, layer, three gates) add none.
    assert run.stderr.count("has no attribute 'total_instance_count'") == 1, run.stderr
