"""Accuracy and synaptic operations of a converted SNN after every time step, from one run per batch.

A neuron's first t steps do not depend on what comes later, so one run of T_max steps answers
every T <= T_max: the prediction at T = t is the class with the largest output summed over the
first t steps, and the SynOps of a T = t run are those counted up to step t.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from snnexp.metrics.activity import ActivityMonitor
from snnexp.network import Layered
from snnexp.neurons.base import reset_states


class OverTime:
    """Accumulates, for one SNN (an nn.Sequential in single-step mode, or a SpikingModel holding
    one in .net), correct predictions and SynOps after each of its first `steps` steps;
    `compute(Ts)` gives {T: (accuracy, SynOps per sample)}.

    Use as a context manager around the test batches (it hooks the SNN's layers like
    `ActivityMonitor`, whose firing rates it also keeps: `monitor.compute()`).
    """

    def __init__(self, model: nn.Module, steps: int):
        self.net = model.net if isinstance(model, Layered) else model  # stepped one time step at a time
        self.steps = int(steps)
        self.monitor = ActivityMonitor(model)  # a SpikingModel names its layers (if1, if4, ...)
        self.correct = torch.zeros(self.steps, dtype=torch.float64)
        self.synops = torch.zeros(self.steps, dtype=torch.float64)  # cumulative, all samples
        self.samples = 0

    def __enter__(self) -> "OverTime":
        self.monitor.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.monitor.__exit__()

    @torch.no_grad()
    def update(self, x_seq: Tensor, y: Tensor) -> None:
        """One batch: x_seq [>= steps, N, ...] (its first `steps` steps are used), y [N]."""
        reset_states(self.net)
        start = self.monitor.synops
        total = None
        correct, synops = [], []
        for x_t in x_seq[: self.steps]:
            out_t = self.net(x_t)  # [N, K]
            total = out_t if total is None else total + out_t
            correct.append((total.argmax(-1) == y).sum())  # ties go to the lower class index
            synops.append(torch.as_tensor(self.monitor.synops - start, dtype=torch.float64))
        self.correct += torch.stack(correct).double().cpu()  # one host read per batch, not per step
        self.synops += torch.stack(synops).cpu()
        self.samples += len(y)
        self.monitor.add_samples(len(y))

    def compute(self, Ts: list[int]) -> dict[int, tuple[float, float]]:
        """{T: (accuracy, SynOps per sample)} for every T <= steps in Ts."""
        n = max(self.samples, 1)
        return {t: (float(self.correct[t - 1]) / n, float(self.synops[t - 1]) / n) for t in Ts if t <= self.steps}
