"""Layers that move values without arithmetic (Flatten) or vanish at evaluation (Dropout, Identity)."""
from __future__ import annotations

import copy

import nir
import numpy as np
from torch import nn

from snnexp.network.kinds import LayerKind, Role, register


@register(nn.Flatten)
class FlattenKind(LayerKind):
    role = Role.SHAPE
    name = "flatten"
    homogeneous = True
    nir_types = (nir.Flatten,)

    def to_nir(self, m: nn.Flatten, shape, dt):
        start = m.start_dim - 1 if m.start_dim > 0 else m.start_dim  # NIR shapes have no batch
        end = m.end_dim - 1 if m.end_dim > 0 else m.end_dim
        return nir.Flatten(input_type={"input": None if shape is None else np.array(shape)}, start_dim=start,
                           end_dim=end)

    def from_nir(self, node, name, shape, dt):
        start, end = int(node.start_dim), int(node.end_dim)
        return nn.Flatten(start + 1 if start >= 0 else start, end + 1 if end >= 0 else end)  # + the batch dim


@register(nn.Dropout, nn.Identity)
class PassKind(LayerKind):
    role = Role.PASS
    name = "pass"
    homogeneous = True

    def to_nir(self, m, shape, dt):
        return None  # the identity at evaluation

    def snn(self, m: nn.Module) -> nn.Module | None:
        return None if isinstance(m, nn.Dropout) else copy.deepcopy(m)  # a converted SNN runs at evaluation
