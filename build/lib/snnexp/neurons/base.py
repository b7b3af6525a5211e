"""The time loop shared by every neuron, and the fused path for leaky integrate-and-fire neurons.

A neuron is a pure step function `<name>_step(x_t, state, params) -> (s_t, state)`
wrapped by a `SpikingNeuron` module. The module runs in one of two modes:

- multi-step ("m", default): `forward(x_seq)` takes `[T, N, ...]`, starts from a
  fresh state and returns `s_seq` `[T, N, ...]`; nothing leaks between calls.
- single-step ("s"): `forward(x_t)` takes `[N, ...]` and keeps its state in the
  module until `reset()`; models that step the whole network once per time step
  use it (better cache locality than running each layer over all T*N frames).

Within a step the order is charge -> fire -> reset (as SpikingJelly and Norse;
snnTorch delays the reset by one step).

Neurons whose charge is affine in (v, x) — IF, LIF, PLIF — also report
`charge_coefficients() = (a, b, c)` with h = a*v + b*x + c. For those, both
modes run `LeakyFire`, one autograd Function with a hand-written backward that
keeps no autograd graph per step (the per-step loop is the hot path);
`tests/neurons/test_base.py` checks it against the loop of step functions.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from snnexp.errors import check
from snnexp.neurons.surrogate import ATan, Surrogate

RESETS = ("subtract", "hard")
STEP_MODES = ("m", "s")


class MembraneState(NamedTuple):
    """State of a neuron whose only variable is the membrane potential v."""

    v: Tensor


class FireParams(NamedTuple):
    """How a neuron fires and resets; shared by every step function."""

    v_threshold: Tensor | float
    v_reset: float
    reset: str  # "subtract" (v -= threshold) or "hard" (v = v_reset)
    detach_reset: bool  # no gradient through the reset
    surrogate: Surrogate


Select = Callable[[Tensor], Tensor]  # spikes -> the spikes allowed to happen (e.g. k-WTA's winners)


def fire_and_reset(h: Tensor, p: FireParams, select: Select | None = None) -> tuple[Tensor, Tensor]:
    """Spike where the charged membrane h reaches the threshold, then reset.

    Returns (s, v): s = H(h - v_threshold) with the surrogate gradient;
    v = h - s*v_threshold ("subtract") or h*(1 - s) + s*v_reset ("hard").
    `select` (lateral inhibition's k-WTA) filters the spikes after the threshold test and before
    the reset, so a neuron whose spike it removes is neither reset nor adapted by it.
    """
    s = p.surrogate(h - p.v_threshold)
    if select is not None:
        s = select(s)
    s_r = s.detach() if p.detach_reset else s
    if p.reset == "subtract":
        v = h - s_r * p.v_threshold
    else:
        v = h * (1 - s_r) + s_r * p.v_reset
    return s, v


class LeakyFire(torch.autograd.Function):
    """Fused h_t = a*v_{t-1} + b*x_t + c; s_t = H(h_t - th); v_t = reset(h_t, s_t) over T steps.

    Inputs: x_seq [T, N, ...], v0 [N, ...], scalars a, b, c, th (0-dim tensors,
    gradients returned when they require one). Outputs s_seq [T, N, ...], v_T.
    Saves only h_seq; s and v_{t-1} are recomputed in the backward pass.
    """

    @staticmethod
    def forward(ctx, x_seq, v0, a, b, c, th, surrogate, v_reset, soft, detach_reset):
        af, bf, cf, thf = (float(t) for t in (a, b, c, th))
        h_seq = torch.mul(x_seq, bf)  # the input part of every step at once: b*x + c
        if cf != 0.0:
            h_seq.add_(cf)
        s_seq = torch.empty_like(h_seq)
        v = v0.clone()
        for t in range(x_seq.shape[0]):
            h, s = h_seq[t], s_seq[t]
            h.add_(v, alpha=af)
            torch.ge(h, thf, out=s)
            _reset_into(v, h, s, thf, v_reset, soft)
        ctx.save_for_backward(h_seq, v0, x_seq if ctx.needs_input_grad[3] else None)
        ctx.consts = (af, bf, thf, surrogate, v_reset, soft, detach_reset)
        return s_seq, v

    @staticmethod
    def backward(ctx, grad_s_seq, grad_v_last):
        h_seq, v0, x_seq = ctx.saved_tensors
        af, bf, thf, surrogate, v_reset, soft, detach_reset = ctx.consts
        need_x, need_v0, need_a, need_b, need_c, need_th = ctx.needs_input_grad[:6]
        if grad_s_seq is None:
            grad_s_seq = torch.zeros_like(h_seq)
        gv = torch.zeros_like(v0) if grad_v_last is None else grad_v_last.clone()
        grad_x = torch.empty_like(h_seq) if need_x else None
        grads = {k: h_seq.new_zeros(()) for k, need in zip("abct", (need_a, need_b, need_c, need_th)) if need}
        s = torch.empty_like(v0)
        for t in range(h_seq.shape[0] - 1, -1, -1):
            h, gs = h_seq[t], grad_s_seq[t]
            sg = surrogate.grad(h - thf)
            if need_th or not soft:
                torch.ge(h, thf, out=s)
            # grad_h = gs * sg + gv * dv_t/dh_t, the reset's derivative taken through the spike
            # (its surrogate) unless detached; written to need few passes over memory
            if soft and detach_reset:
                grad_h = torch.addcmul(gv, gs, sg)
            elif soft:  # dv/dh = 1 - th*sg  ->  gv + sg*(gs - th*gv)
                grad_h = torch.addcmul(gv, sg, torch.add(gs, gv, alpha=-thf))
            elif detach_reset:  # dv/dh = 1 - s
                grad_h = torch.addcmul(gv * (1 - s), gs, sg)
            else:  # dv/dh = 1 - s + (v_reset - h)*sg
                grad_h = torch.addcmul(gv * (1 - s), sg, gs + gv * (v_reset - h))
            if need_th:  # ds/dth = -sg; dv/dth through the reset
                dv_dth = -s if soft else torch.zeros_like(s)
                if not detach_reset:
                    dv_dth = dv_dth + (thf * sg if soft else (h - v_reset) * sg)
                grads["t"] += (gv * dv_dth).sum() - (gs * sg).sum()
            if need_a:
                if t == 0:
                    v_prev = v0
                else:  # v_{t-1} = reset(h_{t-1}), recomputed instead of saved
                    s_prev = torch.ge(h_seq[t - 1], thf).to(h.dtype)
                    v_prev = torch.empty_like(v0)
                    _reset_into(v_prev, h_seq[t - 1], s_prev, thf, v_reset, soft)
                grads["a"] += torch.vdot(grad_h.flatten(), v_prev.flatten())
            if need_b:
                grads["b"] += torch.vdot(grad_h.flatten(), x_seq[t].flatten())
            if need_c:
                grads["c"] += grad_h.sum()
            if need_x:
                torch.mul(grad_h, bf, out=grad_x[t])
            gv = grad_x[t] if need_x and af == bf else grad_h * af  # LIF with decay_input: a == b
        return (grad_x, gv if need_v0 else None, grads.get("a"), grads.get("b"), grads.get("c"),
                grads.get("t"), None, None, None, None)


def _reset_into(v: Tensor, h: Tensor, s: Tensor, th: float, v_reset: float, soft: bool) -> None:
    """v <- reset(h, s) in place, no autograd (the forward of LeakyFire)."""
    if soft:
        torch.add(h, s, alpha=-th, out=v)
    elif v_reset == 0.0:
        torch.addcmul(h, s, h, value=-1.0, out=v)
    else:
        torch.sub(h, v_reset, out=v)
        torch.addcmul(h, s, v, value=-1.0, out=v)


@runtime_checkable
class Homeostatic(Protocol):
    """A neuron that learns across samples from its activity (ALIF's persistent threshold)."""

    def homeostasis(self, state: Any, steps: int) -> None:
        """Book a finished sequence of `steps` steps ending in `state` (no-op outside training)."""


class Neuron(nn.Module):
    """A stateful layer run over time: the two step modes and the reference time loop.

    Subclasses implement `step(x_t, state) -> (out_t, state)` (calling their
    pure step function) and `initial_state(x_t)`.
    """

    def __init__(self, step_mode: str = "m"):
        super().__init__()
        check(step_mode in STEP_MODES, "neuron.step_mode", step_mode, f"choose one of {list(STEP_MODES)}")
        self.step_mode = step_mode
        self.state: Any = None

    def initial_state(self, x_t: Tensor) -> Any:
        raise NotImplementedError

    def step(self, x_t: Tensor, state: Any) -> tuple[Tensor, Any]:
        raise NotImplementedError

    def reset(self) -> None:
        """Forget the single-step state (models call this at the start of each sequence)."""
        self.state = None

    def end_sequence(self) -> None:
        """Single-step mode: the sequence that began at the last `reset()` is over (models call this
        after their last step). Neurons that learn across samples (ALIF's homeostasis) book it here,
        while the module is still in the mode (train/eval) the sequence ran in."""

    def forward(self, x: Tensor) -> Tensor:
        if self.step_mode == "s":
            if self.state is None:
                self.state = self.initial_state(x)
            out_seq, self.state = self.run(x.unsqueeze(0), self.state)
            return out_seq[0]
        return self.run(x)[0]

    def run(self, x_seq: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        """Multi-step: [T, N, ...] -> ([T, N, ...], final state); a fresh state unless one is given."""
        if state is None:
            state = self.initial_state(x_seq[0])
        return self.run_loop(x_seq, state)

    def run_loop(self, x_seq: Tensor, state: Any) -> tuple[Tensor, Any]:
        """The reference path: the pure step function once per time step, under autograd."""
        outputs = []
        for x_t in x_seq:
            out, state = self.step(x_t, state)
            outputs.append(out)
        return torch.stack(outputs), state


class SpikingNeuron(Neuron):
    """A neuron that fires: threshold, reset, surrogate gradient, and the fused path.

    IF-like subclasses also implement `charge_coefficients()`; `run` then uses
    `LeakyFire` instead of the loop. `step(x_t, state, select=None)` passes `select` to
    `fire_and_reset` (lateral inhibition's k-WTA; the step-function loop is used then).
    """

    def __init__(
        self,
        v_threshold: float = 1.0,
        v_reset: float = 0.0,
        reset: str = "subtract",
        detach_reset: bool = False,
        surrogate: Surrogate | None = None,
        learn_threshold: bool = False,
        step_mode: str = "m",
    ):
        super().__init__(step_mode)
        v_threshold = float(v_threshold)
        check(v_threshold > 0, "neuron.v_threshold", v_threshold, "must be > 0")
        check(reset in RESETS, "neuron.reset", reset, f"choose one of {list(RESETS)}")
        check(float(v_reset) < v_threshold, "neuron.v_reset", v_reset, "must be below neuron.v_threshold")
        th = torch.tensor(v_threshold)
        if learn_threshold:
            self.v_threshold = nn.Parameter(th)
        else:
            self.register_buffer("v_threshold", th)
        self.v_reset = float(v_reset)
        self.reset_mode = reset
        self.detach_reset = bool(detach_reset)
        self.surrogate = surrogate if surrogate is not None else ATan()

    def initial_state(self, x_t: Tensor) -> Any:
        return MembraneState(torch.full_like(x_t, self.v_reset))

    def charge_coefficients(self) -> tuple[Tensor, Tensor, Tensor] | None:
        """(a, b, c) with h = a*v + b*x + c for the fused path, or None for the loop."""
        return None

    def fire_params(self) -> FireParams:
        return FireParams(self.v_threshold, self.v_reset, self.reset_mode, self.detach_reset, self.surrogate)

    def run(self, x_seq: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        if state is None:
            state = self.initial_state(x_seq[0])
        coefficients = self.charge_coefficients()
        if coefficients is None:
            return self.run_loop(x_seq, state)
        a, b, c = coefficients
        s_seq, v = LeakyFire.apply(
            x_seq, state.v, a, b, c, self.v_threshold, self.surrogate,
            self.v_reset, self.reset_mode == "subtract", self.detach_reset,
        )
        return s_seq, MembraneState(v)

    def extra_repr(self) -> str:
        return (f"v_threshold={self.v_threshold.item():g}, v_reset={self.v_reset:g}, reset={self.reset_mode}, "
                f"detach_reset={self.detach_reset}, surrogate={self.surrogate}, step_mode={self.step_mode}")


def reset_states(module: nn.Module) -> None:
    """Reset every neuron inside `module` (start of a new sequence)."""
    for m in module.modules():
        if isinstance(m, Neuron):
            m.reset()


def end_sequences(module: nn.Module) -> None:
    """Tell every neuron inside `module` that the single-step sequence is over (`Neuron.end_sequence`)."""
    for m in module.modules():
        if isinstance(m, Neuron):
            m.end_sequence()


def set_step_mode(module: nn.Module, step_mode: str) -> None:
    """Put every neuron inside `module` into single-step ("s") or multi-step ("m") mode."""
    check(step_mode in STEP_MODES, "model.step_mode", step_mode, f"choose one of {list(STEP_MODES)}")
    for m in module.modules():
        if isinstance(m, Neuron):
            m.step_mode = step_mode
            m.reset()
