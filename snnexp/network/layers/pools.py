"""Pooling: max (torch's and csnn's fused-kernel MaxPool2d), average, sum, and the converted SNN's
spiking max-pool (a gate over time).

csnn's `MaxPool2d` is a drop-in nn.MaxPool2d with the C++ kernel for non-overlapping windows on the
CPU: torch's values and gradients (tests/neurons/test_max_pool.py), one byte per output kept for
the backward. Its `window` (k for a k x k window with stride k, else None) is what lets a spiking
neuron before it compute both in one kernel (`fused_window`).
"""
from __future__ import annotations

import copy
import math
from typing import NamedTuple

import nir
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.utils import _pair

from snnexp.network.kinds import LayerKind, Role, Unsupported, register
from snnexp.network.layers.pairs import pair
from snnexp.neurons.base import Neuron
from snnexp.neurons.fused.dispatch import max_pool2d


class MaxPool2d(nn.MaxPool2d):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        k = _pair(self.kernel_size)
        stride = _pair(self.stride if self.stride is not None else self.kernel_size)
        simple = (k[0] == k[1] and stride == k and _pair(self.padding) == (0, 0) and _pair(self.dilation) == (1, 1)
                  and not self.ceil_mode and not self.return_indices)
        self.window = k[0] if simple else None  # the kernel's case, decided once, not at every step

    def forward(self, x: Tensor) -> Tensor:
        if self.window is not None and x.dim() == 4:
            return max_pool2d(x, self.window)
        return super().forward(x)


class SumPool2d(nn.Module):
    """Sum over each window (NIR's SumPool2d): [N, C, H, W] -> [N, C, H', W'], exact (no division)."""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride or kernel_size, padding

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, divisor_override=1)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class PoolState(NamedTuple):
    """Running sum of every input unit since the start of the sequence."""

    total: Tensor


def spiking_max_pool_step(x_t: Tensor, state: PoolState, kernel_size: int, stride: int,
                          padding: int) -> tuple[Tensor, PoolState]:
    """One step: total += x_t; per window, pass x_t of the unit whose total is largest.

    Rueckauer et al. 2017 (sec. 2.2.3) gate spikes by each input's firing rate so far; the
    total of a spike input is its spike count, so this is their gate. On currents (a pool before
    the neuron) the total estimates the ANN's pre-activation, so the passed current averages to
    its max-pool. Ties go to the first unit of the window (torch's max_pool2d). Shapes:
    x_t [N, C, H, W] -> [N, C, H', W'].
    """
    total = state.total + x_t
    _, index = F.max_pool2d(total, kernel_size, stride, padding, return_indices=True)
    out = x_t.flatten(2).gather(2, index.flatten(2))  # [N, C, H*W] picked at [N, C, H'*W']
    return out.view_as(index).to(x_t.dtype), PoolState(total)


class SpikingMaxPool2d(Neuron):
    """`spiking_max_pool_step` as a stateful layer (reset per sequence, like the neurons)."""

    def __init__(self, kernel_size: int, stride: int | None = None, padding: int = 0, step_mode: str = "m"):
        super().__init__(step_mode)
        self.kernel_size = int(kernel_size)
        self.stride = int(stride) if stride is not None else self.kernel_size
        self.padding = int(padding)

    def initial_state(self, x_t: Tensor) -> PoolState:
        return PoolState(torch.zeros_like(x_t))

    def step(self, x_t: Tensor, state: PoolState) -> tuple[Tensor, PoolState]:
        return spiking_max_pool_step(x_t, state, self.kernel_size, self.stride, self.padding)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"step_mode={self.step_mode}")


MAX_POOL_REFUSAL = "a maximum is not a weighted sum (NIR 1.0 has no max node): use model.pool=avg"


@register(nn.MaxPool1d, nn.MaxPool2d, nn.AdaptiveMaxPool2d)
class MaxPoolKind(LayerKind):
    role = Role.POOL
    name = "maxpool"
    homogeneous = True
    maximum = True

    def to_nir(self, m, shape, dt):
        raise Unsupported(f"{type(m).__name__} is a max-pool; {MAX_POOL_REFUSAL}")

    def fused_window(self, m: nn.Module) -> int:
        return int(m.window or 0) if isinstance(m, MaxPool2d) else 0  # only csnn's pool has the fused kernel

    def snn(self, m: nn.Module) -> nn.Module:
        """The converted SNN's max-pool: the gate `SpikingMaxPool2d` over the same windows."""
        return SpikingMaxPool2d(m.kernel_size, m.stride, m.padding) if _plain_2d(m) else _no_window(m, "spiking")

    def average(self, m: nn.Module) -> nn.Module:
        return nn.AvgPool2d(m.kernel_size, m.stride, m.padding) if _plain_2d(m) else _no_window(m, "average")


def _plain_2d(m: nn.Module) -> bool:
    """A 2-d max-pool of fixed windows without dilation or ceil_mode (what has a spiking and an average form)."""
    return (isinstance(m, nn.MaxPool2d) and not m.ceil_mode and not m.return_indices
            and _pair(m.dilation) == (1, 1))


def _no_window(m: nn.Module, form: str) -> nn.Module:
    raise Unsupported(f"{m} has no {form} form in ANN->SNN conversion: it takes a 2-d max-pool without dilation or "
                      f"ceil_mode")


@register(SpikingMaxPool2d)
class SpikingMaxPoolKind(MaxPoolKind):
    name = "spikingmaxpool"

    def ann(self, m: SpikingMaxPool2d, last: bool) -> nn.Module:
        return nn.MaxPool2d(m.kernel_size, m.stride, m.padding)  # the max-pool whose spiking form it is

    def snn(self, m: SpikingMaxPool2d) -> nn.Module:
        return copy.deepcopy(m)

    def average(self, m: SpikingMaxPool2d) -> nn.Module:
        return nn.AvgPool2d(m.kernel_size, m.stride, m.padding)

    def out_shape(self, m: SpikingMaxPool2d, shape):
        return tuple(F.max_pool2d(torch.zeros(1, *shape), m.kernel_size, m.stride, m.padding).shape[1:])


@register(nn.AvgPool2d, SumPool2d)
class AvgPoolKind(LayerKind):
    """Average (or sum) over each window: a weighted sum with 1/window (or 1) on each tap."""

    role = Role.POOL
    name = "avgpool"
    homogeneous = True
    nir_types = (nir.AvgPool2d, nir.SumPool2d)

    def window(self, m: nn.Module) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
        """(kernel, stride, padding) pairs."""
        return pair(m.kernel_size), pair(m.stride or m.kernel_size), pair(m.padding)

    def scale(self, m: nn.Module) -> float:
        """The weight on each tap: 1/window for an average, 1 for a sum."""
        return 1.0 if isinstance(m, SumPool2d) else 1 / math.prod(pair(m.kernel_size))

    def label(self, m: nn.Module) -> str:
        return "sumpool" if isinstance(m, SumPool2d) else self.name

    def to_nir(self, m, shape, dt):
        if isinstance(m, nn.AvgPool2d) and (m.ceil_mode or m.divisor_override is not None
                                            or (any(pair(m.padding)) and not m.count_include_pad)):
            raise Unsupported(f"{type(m).__name__} needs ceil_mode=False, no divisor_override and count_include_pad "
                              f"with padding")
        ks, st, pad = (np.array(v) for v in self.window(m))
        cls = nir.SumPool2d if isinstance(m, SumPool2d) else nir.AvgPool2d
        return cls(kernel_size=ks, stride=st, padding=pad)

    def from_nir(self, node, name, shape, dt):
        cls = nn.AvgPool2d if isinstance(node, nir.AvgPool2d) else SumPool2d
        return cls(pair(node.kernel_size), pair(node.stride), pair(node.padding))


@register(nn.AdaptiveAvgPool2d)
class AdaptiveAvgPoolKind(LayerKind):
    """An average over equal windows (ResNet's global average pool): NIR's AvgPool2d when the input
    divides into the output size."""

    role = Role.POOL
    name = "avgpool"
    homogeneous = True

    def to_nir(self, m: nn.AdaptiveAvgPool2d, shape, dt):
        if shape is None:
            return None  # whether its windows are equal depends on the shape
        out = pair(m.output_size if m.output_size is not None else shape[-2:])
        if shape[-2] % out[0] or shape[-1] % out[1]:
            raise Unsupported(f"AdaptiveAvgPool2d to {out} from {tuple(shape[-2:])}: the windows are unequal")
        kernel = np.array((shape[-2] // out[0], shape[-1] // out[1]))
        return nir.AvgPool2d(kernel_size=kernel, stride=kernel, padding=np.array((0, 0)))
