"""`learner.memory`: how much of the unrolled time axis a gradient learner keeps for its backward.

- full: every step's activations until the backward (memory grows with T).
- checkpoint: the layers' states every k steps; each segment is run again in the backward
  (`checkpoint.py`). Exact gradients for about one more forward pass; memory ~ T/k + k steps.
- tbptt: truncated BPTT: windows of k steps, a backward per window, the state carried into the next
  window detached (`windows.py`). Memory ~ k steps; no gradient crosses a window boundary.
- online: SLTT (Meng et al., ICCV 2023), the window of one step: memory independent of T.

k (`learner.memory_steps`) defaults to round(sqrt(T)) for checkpoint (it balances the T/k stored
states against the k steps of one recomputed segment) and for tbptt.
"""
from __future__ import annotations

import math

from snnexp.errors import check
from snnexp.models.base import SpikingModel
from snnexp.network import Role

MODES = ("full", "checkpoint", "online", "tbptt")
WINDOWED = ("online", "tbptt")  # a backward per window: the learner steps its optimizer itself
KEY = "learner.memory"


def check_mode(mode: str, steps: int | None) -> None:
    """Refuse an unknown mode or a k that is not a positive number of steps."""
    check(mode in MODES, KEY, mode, f"choose one of {list(MODES)}")
    check(steps is None or int(steps) >= 1, "learner.memory_steps", steps, "must be null (about sqrt(T)) or >= 1 steps")


def segment_length(mode: str, steps: int | None, T: int) -> int:
    """Steps per segment (checkpoint) or window (tbptt, online: 1) for a sequence of T steps."""
    if mode == "online":
        return 1
    return int(steps) if steps is not None else max(1, round(math.sqrt(T)))


def check_model(mode: str, model: SpikingModel) -> None:
    """Refuse, before training, a model `mode` cannot train as it claims.

    checkpoint promises full BPTT's gradients. A multi-step model with BatchNorm normalises each
    layer over all T*N frames in training, so every step depends on every other: a segment cannot
    be recomputed alone (the same net in single-step mode normalises per step and checkpoints exactly).
    tbptt and online change the gradient anyway; there a multi-step BatchNorm uses each window's frames.
    """
    if mode != "checkpoint" or model.step_mode != "m":
        return
    norms = [n.name for n in model.network().with_role(Role.NORM)]
    check(not norms, KEY, mode, f"model.step_mode=m with BatchNorm ({', '.join(norms[:3])}"
          f"{', ...' if len(norms) > 3 else ''}) normalises over all T time steps at once, so a segment of steps "
          f"cannot be recomputed alone and the gradients would not be BPTT's: set model.step_mode=s (statistics "
          f"per step), or use learner.memory=tbptt|online")
