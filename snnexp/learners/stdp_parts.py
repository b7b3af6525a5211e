"""The STDP learner's helpers: teacher spikes, each neuron's best sample, the readout, the weight plot."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from snnexp.learners.plastic import Plastic
from snnexp.models.readouts import AssignedReadout
from snnexp.viz.weights import plot_weights


def teacher_spikes(y: Tensor, T: int, n_out: int, num_classes: int, spikes: int) -> Tensor:
    """Teacher post spikes [T, N, n_out]: the neurons of class y (neuron j is class j // (n_out/K))
    fire `spikes` times, evenly spaced over the T steps; all others stay silent."""
    per_class = n_out // num_classes
    times = torch.unique((torch.arange(min(spikes, T)) * T) // min(spikes, T))  # [k] steps
    target = (torch.arange(n_out, device=y.device) // per_class).unsqueeze(0) == y.unsqueeze(1)  # [N, n_out]
    out = torch.zeros(T, len(y), n_out, device=y.device)
    out[times.to(y.device)] = target.to(out.dtype)
    return out


def best_sample_mask(post_seq: Tensor) -> Tensor:
    """[1, N, C, 1...] mask: 1 for the sample in which each post neuron (channel) fired most, else 0.

    With it, a neuron learns from one image per batch, as in one-by-one presentation, where its
    raised threshold and changed weights make it lose the next images; without it, a neuron that
    wins many images of a batch learns their blurred average.
    """
    counts = post_seq.sum(0)  # [T, N, C, ...] -> [N, C, ...]
    counts = counts.flatten(2).sum(2) if counts.dim() > 2 else counts  # conv: per channel -> [N, C]
    best = counts.argmax(0)  # [C]
    mask = torch.zeros_like(counts).scatter_(0, best.unsqueeze(0), 1.0)  # [N, C]
    return mask.view(1, *mask.shape, *([1] * (post_seq.dim() - 3)))


def readout_of(model: torch.nn.Module) -> AssignedReadout | None:
    return next((m for m in model.modules() if isinstance(m, AssignedReadout)), None)


def weight_plot(model: torch.nn.Module, layer: Plastic, run_dir: Path, num_classes: int,
                readout: AssignedReadout | None = None) -> Path:
    """plots/weights.png for the first plastic layer, each tile titled with its class when known."""
    w = layer.weight.detach().cpu()
    labels = None
    if readout is not None:
        labels = [str(int(c)) if c >= 0 else "-" for c in readout.assignments.cpu()]
    elif layer.is_output:
        per_class = w.shape[0] // num_classes
        labels = [str(j // per_class) for j in range(w.shape[0])]
    in_shape = getattr(model, "in_shape", None)
    return plot_weights(w, run_dir / "plots" / "weights.png", in_shape=in_shape, labels=labels)
