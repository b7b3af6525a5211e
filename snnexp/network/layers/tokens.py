"""Token layers of spiking transformers: image -> tokens, BatchNorm over token features, mean over tokens."""
from __future__ import annotations

from torch import Tensor, nn

from snnexp.network.kinds import LayerKind, Role, Unsupported, register


class ToTokens(nn.Module):
    """[B, C, H, W] -> [B, H*W, C]: one token per pixel, its channels as features."""

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(2).transpose(1, 2)


class TokenBatchNorm(nn.BatchNorm1d):
    """BatchNorm over the features of tokens [B, L, D] (Spikformer's BN after each linear layer)."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class TokenMean(nn.Module):
    """[B, L, D] -> [B, D]: the mean over the tokens (the classification head's input)."""

    def forward(self, x: Tensor) -> Tensor:
        return x.mean(1)


@register(ToTokens)
class ToTokensKind(LayerKind):
    role = Role.SHAPE
    name = "tokens"
    homogeneous = True

    def to_nir(self, m, shape, dt):
        raise Unsupported("ToTokens transposes pixels into tokens; NIR has no transpose node")


@register(TokenBatchNorm)
class TokenBatchNormKind(LayerKind):
    role = Role.NORM  # per feature: folds into the Linear before it like any BatchNorm
    name = "bn"


@register(TokenMean)
class TokenMeanKind(LayerKind):
    role = Role.POOL
    name = "tokenmean"
    homogeneous = True

    def to_nir(self, m, shape, dt):
        raise Unsupported("TokenMean averages over tokens; NIR has no node for a mean over one axis")
