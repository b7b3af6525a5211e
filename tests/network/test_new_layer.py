"""A new layer type is one file: declare its kind, and the NIR export, the metrics and the conversion take it.

The whole declaration of nn.Conv1d (which snnexp does not ship) is the class below.
"""
from __future__ import annotations

import math

import nir
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from snnexp.deploy.nir import export_nir
from snnexp.metrics import ActivityMonitor
from snnexp.models.base import SpikingModel
from snnexp.network import LayerKind, Network, Role, register
from snnexp.neurons import IF


@register(nn.Conv1d)
class Conv1dKind(LayerKind):
    role = Role.SYNAPSE
    name = "conv1d"
    homogeneous = True

    def to_nir(self, m: nn.Conv1d, shape, dt):
        return nir.Conv1d(input_shape=None if shape is None else shape[-1], weight=m.weight.detach().numpy(),
                          stride=m.stride[0], padding=m.padding[0], dilation=m.dilation[0], groups=m.groups,
                          bias=m.bias.detach().numpy())

    def synops(self, m: nn.Conv1d, x: Tensor) -> Tensor:
        active = (x.detach() != 0).to(torch.float64).reshape(-1, *x.shape[-2:]).sum(0, keepdim=True)
        taps = (m.weight.detach() != 0).to(torch.float64).sum(0, keepdim=True)  # [1, C_in, k] (groups = 1)
        return F.conv1d(active, taps, stride=m.stride, padding=m.padding, dilation=m.dilation).sum()

    def dense_ops(self, m: nn.Conv1d, shape: tuple[int, ...]) -> int:
        out = (shape[-1] + 2 * m.padding[0] - m.kernel_size[0]) // m.stride[0] + 1
        return math.prod(shape[:-2]) * m.out_channels * m.in_channels * m.kernel_size[0] * out  # no padding here


def model() -> SpikingModel:
    torch.manual_seed(0)
    return SpikingModel([nn.Conv1d(1, 4, 3), IF(reset="hard"), nn.Flatten(), nn.Linear(4 * 14, 3), IF(reset="hard")],
                        "m", "spikes")


def test_the_network_representation_and_metrics_take_it():
    net = model()
    assert [n.label for n in Network.of(net, (1, 16))][:2] == ["conv1d0", "if1"]
    x = torch.ones(2, 1, 1, 16)  # T=2, N=1: every input active
    with ActivityMonitor(net) as monitor:
        net(x)
        monitor.add_samples(1)
    counted = monitor.compute()
    assert float(counted["synops/dense"]) == 2 * (4 * 3 * 14) + 2 * (56 * 3)
    assert float(counted["synops/ac"]) >= 2 * 4 * 3 * 14  # the conv's ops on all-ones spikes


def test_the_nir_export_takes_it(tmp_path):
    graph = export_nir(model(), (1, 16), tmp_path / "net.nir")
    assert isinstance(graph.nodes["conv1d0"], nir.Conv1d) and ("input", "conv1d0") in graph.edges
    np.testing.assert_array_equal(nir.read(str(tmp_path / "net.nir")).nodes["conv1d0"].weight,
                                  model().net[0].weight.detach().numpy())


def test_the_ann_to_snn_conversion_takes_it():
    """ann_counterpart -> normalise -> to_snn with the Conv1d inside: the normalised ANN predicts as the ANN
    does, and the converted SNN's spike counts approach its ANN's outputs (the Conv1d's weights scaled)."""
    from snnexp.learners.conversion import activation_scales, ann_counterpart, normalise, to_snn
    from snnexp.models.spikify import run_steps

    torch.manual_seed(0)
    ann = ann_counterpart(model().net).eval()
    assert isinstance(ann[0], nn.Conv1d) and isinstance(ann[1], nn.ReLU)
    x = torch.rand(64, 1, 16)
    scales = activation_scales(ann, [x], q=100)
    normalised = normalise(ann, scales)
    torch.testing.assert_close(normalised(x) * scales[3], ann(x))
    snn = to_snn(normalised, lambda: IF(reset="subtract"), readout="membrane")
    counts = run_steps(snn, x.expand(200, *x.shape)).mean(0)  # direct input: the analog image every step
    assert (counts.argmax(1) == ann(x).argmax(1)).float().mean() > 0.9
