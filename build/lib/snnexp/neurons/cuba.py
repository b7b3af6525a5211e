"""Loihi's current-based LIF (CUBA), in float and in Lava's bit-accurate fixed point."""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from snnexp.errors import check
from snnexp.neurons.base import Select, SpikingNeuron
from snnexp.neurons.surrogate import Surrogate

DECAY_UNITY = 4096  # decays are 12-bit fractions of 4096
STATE_MAX = 2 ** 23  # u and v are 24-bit signed
SHIFT = 64  # Loihi shifts the synaptic input and the threshold left by 6 bits
VTH_MAX = 2 ** 17 - 1  # threshold mantissa: unsigned 17 bits


class CUBAState(NamedTuple):
    u: Tensor  # synaptic current
    v: Tensor  # membrane voltage


class CUBAParams(NamedTuple):
    i_decay: int  # current decay, 1..4096 (of 4096); Lava's du = i_decay - 1
    v_decay: int  # voltage decay, 0..4095 (of 4096); Lava's dv
    v_threshold: Tensor | float  # theta, in input units
    w_scale: float  # fixed point: integer weight units per 1.0 of input (vth = round(theta * w_scale))
    bias: Tensor | float  # constant current into v every step (Loihi's bias_mant), input units
    fixed_point: bool
    detach_reset: bool
    surrogate: Surrogate


def cuba_step(x_t: Tensor, state: CUBAState, p: CUBAParams,
              select: Select | None = None) -> tuple[Tensor, CUBAState]:
    """One step of Loihi's CUBA neuron (lava-nc's LIF process; Davies et al. 2018). Shapes [N, ...].

    Float (p.fixed_point False), with di = i_decay/4096 and dv = v_decay/4096:
        u = u (1 - di) + x_t;   v = v (1 - dv) + u + bias;   s = [v > theta];   v = 0 where s   (u goes on)
    Fixed point, bit for bit as lava-nc 0.10's PyLifModelBitAcc (state in Lava's integer units):
        a = round(x_t * w_scale)                      (the synaptic input; exact for integer weights)
        u = trunc0(u (4096 - i_decay) / 4096) + 64 a, wrapped to 24 bits
        v = trunc0(v (4096 - v_decay) / 4096) + u + 64 round(bias * w_scale),   clipped to +-(2^23 - 1)
        s = [v > 64 vth] with vth = round(theta * w_scale);   v = 0 where s
    trunc0 rounds toward zero. Rounding, truncation and wrap pass the gradient straight through;
    the spike uses the surrogate on (v - 64 vth - 1/2) / (64 w_scale), the float mode's scale.
    Order: charge -> fire -> reset. Fixed-point state is float64 (exact integers); s has x_t's dtype.
    """
    if not p.fixed_point:
        u = state.u * (1 - p.i_decay / DECAY_UNITY) + x_t
        v = state.v * (1 - p.v_decay / DECAY_UNITY) + u + p.bias
        s = p.surrogate(v - p.v_threshold)
    else:
        a = _ste(x_t.double() * p.w_scale, torch.round)
        u = _ste(state.u * ((DECAY_UNITY - p.i_decay) / DECAY_UNITY), torch.trunc) + SHIFT * a
        u = _ste(u, _wrap24)
        bias = _ste(torch.as_tensor(p.bias, dtype=torch.float64, device=u.device) * p.w_scale, torch.round)
        v = _ste(state.v * ((DECAY_UNITY - p.v_decay) / DECAY_UNITY), torch.trunc) + u + SHIFT * bias
        v = v.clamp(-(STATE_MAX - 1), STATE_MAX - 1)
        vth = _ste(torch.as_tensor(p.v_threshold, dtype=torch.float64) * p.w_scale, torch.round)
        s = p.surrogate((v - SHIFT * vth - 0.5) / (SHIFT * p.w_scale))
    if select is not None:  # k-WTA: only the selected spikes reset (`fire_and_reset`)
        s = select(s)
    s_r = s.detach() if p.detach_reset else s
    return s.to(x_t.dtype), CUBAState(u, v * (1 - s_r))


def _ste(x: Tensor, fn) -> Tensor:
    """fn(x) forward, identity backward (straight-through)."""
    return x + (fn(x.detach()) - x).detach()


def _wrap24(u: Tensor) -> Tensor:
    """Lava's 24-bit wrap of the current: > 2^23 loses 2^24, <= -2^23 gains 2^24."""
    u = torch.where(u > STATE_MAX, u - 2 * STATE_MAX, u)
    return torch.where(u <= -STATE_MAX, u + 2 * STATE_MAX, u)


class CUBA(SpikingNeuron):
    """CUBA layer (`cuba_step`). Decays are fractions per step, stored as 12-bit integers.

    current_decay: 1.0 forgets the current every step (u = input: an LIF without input decay);
    voltage_decay: 0 = no leak. fixed_point: Lava's integer arithmetic (train with it to deploy
    with no surprises); w_scale: integer weight units per 1.0 of input in fixed point (lava-dl
    uses 64). Reset is to 0, as on Loihi. Arguments of `SpikingNeuron` apart from the reset.
    """

    def __init__(self, current_decay: float = 1.0, voltage_decay: float = 0.25, fixed_point: bool = False,
                 w_scale: float = 64.0, **fire_kwargs):
        check(fire_kwargs.pop("reset", "hard") == "hard", "neuron.reset", "subtract", "CUBA resets to 0 (hard)")
        check(float(fire_kwargs.pop("v_reset", 0.0)) == 0.0, "neuron.v_reset", "!= 0", "CUBA resets to 0")
        super().__init__(reset="hard", v_reset=0.0, **fire_kwargs)
        i_decay, v_decay = round(float(current_decay) * DECAY_UNITY), round(float(voltage_decay) * DECAY_UNITY)
        check(1 <= i_decay <= DECAY_UNITY, "neuron.current_decay", current_decay,
              "must be in [1/4096, 1] (12-bit, of 4096)")
        check(0 <= v_decay < DECAY_UNITY, "neuron.voltage_decay", voltage_decay, "must be in [0, 4095/4096]")
        check(float(w_scale) > 0, "neuron.w_scale", w_scale, "must be > 0")
        self.i_decay, self.v_decay = i_decay, v_decay
        self.fixed_point = bool(fixed_point)
        self.w_scale = float(w_scale)
        # a constant current per neuron (Loihi's bias_mant); 0 unless set, e.g. by deploy=loihi from a BatchNorm
        self.register_buffer("bias", torch.zeros(()))
        if self.fixed_point:
            vth = round(float(self.v_threshold) * self.w_scale)
            check(1 <= vth <= VTH_MAX, "neuron.v_threshold", float(self.v_threshold),
                  f"times neuron.w_scale must round to 1..{VTH_MAX} (17-bit threshold), got {vth}")

    def params(self) -> CUBAParams:
        return CUBAParams(self.i_decay, self.v_decay, self.v_threshold, self.w_scale, self.bias, self.fixed_point,
                          self.detach_reset, self.surrogate)

    def initial_state(self, x_t: Tensor) -> CUBAState:
        dtype = torch.float64 if self.fixed_point else x_t.dtype
        zero = torch.zeros(x_t.shape, dtype=dtype, device=x_t.device)
        return CUBAState(zero, zero)

    def step(self, x_t: Tensor, state: CUBAState, select: Select | None = None) -> tuple[Tensor, CUBAState]:
        return cuba_step(x_t, state, self.params(), select)

    def extra_repr(self) -> str:
        return (f"i_decay={self.i_decay}/4096, v_decay={self.v_decay}/4096, fixed_point={self.fixed_point}, "
                f"w_scale={self.w_scale:g}, " + super().extra_repr())
