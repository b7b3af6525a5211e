"""The event-driven excitatory layer (C++ kernel) against the dense layers it replaces: same spikes."""
from functools import partial

import pytest
import torch

from snnexp.models.diehl_cook import DiehlCook
from snnexp.neurons.alif import ALIF
from snnexp.neurons.fused.dispatch import available
from snnexp.neurons.fused.inhibited_alif import events_of, inhibited_alif_events, supports

pytestmark = pytest.mark.skipif(not available("cpu"), reason="no C++ compiler here: the kernel cannot be built")


def layer(reset="hard", decay_input=False, inhibition=120.0, n=40, n_in=64, dtype=torch.float32, seed=0):
    exc = dict(tau=100.0, decay_input=decay_input, tau_theta=1e3, theta_plus=0.5, v_threshold=13.0, reset=reset)
    m = DiehlCook(partial(ALIF), (1, 8, 8) if n_in == 64 else (1, n_in), 10, n_neurons=n, exc=exc,
                  inhibition=inhibition, seed=seed).to(dtype)
    m.excitatory.neuron.theta_rest.copy_(torch.rand(n, generator=torch.Generator().manual_seed(seed + 1)) * 3)
    if decay_input:  # the input is divided by tau: stronger weights, so that neurons fire
        m.synapse.weight.data.mul_(60)
    return m


def dense(m, x):
    """The reference: x @ W.T, then the step functions (what model.forward runs)."""
    with torch.no_grad():
        drive = torch.nn.functional.linear(x, m.synapse.weight)
        s_seq, state = m.excitatory.run_loop(drive, m.excitatory.initial_state(drive[0]))
    return s_seq, state.inner


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("reset,decay_input,inhibition", [("hard", False, 120.0), ("subtract", True, 5.0),
                                                          ("hard", True, 0.0), ("subtract", False, 17.0)])
def test_kernel_fires_the_same_spikes_as_the_dense_layer(dtype, reset, decay_input, inhibition):
    m = layer(reset, decay_input, inhibition, dtype=dtype)
    x = (torch.rand(120, 7, 64, generator=torch.Generator().manual_seed(2)) < 0.3).to(dtype)
    s_seq, state = dense(m, x)
    ev, ref = inhibited_alif_events(x, m.synapse.weight, m.excitatory), events_of(s_seq)
    assert ref.t.numel() > 50  # enough spikes for the comparison to mean something
    for got, want in zip(ev[:4], ref[:4]):
        assert torch.equal(got, want)
    assert torch.equal(ev.state.theta, state.theta)  # theta moves with the spikes only: exact
    assert torch.allclose(ev.state.v, state.v, atol=1e-4 if dtype == torch.float32 else 1e-10)


def test_graded_inputs_are_weighted_like_the_dense_product():
    m = layer(dtype=torch.float64)
    x = torch.rand(60, 3, 64, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    x[x < 0.6] = 0  # zeros are skipped, other values weight their row
    ev, ref = inhibited_alif_events(x, m.synapse.weight, m.excitatory), events_of(dense(m, x)[0])
    assert ref.t.numel() > 0 and all(torch.equal(a, b) for a, b in zip(ev[:4], ref[:4]))


def test_run_events_books_theta_in_training_only_and_matches_the_dense_reference():
    x = (torch.rand(80, 5, 1, 8, 8, generator=torch.Generator().manual_seed(4)) < 0.3).float()
    fast, slow = layer(), layer()
    slow.event_driven = False
    for mode in ("eval", "train"):
        getattr(fast, mode)(), getattr(slow, mode)()
        before = fast.excitatory.neuron.theta_rest.clone()
        a, b = fast.run_events(x), slow.run_events(x)
        assert all(torch.equal(p, q) for p, q in zip(a[:4], b[:4]))
        assert torch.equal(fast.excitatory.neuron.theta_rest, slow.excitatory.neuron.theta_rest)
        assert torch.equal(fast.excitatory.neuron.theta_rest, before) == (mode == "eval")


def test_supports_only_the_soft_inhibition_on_the_cpu():
    m = layer()
    x = torch.zeros(3, 2, 64)
    assert supports(x, m.excitatory)
    assert not supports(x.to(torch.float16), m.excitatory)
    m.excitatory.k = 1  # hard k-WTA runs the dense path
    assert not supports(x, m.excitatory)
