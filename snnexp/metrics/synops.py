"""Synaptic operations of one Linear/Conv2d call, as NeuroBench counts them (Yik et al. 2025).

NeuroBench's SynapticOperations (neurobench 2.3, `metrics/workload/synaptic_operations.py`):
- effective operations: pairs (nonzero input, nonzero weight) that meet in the layer, i.e. the
  layer's output when every nonzero input and weight is replaced by 1 and the bias by 0;
- an input tensor whose every value is 0, 1 or -1 is spikes: its operations are accumulates
  (ACs); any other input is analog: multiply-accumulates (MACs), decided per forward call;
- dense operations: the same count with every input and weight set to 1 (exact at borders).
Every function here stays on the tensor's device (no host sync); only shapes are read.
"""
from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor, nn

SYNAPSES = (nn.Linear, nn.Conv2d)


def synaptic_ops(layer: nn.Module, x: Tensor) -> Tensor:
    """Effective operations of `layer(x)`: sum over nonzero inputs of their nonzero outgoing weights.

    Linear: active inputs per feature [in] times nonzero weights per input column [in].
    Conv2d: the active-input image (summed over the batch) convolved with the kernel's nonzero
    taps summed over each group's output channels (exact at borders, strides and dilations).
    Returns a float64 0-dim tensor on x's device (float64: counts pass 2^24 on large batches).
    """
    active = (x.detach() != 0).to(torch.float64)
    nonzero = (layer.weight.detach() != 0).to(torch.float64)
    if isinstance(layer, nn.Linear):
        per_input = active.reshape(-1, layer.in_features).sum(0)  # [..., in] -> [in]
        return torch.dot(per_input, nonzero.sum(0))
    if isinstance(layer, nn.Conv2d):
        image = active.reshape(-1, *active.shape[-3:]).sum(0, keepdim=True)  # [N, C, H, W] -> [1, C, H, W]
        g = layer.groups
        taps = nonzero.unflatten(0, (g, -1)).sum(1)  # [C_out, C_in/g, kh, kw] -> [g, C_in/g, kh, kw]
        padding = layer.padding if isinstance(layer.padding, str) else tuple(layer.padding)
        field = F.conv2d(image, taps, stride=layer.stride, padding=padding, dilation=layer.dilation, groups=g)
        return field.sum()
    raise TypeError(f"no synaptic-op count for {type(layer).__name__}")


def is_spikes(x: Tensor) -> Tensor:
    """0-dim bool tensor: every value of x is 0, 1 or -1 (NeuroBench's test for spike input)."""
    return ((x == 0) | (x == 1) | (x == -1)).all()


def dense_ops(layer: nn.Module, shape: tuple[int, ...]) -> int:
    """Operations of `layer` on an input of `shape` if every input and weight were nonzero."""
    if isinstance(layer, nn.Linear):
        return math.prod(shape) * layer.out_features
    if isinstance(layer, nn.Conv2d):
        n = math.prod(shape[:-3])  # batch (and time) frames
        h, w = shape[-2:]
        if isinstance(layer.padding, str):
            raise TypeError("dense_ops needs numeric Conv2d padding")
        per_axis = [_taps(size, k, s, p, d) for size, k, s, p, d in
                    zip((h, w), layer.kernel_size, layer.stride, layer.padding, layer.dilation)]
        return n * layer.out_channels * (layer.in_channels // layer.groups) * per_axis[0] * per_axis[1]
    raise TypeError(f"no synaptic-op count for {type(layer).__name__}")


@lru_cache(maxsize=256)
def _taps(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """Kernel taps that land inside the input, summed over the output positions of one axis."""
    out = (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    return sum(1 for o in range(out) for a in range(kernel) if 0 <= o * stride - padding + a * dilation < size)
