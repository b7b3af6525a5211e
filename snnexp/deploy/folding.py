"""Folding a BatchNorm (eval mode: running statistics) into the Linear/Conv2d before it; shared by the exporters."""
from __future__ import annotations

from torch import Tensor, nn


def fold_batch_norm(weight: Tensor, bias: Tensor, bn: nn.modules.batchnorm._BatchNorm) -> tuple[Tensor, Tensor]:
    """BN(W x + b) = (gamma/sigma) W x + (beta + gamma (b - mu)/sigma), sigma = sqrt(var + eps).

    weight [out, ...] and bias [out] in the dtype to fold in (float64 keeps the fold exact to
    the last float32 bit); returns the folded (weight, bias) in that dtype.
    """
    dtype = weight.dtype
    sigma = (bn.running_var.to(dtype) + bn.eps).sqrt()
    gamma = bn.weight.detach().to(dtype) if bn.affine else weight.new_ones(sigma.shape)
    beta = bn.bias.detach().to(dtype) if bn.affine else weight.new_zeros(sigma.shape)
    k = gamma / sigma
    return weight * k.view(-1, *[1] * (weight.dim() - 1)), beta + k * (bias - bn.running_mean.to(dtype))
