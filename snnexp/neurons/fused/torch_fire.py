"""The fused affine neuron in plain torch ops: the fallback on any device, and the kernels' spec.

h_t = a*v_{t-1} + b*x_t + c;  s_t = H(h_t - th);  v_t = reset(h_t, s_t), over T steps, as one
autograd Function with a hand-written backward that keeps no autograd graph per step. It saves
only h_seq (and x when b needs a gradient); s and v_{t-1} are recomputed in the backward.
The coefficients stay 0-dim tensors throughout: nothing here reads a value back to the host.
"""
from __future__ import annotations

import torch
from torch import Tensor

from snnexp.neurons.fused.spec import LeakySpec


class TorchLeakyFire(torch.autograd.Function):
    """Inputs x [T, N, ...] (or [N, ...] when not has_time), v0 [N, ...], 0-dim a, b, c, th."""

    @staticmethod
    def forward(ctx, x, v0, a, b, c, th, spec: LeakySpec, has_time: bool):
        x_seq = x if has_time else x.unsqueeze(0)  # [N, ...] -> [1, N, ...]
        h_seq = torch.mul(x_seq, b).add_(c)  # the input part of every step at once: b*x + c
        s_seq = torch.empty_like(h_seq)
        v = v0.to(h_seq.dtype, copy=True)
        for t in range(x_seq.shape[0]):
            h, s = h_seq[t], s_seq[t]
            h.addcmul_(v, a)
            torch.ge(h, th, out=s)
            _reset_into(v, h, s, th, spec)
        need_b = ctx.needs_input_grad[3]
        ctx.save_for_backward(h_seq, v0, x_seq if need_b else None, a, b, th)
        ctx.spec, ctx.has_time = spec, has_time
        return (s_seq if has_time else s_seq[0]), v

    @staticmethod
    def backward(ctx, grad_s, grad_v_last):
        h_seq, v0, x_seq, a, b, th = ctx.saved_tensors
        spec = ctx.spec
        soft, detach = spec.soft, spec.detach_reset
        need_x, need_v0, need_a, need_b, need_c, need_th = ctx.needs_input_grad[:6]
        if grad_s is None:
            grad_s = torch.zeros_like(h_seq)
        elif not ctx.has_time:
            grad_s = grad_s.unsqueeze(0)
        gv = torch.zeros_like(h_seq[0]) if grad_v_last is None else grad_v_last.to(h_seq.dtype, copy=True)
        grad_x = torch.empty_like(h_seq) if need_x else None
        grads = {k: h_seq.new_zeros(()) for k, need in zip("abct", (need_a, need_b, need_c, need_th)) if need}
        s = torch.empty_like(h_seq[0])
        for t in range(h_seq.shape[0] - 1, -1, -1):
            h, gs = h_seq[t], grad_s[t]
            sg = spec.surrogate.grad(h - th)
            torch.ge(h, th, out=s)
            # grad_h = gs * sg + gv * dv_t/dh_t, the reset's derivative taken through the spike
            # (its surrogate) unless detached; written to need few passes over memory
            if soft and detach:
                grad_h = torch.addcmul(gv, gs, sg)
            elif soft:  # dv/dh = 1 - th*sg  ->  gv + sg*(gs - th*gv)
                grad_h = torch.addcmul(gv, sg, torch.addcmul(gs, gv, th, value=-1))
            elif detach:  # dv/dh = 1 - s
                grad_h = torch.addcmul(gv * (1 - s), gs, sg)
            else:  # dv/dh = 1 - s + (v_reset - h)*sg
                grad_h = torch.addcmul(gv * (1 - s), sg, gs + gv * (spec.v_reset - h))
            if need_th:  # ds/dth = -sg; dv/dth through the reset
                dv_dth = -s if soft else torch.zeros_like(s)
                if not detach:
                    dv_dth = dv_dth + (th * sg if soft else (h - spec.v_reset) * sg)
                grads["t"] += (gv * dv_dth).sum() - (gs * sg).sum()
            if need_a:
                if t == 0:
                    v_prev = v0
                else:  # v_{t-1} = reset(h_{t-1}), recomputed instead of saved
                    s_prev = torch.ge(h_seq[t - 1], th).to(h.dtype)
                    v_prev = torch.empty_like(h)
                    _reset_into(v_prev, h_seq[t - 1], s_prev, th, spec)
                grads["a"] += torch.vdot(grad_h.flatten(), v_prev.flatten().to(h.dtype))
            if need_b:
                grads["b"] += torch.vdot(grad_h.flatten(), x_seq[t].flatten().to(h.dtype))
            if need_c:
                grads["c"] += grad_h.sum()
            if need_x:
                torch.mul(grad_h, b, out=grad_x[t])
            gv = grad_h * a
        if grad_x is not None and not ctx.has_time:
            grad_x = grad_x[0]
        return (grad_x, gv if need_v0 else None, grads.get("a"), grads.get("b"), grads.get("c"),
                grads.get("t"), None, None)


def _reset_into(v: Tensor, h: Tensor, s: Tensor, th: Tensor, spec: LeakySpec) -> None:
    """v <- reset(h, s) in place, no autograd (the forward of TorchLeakyFire)."""
    if spec.soft:
        torch.addcmul(h, s, th, value=-1, out=v)
    elif spec.v_reset == 0.0:
        torch.addcmul(h, s, h, value=-1, out=v)
    else:
        torch.sub(h, spec.v_reset, out=v)
        torch.addcmul(h, s, v, value=-1, out=v)


def fire(x: Tensor, v0: Tensor, a: Tensor, b: Tensor, c: Tensor, th: Tensor, spec: LeakySpec,
         has_time: bool, in_place: bool = False) -> tuple[Tensor, Tensor]:
    """`in_place` is a permission the kernels use; this path always returns a new membrane."""
    return TorchLeakyFire.apply(x, v0, a, b, c, th, spec, has_time)
