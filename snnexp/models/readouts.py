"""Readouts whose class mapping is set after training: label assignment (Diehl & Cook 2015)."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from snnexp.errors import check
from snnexp.network import LayerKind, Role, register

PREDICTIONS = ("all_activity", "proportion")


def assign_labels(counts: Tensor, labels: Tensor, num_classes: int) -> tuple[Tensor, Tensor]:
    """Label each neuron with the class it responds to most.

    counts [M, n]: spike counts of n neurons for M samples; labels [M]. Returns
    (assignments [n] (long), proportions [n, K]): the mean response of each neuron to each class,
    normalised over classes (Diehl & Cook's "proportion weighting"). Classes absent from the
    samples get rate 0; neurons that never fired get no class (-1) and zero proportions.
    """
    onehot = torch.nn.functional.one_hot(labels, num_classes).to(counts.dtype)  # [M, K]
    per_class = onehot.T @ counts / onehot.sum(0).clamp(min=1).unsqueeze(1)  # [K, n] mean response
    rates = per_class.T  # [n, K]
    proportions = rates / rates.sum(1, keepdim=True).clamp(min=1e-12)
    return torch.where(rates.sum(1) > 0, rates.argmax(1), -1), proportions


class AssignedReadout(nn.Module):
    """Spikes of n labelled neurons -> class scores: [..., n] -> [..., K].

    "all_activity": the mean activity of the neurons assigned to each class (Diehl & Cook);
    "proportion": every neuron votes for every class with its proportion of responses.
    Before `assign` is called no neuron has a class and every score is 0.
    """

    def __init__(self, n: int, num_classes: int, prediction: str = "all_activity"):
        super().__init__()
        check(prediction in PREDICTIONS, "model.prediction", prediction, f"choose one of {list(PREDICTIONS)}")
        self.prediction = prediction
        self.num_classes = int(num_classes)
        self.register_buffer("assignments", torch.full((int(n),), -1, dtype=torch.long))
        self.register_buffer("proportions", torch.zeros(int(n), self.num_classes))

    @torch.no_grad()
    def assign(self, counts: Tensor, labels: Tensor) -> None:
        """Label the neurons from spike counts [M, n] of labelled samples [M]."""
        assignments, proportions = assign_labels(counts.float(), labels, self.num_classes)
        self.assignments.copy_(assignments)
        self.proportions.copy_(proportions)

    def matrix(self) -> Tensor:
        """[n, K] weights from neurons to class scores."""
        if self.prediction == "proportion":
            return self.proportions
        onehot = (self.assignments.unsqueeze(1) == torch.arange(self.num_classes, device=self.assignments.device))
        onehot = onehot.to(self.proportions.dtype)  # [n, K]; unassigned neurons (-1) match nothing
        return onehot / onehot.sum(0, keepdim=True).clamp(min=1)

    def forward(self, s: Tensor) -> Tensor:
        return s @ self.matrix().to(s.dtype)

    def extra_repr(self) -> str:
        return f"n={self.assignments.numel()}, num_classes={self.num_classes}, prediction={self.prediction}"


@register(AssignedReadout)
class AssignedReadoutKind(LayerKind):
    """A fixed map from labelled neurons' spikes to class scores (set after training, not learnt)."""

    role = Role.SCALE
    name = "readout"
    homogeneous = True
