"""Parts that go wrong on purpose, for the reliability tests: chosen with `dataset._target_=` / `learner._target_=`."""
from __future__ import annotations

import torch

from snnexp.data.digits import DigitsData
from snnexp.learners.bptt import BPTT


class DigitsWithBadPixels(DigitsData):
    """scikit-learn's digits with one pixel of one image in 7 set to NaN (`bad=not_a_number`) or inf
    (`bad=infinite`): words, since the command line would read `nan` as a number (and refuse it)."""

    def __init__(self, bad: str = "not_a_number", **kwargs):
        super().__init__(**kwargs)
        self.bad = {"not_a_number": float("nan"), "infinite": float("inf")}[bad]

    def load(self):
        data = super().load()
        x, y = data["train"]
        x = x.copy()
        x[::7, 0, 3, 3] = self.bad  # one image in 7: the first training batch holds some
        return {"train": (x, y)}


class BPTTWithNaNLoss(BPTT):
    """BPTT whose loss turns NaN from global step `nan_from_step` on (as a diverging run's would)."""

    def __init__(self, *args, nan_from_step: int = 2, **kwargs):
        super().__init__(*args, **kwargs)
        self.nan_from_step = nan_from_step

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = super().loss(out, y)
        if self.training and self.global_step >= self.nan_from_step:
            loss = loss * torch.tensor(float("nan"))
        return loss

