"""A scheduler job that is requeued re-enters its own run dir and continues from its own checkpoint.

Requeueing is submitit's (hydra/launcher=slurm, and submitit_local where no slurmd runs): SLURM sends
SIGUSR2 `signal_delay_s` before the time limit; submitit's handler in the job pickles the job's call
(Hydra's launcher, with the same overrides and so the same run dir), runs `scontrol requeue` and
exits. The job starts again with the same job id and SLURM_RESTART_COUNT > 0, composes the same config, and Hydra hands it the same run dir, which already
holds this job's results.json and checkpoints/last.ckpt: `requeued_into` says so, and the run resumes
there instead of starting over. Lightning's SLURMEnvironment auto-requeue is not used: submitit
already owns the job's signal handlers and its requeue, and two mechanisms would requeue twice.

The job is recognised by the id results.json records (`scheduler_job`, written when the run starts):
a dir holding another job's run, or a run that ended `done`, is never taken over.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from snnexp.resume import prepend_metrics
from snnexp.status import DONE, read_results

JOB_KEY = "scheduler_job"  # in results.json: "slurm:<job id>" or "local:<submitit's job id>" (current_job)
KEPT_METRICS = "metrics.requeued.csv"  # the earlier attempts' rows while a requeued job runs


def current_job() -> str | None:
    """The scheduler job this process runs in, as scancel and scontrol take it: `slurm:<SLURM_JOB_ID>`,
    `slurm:<array job id>_<task id>` for an array task (a sweep's jobs; scancel refuses such a task's
    own SLURM_JOB_ID), `local:<id>` under submitit's local executor; None outside one."""
    if os.environ.get("SLURM_ARRAY_JOB_ID") and os.environ.get("SLURM_ARRAY_TASK_ID"):
        return f"slurm:{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ['SLURM_ARRAY_TASK_ID']}"
    if os.environ.get("SLURM_JOB_ID"):
        return f"slurm:{os.environ['SLURM_JOB_ID']}"
    if os.environ.get("SUBMITIT_EXECUTOR") == "local" and os.environ.get("SUBMITIT_LOCAL_JOB_ID"):
        return f"local:{os.environ['SUBMITIT_LOCAL_JOB_ID']}"
    return None


@dataclass(frozen=True)
class Requeued:
    """This process is a requeued job back in its run dir. checkpoint: where to resume from; None when
    it stopped before its first epoch ended (it starts over, in the same dir)."""

    checkpoint: Path | None
    attempt: int  # 1 for the first requeue


def requeued_into(run_dir: Path) -> Requeued | None:
    """Whether this process is the requeue of the job whose unfinished run `run_dir` holds.

    True when results.json there records this very job (`scheduler_job`) and the run is not `done`;
    under SLURM also SLURM_RESTART_COUNT > 0, so rerunning a command by hand inside the same
    allocation (salloc) is not mistaken for a requeue. A run-dir ownership check calls this to let
    a job re-enter its own dir.
    """
    job = current_job()
    results_path = Path(run_dir) / "results.json"
    if job is None or not results_path.is_file():
        return None
    restarts = int(os.environ.get("SLURM_RESTART_COUNT") or 0)
    if job.startswith("slurm:") and restarts == 0:
        return None
    results = read_results(results_path)
    if results.get(JOB_KEY) != job or results.get("status") == DONE:
        return None
    ckpt = Path(run_dir) / "checkpoints" / "last.ckpt"
    return Requeued(ckpt if ckpt.is_file() else None, attempt=int(results.get("requeued", 0)) + 1)


def set_aside_metrics(run_dir: Path) -> Path:
    """Move the earlier attempts' metrics.csv aside (Lightning's CSV logger deletes it); returns where
    it went. After a second requeue the file set aside holds every earlier attempt, in order."""
    current, kept = Path(run_dir) / "metrics.csv", Path(run_dir) / KEPT_METRICS
    if current.is_file():
        if kept.is_file():
            prepend_metrics(kept, current)  # the rows before the last attempt's first epoch, then its rows
        current.replace(kept)
    return kept
