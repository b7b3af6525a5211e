"""BatchNorm folding: the one place it is written (ANN->SNN conversion and the Loihi export both use it).

In eval mode a BatchNorm after a conv/linear layer (a synapse) is an affine map per output channel, so it
merges into that layer's weight and bias:

    gamma * (W x + b - mu) / sqrt(var + eps) + beta = W' x + b'
    W' = W * g,  b' = (b - mu) * g + beta,  g = gamma / sqrt(var + eps)   (one g per output channel)
"""
from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from snnexp.network import Network, Role


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
    """A copy of `net` with every BatchNorm (a NORM layer) merged into the synapse (conv/linear) right before it.

    Reads the network representation, so BatchNorms inside residual blocks fold too. Equal to `net`
    in eval mode (running statistics). A BatchNorm after anything else, or after a synapse whose
    output other layers read as well, is an error naming it.
    """
    out = copy.deepcopy(net)
    graph = Network.of(out)
    for node in reversed(graph.with_role(Role.NORM)):  # the last first: removing one shifts only later paths
        source = graph.nodes.get(node.inputs[0])
        if (source is None or source.role is not Role.SYNAPSE or not node.module.track_running_stats
                or [n.name for n in graph.successors(source.name)] != [node.name]):
            raise ValueError(f"cannot fold {node.module} at {node.name}: it must follow a Conv2d or Linear (read by "
                             f"nothing else) and track running statistics")
        layer = source.module
        weight, bias = fold_batchnorm_params(layer.weight, layer.bias, node.module)
        layer.weight.copy_(weight)
        layer.bias = nn.Parameter(bias.clone())
        _remove(out, node.name)
    return out


def _remove(root: nn.Module, path: str) -> None:
    """Delete the layer at `path` ("3", "4.body.1") from the nn.Sequential holding it (later ones move up)."""
    parent, _, index = path.rpartition(".")
    del (root.get_submodule(parent) if parent else root)[int(index)]
