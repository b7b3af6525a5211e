"""What the spiking learners share: seeded encoder randomness and activity metrics on evaluation."""
from __future__ import annotations

import torch

from snnexp.metrics.activity import ActivityMonitor


class EncodingAndActivity:
    """Mixin for a LightningModule with `.model`, `.seed`, `._generators` and `._monitor`.

    - `generator(stage)`: the encoder's explicit torch.Generator; training draws from one stream,
      evaluation from another that is re-seeded every evaluation (the same input spikes each time).
    - On validation and test: firing rate of every spiking layer and SynOps per sample, logged as
      `<stage>/rate/<layer>`, `<stage>/rate/mean`, `<stage>/synops` (hooks only while evaluating).
    """

    def generator(self, stage: str) -> torch.Generator:
        key = "train" if stage == "train" else "eval"
        gen = self._generators.get(key)
        if gen is None or gen.device != self.device:
            gen = torch.Generator(device=self.device)
            gen.manual_seed(self.seed if key == "train" else self.seed + 1)
            self._generators[key] = gen
        return gen

    def _start_eval(self) -> None:
        self._generators.pop("eval", None)  # same encoding every evaluation
        self._monitor = ActivityMonitor(self.model).__enter__()

    def _end_eval(self, stage: str) -> None:
        if self._monitor is None:
            return
        for key, value in self._monitor.compute().items():
            self.log(f"{stage}/{key}", value, sync_dist=True)  # mean over DDP processes
        self._monitor.__exit__()
        self._monitor = None

    def on_validation_epoch_start(self) -> None:
        self._start_eval()

    def on_validation_epoch_end(self) -> None:
        self._end_eval("val")

    def on_test_epoch_start(self) -> None:
        self._start_eval()

    def on_test_epoch_end(self) -> None:
        self._end_eval("test")
