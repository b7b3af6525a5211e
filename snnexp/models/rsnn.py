"""Recurrent spiking network for temporal data (SHD, event streams): recurrent neuron layers, leaky readout."""
from __future__ import annotations

import math
from typing import Sequence

from torch import nn

from snnexp.errors import check
from snnexp.models.base import NeuronFactory, SpikingModel, output_layers, scaled
from snnexp.network import Recurrent


class RSNN(SpikingModel):
    """Flatten -> [Linear -> neuron fed back its own spikes through Linear(h, h)] per hidden width
    (times `width`) -> Linear -> readout (a leaky-integrator membrane by default).

    recurrent=False drops the feedback (the same network, feed-forward). in_shape and
    num_classes come from the datamodule.
    """

    def __init__(
        self,
        neuron: NeuronFactory,
        in_shape: Sequence[int],
        num_classes: int,
        hidden: Sequence[int] = (128,),
        width: float = 1.0,
        recurrent: bool = True,
        bias: bool = True,
        readout: str = "membrane",
        readout_tau: float = 2.0,
        step_mode: str = "m",
    ):
        check(len(hidden) > 0 and all(int(h) >= 1 for h in hidden), "model.hidden", list(hidden),
              "list one or more widths >= 1")
        check(float(width) > 0, "model.width", width, "must be > 0 (a multiplier of model.hidden)")
        layers: dict[str, list[nn.Module]] = {}  # named blocks: the per-block metrics' groups
        features, flatten = math.prod(in_shape), [nn.Flatten()]
        for i, h in enumerate(scaled(hidden, width)):
            cell = Recurrent(neuron(), nn.Linear(h, h, bias=False)) if recurrent else neuron()
            layers[f"layer{i + 1}"] = flatten + [nn.Linear(features, h, bias=bias), cell]
            features, flatten = h, []
        layers["head"] = output_layers(features, num_classes, bias, readout, neuron, readout_tau)
        super().__init__(layers, step_mode, readout)
