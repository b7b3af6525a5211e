"""Non-overlapping max-pooling on the CPU: max_pool.cpp's kernels as an autograd Function.

`CppMaxPool2d` equals `torch.nn.functional.max_pool2d(x, k)` in values and gradients for a 4-d
channels-last float32/float64 CPU tensor (csnn's default layout); `dispatch.max_pool2d` runs it
where `supports`, and torch's kernel otherwise (in NCHW torch's kernel is as fast). It is cheaper
than torch's (one byte per output kept for the backward instead of an int64 index, and no
zero-filled input gradient): max_pool.cpp says how.
"""
from __future__ import annotations

import torch
from torch import Tensor

from snnexp.neurons.fused.cpu_fire import DTYPES


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


def supports(x: Tensor, k: int) -> bool:
    """Whether the kernel takes x (once the kernels are available)."""
    return (x.device.type == "cpu" and x.dim() == 4 and x.dtype in DTYPES and 1 <= k <= 15
            and x.is_contiguous(memory_format=torch.channels_last))
