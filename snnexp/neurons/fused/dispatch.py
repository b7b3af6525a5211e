"""Pick the fused implementation for a tensor: C++ on the CPU, Triton on CUDA, torch otherwise.

The choice depends on the device type (and dtype/surrogate support), is made on first use per
device type, and is logged once. SNNEXP_FUSED=torch forces the torch path everywhere (the
reference, e.g. to compare speeds); a machine without a C++ compiler or without triton gets it
too, with one log line saying why.
"""
from __future__ import annotations

import logging
import os
from typing import Callable

from torch import Tensor

from snnexp.neurons.fused import cpu_fire, torch_fire
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
               has_time: bool, in_place: bool = False) -> tuple[Tensor, Tensor]:
    """h_t = a*v_{t-1} + b*x_t + c; s_t = H(h_t - th); v_t = reset(h_t, s_t), over all steps of x.

    x: [T, N, ...] (has_time) or [N, ...] (one step); v0: [N, ...]; a, b, c, th: 0-dim tensors.
    Returns (s, v_last) with s shaped as x. Gradients flow to x, v0, a, b, c and th.
    in_place: v0 belongs to the caller alone, so a kernel may write v_last over it (a single step
    of a module's own state: no new membrane buffer per step).
    """
    return backend_for(x, spec)(x, v0, a, b, c, th, spec, has_time, in_place)
