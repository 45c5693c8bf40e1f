"""PyTorch ConvGRU core: seed drop-in, paper equations, sequences, errors."""
import pytest
import torch

from convgru_zoo.torch import ConvGRU, ConvGRUCell
from convgru_zoo.torch.reference import reference_clip, reference_step

torch.manual_seed(0)
CASES = [  # input, hidden, kernels, layers, clip shape (B,T,H,W)
    (8, [32, 64, 16], [3, 5, 3], 3, (2, 4, 12, 12)),
    (3, 8, 1, 1, (1, 5, 7, 9)),
    (4, [6, 5], [5, 3], 2, (3, 3, 8, 6)),
]


def assert_float32_close(actual, expected, tol=1e-5):
    """Max abs difference <= tol, scaled by the magnitude when it exceeds 1 (large gradient sums)."""
    scale = max(1.0, expected.abs().max().item())
    assert (actual - expected).abs().max().item() <= tol * scale


def _clip(c, shape, dtype=torch.float64):
    b, t, h, w = shape
    return torch.randn(b, t, c, h, w, dtype=dtype)


@pytest.mark.parametrize("c,hidden,kernels,layers,shape", CASES)
def test_fast_path_matches_paper_equations_in_outputs_and_gradients(c, hidden, kernels, layers, shape):
    model = ConvGRU(c, hidden, kernels, layers, dtype=torch.float32)
    clip = _clip(c, shape, torch.float32).requires_grad_()
    out, states = model(clip)
    ref_out, ref_states = reference_clip(model, clip)
    assert (out - ref_out).abs().max() <= 1e-5
    for s, r in zip(states, ref_states):
        assert (s - r).abs().max() <= 1e-5
    weights = torch.randn_like(out)
    grads = torch.autograd.grad((out * weights).sum(), [clip, *model.parameters()])
    ref_grads = torch.autograd.grad((ref_out * weights).sum(), [clip, *model.parameters()])
    for g, r in zip(grads, ref_grads):
        assert_float32_close(g, r)


def test_seed_api_one_step_returns_per_layer_states_with_kept_spatial_size():
    model = ConvGRU(input_size=8, hidden_sizes=[32, 64, 16], kernel_sizes=[3, 5, 3], n_layers=3)
    x = torch.randn(2, 8, 10, 13)
    states = model(x)
    assert [tuple(s.shape) for s in states] == [(2, 32, 10, 13), (2, 64, 10, 13), (2, 16, 10, 13)]
    again = model(x, states)
    inp, expected = x, []
    for cell, h in zip(model.cells, states):
        inp = reference_step(cell, inp, h)
        expected.append(inp)
    for a, e in zip(again, expected):
        torch.testing.assert_close(a, e, atol=1e-5, rtol=0)


def test_seed_state_dict_layout_loads_with_plain_load_state_dict():
    seed_keys = [f"ConvGRUCell_{i:02d}.{gate}.{p}" for i in range(3)
                 for gate in ("reset_gate", "update_gate", "out_gate") for p in ("weight", "bias")]
    donor = ConvGRU(8, [32, 64, 16], [3, 5, 3], 3)
    seed_state = {k: v.clone() for k, v in donor.state_dict().items()}
    assert sorted(seed_state) == sorted(seed_keys)
    model = ConvGRU(8, [32, 64, 16], [3, 5, 3], 3)
    model.load_state_dict(seed_state)
    x = torch.randn(1, 8, 6, 6)
    for a, b in zip(model(x), donor(x)):
        assert torch.equal(a, b)


def test_init_is_orthogonal_weights_and_zero_bias():
    cell = ConvGRUCell(4, 6, 3)
    for gate in (cell.reset_gate, cell.update_gate, cell.out_gate):
        w = gate.weight.reshape(gate.weight.shape[0], -1)
        torch.testing.assert_close(w @ w.T, torch.eye(w.shape[0]), atol=1e-5, rtol=0)
        assert torch.count_nonzero(gate.bias) == 0


def test_streaming_step_by_step_and_in_pieces_equals_whole_clip():
    model = ConvGRU(3, [5, 4], 3, 2, dtype=torch.float64)
    clip = _clip(3, (2, 6, 7, 7))
    out, states = model(clip)
    hidden = None
    for t in range(6):
        hidden = model(clip[:, t], hidden)
    first, mid = model(clip[:, :2])
    rest, end = model(clip[:, 2:], mid)
    for a, b, c in zip(hidden, end, states):
        torch.testing.assert_close(a, c, atol=1e-12, rtol=0)
        torch.testing.assert_close(b, c, atol=1e-12, rtol=0)
    torch.testing.assert_close(torch.cat([first, rest], 1), out, atol=1e-12, rtol=0)


def test_time_first_layout_and_given_initial_state():
    model = ConvGRU(3, 4, 3, 2, batch_first=False, dtype=torch.float64)
    clip = _clip(3, (2, 5, 6, 6))
    h0 = [torch.randn(2, 4, 6, 6, dtype=torch.float64) for _ in range(2)]
    out_tf, states_tf = model(clip.transpose(0, 1), h0)
    model.batch_first = True
    out_bf, states_bf = model(clip, h0)
    torch.testing.assert_close(out_tf.transpose(0, 1), out_bf)
    assert not torch.equal(states_bf[0], model(clip)[1][0])


def test_lengths_final_state_is_each_samples_last_valid_step():
    model = ConvGRU(3, [4, 5], 3, 2, dtype=torch.float64)
    clip = _clip(3, (3, 6, 5, 5))
    lengths = torch.tensor([6, 2, 4])
    out, states = model(clip, lengths=lengths)
    for i, n in enumerate(lengths.tolist()):
        alone_out, alone_states = model(clip[i:i + 1, :n])
        torch.testing.assert_close(out[i:i + 1, :n], alone_out)
        assert torch.count_nonzero(out[i, n:]) == 0
        for s, a in zip(states, alone_states):
            torch.testing.assert_close(s[i:i + 1], a)


def test_bidirectional_reverse_direction_reads_each_sample_backwards_from_its_end():
    model = ConvGRU(3, 4, 3, 2, bidirectional=True, dtype=torch.float64)
    assert "ConvGRUCell_01_reverse.out_gate.weight" in model.state_dict()
    clip = _clip(3, (2, 5, 6, 6))
    lengths = torch.tensor([5, 3])
    out, states = model(clip, lengths=lengths)
    assert out.shape == (2, 5, 8, 6, 6) and len(states) == 4
    rev_cell = model.ConvGRUCell_00_reverse
    for i, n in enumerate(lengths.tolist()):
        flipped = clip[i:i + 1, :n].flip(1)
        rev_out, rev_last = rev_cell.run(flipped)
        torch.testing.assert_close(states[1][i:i + 1], rev_last)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_every_parameter_gets_a_gradient_from_a_single_frame():
    model = ConvGRU(2, [3, 4], 3, 2)
    out, _ = model(torch.randn(1, 1, 2, 5, 5))
    out.square().sum().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_state_is_created_on_the_inputs_dtype(dtype):
    model = ConvGRU(2, 3, 3, 1).to(dtype)
    states = model(torch.randn(1, 2, 4, 4, dtype=dtype))
    assert states[0].dtype == dtype


def test_state_is_created_on_the_inputs_device():
    model = ConvGRU(2, 3, 3, 1, device="meta")
    states = model(torch.empty(1, 2, 4, 4, device="meta"))
    assert states[0].device.type == "meta"


@pytest.mark.parametrize("kwargs,match", [
    (dict(input_size=0, hidden_sizes=4, kernel_sizes=3, n_layers=1), "input_size"),
    (dict(input_size=2, hidden_sizes=4, kernel_sizes=4, n_layers=1), "kernel_sizes"),
    (dict(input_size=2, hidden_sizes=4, kernel_sizes=-3, n_layers=1), "kernel_sizes"),
    (dict(input_size=2, hidden_sizes=[4, 4], kernel_sizes=3, n_layers=3), "hidden_sizes"),
    (dict(input_size=2, hidden_sizes=[4, 0], kernel_sizes=3, n_layers=2), r"hidden_sizes\[1\]"),
    (dict(input_size=2, hidden_sizes=4, kernel_sizes=3, n_layers=0), "n_layers"),
])
def test_bad_construction_names_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ConvGRU(**kwargs)


@pytest.mark.parametrize("x,hidden,lengths,exc,match", [
    (torch.randn(2, 3, 4), None, None, ValueError, "x must be a step"),
    (torch.randn(2, 5, 4, 4), None, None, ValueError, "3 channels"),
    (torch.randn(2, 0, 3, 4, 4), None, None, ValueError, "empty sequence"),
    (torch.randn(2, 3, 4, 4), [torch.zeros(2, 4, 4, 4)], None, ValueError, "hold 2 states"),
    (torch.randn(2, 3, 4, 4), [torch.zeros(2, 4, 4, 5), None], None, ValueError, r"hidden\[0\].*\(2, 4, 4, 4\)"),
    (torch.randn(2, 3, 4, 4), [torch.zeros(2, 4, 4, 4, dtype=torch.float64), None], None, ValueError, "dtype"),
    (torch.randn(2, 3, 4, 4), torch.zeros(2, 4, 4, 4), None, TypeError, "list"),
    (torch.randn(2, 5, 3, 4, 4), None, torch.tensor([5, 6]), ValueError, r"\[1, T=5\]"),
    (torch.randn(2, 5, 3, 4, 4), None, torch.tensor([0, 5]), ValueError, "lengths"),
    (torch.randn(2, 5, 3, 4, 4), None, torch.tensor([5]), ValueError, "one length per sample"),
    (torch.randn(2, 5, 3, 4, 4), None, torch.tensor([5.0, 4.0]), ValueError, "integer"),
    (torch.randn(2, 5, 3, 4, 4), None, torch.tensor([True, True]), ValueError, "integer"),
    (torch.randn(2, 3, 4, 4), None, torch.tensor([1, 1]), ValueError, "clips"),
])
def test_bad_input_is_rejected_before_any_work(x, hidden, lengths, exc, match):
    model = ConvGRU(3, 4, 3, 2)
    calls = []
    handle = model.ConvGRUCell_00.reset_gate.register_forward_hook(lambda *a: calls.append(1))
    with pytest.raises(exc, match=match):
        model(x, hidden, lengths=lengths)
    handle.remove()
    assert not calls


def test_bidirectional_needs_a_clip():
    with pytest.raises(ValueError, match="bidirectional"):
        ConvGRU(3, 4, 3, 1, bidirectional=True)(torch.randn(1, 3, 4, 4))


def test_bfloat16_autocast_runs_and_stays_close_to_float32():
    model = ConvGRU(3, [6, 5], 3, 2)
    clip = torch.rand(1, 3, 3, 6, 6)
    out32, _ = model(clip)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out16, states16 = model(clip)
    out16.float().sum().backward()
    assert (out16.float() - out32).abs().max() <= 2e-2
    assert all(p.grad is not None for p in model.parameters())
