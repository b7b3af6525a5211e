import torch
from torch import nn

from snnexp.metrics import ActivityMonitor, synaptic_ops
from snnexp.models import MLP
from snnexp.neurons import IF


def test_linear_synops_are_active_inputs_times_fan_out():
    layer = nn.Linear(5, 7)
    x = torch.tensor([[1.0, 0, 0, 1, 0], [0, 0, 0, 0, 1]])
    assert synaptic_ops(layer, x) == 3 * 7


def test_conv_synops_count_receptive_fields_exactly():
    layer = nn.Conv2d(2, 3, 3, padding=1)
    x = torch.zeros(1, 2, 5, 5)
    x[0, 0, 0, 0] = 1  # a corner spike reaches 2x2 output positions
    x[0, 1, 2, 2] = 1  # a centre spike reaches 3x3
    assert synaptic_ops(layer, x) == (4 + 9) * 3


def test_monitor_rates_and_synops_per_sample():
    model = MLP(IF, in_shape=(4,), num_classes=2, hidden=(3,))
    with torch.no_grad():
        model.net[1].weight.fill_(1.0)  # hidden IF gets 4 * 1 input: fires every step
        model.net[1].bias.zero_()
    x = torch.ones(5, 2, 4)  # T=5, N=2
    with ActivityMonitor(model) as mon:
        model(x)
        mon.add_samples(2)
    m = mon.compute()
    assert m["rate/if2"] == 1.0
    # per sample per step: 4 inputs * 3 fan-out + 3 hidden spikes * 2 fan-out = 18, over 5 steps
    assert m["synops"] == 5 * 18
