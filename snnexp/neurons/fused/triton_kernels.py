"""Triton kernels of the fused affine neuron: one launch covers all T steps forward, one the backward.

    h_t = a*v_{t-1} + b*x_t + c;   s_t = [h_t >= th];   v_t = reset(h_t, s_t)

Each program owns BLOCK elements of the flattened [N, ...] slice and walks t, so v (and, in
the backward, the gradient of v) stays in registers. T is a compile-time constant (one
compiled variant per T; single-step mode is T = 1): Triton 3.6's interpreter cannot loop over
a run-time bound with numpy >= 2.4 (it calls int() on a 1-element array). Arithmetic is in COMPUTE (float32, or
float64 for float64 tensors); loads and stores convert. The coefficients a, b, c, th and the
constants (v_reset, alpha) are read from device memory, so no launch needs a host value. The
surrogate codes follow `spec.KERNEL_SURROGATES`; `torch_fire.py` is the reference.
Compatible with Triton 3.x; tests run them under TRITON_INTERPRET=1 on CPU tensors. Only
language builtins and this file's own functions are called: triton.language's @jit helpers
(tl.zeros, tl.sum) stay compiled-only when triton was imported before TRITON_INTERPRET was set.
"""
from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _surrogate_grad(z, alpha, SURROGATE: tl.constexpr):
    """g'(z) for the surrogate with this code (ATan, Sigmoid, FastSigmoid, Triangle, Rectangle)."""
    if SURROGATE == 0:
        u = z * (alpha * 1.5707963267948966)
        sg = 1.0 / (1.0 + u * u) * (alpha * 0.5)
    elif SURROGATE == 1:
        sig = 1.0 / (1.0 + tl.exp(-alpha * z))
        sg = alpha * sig * (1.0 - sig)
    elif SURROGATE == 2:
        d = 1.0 + alpha * tl.abs(z)
        sg = (alpha * 0.5) / (d * d)
    elif SURROGATE == 3:
        sg = alpha * tl.maximum(1.0 - alpha * tl.abs(z), 0.0)
    else:
        sg = tl.where(tl.abs(z) < 0.5 / alpha, alpha, 0.0 * z)
    return sg


@triton.jit
def _add(x, y):
    return x + y


@triton.jit
def _reset(h, th, v_reset, SOFT: tl.constexpr):
    if SOFT:
        v = tl.where(h >= th, h - th, h)
    else:
        v = tl.where(h >= th, v_reset, h)
    return v


@triton.jit(do_not_specialize=["M"])  # Triton makes an int equal to 1 a constant; M must stay a value
def leaky_forward_kernel(x_ptr, v0_ptr, s_ptr, h_ptr, v_ptr, a_ptr, b_ptr, c_ptr, th_ptr, consts_ptr, M,
                         STEPS: tl.constexpr, SOFT: tl.constexpr, SAVE_H: tl.constexpr, COMPUTE: tl.constexpr,
                         BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < M
    a = tl.load(a_ptr).to(COMPUTE)
    b = tl.load(b_ptr).to(COMPUTE)
    c = tl.load(c_ptr).to(COMPUTE)
    th = tl.load(th_ptr).to(COMPUTE)
    v_reset = tl.load(consts_ptr).to(COMPUTE)
    v = tl.load(v0_ptr + offs, mask=mask, other=0.0).to(COMPUTE)
    xp, sp, hp = x_ptr + offs, s_ptr + offs, h_ptr + offs
    for _ in range(STEPS):
        h = (b * tl.load(xp, mask=mask, other=0.0).to(COMPUTE) + c) + a * v
        # via COMPUTE: the interpreter cannot cast a boolean straight to a 16-bit float
        tl.store(sp, (h >= th).to(COMPUTE).to(s_ptr.dtype.element_ty), mask=mask)
        if SAVE_H:
            tl.store(hp, h.to(h_ptr.dtype.element_ty), mask=mask)
        v = _reset(h, th, v_reset, SOFT)
        xp += M
        sp += M
        hp += M
    tl.store(v_ptr + offs, v.to(v_ptr.dtype.element_ty), mask=mask)


@triton.jit(do_not_specialize=["gs_step", "M"])
def leaky_backward_kernel(gs_ptr, gs_step, gv_ptr, h_ptr, v0_ptr, x_ptr, gx_ptr, gv0_ptr, partial_ptr,
                          a_ptr, b_ptr, th_ptr, consts_ptr, M,
                          STEPS: tl.constexpr, SOFT: tl.constexpr, DETACH: tl.constexpr, COEF: tl.constexpr,
                          NEED_X: tl.constexpr,
                          HAS_GS: tl.constexpr, GS_BROADCAST: tl.constexpr, HAS_GV: tl.constexpr,
                          HAS_X: tl.constexpr, SURROGATE: tl.constexpr, COMPUTE: tl.constexpr,
                          BLOCK: tl.constexpr):
    """grad_h = gs*sg + gv*dv/dh walked from t = T-1 down to 0; see leaky_fire.cpp for the algebra.

    partial_ptr[program, 0..3] receives this program's share of the a, b, c, th gradients.
    """
    pid = tl.program_id(0)
    offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < M
    a = tl.load(a_ptr).to(COMPUTE)
    b = tl.load(b_ptr).to(COMPUTE)
    th = tl.load(th_ptr).to(COMPUTE)
    v_reset = tl.load(consts_ptr).to(COMPUTE)
    alpha = tl.load(consts_ptr + 1).to(COMPUTE)
    zero = tl.full([BLOCK], 0.0, COMPUTE)
    if HAS_GV:
        gv = tl.load(gv_ptr + offs, mask=mask, other=0.0).to(COMPUTE)
    else:
        gv = zero
    acc_a, acc_b, acc_c, acc_th = zero, zero, zero, zero
    last = M.to(tl.int64) * (STEPS - 1)  # offset of the last step, in 64 bits
    last_gs = gs_step.to(tl.int64) * (STEPS - 1)
    hp, gxp, xp = h_ptr + offs + last, gx_ptr + offs + last, x_ptr + offs + last
    if GS_BROADCAST:
        gsp = gs_ptr + last_gs
    else:
        gsp = gs_ptr + offs + last_gs
    for i in range(STEPS):
        h = tl.load(hp, mask=mask, other=0.0).to(COMPUTE)
        if HAS_GS:
            if GS_BROADCAST:
                g = tl.load(gsp).to(COMPUTE) + zero
            else:
                g = tl.load(gsp, mask=mask, other=0.0).to(COMPUTE)
        else:
            g = zero
        sg = _surrogate_grad(h - th, alpha, SURROGATE)
        spike = h >= th
        if SOFT and DETACH:
            gh = gv + g * sg
        elif SOFT:
            gh = gv + sg * (g - th * gv)
        elif DETACH:
            gh = tl.where(spike, zero, gv) + g * sg
        else:
            gh = tl.where(spike, zero, gv) + sg * (g + gv * (v_reset - h))
        if COEF:
            # ds/dth = -sg; dv/dth through the reset
            if SOFT:
                dv_dth = tl.where(spike, -1.0 + zero, zero)
                if not DETACH:
                    dv_dth += th * sg
            else:
                dv_dth = zero
                if not DETACH:
                    dv_dth += (h - v_reset) * sg
            acc_th += gv * dv_dth - g * sg
            acc_c += gh
            if i == STEPS - 1:
                v_prev = tl.load(v0_ptr + offs, mask=mask, other=0.0).to(COMPUTE)
            else:
                v_prev = _reset(tl.load(hp - M, mask=mask, other=0.0).to(COMPUTE), th, v_reset, SOFT)
            acc_a += tl.where(mask, gh * v_prev, zero)
            if HAS_X:
                acc_b += gh * tl.load(xp, mask=mask, other=0.0).to(COMPUTE)
        if NEED_X:
            tl.store(gxp, (b * gh).to(gx_ptr.dtype.element_ty), mask=mask)
        gv = a * gh
        hp -= M
        gxp -= M
        xp -= M
        gsp -= gs_step
    tl.store(gv0_ptr + offs, gv.to(gv0_ptr.dtype.element_ty), mask=mask)
    if COEF:
        acc_th = tl.where(mask, acc_th, zero)
        acc_c = tl.where(mask, acc_c, zero)
        tl.store(partial_ptr + pid * 4, tl.reduce(acc_a, 0, _add))
        tl.store(partial_ptr + pid * 4 + 1, tl.reduce(acc_b, 0, _add))
        tl.store(partial_ptr + pid * 4 + 2, tl.reduce(acc_c, 0, _add))
        tl.store(partial_ptr + pid * 4 + 3, tl.reduce(acc_th, 0, _add))
