"""Non-overlapping max-pooling on the CPU: max_pool.cpp's kernels as an autograd Function.

`max_pool2d(x, k)` equals `torch.nn.functional.max_pool2d(x, k)` in values and gradients; it runs the
C++ kernel for a 4-d channels-last float32/float64 CPU tensor (csnn's default layout) when the
fused kernels are available, and torch's otherwise (in NCHW torch's kernel is as fast). It is
cheaper than torch's (one byte per output kept for the backward instead of an int64 index, and no
zero-filled input gradient): max_pool.cpp says how.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from snnexp.neurons.fused.cpu_fire import DTYPES
from snnexp.neurons.fused.dispatch import available


class CppMaxPool2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, k: int) -> Tensor:
        out, code = torch.ops.snnexp_fused.max_pool_forward(x, k)
        ctx.save_for_backward(code)
        ctx.k, ctx.size = k, x.shape[-2:]
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor):
        (code,) = ctx.saved_tensors
        return torch.ops.snnexp_fused.max_pool_backward(grad, code, *ctx.size, ctx.k), None


def supports(x: Tensor) -> bool:
    return (x.device.type == "cpu" and x.dim() == 4 and x.dtype in DTYPES
            and x.is_contiguous(memory_format=torch.channels_last) and available("cpu"))


def max_pool2d(x: Tensor, k: int) -> Tensor:
    """max_pool2d with kernel = stride = k (no padding, floor mode) for x [N, C, H, W]."""
    if supports(x) and 1 <= k <= 15:
        return CppMaxPool2d.apply(x, k)
    return F.max_pool2d(x, k)
