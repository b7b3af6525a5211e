"""Neuron layers: spiking neurons (IF, LIF, PLIF, ALIF, CUBA, and lateral inhibition around one) and the
leaky-integrator readout. Their NIR nodes are mapped in `snnexp.neurons.nir`, the one place for it."""
from __future__ import annotations

import nir
from torch import nn

from snnexp.network.kinds import LayerKind, Role, register
from snnexp.neurons.base import SpikingNeuron
from snnexp.neurons.inhibition import LateralInhibition
from snnexp.neurons.li import LI
from snnexp.neurons.nir import neuron_from_node, neuron_node


class NeuronKind(LayerKind):
    role = Role.NEURON

    def label(self, m: nn.Module) -> str:
        return type(m).__name__.lower()  # lif3, plif3, if3: the names rates and rasters have always had

    def to_nir(self, m, shape, dt):
        return neuron_node(m, shape, dt)

    def from_nir(self, node, name, shape, dt):
        return neuron_from_node(node, name, dt)


@register(SpikingNeuron, LateralInhibition)
class SpikingKind(NeuronKind):
    spiking = True
    nir_types = (nir.IF, nir.LIF, nir.CubaLIF)

    def ann(self, m, last):
        return None if last else nn.ReLU()  # the spiking readout's rate ~ the logits: no activation there


@register(LI)
class LeakyIntegratorKind(NeuronKind):
    nir_types = (nir.LI,)

    def ann(self, m, last):
        return None  # a non-spiking readout integrates the logits
