"""Surrogate gradients: Heaviside forward, the derivative of a smooth step backward.

Each surrogate is a small stateless class with one shape parameter `alpha` and
a smooth primitive g(x) that rises from 0 to 1 (so its derivative integrates
to 1). Forward: s = H(x) (spike when x >= 0). Backward: ds/dx := g'(x).
Stateless on purpose: under Hydra's `_partial_` one instance serves every layer.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from snnexp.errors import check


class _Spike(torch.autograd.Function):
    """H(x) forward, surrogate.grad(x) backward."""

    @staticmethod
    def forward(ctx, x: Tensor, surrogate: "Surrogate") -> Tensor:
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_s: Tensor):
        (x,) = ctx.saved_tensors
        return grad_s * ctx.surrogate.grad(x), None


class Surrogate:
    """Base class: subclasses define `primitive` (smooth step) and `grad` (its derivative)."""

    default_alpha = 1.0

    def __init__(self, alpha: float | None = None):
        alpha = self.default_alpha if alpha is None else float(alpha)
        check(alpha > 0, "neuron.surrogate.alpha", alpha, "must be > 0")
        self.alpha = alpha

    def __call__(self, x: Tensor) -> Tensor:
        """Spikes H(x) with this surrogate's gradient."""
        return _Spike.apply(x, self)

    def primitive(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def grad(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(alpha={self.alpha})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.alpha == other.alpha  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.alpha))


class ATan(Surrogate):
    """g(x) = atan(pi/2 alpha x) / pi + 1/2 (SpikingJelly's default, alpha = 2)."""

    default_alpha = 2.0

    def primitive(self, x: Tensor) -> Tensor:
        return torch.atan(math.pi / 2 * self.alpha * x) / math.pi + 0.5

    def grad(self, x: Tensor) -> Tensor:
        u = x * (math.pi / 2 * self.alpha)  # one new buffer, then in place: this runs every step
        return u.square_().add_(1).reciprocal_().mul_(self.alpha / 2)


class Sigmoid(Surrogate):
    """g(x) = sigmoid(alpha x)."""

    default_alpha = 4.0

    def primitive(self, x: Tensor) -> Tensor:
        return torch.sigmoid(self.alpha * x)

    def grad(self, x: Tensor) -> Tensor:
        sg = torch.sigmoid(self.alpha * x)
        return self.alpha * sg * (1 - sg)


class FastSigmoid(Surrogate):
    """SuperSpike (Zenke & Ganguli 2018): g(x) = 1/2 + alpha x / (2 (1 + alpha |x|)).

    g'(x) = alpha / (2 (1 + alpha |x|)^2); snnTorch's fast_sigmoid (slope 25) is
    this without the alpha/2 factor.
    """

    default_alpha = 25.0

    def primitive(self, x: Tensor) -> Tensor:
        return 0.5 + self.alpha * x / (2 * (1 + self.alpha * x.abs()))

    def grad(self, x: Tensor) -> Tensor:
        return (self.alpha / 2) / (1 + self.alpha * x.abs()).square()


class Triangle(Surrogate):
    """Piecewise-linear (Esser et al. 2016; Bellec et al. 2018): g'(x) = alpha max(0, 1 - alpha |x|)."""

    default_alpha = 1.0

    def primitive(self, x: Tensor) -> Tensor:
        u = (self.alpha * x).clamp(-1, 1)
        return 0.5 + u - u * u.abs() / 2

    def grad(self, x: Tensor) -> Tensor:
        return self.alpha * (1 - self.alpha * x.abs()).clamp(min=0)


class Rectangle(Surrogate):
    """Box (Wu et al. 2018): g'(x) = alpha if |x| < 1/(2 alpha) else 0."""

    default_alpha = 1.0

    def primitive(self, x: Tensor) -> Tensor:
        return (self.alpha * x + 0.5).clamp(0, 1)

    def grad(self, x: Tensor) -> Tensor:
        return self.alpha * (x.abs() < 0.5 / self.alpha).to(x.dtype)
