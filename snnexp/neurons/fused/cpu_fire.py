"""The fused affine neuron on the CPU: leaky_fire.cpp's kernels (compiled by build.py) as an autograd Function.

Same inputs, outputs and gradients as `TorchLeakyFire` (its reference); float32 and float64.
"""
from __future__ import annotations

import torch
from torch import Tensor

from snnexp.neurons.fused.spec import LeakySpec, surrogate_code

DTYPES = (torch.float32, torch.float64)


class CppLeakyFire(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, v0, a, b, c, th, spec: LeakySpec, has_time: bool, in_place: bool, pool: int = 0):
        need_grad = any(ctx.needs_input_grad[:6])
        need_coef = any(ctx.needs_input_grad[2:6])  # then v0 is saved, so it must not change
        update_v = in_place and not need_coef and not (v0.is_leaf and v0.requires_grad)
        # Several steps where b needs a gradient (PLIF), so x is kept anyway: let the backward
        # recompute h from x and v0 rather than keep h too (one full-size tensor fewer written and
        # held; 0.8x PLIF's layer time). Where x would not be kept (IF, LIF) recomputing only trades
        # the forward's write of h for the backward's compute: measured no faster, within noise.
        # One step of a module's state: v0 may be overwritten in place, so h is saved.
        recompute = need_grad and has_time and x.shape[0] > 1 and not update_v and ctx.needs_input_grad[3]
        save_h = need_grad and not recompute
        # pool > 0: s is the spikes max-pooled over pool x pool windows, code their winners (supports_pool)
        s, h, v, *code = torch.ops.snnexp_fused.leaky_forward(x, v0, a, b, c, th, has_time, spec.v_reset, spec.soft,
                                                              save_h, update_v, pool)
        ctx.set_materialize_grads(False)  # an unused output's gradient stays None: no zeros to read
        # recompute needs x and v0, which b's gradient (and so need_coef) keeps anyway
        ctx.save_for_backward(h if save_h else None, v0 if need_coef else None,
                              x if ctx.needs_input_grad[3] else None, a, b, c, th, *code)
        ctx.spec, ctx.has_time, ctx.pool = spec, has_time, pool
        if v.data_ptr() == v0.data_ptr():  # the new membrane was written over the old one
            ctx.mark_dirty(v0)
            return s, v0
        return s, v

    @staticmethod
    def backward(ctx, grad_s, grad_v):
        h, v0, x, a, b, c, th, *code = ctx.saved_tensors
        spec = ctx.spec
        need_x, need_v0, *need_coef = ctx.needs_input_grad[:6]
        code = code[0] if code and grad_s is not None else None  # no spike gradient: nothing to unpool
        gx, gv0, coef = torch.ops.snnexp_fused.leaky_backward(
            grad_s, grad_v, h, v0, x, a, b, c, th, ctx.has_time,
            spec.v_reset, spec.soft, spec.detach_reset, surrogate_code(spec.surrogate), spec.surrogate.alpha, need_x,
            any(need_coef), code, ctx.pool)
        ga, gb, gc, gth = (g.to(t.dtype) if need else None for g, t, need in zip(coef, (a, b, a, th), need_coef))
        return gx if need_x else None, gv0 if need_v0 else None, ga, gb, gc, gth, None, None, None, None


def supports(x: Tensor, spec: LeakySpec) -> bool:
    return x.device.type == "cpu" and x.dtype in DTYPES and surrogate_code(spec.surrogate) is not None


def supports_pool(x: Tensor, has_time: bool, k: int) -> bool:
    """Whether the kernel can pool x's spikes itself: steps [N, C, H, W] channels-last, one after another
    in memory (a conv's output is), H a multiple of k (whole bands of windows), W >= k."""
    x0 = x[0] if has_time else x
    return (x0.dim() == 4 and x0.is_contiguous(memory_format=torch.channels_last) and 1 <= k <= 15
            and x0.shape[2] % k == 0 and x0.shape[3] >= k and (not has_time or x.stride(0) == x0.numel()))


def fire(x: Tensor, v0: Tensor, a: Tensor, b: Tensor, c: Tensor, th: Tensor, spec: LeakySpec,
         has_time: bool, in_place: bool = False, pool: int = 0) -> tuple[Tensor, Tensor]:
    """pool > 0 (where `supports_pool`): the spikes come back max-pooled over pool x pool windows."""
    return CppLeakyFire.apply(x, v0, a, b, c, th, spec, has_time, in_place, pool)
