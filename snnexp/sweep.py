"""Sweeps: a failing job must not lose the others' results, and the failures are listed at the end."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from snnexp.status import failure, read_results

log = logging.getLogger(__name__)


def failed_jobs(sweep_dir: Path) -> list[tuple[Path, str]]:
    """(run dir, why) of every job under `sweep_dir` that did not succeed: its results.json records
    an error, is unreadable, or still says `started` (the job was killed before it could finish)."""
    failures = []
    for path in sorted(sweep_dir.glob("**/results.json")):
        why = failure(read_results(path))
        if why:
            failures.append((path.parent, why))
    return failures


class FailureReport(Callback):
    """Hydra callback: after a multirun, list the jobs that failed (their results.json says why).

    run.py exits non-zero when this found failures, after every job has run. When the launcher itself
    dies (joblib's worker or a SLURM job killed by the OS: Hydra then skips on_multirun_end), run.py
    calls `report_unfinished`, so the jobs that never finished are listed all the same.
    """

    failures: list[tuple[Path, str]] = []
    sweep_dir: Path | None = None  # set while a multirun is under way

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        FailureReport.sweep_dir = Path(config.hydra.sweep.dir)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        FailureReport.sweep_dir = None
        FailureReport.report(Path(config.hydra.sweep.dir))

    @staticmethod
    def report(sweep_dir: Path) -> None:
        FailureReport.failures = failed_jobs(sweep_dir)
        if FailureReport.failures:
            lines = [f"{len(FailureReport.failures)} job(s) of the sweep in {sweep_dir} failed:"]
            lines += [f"  {run_dir}: {error}" for run_dir, error in FailureReport.failures]
            log.error("\n".join(lines))

    @staticmethod
    def report_unfinished() -> None:
        """After a multirun that stopped before its end: the report, from what the jobs left."""
        if FailureReport.sweep_dir is not None:
            FailureReport.report(FailureReport.sweep_dir)
            FailureReport.sweep_dir = None
