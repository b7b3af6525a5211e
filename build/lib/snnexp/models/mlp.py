"""Fully connected spiking network."""
from __future__ import annotations

import math
from typing import Sequence

from torch import nn

from snnexp.errors import check
from snnexp.models.base import NeuronFactory, SpikingModel, output_layers


class MLP(SpikingModel):
    """Flatten -> [Linear -> (BN) -> neuron -> (dropout)] per hidden width -> Linear -> readout.

    in_shape and num_classes come from the datamodule.
    """

    def __init__(
        self,
        neuron: NeuronFactory,
        in_shape: Sequence[int],
        num_classes: int,
        hidden: Sequence[int] = (256,),
        batch_norm: bool = False,
        dropout: float = 0.0,
        bias: bool = True,
        readout: str = "spikes",
        readout_tau: float = 2.0,
        voting: int = 1,
        step_mode: str = "m",
    ):
        check(all(int(h) >= 1 for h in hidden), "model.hidden", list(hidden), "widths must be >= 1")
        check(0 <= dropout < 1, "model.dropout", dropout, "must be in [0, 1)")
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(in_shape)
        for h in hidden:
            layers.append(nn.Linear(width, int(h), bias=bias))
            if batch_norm:
                layers.append(nn.BatchNorm1d(int(h)))
            layers.append(neuron())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = int(h)
        layers += output_layers(width, num_classes, bias, readout, neuron, readout_tau, voting)
        super().__init__(layers, step_mode, readout)
