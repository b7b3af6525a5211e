"""Lateral inhibition: soft inhibition lowers the others, k-WTA keeps at most k winners per step."""
import pytest
import torch

from snnexp.neurons import IF, LIF
from snnexp.neurons.alif import ALIF
from snnexp.neurons.inhibition import LateralInhibition


@pytest.mark.parametrize("k", [1, 2, 3])
def test_k_wta_leaves_at_most_k_winners_per_step(k):
    torch.manual_seed(0)
    layer = LateralInhibition(IF(), k=k)
    s = layer(torch.rand(30, 4, 10) * 2)
    assert s.sum(-1).max() <= k
    assert s.sum() > 0


def test_k_wta_picks_the_strongest_input_and_resets_the_losers():
    layer = LateralInhibition(IF(reset="hard"), k=1)
    x = torch.tensor([[[0.6, 1.5, 1.2]]]).expand(3, 1, 3)
    s, state = layer.run(x)
    # t0: neurons 1 and 2 cross; 1 wins, 2 is reset to 0 with neuron 0 (0.6)
    assert s[0, 0].tolist() == [0, 1, 0]
    assert state.inner.v[0, 0].item() < 1.0


def test_soft_inhibition_lowers_other_neurons_next_step():
    x = torch.tensor([[[2.0, 0.9]]]).expand(3, 1, 2)
    free = LateralInhibition(IF(reset="hard"), strength=0.0).run(x)[0]
    inhibited = LateralInhibition(IF(reset="hard"), strength=0.5).run(x)[0]
    # neuron 1 alone: 0.9, 1.8 -> spike at t1; inhibited by neuron 0's spike at t0: 0.9, 0.9+0.9-0.5=1.3 -> spike
    # at t2: free 0.9 again; inhibited 0.9 - 0.5 (neuron 0 fired at t1) = 0.4
    assert free[:, 0, 0].tolist() == inhibited[:, 0, 0].tolist() == [1, 1, 1]
    assert inhibited[:, 0, 1].sum() <= free[:, 0, 1].sum()
    assert LateralInhibition(IF(reset="hard"), strength=5.0).run(x)[0][:, 0, 1].sum() == 0


def test_single_step_equals_multi_step_and_keeps_alif_theta():
    torch.manual_seed(1)
    x = torch.rand(12, 2, 6) * 3
    multi = LateralInhibition(ALIF(tau=2.0, theta_plus=0.3), strength=0.2, k=2)
    single = LateralInhibition(ALIF(tau=2.0, theta_plus=0.3), strength=0.2, k=2, step_mode="s")
    assert torch.equal(multi(x), torch.stack([single(x_t) for x_t in x]))
    assert single.state.inner.theta.sum() > 0


def test_wraps_lif_and_passes_gradients():
    x = torch.rand(5, 2, 4, requires_grad=True)
    LateralInhibition(LIF(), strength=0.1)(x * 3).sum().backward()
    assert x.grad is not None


def test_k_wta_losers_do_not_adapt():
    """Three ALIF neurons cross threshold at once, k = 1: one spikes, and only its theta rises."""
    layer = LateralInhibition(ALIF(tau=2.0, tau_theta=10.0, theta_plus=0.5, reset="hard"), k=1)
    x = torch.tensor([[[3.0, 4.0, 3.5]]])  # [T=1, N=1, 3]: all three reach h >= 1
    s, state = layer.run(x)
    assert s[0, 0].tolist() == [0.0, 1.0, 0.0]
    assert state.inner.theta[0].tolist() == [0.0, 0.5, 0.0]  # the losers' theta unchanged (it was 0)
    assert state.inner.v[0].tolist() == [0.0, 0.0, 0.0]  # winner reset, losers sent to rest


def test_k_wta_losers_keep_their_decaying_theta():
    """Over several steps a loser's theta only decays, exactly as if it had never crossed."""
    decay = torch.exp(torch.tensor(-1 / 10.0)).item()
    layer = LateralInhibition(ALIF(tau=2.0, tau_theta=10.0, theta_plus=0.5, reset="hard"), k=1)
    x = torch.tensor([[4.0, 3.0]]).expand(2, 1, 2)  # both cross at both steps; neuron 0 wins both
    s, state = layer.run(x)
    assert s[:, 0, 0].tolist() == [1.0, 1.0] and s[:, 0, 1].sum() == 0
    assert state.inner.theta[0, 1].item() == 0.0
    wins = s[:, 0, 0].tolist()
    theta = 0.0
    for w in wins:
        theta = theta * decay + 0.5 * w
    assert abs(state.inner.theta[0, 0].item() - theta) < 1e-6
