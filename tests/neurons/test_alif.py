"""ALIF against a trajectory worked out by hand, step == module, and the persistent theta."""
import math

import pytest
import torch

from snnexp.errors import ConfigError
from snnexp.neurons.alif import ALIF, ALIFState, alif_step


def test_hand_computed_trajectory():
    # tau 2 (decay_input), threshold 1, hard reset, theta_plus 0.5, tau_theta 2 (decay e^-1/2), x = 1.5:
    # t0: h = 0.75 < 1                              theta 0
    # t1: h = 0.75 + (1.5-0.75)/2 = 1.125 >= 1      spike, v = 0, theta = 0.5
    # t2: h = 0.75 < 1.5                            theta = 0.5 e^-.5 = 0.3033
    # t3: h = 1.125 < 1.3033                        theta = 0.1839
    # t4: h = 1.3125 >= 1.1839 spike, v = 0         theta = 0.1116 + 0.5 = 0.6116
    n = ALIF(tau=2.0, tau_theta=2.0, theta_plus=0.5, reset="hard")
    s, state = n.run(torch.full((5, 1), 1.5))
    assert s.flatten().tolist() == [0, 1, 0, 0, 1]
    d = math.exp(-0.5)
    assert state.theta.item() == pytest.approx(0.5 * d ** 3 + 0.5, rel=1e-6)
    assert state.v.item() == 0.0


def test_theta_rises_with_activity_and_decays():
    n = ALIF(tau=2.0, tau_theta=10.0, theta_plus=0.2)
    _, strong = n.run(torch.full((20, 1), 3.0))
    _, weak = n.run(torch.full((20, 1), 1.2))
    assert strong.theta.item() > weak.theta.item() > 0
    _, later = n.run(torch.zeros(5, 1), strong)
    assert later.theta.item() == pytest.approx(strong.theta.item() * math.exp(-5 / 10), rel=1e-6)


def test_adaptation_lowers_the_rate():
    x = torch.full((50, 1), 2.0)
    plain = ALIF(tau=2.0, theta_plus=0.0).run(x)[0].sum()
    adaptive = ALIF(tau=2.0, theta_plus=0.5).run(x)[0].sum()
    assert adaptive < plain


def test_step_function_matches_module_both_modes():
    torch.manual_seed(0)
    n = ALIF(tau=3.0, tau_theta=5.0, theta_plus=0.3)
    x = torch.rand(7, 2, 5) * 2
    state = ALIFState(torch.zeros(2, 5), torch.zeros(2, 5))
    spikes = []
    for x_t in x:
        s, state = alif_step(x_t, state, n.params())
        spikes.append(s)
    assert torch.equal(torch.stack(spikes), n(x))
    n.step_mode = "s"
    n.reset()
    assert torch.equal(torch.stack([n(x_t) for x_t in x]), torch.stack(spikes))
    assert torch.allclose(n.state.theta, state.theta)


def test_persistent_theta_accumulates_in_training_only():
    n = ALIF(tau=2.0, tau_theta=1e7, theta_plus=0.1, persistent_theta=True, features=3)
    x = torch.tensor([3.0, 0.0, 3.0]).expand(10, 2, 3)
    s = n(x)
    gained = 0.1 * s.sum((0, 1))  # every spike of both samples adds theta_plus
    assert torch.allclose(n.theta_rest, gained, atol=1e-5) and n.theta_rest[1] == 0
    n.eval()
    before = n.theta_rest.clone()
    n(x)
    assert torch.equal(n.theta_rest, before)


def test_a_batch_decays_theta_over_all_its_samples_as_if_shown_one_after_another():
    """A silent batch of N samples of T steps decays theta_rest by exp(-N T / tau_theta), as N sequences
    one after another would (it used to decay by exp(-T / tau_theta) per batch, whatever N)."""
    n = ALIF(tau=2.0, tau_theta=100.0, theta_plus=0.1, persistent_theta=True, features=2, v_threshold=50.0)
    one = ALIF(tau=2.0, tau_theta=100.0, theta_plus=0.1, persistent_theta=True, features=2, v_threshold=50.0)
    n.theta_rest.fill_(3.0)
    one.theta_rest.fill_(3.0)
    x = torch.zeros(10, 4, 2)  # 4 samples of 10 steps, no spike
    n(x)
    for b in range(4):
        one(x[:, b:b + 1])
    assert torch.allclose(n.theta_rest, torch.full((2,), 3.0 * math.exp(-40 / 100.0)))
    assert torch.allclose(n.theta_rest, one.theta_rest)


def test_gradient_flows_through_the_surrogate():
    x = torch.full((4, 1, 3), 1.5, requires_grad=True)
    ALIF(tau=2.0)(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize("kwargs, key", [({"tau_theta": 0}, "neuron.tau_theta"), ({"theta_plus": -1}, "neuron.theta_plus"),
                                         ({"persistent_theta": True}, "neuron.persistent_theta"), ({"tau": 1}, "neuron.tau")])
def test_invalid_values_name_their_key(kwargs, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        ALIF(**kwargs)


def _homeostatic_model(step_mode: str):
    from torch import nn

    from snnexp.models.base import SpikingModel

    neuron = ALIF(tau=2.0, tau_theta=50.0, theta_plus=0.1, persistent_theta=True, features=4)
    return SpikingModel([nn.Identity(), neuron], step_mode=step_mode, readout="spikes"), neuron


@pytest.mark.parametrize("step_mode", ["s", "m"])
def test_eval_between_training_batches_leaves_homeostasis_alone(step_mode):
    """train(a), eval(e), train(b) books exactly what train(a), train(b) books: the eval batch's
    increments are not added, and the training batch before it is not dropped."""
    torch.manual_seed(0)
    a, e, b = (torch.rand(6, 3, 4) * 3 for _ in range(3))
    with_eval, n1 = _homeostatic_model(step_mode)
    without, n2 = _homeostatic_model(step_mode)
    with torch.no_grad():
        with_eval.train()(a)
        with_eval.eval()(e)
        with_eval.train()(b)
        without.train()(a)
        without.train()(b)
    assert n2.theta_rest.sum() > 0
    assert torch.equal(n1.theta_rest, n2.theta_rest)


def test_single_step_books_each_training_sequence_once():
    model_s, ns = _homeostatic_model("s")
    model_m, nm = _homeostatic_model("m")
    torch.manual_seed(1)
    for _ in range(3):
        x = torch.rand(5, 2, 4) * 3
        with torch.no_grad():
            assert torch.equal(model_s(x), model_m(x))
    assert torch.allclose(ns.theta_rest, nm.theta_rest, atol=1e-6) and nm.theta_rest.sum() > 0
