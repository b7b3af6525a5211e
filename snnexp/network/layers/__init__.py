"""The layer kinds of torch's layers and snnexp's own (importing this registers them)."""
from snnexp.network.layers import activations, neurons, norms, pools, readouts, shapes, synapses, tokens  # noqa: F401
from snnexp.network.layers.pools import MaxPool2d, SpikingMaxPool2d, SumPool2d
from snnexp.network.layers.readouts import Gain, Voting

__all__ = ["Gain", "MaxPool2d", "SpikingMaxPool2d", "SumPool2d", "Voting"]
