"""The interface every encoder (the `encoding` group) declares: the datamodules and learners read
these class attributes, never probe an encoder for what it has.

An encoder is called on a batch, `encoder(x [N, ...], generator) -> [T, N, ...]` (spikes or
currents, time-first), and has `T`. Besides:
- `input_range`: the intensities it needs ((0, 1) for rate and latency codes, which
  dataset.normalize=true would break); None: any real value (direct coding).
- `converts`: what it converts once per dataset, before training, instead of per batch:
  None (per batch only); "images" (event-camera emulation of still images: `convert(images)` and
  `out_shape(in_shape)`; the datamodule keeps it and hands the learner a TimeFirst); "events"
  (recorded events into frames: `frame(events, sensor_size)` and `out_shape(in_shape)`).
- `rate_coded`: `max_rate` sets its spikes per step, so a learner may re-show a sample at a
  higher rate (STDP's learner.min_spikes).
"""
from __future__ import annotations

from typing import ClassVar, Literal

import torch
from torch import Tensor


class Encoder:
    input_range: ClassVar[tuple[float, float] | None] = None
    converts: ClassVar[Literal["images", "events"] | None] = None
    rate_coded: ClassVar[bool] = False

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        raise NotImplementedError
