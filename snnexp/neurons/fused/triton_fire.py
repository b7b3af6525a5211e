"""The fused affine neuron on CUDA: `triton_kernels.py` as an autograd Function.

Same inputs, outputs and gradients as `TorchLeakyFire` (its reference). float32, float16 and
bfloat16 tensors (autocast / `trainer.precision=16-mixed|bf16-mixed`) compute in float32 and
save h in float32; float64 computes in float64. Nothing is read back to the host: the
coefficients stay on the device, and the constants (v_reset, alpha) live in a small cached
device tensor.
"""
from __future__ import annotations

import functools

import torch
from torch import Tensor

from snnexp.neurons.fused.spec import LeakySpec, surrogate_code

BLOCK = 1024
DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)


def _compute(dtype: torch.dtype):
    import triton.language as tl

    return (tl.float64, torch.float64) if dtype == torch.float64 else (tl.float32, torch.float32)


@functools.lru_cache(maxsize=256)
def _constants(v_reset: float, alpha: float, dtype: torch.dtype, device: torch.device) -> Tensor:
    """(v_reset, alpha) on the device, made once per value (a fresh copy per call would be a transfer)."""
    return torch.tensor([v_reset, alpha], dtype=dtype, device=device)


def _dense(x0: Tensor) -> bool:
    """Elements in storage order without gaps: contiguous or channels-last."""
    return x0.is_contiguous() or (x0.dim() == 4 and x0.is_contiguous(memory_format=torch.channels_last))


def _time_major(x: Tensor, has_time: bool) -> tuple[Tensor, Tensor]:
    """(x, its first step) with each step a dense block of storage, one after another."""
    x0 = x[0] if has_time else x
    if not _dense(x0) or (has_time and x.shape[0] > 1 and x.stride(0) != x0.numel()):
        x = x.contiguous()
        x0 = x[0] if has_time else x
    return x, x0


def _as_layout(t: Tensor, like: Tensor, dtype: torch.dtype | None = None) -> Tensor:
    """t with like's strides (a copy unless it has them already)."""
    if t.stride() == like.stride() and (dtype is None or t.dtype == dtype):
        return t
    return torch.empty_like(like, dtype=dtype or t.dtype).copy_(t)


class TritonLeakyFire(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, v0, a, b, c, th, spec: LeakySpec, has_time: bool, in_place: bool):
        from snnexp.neurons.fused.triton_kernels import leaky_forward_kernel

        x, x0 = _time_major(x, has_time)
        need_coef = any(ctx.needs_input_grad[2:6])  # then v0 is saved, so it must not change
        update_v = (in_place and not need_coef and not (v0.is_leaf and v0.requires_grad)
                    and v0.stride() == x0.stride())
        v0 = _as_layout(v0, x0)
        steps, M = (x.shape[0] if has_time else 1), x0.numel()
        tl_compute, compute = _compute(x.dtype)
        save_h = any(ctx.needs_input_grad[:6])
        s = torch.empty_like(x)
        h = torch.empty_like(x, dtype=compute) if save_h else s
        v = v0 if update_v else torch.empty_like(x0, dtype=v0.dtype)  # each program reads its v0 before writing
        consts = _constants(spec.v_reset, spec.surrogate.alpha, compute, x.device)
        leaky_forward_kernel[(triton_cdiv(M, BLOCK),)](
            x, v0, s, h, v, a, b, c, th, consts, M,
            STEPS=steps, SOFT=spec.soft, SAVE_H=save_h, COMPUTE=tl_compute, BLOCK=BLOCK)
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(h if save_h else None, v0 if need_coef else None, x if ctx.needs_input_grad[3] else None,
                              a, b, th)
        ctx.spec, ctx.has_time, ctx.x_dtype, ctx.v_dtype = spec, has_time, x.dtype, v0.dtype
        if update_v:
            ctx.mark_dirty(v0)
        return s, v

    @staticmethod
    def backward(ctx, grad_s, grad_v):
        from snnexp.neurons.fused.triton_kernels import leaky_backward_kernel

        h, v0, x, a, b, th = ctx.saved_tensors
        spec, has_time = ctx.spec, ctx.has_time
        need_x, need_v0, *need_coef = ctx.needs_input_grad[:6]
        coef = any(need_coef)
        h0 = h[0] if has_time else h
        steps, M = (h.shape[0] if has_time else 1), h0.numel()
        tl_compute, compute = _compute(h.dtype)
        gs_step, broadcast = M, False
        if grad_s is not None:  # h's layout, or one value per step broadcast (a sum or mean's gradient)
            g0 = grad_s[0] if has_time else grad_s
            broadcast = all(st == 0 for st in g0.stride())
            if broadcast or g0.stride() == h0.stride():
                gs_step = grad_s.stride(0) if has_time else 0
            else:
                grad_s = _as_layout(grad_s, h)
        if grad_v is not None:
            grad_v = _as_layout(grad_v, h0)
        if x is not None:
            x = _as_layout(x, h)
        gx = torch.empty_like(h, dtype=ctx.x_dtype) if need_x else h
        gv0 = torch.empty_like(h0, dtype=ctx.v_dtype)
        programs = triton_cdiv(M, BLOCK)
        partial = torch.zeros(programs, 4, dtype=compute, device=h.device) if coef else h
        consts = _constants(spec.v_reset, spec.surrogate.alpha, compute, h.device)
        leaky_backward_kernel[(programs,)](
            h if grad_s is None else grad_s, gs_step, h if grad_v is None else grad_v, h,  # h: unused inputs
            h if v0 is None else v0, h if x is None else x, gx, gv0, partial, a, b, th, consts, M,
            STEPS=steps, SOFT=spec.soft, DETACH=spec.detach_reset, COEF=coef, NEED_X=need_x, HAS_GS=grad_s is not None,
            GS_BROADCAST=broadcast, HAS_GV=grad_v is not None, HAS_X=x is not None,
            SURROGATE=surrogate_code(spec.surrogate), COMPUTE=tl_compute, BLOCK=BLOCK)
        sums = partial.sum(0) if coef else None
        ga, gb, gc, gth = (sums[j].to(t.dtype) if need else None
                           for j, (t, need) in enumerate(zip((a, b, a, th), need_coef)))
        return gx if need_x else None, gv0 if need_v0 else None, ga, gb, gc, gth, None, None, None


def triton_cdiv(n: int, d: int) -> int:
    return (n + d - 1) // d


def supports(x: Tensor, spec: LeakySpec) -> bool:
    return x.dtype in DTYPES and surrogate_code(spec.surrogate) is not None


def fire(x: Tensor, v0: Tensor, a: Tensor, b: Tensor, c: Tensor, th: Tensor, spec: LeakySpec,
         has_time: bool, in_place: bool = False) -> tuple[Tensor, Tensor]:
    return TritonLeakyFire.apply(x, v0, a, b, c, th, spec, has_time, in_place)
