"""Truncated BPTT over windows of k steps, and online training (SLTT: the window of one step).

Each window runs from the state the last one ended in, detached (`SpikingModel.run_segment`), and
its share of the loss is backpropagated at once, so only one window's activations are ever held.

The loss must split over windows: a window of k of T steps contributes `loss(out_window) * k / T`,
the learner's own loss of that window's outputs. For loss=tet (a mean of per-step losses) the sum
over windows is the full loss exactly; for ce and mse of the time-averaged output it is the
k/T-weighted mean of the windows' losses (online: of each step's output, a per-step loss as SLTT
trains with).

What the gradient approximates. Full BPTT's gradient of a step's loss reaches the weights along the
layers at that step (the spatial path) and back through earlier steps' membranes and recurrent spikes
(the temporal path). tbptt keeps the temporal path inside a window and cuts it at the boundaries.
online keeps the spatial path only (SLTT, Meng et al., ICCV 2023): the membrane is detached after
every step, so a step's loss updates the weights through that step's layers alone. Meng et al. argue
that with LIF neurons and surrogate gradients the temporal terms (products of per-step decays and
surrogate slopes) contribute little to the gradient, so it keeps the descent direction, at memory
independent of T. We chose SLTT over OTTT (Xiao et al., NeurIPS 2022), whose presynaptic traces give
a similar approximation, because SLTT needs nothing from a layer but its forward: it applies to every
backbone here (BatchNorm, residual joins, attention, recurrent feedback), where OTTT needs a
trace-based weight gradient per synapse type.
"""
from __future__ import annotations

from typing import Callable

from torch import Tensor
from torch.utils._pytree import tree_map

from snnexp.models.base import SpikingModel
from snnexp.neurons.base import carried_states, carry_states, end_sequences, reset_states

LossFn = Callable[[Tensor], Tensor]  # out_window [k, N, K] -> the learner's loss of it (a scalar)
Backward = Callable[[Tensor], None]


def train_windows(model: SpikingModel, x_seq: Tensor, k: int, loss_fn: LossFn,
                  backward: Backward) -> tuple[Tensor, Tensor]:
    """Run x_seq [T, N, ...] in windows of k steps with a backward per window (gradients accumulate).

    Returns (out_seq [T, N, K] detached, the summed loss detached).
    """
    T = x_seq.shape[0]
    reset_states(model.net)
    out_seq: Tensor | None = None
    total = x_seq.new_zeros(())
    for start in range(0, T, k):
        out = model.run_segment(x_seq[start:start + k])
        loss = loss_fn(out) * (out.shape[0] / T)
        backward(loss)
        if out_seq is None:  # one buffer: T small tensors kept between the windows' large ones fragment the heap
            out_seq = out.new_empty(T, *out.shape[1:])
        out_seq[start:start + k] = out.detach()
        total += loss.detach()
        # the next window starts from these states, without a path back into this one
        carry_states(model.net, tree_map(_detached, carried_states(model.net)))
    if model.step_mode == "s":
        end_sequences(model.net)
    return out_seq, total


def _detached(x):
    # clone: a fused kernel may write the next state over it in place, and this window's graph is freed
    return x.detach().clone() if isinstance(x, Tensor) else x
