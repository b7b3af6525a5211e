"""The network representation: nodes, their inputs, recurrent edges, shapes and labels; unknown layers refused."""
from __future__ import annotations

from functools import partial

import pytest
import torch
from torch import nn

from snnexp.errors import ConfigError
from snnexp.models import CSNN
from snnexp.models.base import SpikingModel
from snnexp.models.resnet import ResNet
from snnexp.models.rsnn import RSNN
from snnexp.network import INPUT, Network, Role
from snnexp.neurons import LIF


def test_a_chain_is_a_chain_of_nodes_with_their_shapes():
    model = CSNN(LIF, (1, 8, 8), 10, channels=(4,), pool_first=False)
    net = model.network((1, 8, 8))
    assert net.is_chain() and not net.branched()
    assert [(n.label, n.role, n.shape) for n in net] == [
        ("conv0", Role.SYNAPSE, (4, 8, 8)), ("bn1", Role.NORM, (4, 8, 8)), ("lif2", Role.NEURON, (4, 8, 8)),
        ("maxpool3", Role.POOL, (4, 4, 4)), ("flatten4", Role.SHAPE, (64,)), ("fc5", Role.SYNAPSE, (10,)),
        ("lif6", Role.NEURON, (10,))]
    assert net["net.0"].inputs == (INPUT,) and net.output == "net.6"
    assert list(model.spiking_layers()) == ["lif2", "lif6"]


def test_a_residual_block_forks_and_joins():
    model = ResNet(LIF, (1, 8, 8), 10, depth=None, blocks=(1, 1), channels=(4, 8))
    net = model.network((1, 8, 8))
    assert not net.is_chain()
    joins = net.with_role(Role.JOIN)
    assert [(j.name, j.inputs) for j in joins] == [
        ("net.3", ("net.3.body.4", "net.2")),  # identity shortcut: the block's input itself
        ("net.5", ("net.5.body.4", "net.5.shortcut.1"))]  # the strided 1x1 projection
    assert net["net.5.shortcut.0"].inputs == ("net.4",) and net["net.5.shortcut.1"].shape == (8, 4, 4)
    assert net.successors("net.3") == [net["net.4"]]


def test_a_recurrent_neuron_reads_its_feedback_at_the_previous_step():
    model = RSNN(LIF, (5,), 3, hidden=(6,))
    net = model.network((5,))
    neuron = net["net.2.neuron"]
    assert neuron.inputs == ("net.1",) and neuron.delayed == ("net.2.feedback.0",)
    assert net["net.2.feedback.0"].inputs == ("net.2.neuron",) and net["net.2.feedback.0"].shape == (6,)
    assert net.branched() == [neuron] and net.successors("net.2.feedback.0") == []
    assert list(model.spiking_layers()) == ["lif2_neuron"]


def test_rsnn_without_recurrence_is_a_chain():
    assert RSNN(LIF, (5,), 3, hidden=(6,), recurrent=False).network((5,)).is_chain()


def test_a_layer_nobody_declared_is_refused_with_its_path():
    class Odd(nn.Module):
        def forward(self, x):
            return x

    model = SpikingModel([nn.Linear(3, 3), Odd(), LIF()], "m", "spikes")
    with pytest.raises(ConfigError, match=r"layer at net.1 \(Odd\) is not a layer type .* Declare it with "
                                          r"@snnexp.network.register\(Odd\)"):
        Network.of(model)


def test_nested_sequentials_are_series():
    lif = partial(LIF)
    seq = nn.Sequential(nn.Linear(4, 4), nn.Sequential(lif(), nn.Linear(4, 2)), lif())
    net = Network.of(seq, (4,))
    assert net.is_chain() and [n.name for n in net] == ["0", "1.0", "1.1", "2"]
    assert net["2"].shape == (2,) and torch.Size(net["1.1"].in_shape) == torch.Size([4])
