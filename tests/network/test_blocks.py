"""Residual and recurrent blocks: hand-computed steps, both step modes equal, gradients through both."""
from __future__ import annotations

from functools import partial

import pytest
import torch
from torch import nn

from snnexp.errors import ConfigError
from snnexp.models.base import SpikingModel
from snnexp.network import Recurrent, Residual
from snnexp.neurons import IF, LIF
from snnexp.neurons.base import set_step_mode


def fixed_linear(weight: list[list[float]], bias: list[float] | None = None) -> nn.Linear:
    w = torch.tensor(weight)
    layer = nn.Linear(w.shape[1], w.shape[0], bias=bias is not None)
    with torch.no_grad():
        layer.weight.copy_(w)
        if bias is not None:
            layer.bias.copy_(torch.tensor(bias))
    return layer


@pytest.mark.parametrize("step_mode", ["m", "s"])
def test_a_recurrent_if_layer_adds_its_previous_spikes_through_the_feedback(step_mode):
    """IF (threshold 1, hard reset): h_t = v + x_t + W s_{t-1}; with W = [[0, 1], [1, 0]] each neuron's spike
    excites the other one step later. Worked by hand for x = 0.6 on neuron 0 only."""
    neuron = IF(v_threshold=1.0, reset="hard")
    model = SpikingModel([Recurrent(neuron, fixed_linear([[0.0, 1.0], [1.0, 0.0]]))], step_mode, "spikes")
    x = torch.tensor([[0.6, 0.0]]).expand(5, 1, 2)  # [T, N, 2]
    s = model(x)[:, 0]
    # t0: v=(0.6, 0)      t1: v0=1.2 fires -> 0      t2: v0=0.6, v1=0+1=1 fires      t3: v0=0.6+0.6+1 fires; v1=0
    # t4: v0 = 0.6 (after reset), v1 = 1 (from t3's spike) fires
    assert s.tolist() == [[0, 0], [1, 0], [0, 1], [1, 0], [0, 1]]


def test_a_feedback_bias_acts_from_the_first_step():
    """s_{-1} = 0 goes through the feedback, so its bias is input at t = 0 (snnTorch's RLeaky, NIR)."""
    model = SpikingModel([Recurrent(IF(reset="hard"), fixed_linear([[0.0]], [1.0]))], "m", "spikes")
    assert model(torch.zeros(3, 1, 1))[:, 0, 0].tolist() == [1.0, 1.0, 1.0]


def test_residual_connections_on_spikes():
    """SEW-ResNet's connections of the body's spikes a and the input spikes s: add, and (a s), iand ((1 - a) s)."""
    a_in = torch.tensor([[0.0, 1.0, 0.0, 1.0]])
    for connect, expected in (("add", [0, 2, 0, 1]), ("and", [0, 1, 0, 0]), ("iand", [0, 0, 0, 1])):
        body = fixed_linear([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]])  # passes 0..2, drops 3
        block = Residual([body], None, connect)
        assert block(a_in[None]).flatten().tolist() == expected, connect


def random_network() -> SpikingModel:
    torch.manual_seed(0)
    lif = partial(LIF, reset="subtract")
    layers = [nn.Flatten(), nn.Linear(12, 8), lif(),
              Residual([nn.Linear(8, 8), lif(), nn.Linear(8, 8)], [nn.Linear(8, 8)], "add"), lif(),
              nn.Linear(8, 8), Recurrent(lif(), nn.Linear(8, 8, bias=False)), nn.Linear(8, 3)]
    model = SpikingModel(layers, "m", "membrane")
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(6.0)
    return model


def test_both_step_modes_give_the_same_spikes_and_gradients():
    x = (torch.rand(6, 4, 12, generator=torch.Generator().manual_seed(1)) < 0.5).float()
    results = []
    for step_mode in ("m", "s"):
        model = random_network()
        set_step_mode(model.net, step_mode)
        model.step_mode = step_mode
        out = model(x)
        out.square().sum().backward()
        results.append((out, {n: p.grad for n, p in model.named_parameters()}))
    (out_m, grads_m), (out_s, grads_s) = results
    assert out_m.abs().sum() > 0
    torch.testing.assert_close(out_m, out_s)
    for name, g in grads_m.items():
        assert g.abs().max() > 0, name  # the gradient reaches every weight, recurrent and shortcut ones too
        torch.testing.assert_close(g, grads_s[name], rtol=1e-5, atol=1e-6)


def test_a_residual_needs_agreeing_shapes():
    model = SpikingModel([Residual([nn.Linear(4, 3)], None, "add")], "m", "spikes")
    with pytest.raises(ConfigError, match=r"residual block net.0: its body gives shape \(3,\) and its shortcut \(4,\)"):
        model.network((4,))
    with pytest.raises(ConfigError, match="model.connect='or' is invalid"):
        Residual([nn.Linear(4, 4)], None, "or")
