"""Trace STDP against hand-built spike pairs: sign, exp(-|dt|/tau) decay, bounds, normalisation."""
import math

import pytest
import torch
import torch.nn.functional as F

from snnexp.errors import ConfigError
from snnexp.rules.stdp import (Conv, STDPParams, Traces, apply_dw_, check_params, init_weights_, normalise_,
                                       stdp_sequence, stdp_step)

P = STDPParams(lr_post=0.5, lr_pre=0.25, tau_pre=4.0, tau_post=8.0, w_min=0.0, w_max=1.0, mu=0.0)


def pair(t_pre: int, t_post: int, T: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    """One pre and one post neuron, one spike each: [T, 1, 1] sequences."""
    pre, post = torch.zeros(T, 1, 1), torch.zeros(T, 1, 1)
    pre[t_pre], post[t_post] = 1, 1
    return pre, post


def run_steps(pre, post, w, p, conv=None):
    tr = Traces(torch.zeros_like(pre[0]), torch.zeros_like(post[0]))
    total = torch.zeros_like(w)
    for t in range(pre.shape[0]):
        dw, tr = stdp_step(pre[t], post[t], tr, w, p, conv)
        total += dw
    return total


@pytest.mark.parametrize("dt", [0, 1, 3, 6])
def test_pre_before_post_potentiates_by_exp_of_dt(dt):
    pre, post = pair(2, 2 + dt)
    dw = run_steps(pre, post, torch.full((1, 1), 0.5), P)
    assert dw.item() == pytest.approx(P.lr_post * math.exp(-dt / P.tau_pre), rel=1e-6)


@pytest.mark.parametrize("dt", [1, 2, 5])
def test_post_before_pre_depresses_by_exp_of_dt(dt):
    pre, post = pair(2 + dt, 2)
    dw = run_steps(pre, post, torch.full((1, 1), 0.5), P)
    assert dw.item() == pytest.approx(-P.lr_pre * math.exp(-dt / P.tau_post), rel=1e-6)


def test_magnitude_ratio_is_the_exponential():
    near = run_steps(*pair(1, 2), torch.zeros(1, 1), P).item()
    far = run_steps(*pair(1, 6), torch.zeros(1, 1), P).item()
    assert far / near == pytest.approx(math.exp(-4 / P.tau_pre), rel=1e-6)


def test_sequence_equals_sum_of_steps_linear_and_batched():
    g = torch.Generator().manual_seed(0)
    pre = (torch.rand(9, 3, 5, generator=g) < 0.3).float()
    post = (torch.rand(9, 3, 4, generator=g) < 0.3).float()
    w = torch.rand(4, 5, generator=g)
    p = P._replace(mu=1.0)
    assert torch.allclose(stdp_sequence(pre, post, w, p), run_steps(pre, post, w, p), atol=1e-6)
    mean = stdp_sequence(pre, post, w, p._replace(reduce="mean"))
    assert torch.allclose(mean * 3, stdp_sequence(pre, post, w, p), atol=1e-6)


def test_conv_update_matches_per_position_linear_update():
    g = torch.Generator().manual_seed(1)
    conv = Conv((1, 1), (1, 1), (1, 1), 1)
    pre = (torch.rand(5, 2, 2, 4, 4, generator=g) < 0.4).float()  # [T, N, C_in, H, W]
    post = (torch.rand(5, 2, 3, 4, 4, generator=g) < 0.3).float()  # [T, N, C_out, H, W]
    w = torch.rand(3, 2, 3, 3, generator=g)
    dw = stdp_sequence(pre, post, w, P, conv)
    # the same rule on unfolded patches: every output position is one more linear "sample"
    cols = F.unfold(pre.flatten(0, 1), 3, padding=1)  # [T*N, C_in*9, H*W]
    pre_lin = cols.unflatten(0, (5, 2)).permute(0, 1, 3, 2).flatten(1, 2)  # [T, N*H*W, C_in*9]
    post_lin = post.flatten(3).permute(0, 1, 3, 2).flatten(1, 2)  # [T, N*H*W, C_out]
    ref = stdp_sequence(pre_lin, post_lin, w.flatten(1), P)
    assert torch.allclose(dw.flatten(1), ref, atol=1e-5)
    assert torch.allclose(dw, run_steps(pre, post, w, P, conv), atol=1e-5)


def test_soft_bounds_scale_by_distance_to_the_bound():
    p = P._replace(mu=1.0)
    pre, post = pair(1, 1)
    assert run_steps(pre, post, torch.full((1, 1), 0.75), p).item() == pytest.approx(0.5 * 0.25)
    pre, post = pair(2, 1)
    assert run_steps(pre, post, torch.full((1, 1), 0.75), p).item() == pytest.approx(
        -0.25 * math.exp(-1 / 8) * 0.75)


def test_weights_stay_in_range():
    g = torch.Generator().manual_seed(2)
    w = torch.rand(6, 10, generator=g)
    p = P._replace(lr_post=5.0, lr_pre=5.0)
    for _ in range(5):
        pre = (torch.rand(8, 4, 10, generator=g) < 0.5).float()
        post = (torch.rand(8, 4, 6, generator=g) < 0.5).float()
        apply_dw_(w, stdp_sequence(pre, post, w, p), p)
        assert float(w.min()) >= p.w_min and float(w.max()) <= p.w_max


def test_normalisation_holds_for_linear_and_conv():
    w = torch.rand(5, 7)
    normalise_(w, 3.0)
    assert torch.allclose(w.sum(1), torch.full((5,), 3.0))
    k = torch.rand(4, 2, 3, 3)
    normalise_(k, 1.5)
    assert torch.allclose(k.flatten(1).sum(1), torch.full((4,), 1.5))
    capped = normalise_(torch.tensor([[1.0, 3.0]]), 8.0, w_max=5.0)
    assert capped.tolist() == [[2.0, 5.0]]  # the range wins over the sum
    assert normalise_(torch.tensor([[1.0, 3.0], [4.0, 12.0]]), 8.0, cap=True).tolist() == [[1, 3], [2, 6]]


@pytest.mark.parametrize("mode", ["uniform", "normal"])
def test_init_within_range_and_seeded(mode):
    a = init_weights_(torch.empty(50, 20), mode, -0.5, 0.25, torch.Generator().manual_seed(3))
    b = init_weights_(torch.empty(50, 20), mode, -0.5, 0.25, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and float(a.min()) >= -0.5 and float(a.max()) <= 0.25
    with pytest.raises(ConfigError, match="model.w_init"):
        init_weights_(torch.empty(2), "zeros", 0, 1)


def test_step_does_not_mutate_inputs():
    pre, post, w = torch.ones(1, 3), torch.ones(1, 2), torch.full((2, 3), 0.5)
    tr = Traces(torch.ones(1, 3), torch.ones(1, 2))
    copies = [t.clone() for t in (pre, post, w, *tr)]
    stdp_step(pre, post, tr, w, P)
    assert all(torch.equal(a, b) for a, b in zip((pre, post, w, *tr), copies))


def test_invalid_params_name_their_key():
    with pytest.raises(ConfigError, match=r"learner\.stdp\.w_min"):
        check_params(STDPParams(w_min=1.0, w_max=0.0))
    with pytest.raises(ConfigError, match=r"learner\.stdp\.reduce"):
        check_params(STDPParams(reduce="max"))


@pytest.mark.parametrize("p", [P, P._replace(mu=1.0, reduce="mean")])
@pytest.mark.parametrize("kernel", [True, False])
def test_stdp_of_events_equals_the_dense_sequence(p, kernel, monkeypatch):
    """stdp_events (only the neurons that spiked, traces at their spike frames) = stdp_sequence of the
    same spikes as a dense [T, N, n] tensor, to rounding; rows of silent neurons do not change."""
    from snnexp.neurons.fused.dispatch import available
    from snnexp.rules import stdp as rules
    from snnexp.rules.stdp import stdp_events

    if kernel and not available("cpu"):
        pytest.skip("no C++ compiler here")
    if not kernel:
        monkeypatch.setattr(rules, "available", lambda kind: False)
    g = torch.Generator().manual_seed(0)
    T, N, n_in, n = 30, 4, 12, 9
    pre = (torch.rand(T, N, n_in, generator=g, dtype=torch.float64) < 0.3).double()
    post = (torch.rand(T, N, n, generator=g, dtype=torch.float64) < 0.05).double()
    post[:, :, 3] = 0  # a silent neuron
    w = torch.rand(n, n_in, generator=g, dtype=torch.float64)
    b, t, j = post.transpose(0, 1).nonzero(as_tuple=True)
    rows, dw_rows = stdp_events(pre, t, b, j, w, p)
    dense = stdp_sequence(pre, post, w, p)
    dw = torch.zeros_like(w).index_copy_(0, rows, dw_rows)
    assert 3 not in rows.tolist() and dense.abs().sum() > 0
    assert torch.allclose(dw, dense, rtol=1e-12, atol=1e-12)


def test_apply_rows_equals_apply_dw_of_the_dense_change():
    from snnexp.rules.stdp import apply_rows_

    w = torch.rand(5, 6, generator=torch.Generator().manual_seed(1))
    rows, dw_rows = torch.tensor([1, 3]), torch.randn(2, 6, generator=torch.Generator().manual_seed(2))
    dense = torch.zeros_like(w).index_copy_(0, rows, dw_rows)
    assert torch.equal(apply_rows_(w.clone(), rows, dw_rows, P), apply_dw_(w.clone(), dense, P))
