"""A requeued scheduler job recognises its own run dir (snnexp.slurm.requeued_into), and nothing else."""
import csv

import pytest

from snnexp.slurm import JOB_KEY, KEPT_METRICS, Requeued, current_job, requeued_into, set_aside_metrics
from snnexp.status import write_results


@pytest.fixture
def no_job(monkeypatch):
    for name in ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_RESTART_COUNT",
                 "SUBMITIT_EXECUTOR", "SUBMITIT_LOCAL_JOB_ID"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def run_dir_of(tmp_path, job, status="interrupted", checkpoint=True, **extra):
    write_results(tmp_path / "results.json", {"status": status, JOB_KEY: job, **extra})
    if checkpoint:
        (tmp_path / "checkpoints").mkdir()
        (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"ckpt")
    return tmp_path


def test_a_requeued_slurm_job_finds_its_own_dir_and_checkpoint(tmp_path, no_job):
    run_dir = run_dir_of(tmp_path, "slurm:42", requeued=1)
    assert requeued_into(run_dir) is None  # not in a job
    no_job.setenv("SLURM_JOB_ID", "42")
    assert current_job() == "slurm:42"
    assert requeued_into(run_dir) is None  # restart count 0: the same command rerun by hand in its allocation
    no_job.setenv("SLURM_RESTART_COUNT", "2")
    assert requeued_into(run_dir) == Requeued(run_dir / "checkpoints" / "last.ckpt", attempt=2)
    no_job.setenv("SLURM_JOB_ID", "43")
    assert requeued_into(run_dir) is None  # another job's dir is never taken over


def test_an_array_task_is_named_as_scancel_takes_it(no_job):
    no_job.setenv("SLURM_JOB_ID", "17")  # a sweep's job 0: array 16, task 0; `scancel 17` is refused
    no_job.setenv("SLURM_ARRAY_JOB_ID", "16")
    no_job.setenv("SLURM_ARRAY_TASK_ID", "0")
    assert current_job() == "slurm:16_0"


def test_a_finished_run_is_never_reentered(tmp_path, no_job):
    no_job.setenv("SLURM_JOB_ID", "42")
    no_job.setenv("SLURM_RESTART_COUNT", "1")
    assert requeued_into(run_dir_of(tmp_path, "slurm:42", status="done")) is None


def test_a_job_stopped_before_its_first_epoch_starts_over_in_its_dir(tmp_path, no_job):
    no_job.setenv("SUBMITIT_EXECUTOR", "local")
    no_job.setenv("SUBMITIT_LOCAL_JOB_ID", "777")
    run_dir = run_dir_of(tmp_path, "local:777", status="started", checkpoint=False)
    assert requeued_into(run_dir) == Requeued(None, attempt=1)  # the local executor has no restart count
    assert requeued_into(tmp_path / "elsewhere") is None


def write_rows(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["epoch", "train/loss"])
        writer.writeheader()
        writer.writerows({"epoch": e, "train/loss": loss} for e, loss in rows)


def test_the_attempts_metrics_are_set_aside_and_merged_in_order(tmp_path):
    write_rows(tmp_path / "metrics.csv", [(0, 1.0), (1, 0.9), (2, 0.8)])  # attempt 1, cut short in epoch 2
    kept = set_aside_metrics(tmp_path)
    assert kept == tmp_path / KEPT_METRICS and not (tmp_path / "metrics.csv").exists()
    write_rows(tmp_path / "metrics.csv", [(2, 0.7), (3, 0.6)])  # attempt 2 resumed at epoch 2, cut short in 3
    set_aside_metrics(tmp_path)
    with open(kept, newline="") as f:
        assert [(r["epoch"], r["train/loss"]) for r in csv.DictReader(f)] == [
            ("0", "1.0"), ("1", "0.9"), ("2", "0.7"), ("3", "0.6")]
