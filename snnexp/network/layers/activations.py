"""ANN activations: where ANN->SNN conversion puts a neuron (QCFS declares its kind in learners/qcfs.py)."""
from __future__ import annotations

from torch import nn

from snnexp.network.kinds import LayerKind, Role, Unsupported, register


@register(nn.ReLU)
class ReLUKind(LayerKind):
    role = Role.ACTIVATION
    name = "relu"
    homogeneous = True

    def to_nir(self, m, shape, dt):
        raise Unsupported("ReLU has no NIR node: it is an ANN activation; convert the network to spiking "
                          "neurons first")
