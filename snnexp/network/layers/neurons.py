"""Neuron layers: spiking neurons (IF, LIF, PLIF, ALIF, CUBA, and lateral inhibition around one) and the
leaky-integrator readout. Their NIR nodes are mapped in `snnexp.neurons.nir`, the one place for it."""
from __future__ import annotations

import nir
from torch import nn

from snnexp.network.kinds import LayerKind, Role, register
from snnexp.neurons.base import SpikingNeuron
from snnexp.neurons.inhibition import LateralInhibition
from snnexp.neurons.li import LI
from snnexp.neurons.nir import cuba_input_gain, neuron_from_node, neuron_node
from snnexp.network.layers.readouts import Gain


class NeuronKind(LayerKind):
    role = Role.NEURON

    def label(self, m: nn.Module) -> str:
        return type(m).__name__.lower()  # lif3, plif3, if3: the names rates and rasters have always had

    def to_nir(self, m, shape, dt):
        return neuron_node(m, shape if shape is not None else (1,), dt)  # (1,): the refusals need no shape

    def from_nir(self, node, name, shape, dt):
        """The neuron; a CubaLIF whose input gain w_in dt/tau_syn r dt/tau_mem is not 1 gets a Gain before it."""
        neuron = neuron_from_node(node, name, dt)
        gain = cuba_input_gain(node, name, dt) if isinstance(node, nir.CubaLIF) else 1.0
        return neuron if gain == 1.0 else nn.Sequential(Gain.scalar(gain), neuron)


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
