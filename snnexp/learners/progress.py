"""What an unsupervised STDP network learns as it trains: accuracy against images seen, winners, theta.

For models read out by label assignment (diehl_cook). During training, `Progress` counts, per
neuron, the training images it won (fired most for, at least one spike). Every `every` training
images (and once at the end of training) the learner labels its neurons from `samples` training
images and classifies `samples` images of the validation split (plasticity and homeostasis off);
`Progress.record` then keeps one row: images seen, that validation accuracy, how many neurons ever
won and won since the last row, and theta's quantiles. The rows go to the loggers (metrics.csv,
with step = images seen, and `progress/*` keys), to results.json (`stdp/progress`) and to
plots/progress.png; plots/neurons.png shows, per neuron, its wins and its theta at the end.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from snnexp.viz.progress import plot_neurons, plot_progress

QUANTILES = (0.1, 0.5, 0.9)


class Progress:
    """Wins per neuron and the recorded rows (see the module docstring)."""

    def __init__(self, n_neurons: int, every: int | None, samples: int):
        self.every, self.samples = every, int(samples)
        self.wins = torch.zeros(int(n_neurons), dtype=torch.long)
        self._wins_at_last_row = torch.zeros_like(self.wins)
        self.seen = 0  # training images so far
        self._next = every
        self.rows: list[dict[str, float]] = []

    def note_training(self, counts: Tensor) -> None:
        """counts [N, n]: one training batch's spikes per sample and neuron."""
        self.seen += counts.shape[0]
        fired = counts.sum(1) > 0  # [N] samples that made any neuron fire
        winners = counts.argmax(1)[fired].cpu()
        self.wins += torch.bincount(winners, minlength=self.wins.numel())

    def due(self) -> bool:
        """Whether `every` more images went by since the last row."""
        if self._next is None or self.seen < self._next:
            return False
        while self._next <= self.seen:
            self._next += self.every
        return True

    def record(self, val_acc: float, theta: Tensor | None) -> dict[str, float]:
        """Keep (and return) the row for now: val_acc, winners, theta [n] quantiles."""
        row = {"images": float(self.seen), "val_acc": float(val_acc),
               "winners_ever": float((self.wins > 0).sum()),
               "winners_recent": float(((self.wins - self._wins_at_last_row) > 0).sum())}
        self._wins_at_last_row = self.wins.clone()
        if theta is not None:
            q = torch.quantile(theta.detach().float().cpu(), torch.tensor(QUANTILES))
            row.update({f"theta_p{int(p * 100)}": float(v) for p, v in zip(QUANTILES, q)})
            row["theta_max"] = float(theta.max())
        self.rows.append(row)
        return row

    def results(self) -> dict[str, Any]:
        out = {"stdp/progress": self.rows, "stdp/winners_ever": int((self.wins > 0).sum()),
               "stdp/wins_max": int(self.wins.max()) if self.wins.numel() else 0}
        if self.rows:  # the last row's validation accuracy: what a sweep over STDP settings maximises
            out["stdp/val_acc"] = self.rows[-1]["val_acc"]
        return out

    def plots(self, run_dir: Path, theta: Tensor | None) -> list[Path]:
        plots = run_dir / "plots"
        out = [plot_neurons(self.wins, None if theta is None else theta.detach().cpu(), plots / "neurons.png")]
        if self.rows:
            out.append(plot_progress(self.rows, plots / "progress.png"))
        return out
