"""The hybrid learner: STDP weights change by STDP only, everything else by the optimizer."""
from functools import partial

import pytest
import torch

from snnexp.encoding.poisson import Poisson
from snnexp.errors import ConfigError
from snnexp.learners.hybrid import Hybrid
from snnexp.models import CSNN, MLP
from snnexp.models.wta import WTA
from snnexp.neurons import LIF, PLIF
from tests.learners.test_stdp import fit_one_batch

ADAM = partial(torch.optim.Adam, lr=0.01)


def test_stdp_layers_take_no_gradient_and_the_rest_learns():
    torch.manual_seed(0)
    model = CSNN(partial(PLIF), (1, 8, 8), 3, channels=[4, 4])
    learner = Hybrid(model, Poisson(T=4), 3, ADAM, stdp={"lr_post": 0.5, "lr_pre": 0.1}, stdp_layers=[0])
    conv0, conv1, readout = model.net[0], model.net[4], model.net[-2]
    before = {k: m.weight.detach().clone() for k, m in {"conv0": conv0, "conv1": conv1, "out": readout}.items()}
    tau0 = model.net[3].tau.item()
    assert learner.configure_optimizers()
    fit_one_batch(learner, torch.rand(16, 1, 8, 8), torch.randint(0, 3, (16,)))
    assert not conv0.weight.requires_grad and conv0.weight.grad is None  # STDP only
    assert not torch.equal(conv0.weight, before["conv0"])
    assert float(conv0.weight.abs().max()) <= 1.0
    assert conv1.weight.requires_grad and not torch.equal(conv1.weight, before["conv1"])  # gradient
    assert not torch.equal(readout.weight, before["out"])
    assert model.net[3].tau.item() != tau0  # PLIF's tau learns by gradient here


def test_models_without_a_hidden_spiking_layer_are_refused():
    with pytest.raises(ConfigError, match="learner=hybrid works with model=csnn"):
        Hybrid(MLP(partial(LIF), (1, 8, 8), 10, hidden=[]), Poisson(T=4), 10, ADAM)
    with pytest.raises(ConfigError, match="learner=stdp only"):
        Hybrid(WTA(partial(LIF), (1, 8, 8), 10), Poisson(T=4), 10, ADAM)
    with pytest.raises(ConfigError, match="learner.stdp_layers"):
        Hybrid(CSNN(partial(LIF), (1, 8, 8), 10), Poisson(T=4), 10, ADAM, stdp_layers=[5])
