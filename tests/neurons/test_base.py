"""The fused path equals the loop of step functions; single-step equals multi-step (values and gradients)."""
import itertools

import pytest
import torch

from snnexp.neurons import IF, LIF, PLIF
from snnexp.neurons.base import MembraneState
from snnexp.neurons.surrogate import ATan, Sigmoid, Triangle

CASES = list(itertools.product([LIF, PLIF, IF], ["subtract", "hard"], [False, True], [False, True]))


def _loss_and_grads(neuron, x, weights, fused: bool):
    state = neuron.initial_state(x[0])
    s, final = neuron.run(x, state) if fused else neuron.run_loop(x, state)
    loss = (s * weights).sum() + final.v.square().sum()
    return s, final.v, torch.autograd.grad(loss, [x, *neuron.parameters()])


@pytest.mark.parametrize("cls, reset, detach, learn_threshold", CASES)
def test_fused_equals_loop(cls, reset, detach, learn_threshold):
    torch.manual_seed(1)
    neuron = cls(reset=reset, detach_reset=detach, learn_threshold=learn_threshold,
                 v_reset=-0.2 if reset == "hard" else 0.0, surrogate=Sigmoid(4.0)).double()
    x = (torch.rand(9, 3, 4, dtype=torch.float64) * 1.6).requires_grad_()
    w = torch.randn(9, 3, 4, dtype=torch.float64)
    s1, v1, g1 = _loss_and_grads(neuron, x, w, fused=True)
    s2, v2, g2 = _loss_and_grads(neuron, x, w, fused=False)
    assert s1.sum() > 0 and torch.equal(s1, s2)
    assert torch.allclose(v1, v2, atol=1e-12)
    for a, b in zip(g1, g2):
        assert torch.allclose(a, b, atol=1e-10)


@pytest.mark.parametrize("cls", [LIF, PLIF, IF])
def test_single_step_equals_multi_step_with_gradients(cls):
    torch.manual_seed(2)
    multi, single = cls(surrogate=Triangle()), cls(surrogate=Triangle(), step_mode="s")
    single.load_state_dict(multi.state_dict())
    x = torch.rand(6, 2, 3, requires_grad=True)
    s_multi = multi(x)
    s_single = torch.stack([single(x_t) for x_t in x])
    assert torch.equal(s_multi, s_single)
    w = torch.randn_like(s_multi)
    g_multi = torch.autograd.grad((s_multi * w).sum(), [x, *multi.parameters()])
    g_single = torch.autograd.grad((s_single * w).sum(), [x, *single.parameters()])
    for a, b in zip(g_multi, g_single):
        assert torch.allclose(a, b, atol=1e-6)


def test_multi_step_starts_fresh_and_single_step_keeps_state_until_reset():
    x = torch.full((3, 1), 0.4)
    lif = LIF()
    assert torch.equal(lif(x), lif(x))  # no state leaks between multi-step calls
    step = IF(step_mode="s")
    outs = [step(x_t) for x_t in torch.full((3, 1), 0.4)]
    assert [o.item() for o in outs] == [0, 0, 1]
    step.reset()
    assert step(torch.tensor([0.4])).item() == 0


def test_fused_gradcheck_membrane_path():
    # Finite differences see no surrogate, so check the smooth part: with a detached
    # soft reset the final membrane is differentiable in x, spikes included.
    neuron = LIF(tau=3.0, detach_reset=True).double()
    x = (torch.rand(5, 2, 3, dtype=torch.float64) * 2).requires_grad_()
    s, _ = neuron.run(x)
    assert s.sum() > 0
    assert torch.autograd.gradcheck(lambda x: neuron.run(x)[1].v, (x,))


def test_learned_threshold_gets_gradient():
    lif = LIF(learn_threshold=True)
    lif(torch.rand(5, 4, 3) * 2).sum().backward()
    assert lif.v_threshold.grad is not None and lif.v_threshold.grad != 0


@pytest.mark.parametrize("neuron", [LIF(tau=3.7, v_reset=-0.3, reset="hard"), LIF(tau=2.5, decay_input=False),
                                    PLIF(init_tau=4.2, v_reset=0.2, reset="hard"), PLIF(decay_input=False), IF()],
                         ids=["lif", "lif-raw-input", "plif", "plif-raw-input", "if"])
def test_charge_coefficients_are_read_off_the_step_function(neuron):
    # The fused path runs on (a, b, c); they must reproduce the step function's own charge,
    # which is the membrane the step leaves when nothing fires (threshold out of reach).
    torch.manual_seed(3)
    neuron = neuron.double()
    v, x = torch.randn(50, dtype=torch.float64), torch.randn(50, dtype=torch.float64)
    a, b, c = neuron.charge_coefficients()
    with torch.no_grad():
        neuron.v_threshold.fill_(1e6)
    s, state = neuron.step(x, MembraneState(v))
    assert s.sum() == 0
    assert torch.allclose(a * v + b * x + c, state.v, atol=1e-14)
    if not isinstance(neuron, IF):  # tau != 2 or raw input: the cases where a and b differ
        assert not torch.allclose(a, b)
