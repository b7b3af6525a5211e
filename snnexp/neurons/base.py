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
`charge_coefficients() = (a, b, c)` with h = a*v + b*x + c, read off their step
function's own charge (`affine_coefficients`), so the dynamics are written once.
For those, both modes run `snnexp.neurons.fused.leaky_fire`: all the steps of a
call in one autograd Function with a hand-written backward and no autograd graph
per step (the per-step loop is the hot path). It runs a C++ kernel on the CPU,
Triton on CUDA, or plain torch ops (see `snnexp/neurons/fused/`); tests check
each against the loop of step functions. Nothing here reads a tensor back to the
host, so a CUDA step never waits for the device.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator, NamedTuple, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from snnexp.errors import check
from snnexp.neurons.fused import LeakySpec, leaky_fire
from snnexp.neurons.fused.dispatch import max_pool_steps
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


def affine_coefficients(charge: Callable[[Tensor, Tensor], Tensor], like: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(a, b, c) with charge(v, x) = a*v + b*x + c, read off an affine charge function.

    The fused path runs on these, so a neuron's dynamics stay written once, in its step
    function's charge. 0-dim tensors of `like`'s dtype and device, differentiable in whatever
    the charge depends on (PLIF's learnt tau); nothing is read back to the host.
    """
    zero, one = like.new_zeros(()), like.new_ones(())
    c = charge(zero, zero)
    return charge(one, zero) - c, charge(zero, one) - c, c


@runtime_checkable
class Homeostatic(Protocol):
    """A neuron that learns across samples from its activity (ALIF's persistent threshold)."""

    def homeostasis(self, state: Any, steps: int) -> None:
        """Book a finished sequence of `steps` steps ending in `state` (no-op outside training)."""


class Stepped(nn.Module):
    """A layer that runs over time itself: [T, N, ...] at once ("m") or one [N, ...] step per call ("s").

    Neurons and the network blocks with state or neurons inside (`snnexp.network.blocks`) are
    Stepped; `set_step_mode`, `reset_states` and `end_sequences` reach every one in a model, and
    a model hands them x with its time axis instead of folding time into the batch.
    """

    def __init__(self, step_mode: str = "m"):
        super().__init__()
        check(step_mode in STEP_MODES, "neuron.step_mode", step_mode, f"choose one of {list(STEP_MODES)}")
        self.step_mode = step_mode
        self.continues = False  # multi-step: go on from the carried state, keep the last (`continuing`)

    def carried_state(self) -> Any:
        """The state the next step would start from (None: rest); `carry_state` puts one back. A
        learner that cuts the time axis into segments (snnexp.learners.memory) moves it between them."""
        return None

    def carry_state(self, state: Any) -> None:
        """Continue from `state` (one `carried_state` returned; None: from rest)."""

    def reset(self) -> None:
        """Forget the single-step state (models call this at the start of each sequence)."""

    def end_sequence(self) -> None:
        """Single-step mode: the sequence that began at the last `reset()` is over (models call this
        after their last step). Neurons that learn across samples (ALIF's homeostasis) book it here,
        while the module is still in the mode (train/eval) the sequence ran in."""


class Neuron(Stepped):
    """A stateful layer run over time: the two step modes and the reference time loop.

    Subclasses implement `step(x_t, state) -> (out_t, state)` (calling their
    pure step function) and `initial_state(x_t)`.
    """

    def __init__(self, step_mode: str = "m"):
        super().__init__(step_mode)
        self.state: Any = None

    def initial_state(self, x_t: Tensor) -> Any:
        raise NotImplementedError

    def step(self, x_t: Tensor, state: Any) -> tuple[Tensor, Any]:
        raise NotImplementedError

    def reset(self) -> None:
        """Forget the single-step state (models call this at the start of each sequence)."""
        self.state = None

    def carried_state(self) -> Any:
        return self.state

    def carry_state(self, state: Any) -> None:
        self.state = state

    def forward(self, x: Tensor) -> Tensor:
        if self.step_mode == "s":
            if self.state is None:
                self.state = self.initial_state(x)
            out, self.state = self.run_step(x, self.state)
            return out
        if self.continues:  # a segment of a longer sequence: start where the last one ended
            out, self.state = self.run(x, self.state)
            return out
        return self.run(x)[0]

    def run_step(self, x_t: Tensor, state: Any) -> tuple[Tensor, Any]:
        """Single-step: [N, ...] -> ([N, ...], state); the step function unless a subclass fuses it."""
        return self.step(x_t, state)

    def forward_pooled(self, x: Tensor, k: int) -> Tensor:
        """forward(x) max-pooled per step over k x k windows (stride k, floor mode): x [T, N, C, H, W] in
        "m", [N, C, H, W] in "s". SpikingNeuron fuses the pool into the neuron; it then runs no
        forward hooks, so a model calls this only where the neuron and the pool have none."""
        return max_pool_steps(self(x), k, has_time=self.step_mode == "m")

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

    IF-like subclasses also implement `charge_coefficients()`; `run` and `run_step` then use
    the fused `leaky_fire` instead of the step function. `step(x_t, state, select=None)` passes
    `select` to `fire_and_reset` (lateral inhibition's k-WTA; the step-function loop is used then).
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
        self._sequence_coefficients: tuple[Tensor, Tensor, Tensor] | None = None  # see run_step

    def initial_state(self, x_t: Tensor) -> Any:
        return MembraneState(torch.full_like(x_t, self.v_reset))

    def charge_coefficients(self) -> tuple[Tensor, Tensor, Tensor] | None:
        """(a, b, c) with h = a*v + b*x + c for the fused path, or None for the loop."""
        return None

    def fire_params(self) -> FireParams:
        return FireParams(self.v_threshold, self.v_reset, self.reset_mode, self.detach_reset, self.surrogate)

    def leaky_spec(self) -> LeakySpec:
        return LeakySpec(self.v_reset, self.reset_mode == "subtract", self.detach_reset, self.surrogate)

    def run(self, x_seq: Tensor, state: Any = None, pool: int = 0) -> tuple[Tensor, Any]:
        """pool > 0: the spikes come back max-pooled over pool x pool windows (`forward_pooled`)."""
        if state is None:
            state = self.initial_state(x_seq[0])
        coefficients = self.charge_coefficients()
        if coefficients is None:
            s_seq, state = self.run_loop(x_seq, state)
            return (max_pool_steps(s_seq, pool, has_time=True) if pool else s_seq), state
        s_seq, v = leaky_fire(x_seq, state.v, *coefficients, self.v_threshold, self.leaky_spec(), has_time=True,
                              pool=pool)
        return s_seq, MembraneState(v)

    def run_step(self, x_t: Tensor, state: Any, pool: int = 0) -> tuple[Tensor, Any]:
        """One step; the module's own single-step state (`self.state`) may be updated in place.

        Over one sequence of the module's own state, coefficients that need no gradient (fixed
        tau and threshold) are computed at its first step only; `reset()` and `.to()` forget them.
        pool > 0: the spikes come back max-pooled over pool x pool windows (`forward_pooled`).
        """
        own = state is self.state
        coefficients = self._sequence_coefficients if own else None
        if coefficients is None:
            coefficients = self.charge_coefficients()
            if coefficients is None:
                s, state = self.step(x_t, state)
                return (max_pool_steps(s, pool, has_time=False) if pool else s), state
            if own and not any(c.requires_grad for c in coefficients):
                self._sequence_coefficients = coefficients
        s, v = leaky_fire(x_t, state.v, *coefficients, self.v_threshold, self.leaky_spec(), has_time=False,
                          in_place=own, pool=pool)
        return s, MembraneState(v)

    def forward_pooled(self, x: Tensor, k: int) -> Tensor:
        if type(self).charge_coefficients is SpikingNeuron.charge_coefficients:  # no fused path (ALIF, CUBA)
            return super().forward_pooled(x, k)
        if self.step_mode == "s":
            if self.state is None:
                self.state = self.initial_state(x)
            out, self.state = self.run_step(x, self.state, pool=k)
            return out
        if self.continues:
            out, self.state = self.run(x, self.state, pool=k)
            return out
        return self.run(x, pool=k)[0]

    def reset(self) -> None:
        self._sequence_coefficients = None
        super().reset()

    def _apply(self, fn, *args, **kwargs):  # .to(), .double(), .cuda(): the coefficients must follow
        self._sequence_coefficients = None
        return super()._apply(fn, *args, **kwargs)

    def extra_repr(self) -> str:
        return (f"v_threshold={self.v_threshold.item():g}, v_reset={self.v_reset:g}, reset={self.reset_mode}, "
                f"detach_reset={self.detach_reset}, surrogate={self.surrogate}, step_mode={self.step_mode}")


def reset_states(module: nn.Module) -> None:
    """Reset every neuron and block inside `module` (start of a new sequence)."""
    for m in module.modules():
        if isinstance(m, Stepped):
            m.reset()


@contextmanager
def continuing(module: nn.Module) -> Iterator[None]:
    """Within: every multi-step layer inside `module` starts from its carried state (`carry_state`;
    None: rest) and keeps its last one, so consecutive calls run one sequence in segments."""
    stepped = [m for m in module.modules() if isinstance(m, Stepped)]
    for m in stepped:
        m.continues = True
    try:
        yield
    finally:
        for m in stepped:
            m.continues = False


def carried_states(module: nn.Module) -> list[Any]:
    """The carried state of every Stepped layer inside `module`, in `modules()` order."""
    return [m.carried_state() for m in module.modules() if isinstance(m, Stepped)]


def carry_states(module: nn.Module, states: list[Any]) -> None:
    """Put back what `carried_states` returned (same module)."""
    stepped = [m for m in module.modules() if isinstance(m, Stepped)]
    check(len(stepped) == len(states), "states", len(states), f"one per Stepped layer ({len(stepped)})")
    for m, state in zip(stepped, states):
        m.carry_state(state)


def end_sequences(module: nn.Module) -> None:
    """Tell every neuron inside `module` that the single-step sequence is over (`Stepped.end_sequence`)."""
    for m in module.modules():
        if isinstance(m, Stepped):
            m.end_sequence()


def set_step_mode(module: nn.Module, step_mode: str) -> None:
    """Put every neuron and block inside `module` into single-step ("s") or multi-step ("m") mode."""
    check(step_mode in STEP_MODES, "model.step_mode", step_mode, f"choose one of {list(STEP_MODES)}")
    for m in module.modules():
        if isinstance(m, Stepped):
            m.step_mode = step_mode
            m.reset()
