import functools

import pytest
import torch

from snnexp.errors import ConfigError
from snnexp.models import CSNN, MLP
from snnexp.neurons import IF, LI, LIF, PLIF


@pytest.mark.parametrize("neuron_cls", [IF, LIF, PLIF])
def test_neuron_factory_swaps_every_spiking_layer(neuron_cls):
    model = CSNN(functools.partial(neuron_cls), in_shape=(1, 8, 8), num_classes=10, channels=(4, 4), hidden=(16,))
    layers = list(model.spiking_layers().values())
    assert len(layers) == 4 and all(type(m) is neuron_cls for m in layers)


@pytest.mark.parametrize("cls, kwargs", [(MLP, {"hidden": (32,)}), (CSNN, {"channels": (4, 8)})])
def test_single_and_multi_step_give_the_same_output(cls, kwargs):
    torch.manual_seed(0)
    a = cls(LIF, in_shape=(1, 8, 8), num_classes=10, step_mode="s", batch_norm=False, **kwargs)
    b = cls(LIF, in_shape=(1, 8, 8), num_classes=10, step_mode="m", batch_norm=False, **kwargs)
    b.load_state_dict(a.state_dict())
    x = (torch.rand(5, 3, 1, 8, 8) < 0.5).float() * 3
    out_a, out_b = a(x), b(x)
    assert out_a.shape == (5, 3, 10)
    assert torch.allclose(out_a, out_b, atol=1e-5)
    assert torch.equal(a(x), out_a)  # state is reset for every sequence


def test_membrane_readout_is_a_leaky_integrator():
    model = MLP(LIF, in_shape=(4,), num_classes=3, readout="membrane")
    assert isinstance(model.net[-1], LI)
    out = model(torch.rand(6, 2, 4))
    assert out.shape == (6, 2, 3) and not set(out.unique().tolist()) <= {0.0, 1.0}


def test_csnn_infers_flat_size_from_in_shape():
    for shape in [(1, 8, 8), (2, 34, 34), (3, 32, 32)]:
        model = CSNN(LIF, in_shape=shape, num_classes=10, channels=(4, 4))
        assert model(torch.zeros(2, 1, *shape)).shape == (2, 1, 10)


def test_bad_model_values_name_their_key():
    with pytest.raises(ConfigError, match="model.readout"):
        MLP(LIF, in_shape=(4,), num_classes=3, readout="voltage")
    with pytest.raises(ConfigError, match="model.pool"):
        CSNN(LIF, in_shape=(1, 8, 8), num_classes=3, pool="median")
    with pytest.raises(ConfigError, match="csnn needs images"):
        CSNN(LIF, in_shape=(64,), num_classes=3)


def test_voting_averages_each_class_group():
    model = MLP(LIF, in_shape=(4,), num_classes=3, voting=10)
    assert model.net[-3].out_features == 30
    out = model(torch.rand(5, 2, 4) * 3)
    assert out.shape == (5, 2, 3)
    from snnexp.network.layers import Voting

    x = torch.arange(6.0).reshape(1, 6)
    assert Voting(2)(x).tolist() == [[0.5, 2.5, 4.5]]


def test_channels_last_changes_layout_not_results():
    torch.manual_seed(0)
    a = CSNN(LIF, in_shape=(2, 12, 12), num_classes=4, channels=(8, 8), channels_last=True)
    b = CSNN(LIF, in_shape=(2, 12, 12), num_classes=4, channels=(8, 8), channels_last=False)
    b.load_state_dict(a.state_dict())
    assert a.net[0].weight.is_contiguous(memory_format=torch.channels_last)
    x = (torch.rand(4, 3, 2, 12, 12) < 0.4).float() * 2
    assert torch.allclose(a(x), b(x), atol=1e-5)
