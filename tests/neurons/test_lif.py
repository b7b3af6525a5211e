"""LIF against sequences worked out by hand, and step function == module."""
import pytest
import torch

from snnexp.errors import ConfigError
from snnexp.neurons import LIF
from snnexp.neurons.base import MembraneState
from snnexp.neurons.lif import lif_step


def test_constant_input_spike_times_tau2():
    # tau=2, decay_input, x=1.5, threshold 1, reset to 0 (hard):
    # v: 0 -> 0.75 -> 1.125 spike -> 0 -> 0.75 -> 1.125 spike: spikes at t = 1, 3, 5
    lif = LIF(tau=2.0, reset="hard")
    s = lif(torch.full((6, 1, 1), 1.5))
    assert s.flatten().tolist() == [0, 1, 0, 1, 0, 1]


def test_soft_reset_keeps_the_excess():
    # subtract: v 0.75 -> 1.125 (spike, v = 0.125) -> 0.8125 -> 1.15625 (spike, 0.15625) -> 0.828125
    lif = LIF(tau=2.0, reset="subtract")
    s, state = lif.run(torch.full((5, 1), 1.5))
    assert s.flatten().tolist() == [0, 1, 0, 1, 0]
    assert state.v.item() == pytest.approx(0.828125)


def test_hard_vs_soft_reset_differ_only_after_a_spike():
    x = torch.full((4, 1), 1.5)
    hard = LIF(reset="hard").run(x)[1].v.item()
    soft = LIF(reset="subtract").run(x)[1].v.item()
    # both spike at t=1 and t=3; after t=3 hard is 0, soft keeps 0.15625
    assert hard == 0.0 and soft == pytest.approx(0.15625)


def test_decay_input_off_integrates_raw_input():
    # h = v - v/tau + x: 0.6 -> 0.9 -> 1.05 spike
    s = LIF(tau=2.0, decay_input=False).run(torch.full((3, 1), 0.6))[0]
    assert s.flatten().tolist() == [0, 0, 1]


def test_v_reset_and_threshold():
    # tau 4, threshold 0.5, hard reset to -0.5 (also the resting state), x = 2:
    # h = -0.5 + 2/4 = 0 -> 0 + 1.5/4 = 0.375 -> 0.375 + 1.125/4 = 0.65625 spike -> v = -0.5 -> 0
    lif = LIF(tau=4.0, v_threshold=0.5, v_reset=-0.5, reset="hard")
    s, state = lif.run(torch.full((4, 1), 2.0))
    assert s.flatten().tolist() == [0, 0, 1, 0]
    assert state.v.item() == 0.0


def test_step_function_matches_module():
    torch.manual_seed(0)
    lif = LIF(tau=3.0)
    x = torch.rand(7, 2, 5) * 2
    state = MembraneState(torch.zeros(2, 5))
    spikes = []
    for x_t in x:
        s, state = lif_step(x_t, state, lif.params())
        spikes.append(s)
    s_mod, st = lif.run(x)
    assert torch.equal(torch.stack(spikes), s_mod)
    assert torch.allclose(state.v, st.v)


def test_step_function_does_not_mutate_inputs():
    lif = LIF()
    x, v = torch.ones(3), torch.full((3,), 0.5)
    x0, v0 = x.clone(), v.clone()
    lif_step(x, MembraneState(v), lif.params())
    assert torch.equal(x, x0) and torch.equal(v, v0)


@pytest.mark.parametrize("kwargs, key", [
    ({"tau": 1.0}, "neuron.tau"), ({"tau": 0.5}, "neuron.tau"), ({"v_threshold": 0.0}, "neuron.v_threshold"),
    ({"reset": "zero"}, "neuron.reset"), ({"v_reset": 2.0}, "neuron.v_reset"),
])
def test_invalid_values_name_their_key(kwargs, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        LIF(**kwargs)


def test_accepts_integers_from_yaml():
    assert float(LIF(tau=2, v_threshold=1).tau) == 2.0
