"""Recurrent spiking network for temporal data (SHD, event streams): recurrent neuron layers, leaky readout."""
from __future__ import annotations

import math
from typing import Sequence

from torch import nn

from snnexp.errors import check
from snnexp.models.base import NeuronFactory, SpikingModel, output_layers
from snnexp.network import Recurrent


class RSNN(SpikingModel):
    """Flatten -> [Linear -> neuron fed back its own spikes through Linear(h, h)] per hidden width
    -> Linear -> readout (a leaky-integrator membrane by default).

    recurrent=False drops the feedback (the same network, feed-forward). in_shape and
    num_classes come from the datamodule.
    """

    def __init__(
        self,
        neuron: NeuronFactory,
        in_shape: Sequence[int],
        num_classes: int,
        hidden: Sequence[int] = (128,),
        recurrent: bool = True,
        bias: bool = True,
        readout: str = "membrane",
        readout_tau: float = 2.0,
        step_mode: str = "m",
    ):
        check(len(hidden) > 0 and all(int(h) >= 1 for h in hidden), "model.hidden", list(hidden),
              "list one or more widths >= 1")
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(in_shape)
        for h in hidden:
            layers.append(nn.Linear(width, int(h), bias=bias))
            layers.append(Recurrent(neuron(), nn.Linear(int(h), int(h), bias=False)) if recurrent else neuron())
            width = int(h)
        layers += output_layers(width, num_classes, bias, readout, neuron, readout_tau)
        super().__init__(layers, step_mode, readout)
