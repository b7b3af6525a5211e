from snnexp.neurons.base import Neuron, SpikingNeuron, reset_states, set_step_mode
from snnexp.neurons.iaf import IF
from snnexp.neurons.li import LI
from snnexp.neurons.lif import LIF
from snnexp.neurons.plif import PLIF

__all__ = ["IF", "LI", "LIF", "PLIF", "Neuron", "SpikingNeuron", "reset_states", "set_step_mode"]
