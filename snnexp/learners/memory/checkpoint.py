"""Checkpointing through time: keep the layers' states every k steps, recompute each segment in the backward.

The forward runs the model segment by segment (`SpikingModel.run_segment`), each under
`torch.utils.checkpoint`: a segment's inputs are its k input steps and the states it
starts from, its outputs its k output steps and the states it ends in. Autograd keeps only those;
in the backward each segment is run again from its stored states, the way it first ran (the same
kernels, the fused ones included, which take an initial state anyway; the same dropout draws,
torch restores the RNG), so the gradients are full BPTT's.

Memory: T/k stored states plus one segment's activations, k = sqrt(T) minimising the sum.
Time: one more forward pass, less the last segment's (its activations are kept: its backward runs first). Gradients: full BPTT's to rounding (each segment's backward adds its
terms to `.grad`; full BPTT sums every step's terms first).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.utils._pytree import tree_flatten, tree_unflatten
from torch.utils.checkpoint import checkpoint

from snnexp.models.base import SpikingModel
from snnexp.neurons.base import carried_states, carry_states, end_sequences, reset_states


def run_checkpointed(model: SpikingModel, x_seq: Tensor, k: int) -> Tensor:
    """model(x_seq) [T, N, ...] -> [T, N, K], storing for the backward only every k-th step's states."""
    reset_states(model.net)
    states: list[Tensor] = []
    layout: Any = None  # the tree layout of `states` (None: the first segment starts from rest)
    outputs = []
    # The reentrant form runs the first forward without autograd (nothing saved); the non-reentrant one
    # kept ~half of each step's activations anyway on csnn (BatchNorm on channels-last input, torch 2.13:
    # 691 vs 281 MB at T = 128). Reentrant sends gradients only where an input needs one: `grad_path`
    # makes the first segment's (whose states start at rest) reach the parameters.
    grad_path = torch.zeros((), device=x_seq.device, requires_grad=torch.is_grad_enabled())
    T = x_seq.shape[0]
    for start in range(0, T, k):
        segment = _Segment(model, layout)
        if start + k >= T:  # the last segment keeps its activations: its backward comes first, so recomputing
            out, *states = segment(grad_path, x_seq[start:], *states)  # it would only repeat this forward
        else:
            out, *states = checkpoint(segment, grad_path, x_seq[start:start + k], *states, use_reentrant=True,
                                      preserve_rng_state=True)
        layout = segment.end_layout
        outputs.append(out)
    if model.step_mode == "s":
        end_sequences(model.net)  # as SpikingModel.forward: single-step neurons book the sequence (ALIF)
    return torch.cat(outputs)


class _Segment:
    """One segment as a function of tensors: (x_seg, *start states) -> (out_seg, *end states).

    The layers' states travel flattened (a layer's state is a NamedTuple, a tensor or None). The
    first call is the forward; any later one is the backward's recomputation, which restores the
    model's buffers afterwards, so BatchNorm's running statistics (and any other buffer a forward
    updates) change once per training step, as in full BPTT.
    """

    def __init__(self, model: SpikingModel, layout: Any):
        self.model = model
        self.layout = layout
        self.end_layout: Any = None
        self.ran = False

    def __call__(self, grad_path: Tensor, x_seg: Tensor, *flat: Tensor) -> tuple[Tensor, ...]:
        buffers = [b.detach().clone() for b in self.model.buffers()] if self.ran else None
        self.ran = True
        try:
            # reset first: a neuron caches coefficients computed without autograd (the first forward) per sequence
            reset_states(self.model.net)
            if self.layout is not None:  # clones: a fused kernel may write the next membrane over its state in place
                carry_states(self.model.net, tree_unflatten([t.clone() if isinstance(t, Tensor) else t for t in flat],
                                                            self.layout))
            out = self.model.run_segment(x_seg)
            end, self.end_layout = tree_flatten(carried_states(self.model.net))
            return (out, *end)
        finally:
            if buffers is not None:  # through .data: no autograd version bump (the recomputed graph still
                for b, saved in zip(self.model.buffers(), buffers):  # holds the running statistics)
                    b.data.copy_(saved)
