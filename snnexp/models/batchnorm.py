"""BatchNorm folding: the one place it is written (ANN->SNN conversion and the Loihi export both use it).

In eval mode a BatchNorm after a conv/linear layer is an affine map per output channel, so it
merges into that layer's weight and bias:

    gamma * (W x + b - mu) / sqrt(var + eps) + beta = W' x + b'
    W' = W * g,  b' = (b - mu) * g + beta,  g = gamma / sqrt(var + eps)   (one g per output channel)
"""
from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

WEIGHTED = (nn.Conv2d, nn.Linear)


@torch.no_grad()
def fold_batchnorm_params(weight: Tensor, bias: Tensor | None,
                          bn: nn.modules.batchnorm._BatchNorm) -> tuple[Tensor, Tensor]:
    """(W', b') of a layer with `weight` [out, ...] and `bias` [out] (or None) followed by `bn`.

    Computed in weight's dtype (float64 for the Loihi export); uses bn's running statistics.
    """
    dtype = weight.dtype
    g = torch.rsqrt(bn.running_var.to(dtype) + bn.eps)
    if bn.affine:
        g = g * bn.weight.detach().to(dtype)
    shift = bn.bias.detach().to(dtype) if bn.affine else 0.0
    b = bias.detach().to(dtype) if bias is not None else torch.zeros_like(g)
    w = weight.detach() * g.view(-1, *[1] * (weight.dim() - 1))  # one factor per output channel
    return w, (b - bn.running_mean.to(dtype)) * g + shift


@torch.no_grad()
def fold_batchnorm(net: nn.Sequential) -> nn.Sequential:
    """A copy of `net` with every BatchNorm merged into the conv/linear right before it.

    Equal to `net` in eval mode (running statistics). A BatchNorm after anything else is an error.
    """
    layers: list[nn.Module] = []
    for m in net:
        if not isinstance(m, nn.modules.batchnorm._BatchNorm):
            layers.append(copy.deepcopy(m))
            continue
        if not layers or not isinstance(layers[-1], WEIGHTED) or not m.track_running_stats:
            raise ValueError(f"cannot fold {m}: it must follow a Conv2d or Linear and track running statistics")
        layer = layers[-1]
        weight, bias = fold_batchnorm_params(layer.weight, layer.bias, m)
        layer.weight.copy_(weight)
        layer.bias = nn.Parameter(bias.clone())
    return nn.Sequential(*layers)
