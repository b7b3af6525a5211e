"""QCFS: the quantization-clip-floor-shift activation (Bu et al., ICLR 2022) and its conversion.

The ANN trains with, in place of ReLU,

    h(x) = lambda * clip(floor(x L / lambda + phi) / L, 0, 1),   phi = 1/2,

L quantisation levels and a threshold lambda learnt per layer; floor passes the gradient straight
through (so dh/dx = 1 where 0 <= floor(.)/L <= 1, and dh/dlambda = h/lambda - x/lambda there, 1
above). An IF neuron with threshold lambda, reset by subtraction and initial membrane lambda/2
fed a constant x for T = L steps emits exactly h(x) * L / lambda spikes, and the expected
conversion error is zero at any T (the paper's theorem): so the converted SNN is close to its ANN
at T ~ L, a few steps instead of hundreds.

Conversion reuses the rate method's pipeline (`snnexp.learners.conversion`): fold BN, then
`as_relu` hands the ReLU network and lambda per layer to `normalise` (the data percentiles only set
a spiking readout's scale), so every threshold becomes 1 and the IF neurons start at 1/2.

Pooling: the QCFS ANN trains with average pooling in place of max-pooling (learner.max_pool=avg,
the method's default), as the authors' code does. Average pooling is linear, so each IF layer
sees the same sum of currents the QCFS layer saw, which is what the zero-error argument needs; the
spiking max-pool gate picks a unit by its running total and switches as spike counts change, so
at T ~ L it passes currents the QCFS ANN never pooled. Loihi has no max-pool either.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from snnexp.errors import check
from snnexp.learners.conversion import Key, key, replaced
from snnexp.network import LayerKind, Network, Role, register

SHIFT = 0.5  # phi: the shift that makes the expected conversion error zero


def floor_ste(x: Tensor) -> Tensor:
    """floor(x) forward, identity backward (straight-through estimator)."""
    return x + (torch.floor(x) - x).detach()


def qcfs(x: Tensor, threshold: Tensor | float, levels: int, shift: float = SHIFT) -> Tensor:
    """lambda * clip(floor(x L / lambda + shift) / L, 0, 1): L + 1 values 0, lambda/L, ..., lambda."""
    return threshold * torch.clamp(floor_ste(x * levels / threshold + shift) / levels, 0.0, 1.0)


class QCFS(nn.Module):
    """`qcfs` with a learnt threshold lambda (one per layer), used in place of nn.ReLU."""

    def __init__(self, levels: int, threshold: float = 4.0):
        super().__init__()
        check(int(levels) >= 1, "learner.method.levels", levels, "must be >= 1 quantisation levels")
        check(float(threshold) > 0, "learner.method.threshold", threshold, "must be > 0 (the initial lambda)")
        self.levels = int(levels)
        self.threshold = nn.Parameter(torch.tensor(float(threshold)))

    def forward(self, x: Tensor) -> Tensor:
        return qcfs(x, self.threshold, self.levels)

    def extra_repr(self) -> str:
        return f"levels={self.levels}, threshold={float(self.threshold):.4g}"


@register(QCFS)
class QCFSKind(LayerKind):
    """An ANN activation (a quantised, clipped ReLU): where conversion puts an IF neuron."""

    role = Role.ACTIVATION
    name = "qcfs"


def with_qcfs(net: nn.Sequential, levels: int, threshold: float = 4.0) -> nn.Sequential:
    """A copy of `net` with a fresh QCFS(levels, threshold) for every activation (ReLU), in residual blocks too."""
    return replaced(net, lambda node: QCFS(levels, threshold) if node.role is Role.ACTIVATION else node.module)


def thresholds(net: nn.Sequential) -> dict[Key, float]:
    """{key of each QCFS layer (`conversion.key`): its learnt lambda}, in the order the layers run."""
    return {key(n.name): float(n.module.threshold.detach()) for n in Network.of(net).with_role(Role.ACTIVATION)
            if isinstance(n.module, QCFS)}


@torch.no_grad()
def as_relu(net: nn.Sequential) -> tuple[nn.Sequential, dict[Key, float]]:
    """(a copy of `net` with nn.ReLU for each QCFS, {key: its learnt lambda}): what `normalise` takes."""
    scales = thresholds(net)
    for i, lam in scales.items():
        if lam <= 0:
            raise ValueError(f"QCFS at {i} learnt a threshold {lam:g} <= 0: it never fires; train again "
                             f"with a lower learning rate or a larger learner.method.threshold")
    relu = replaced(net, lambda node: nn.ReLU() if isinstance(node.module, QCFS) else node.module)
    return relu, scales


def as_qcfs(net: nn.Sequential, levels: int) -> nn.Sequential:
    """A normalised ReLU network back as its QCFS network (every lambda 1): what the SNN approximates."""
    out = replaced(net, lambda node: QCFS(levels, 1.0) if node.role is Role.ACTIVATION else node.module)
    return out.requires_grad_(False)
