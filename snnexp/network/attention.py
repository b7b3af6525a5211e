"""Spiking self-attention (Spikformer, Zhou et al., ICLR 2023): q, k, v from spiking branches, no softmax.

    q, k, v = branch_q(x), branch_k(x), branch_v(x)           # each Linear -> BN -> neuron: spikes
    out = projection(neuron_attn(scale * q k^T v))            # per head; k^T v first or q k^T first: equal

x [..., L, D] (L tokens of D features; multi-step [T, N, L, D]). Spikes make q k^T a count of
coincidences, so no softmax is needed. NIR and Loihi have no node for a product of two spike
tensors: the ATTENTION kind refuses both, naming the layer.
"""
from __future__ import annotations

from typing import Callable

from torch import Tensor, nn

from snnexp.network.blocks import Block, Builder, sequential, run_layers
from snnexp.network.kinds import LayerKind, Role, Unsupported, register


class AttentionProduct(nn.Module):
    """scale * (q k^T) v per head: ([..., L, D] x 3) -> [..., L, D]."""

    def __init__(self, heads: int, scale: float):
        super().__init__()
        self.heads, self.scale = int(heads), float(scale)

    def forward(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        split = lambda t: t.unflatten(-1, (self.heads, -1)).transpose(-3, -2)  # noqa: E731 [..., L, D] -> [..., H, L, D/H]
        out = (split(q) @ split(k).transpose(-2, -1)) @ split(v) * self.scale
        return out.transpose(-3, -2).flatten(-2)  # [..., H, L, D/H] -> [..., L, D]

    def extra_repr(self) -> str:
        return f"heads={self.heads}, scale={self.scale:g}"


@register(AttentionProduct)
class AttentionKind(LayerKind):
    role = Role.ATTENTION
    name = "attention"

    def to_nir(self, m, shape, dt):
        raise Unsupported("self-attention multiplies spike tensors (q k^T v); NIR has no node for a product of "
                          "two signals")

    def out_shape(self, m, shape):
        return shape


class SelfAttention(Block):
    """Spiking self-attention: the q, k, v branches, their product, and the output branch."""

    def __init__(self, q: list[nn.Module], k: list[nn.Module], v: list[nn.Module], product: AttentionProduct,
                 out: list[nn.Module], step_mode: str = "m"):
        super().__init__(step_mode)
        self.q, self.k, self.v, self.out = (sequential(b) for b in (q, k, v, out))
        self.product = product

    def run(self, x: Tensor, has_time: bool) -> Tensor:
        q, k, v = (run_layers(branch, x, has_time) for branch in (self.q, self.k, self.v))
        return run_layers(self.out, self.product(q, k, v), has_time)

    def rebuilt(self, part: Callable[[str, nn.Module], nn.Module]) -> "SelfAttention":
        return SelfAttention(*(part(n, getattr(self, n)) for n in ("q", "k", "v", "product", "out")),
                             step_mode=self.step_mode)

    def expand(self, builder: Builder, name: str, src: str) -> str:
        ends = tuple(builder.series(getattr(self, b), f"{name}.{b}", src) for b in ("q", "k", "v"))
        product = builder.add(f"{name}.product", self.product, ends, (), builder.shapes[ends[0]])
        return builder.series(self.out, f"{name}.out", product)

