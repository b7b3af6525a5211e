"""What the spiking learners share: activity metrics on evaluation."""
from __future__ import annotations

from snnexp.metrics.activity import ActivityMonitor


class EncodingAndActivity:
    """Mixin for a `Learner` with `._monitor`: on validation and test, the firing rate of every
    spiking layer and SynOps per sample, logged as `<stage>/rate/<layer>`, `<stage>/rate/mean`,
    `<stage>/synops` (hooks only while evaluating); each evaluation sees the same input spikes."""

    def _start_eval(self) -> None:
        self.reseed_evaluation()  # same encoding every evaluation
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
