"""Frames of events: `encoding=frames` for recorded event datasets, and the per-batch time-first step."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import tonic
import torch
from torch import Tensor

from snnexp.encoding.base import Encoder
from snnexp.errors import check


@dataclass(frozen=True)
class TimeFirst(Encoder):
    """Batches of frame sequences [N, T, ...] -> [T, N, ...] float (the model is time-first).

    Datamodules batch samples first, like every other dataset, so learners, deploy targets and
    plots slice samples on dim 0 unchanged; only this step turns the batch time-first.
    """

    T: int

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        check(x.shape[1] == int(self.T), "T", self.T, f"the data holds {x.shape[1]} frames per sample")
        return x.transpose(0, 1).float()  # [N, T, ...] -> [T, N, ...]


@dataclass(frozen=True)
class Frames(TimeFirst):
    """Recorded events -> frames [T, P, H, W] by tonic.transforms.ToFrame(n_time_bins=T), once per dataset.

    An event datamodule frames (and caches) every sample with `frame`; the learner then calls
    this object on each batch (TimeFirst).
    """

    converts: ClassVar[str] = "events"

    def __post_init__(self):
        check(int(self.T) >= 1, "T", self.T, "must be >= 1 time step")

    def frame(self, events: np.ndarray, sensor_size: tuple[int, int, int]) -> np.ndarray:
        """One sample's int16 frames [T, P, H, W] ([T, P, X] for events without y); no events: zeros."""
        if len(events) == 0:  # ToFrame needs at least one event
            has_y = "y" in events.dtype.names
            shape = (sensor_size[2], sensor_size[1], sensor_size[0]) if has_y else (sensor_size[2], sensor_size[0])
            return np.zeros((int(self.T), *shape), np.int16)
        return tonic.transforms.ToFrame(sensor_size=sensor_size, n_time_bins=int(self.T))(events)

    def out_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(in_shape)  # the sensor's (P, H, W): frames keep it
