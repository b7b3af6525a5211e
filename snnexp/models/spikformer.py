"""Spikformer (Zhou et al., ICLR 2023): spiking patch splitting, then blocks of spiking self-attention and MLP."""
from __future__ import annotations

import math
from typing import Sequence

from torch import nn

from snnexp.errors import check
from snnexp.models.base import NeuronFactory, SpikingModel, output_layers, scaled
from snnexp.network import Residual
from snnexp.network.attention import AttentionProduct, SelfAttention
from snnexp.network.layers.tokens import TokenBatchNorm, TokenMean, ToTokens

TOKENS_SIDE = 8  # patch splitting pools the image down to about 8 x 8 tokens (CIFAR: 32 -> 8, 128 -> 8)


def linear_bn(d_in: int, d_out: int, neuron: NeuronFactory, bias: bool = True, **neuron_kw) -> list[nn.Module]:
    """Linear (with bias, as the authors', unless bias=False) -> BN over token features -> neuron."""
    return [nn.Linear(d_in, d_out, bias=bias), TokenBatchNorm(d_out), neuron(**neuron_kw)]


def patch_splitting(neuron: NeuronFactory, in_shape: Sequence[int], dim: int) -> list[nn.Module]:
    """SPS: four conv3x3-BN-neuron layers to dim/8, /4, /2, dim channels, max-pools 3x3/2 after the last
    ones until about 8 x 8 pixels are left (CIFAR: two), a relative-position conv-BN-neuron added to its
    input (a residual), then one token per pixel: [C, H, W] -> [L, dim]."""
    pools = max(0, math.ceil(math.log2(max(int(in_shape[1]), int(in_shape[2])) / TOKENS_SIDE)))
    check(pools <= 4, "dataset.in_shape", tuple(in_shape), "spikformer pools at most 4 times: images up to 128 px")
    widths = [max(1, dim // 8), max(1, dim // 4), max(1, dim // 2), dim]
    layers: list[nn.Module] = []
    c_in = int(in_shape[0])
    for i, c in enumerate(widths):
        layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), neuron()]
        if i >= len(widths) - pools:
            layers.append(nn.MaxPool2d(3, 2, 1))
        c_in = c
    rpe = Residual([nn.Conv2d(dim, dim, 3, padding=1, bias=False), nn.BatchNorm2d(dim), neuron()], None, "add")
    return layers + [rpe, ToTokens()]


def encoder_block(neuron: NeuronFactory, dim: int, heads: int, mlp_ratio: float, bias: bool = True) -> list[nn.Module]:
    """x + SSA(x), then x + MLP(x): spiking self-attention (attention neuron at threshold 0.5, scale 0.125)
    and a two-layer MLP, each Linear -> BN -> neuron."""
    attention = SelfAttention(linear_bn(dim, dim, neuron, bias), linear_bn(dim, dim, neuron, bias),
                              linear_bn(dim, dim, neuron, bias), AttentionProduct(heads, 0.125),
                              [neuron(v_threshold=0.5)] + linear_bn(dim, dim, neuron, bias))
    hidden = int(dim * mlp_ratio)
    mlp = linear_bn(dim, hidden, neuron, bias) + linear_bn(hidden, dim, neuron, bias)
    return [Residual([attention], None, "add"), Residual(mlp, None, "add")]


class Spikformer(SpikingModel):
    """SPS (`patch_splitting`) -> `depth` encoder blocks of `dim` features -> mean over tokens -> Linear -> readout.

    The paper's CIFAR network is Spikformer-4-384 (depth 4, dim 384, 12 heads, MLP ratio 4);
    `width` multiplies dim (rounded to a multiple of heads). Neurons come from the neuron group
    (the paper: LIF, tau 2, hard reset, detach_reset). The readout defaults to the mean of the
    head's outputs over time (a membrane readout with readout_tau 1), as the authors' model.
    """

    def __init__(
        self,
        neuron: NeuronFactory,
        in_shape: Sequence[int],
        num_classes: int,
        depth: int = 4,
        dim: int = 384,
        heads: int = 12,
        mlp_ratio: float = 4.0,
        width: float = 1.0,
        bias: bool = True,
        readout: str = "membrane",
        readout_tau: float = 1.0,
        step_mode: str = "m",
    ):
        check(len(in_shape) == 3, "dataset.in_shape", tuple(in_shape), "spikformer needs images [C, H, W]")
        check(int(depth) >= 1, "model.depth", depth, "must be >= 1 encoder blocks")
        check(float(width) > 0, "model.width", width, "must be > 0 (a multiplier of model.dim)")
        check(float(mlp_ratio) > 0, "model.mlp_ratio", mlp_ratio, "must be > 0")
        check(int(heads) >= 1, "model.heads", heads, "must be >= 1")
        d = max(int(heads), round(scaled([dim], width)[0] / int(heads)) * int(heads))  # a multiple of heads
        layers = {"sps": patch_splitting(neuron, in_shape, d)}  # named blocks: the per-block metrics' groups
        for i in range(int(depth)):
            layers[f"block{i + 1}"] = encoder_block(neuron, d, int(heads), float(mlp_ratio), bias)
        layers["head"] = [TokenMean()] + output_layers(d, num_classes, bias, readout, neuron, readout_tau)
        super().__init__(layers, step_mode, readout)
