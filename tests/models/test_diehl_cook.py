"""The Diehl & Cook network: shapes, its neuron requirement, inhibition, initial weights, theta."""
from functools import partial

import pytest
import torch

from snnexp.errors import ConfigError
from snnexp.models.diehl_cook import DiehlCook
from snnexp.neurons import LIF
from snnexp.neurons.alif import ALIF

EXC = dict(tau=100.0, decay_input=False, tau_theta=1e7, theta_plus=0.05, v_threshold=13.0, reset="hard")


def build(**kw):
    return DiehlCook(partial(ALIF), (1, 8, 8), 10, n_neurons=16, exc=EXC, **kw)


def test_shapes_and_initial_weights():
    m = build()
    assert m(torch.zeros(5, 3, 1, 8, 8)).shape == (5, 3, 10)
    w = m.synapse.weight.detach()  # uniform on [0, w_init_max]; their sum is the learner's (learner.norm)
    assert w.shape == (16, 64) and float(w.min()) >= 0 and float(w.max()) <= 0.3 and float(w.max()) > 0.25
    assert m.excitatory.neuron.persistent_theta and m.excitatory.neuron.v_threshold.item() == 13.0


def test_needs_alif():
    with pytest.raises(ConfigError, match="neuron=alif"):
        DiehlCook(partial(LIF), (1, 8, 8), 10)


def test_strong_inhibition_leaves_one_winner_and_theta_rises_in_training():
    torch.manual_seed(0)
    m = build(inhibition=120.0)
    x = (torch.rand(100, 2, 1, 8, 8) < 0.5).float()
    m.train()
    with torch.no_grad():
        m(x)
    s = m.excitatory.neuron.theta_rest
    assert s.sum() > 0  # some neuron fired and raised its threshold
    with torch.no_grad():
        spikes = m.excitatory(m.synapse(x.flatten(2)))  # [T, N, n]
    weak = build(inhibition=0.0)
    weak.excitatory.neuron.theta_rest.copy_(m.excitatory.neuron.theta_rest)
    weak.synapse.weight.data.copy_(m.synapse.weight)
    with torch.no_grad():
        free = weak.excitatory(weak.synapse(x.flatten(2)))
    assert spikes.sum() < 0.5 * free.sum()  # a spike holds the other neurons down


def test_k_wta_option():
    m = build(k_wta=2, inhibition=0.0)
    with torch.no_grad():
        s = m.excitatory(m.synapse((torch.rand(30, 2, 64) < 0.8).float()))
    assert s.sum(-1).max() <= 2
