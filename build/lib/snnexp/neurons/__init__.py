from snnexp.neurons.alif import ALIF
from snnexp.neurons.base import Neuron, SpikingNeuron, reset_states, set_step_mode
from snnexp.neurons.cuba import CUBA
from snnexp.neurons.iaf import IF
from snnexp.neurons.inhibition import LateralInhibition
from snnexp.neurons.li import LI
from snnexp.neurons.lif import LIF
from snnexp.neurons.plif import PLIF

__all__ = ["ALIF", "CUBA", "IF", "LI", "LIF", "LateralInhibition", "PLIF", "Neuron", "SpikingNeuron", "reset_states", "set_step_mode"]
