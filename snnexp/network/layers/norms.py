"""BatchNorm: an affine map per channel that folds into the synapse before it (`snnexp.network.fold`)."""
from __future__ import annotations

from torch import nn

from snnexp.network.kinds import LayerKind, Role, register


@register(nn.BatchNorm1d, nn.BatchNorm2d)
class BatchNormKind(LayerKind):
    role = Role.NORM
    name = "bn"
