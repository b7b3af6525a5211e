"""What a fused kernel needs to know about a neuron besides its coefficients."""
from __future__ import annotations

from typing import NamedTuple

from snnexp.neurons.surrogate import ATan, FastSigmoid, Rectangle, Sigmoid, Surrogate, Triangle

# The surrogates the C++ and Triton kernels implement (their `grad`), by exact class: a subclass
# may change `grad`, so it runs the torch path. The codes match leaky_fire.cpp and triton_fire.py.
KERNEL_SURROGATES = {ATan: 0, Sigmoid: 1, FastSigmoid: 2, Triangle: 3, Rectangle: 4}


class LeakySpec(NamedTuple):
    """Firing and reset of an affine neuron: fixed when the module is built (no tensors)."""

    v_reset: float
    soft: bool  # reset by subtraction (else to v_reset)
    detach_reset: bool
    surrogate: Surrogate


def surrogate_code(surrogate: Surrogate) -> int | None:
    """The kernels' code for this surrogate, or None when only the torch path knows it."""
    return KERNEL_SURROGATES.get(type(surrogate))
