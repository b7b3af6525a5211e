"""Pick the fused implementation for a tensor: C++ on the CPU, Triton on CUDA, torch otherwise.

Two operations: the affine neuron (`leaky_fire`, optionally with the max-pool after it) and the
non-overlapping max-pool alone (`max_pool2d`).

The choice depends on the device type (and dtype/surrogate support), is made on first use per
device type, and is logged once. SNNEXP_FUSED=torch forces the torch path everywhere (the
reference, e.g. to compare speeds); a machine without a C++ compiler or without triton gets it
too, with one log line saying why.
"""
from __future__ import annotations

import logging
import os
from typing import Callable

import torch.nn.functional as F
from torch import Tensor

from snnexp.neurons.fused import cpu_fire, max_pool, torch_fire
from snnexp.neurons.fused.spec import LeakySpec

log = logging.getLogger(__name__)
Fire = Callable[..., tuple[Tensor, Tensor]]
_available: dict[str, bool] = {}


def _cpu_kernels() -> bool:
    from snnexp.neurons.fused.build import build_and_load

    try:
        build_and_load()
        return True
    except (OSError, RuntimeError) as e:
        log.warning("snnexp: fused CPU neuron kernel unavailable (%s); IF/LIF/PLIF use the pure torch path", e)
        return False


def _triton_kernels() -> bool:
    try:
        import triton  # noqa: F401
        return True
    except ImportError:
        log.warning("snnexp: triton is not installed (pip install 'snnexp[gpu]'); IF/LIF/PLIF on CUDA use the "
                    "pure torch path")
        return False


def available(kind: str) -> bool:
    """Whether the "cpu" (C++) or "cuda" (Triton) kernels can run here; tried once per process."""
    if os.environ.get("SNNEXP_FUSED", "auto") == "torch":
        return False
    if kind not in _available:
        _available[kind] = _cpu_kernels() if kind == "cpu" else _triton_kernels()
    return _available[kind]


def backend_for(x: Tensor, spec: LeakySpec) -> Fire:
    """The `fire` function that runs x's device, dtype and surrogate fastest."""
    if x.device.type == "cpu" and cpu_fire.supports(x, spec) and available("cpu"):
        return cpu_fire.fire
    if x.device.type == "cuda" and available("cuda"):
        from snnexp.neurons.fused import triton_fire

        if triton_fire.supports(x, spec):
            return triton_fire.fire
    return torch_fire.fire


def leaky_fire(x: Tensor, v0: Tensor, a: Tensor, b: Tensor, c: Tensor, th: Tensor, spec: LeakySpec,
               has_time: bool, in_place: bool = False, pool: int = 0) -> tuple[Tensor, Tensor]:
    """h_t = a*v_{t-1} + b*x_t + c; s_t = H(h_t - th); v_t = reset(h_t, s_t), over all steps of x.

    x: [T, N, ...] (has_time) or [N, ...] (one step); v0: [N, ...]; a, b, c, th: 0-dim tensors.
    Returns (s, v_last) with s shaped as x. Gradients flow to x, v0, a, b, c and th.
    in_place: v0 belongs to the caller alone, so a kernel may write v_last over it (a single step
    of a module's own state: no new membrane buffer per step).
    pool > 0: x's steps are images [N, C, H, W] and s comes back max-pooled over pool x pool windows
    (kernel = stride = pool, floor mode: `max_pool2d(s, pool)` per step), in the same pass where the
    C++ kernel can (`cpu_fire.supports_pool`), else by the max-pool after the neuron.
    """
    fire = backend_for(x, spec)
    if pool and fire is cpu_fire.fire and cpu_fire.supports_pool(x, has_time, pool):
        return fire(x, v0, a, b, c, th, spec, has_time, in_place, pool)
    s, v = fire(x, v0, a, b, c, th, spec, has_time, in_place)
    return (max_pool_steps(s, pool, has_time) if pool else s), v


def max_pool2d(x: Tensor, k: int) -> Tensor:
    """`F.max_pool2d(x, k)` (kernel = stride = k, no padding, floor mode) for x [N, C, H, W]: the C++
    kernel for channels-last CPU tensors, torch's otherwise; the same values and gradients."""
    if max_pool.supports(x, k) and available("cpu"):
        return max_pool.CppMaxPool2d.apply(x, k)
    return F.max_pool2d(x, k)


def max_pool_steps(s: Tensor, k: int, has_time: bool) -> Tensor:
    """`max_pool2d(., k)` of each step of s [T, N, C, H, W] (has_time) or [N, C, H, W]."""
    if not has_time:
        return max_pool2d(s, k)
    return max_pool2d(s.flatten(0, 1), k).unflatten(0, s.shape[:2])  # [T*N, C, H, W] -> pool -> [T, N, ...]
