"""Fixed linear maps at a network's output: Voting (groups of output neurons per class) and Gain."""
from __future__ import annotations

import nir
import numpy as np
import torch
from torch import Tensor, nn

from snnexp.network.kinds import LayerKind, Role, register


class Voting(nn.Module):
    """Average each class's group of `per_class` output neurons: [..., K*per_class] -> [..., K].

    Fang et al. (2021) read 10 classes out of 100 spiking neurons this way.
    """

    def __init__(self, per_class: int):
        super().__init__()
        self.per_class = int(per_class)

    def forward(self, x: Tensor) -> Tensor:
        return x.unflatten(-1, (-1, self.per_class)).mean(-1)

    def extra_repr(self) -> str:
        return f"per_class={self.per_class}"


class Gain(nn.Module):
    """Multiply each feature by a fixed factor (a buffer): [..., n] -> [..., n]."""

    def __init__(self, n: int):
        super().__init__()
        self.register_buffer("gain", torch.ones(int(n)))

    @classmethod
    def scalar(cls, factor: float) -> "Gain":
        """One factor for every input, whatever its shape (a NIR CubaLIF's input gain)."""
        gain = cls(1)
        gain.gain.fill_(float(factor))
        return gain

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gain


def voting_matrix(k: int, per_class: int) -> np.ndarray:
    """[K, K*p] with 1/p on each class's block of p inputs."""
    return np.kron(np.eye(k), np.full((1, per_class), 1 / per_class)).astype(np.float32)


@register(Voting)
class VotingKind(LayerKind):
    role = Role.SCALE
    name = "voting"
    homogeneous = True

    def to_nir(self, m: Voting, shape, dt):
        if shape is None:
            return None  # the class count comes from the shape; nothing to refuse
        return nir.Linear(weight=voting_matrix(shape[-1] // m.per_class, m.per_class))


@register(Gain)
class GainKind(LayerKind):
    role = Role.SCALE
    name = "gain"
    homogeneous = True
    nir_types = (nir.Scale,)

    def to_nir(self, m: Gain, shape, dt):
        return nir.Scale(scale=m.gain.detach().double().cpu().numpy())

    def from_nir(self, node, name, shape, dt):
        scale = torch.as_tensor(np.asarray(node.scale), dtype=torch.float32)
        gain = Gain(1)
        gain.gain = scale.reshape(-1) if scale.dim() == 0 else scale  # broadcasts over the sample's shape
        return gain
