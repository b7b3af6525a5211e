"""Sweeps on a real SLURM cluster (hydra/launcher=slurm), and the same paths with submitit's local executor.

The SLURM tests need a reachable cluster (`scripts/slurm_cluster.sh start`, as root, starts a
single-node one; .ci/run does): without one they are skipped, except on CI (CI=true), where they fail.
The local executor runs everywhere. The runs are tiny (digits, 1 CPU, no logger); the requeue test
needs a job long enough to be mid-training when the time-limit warning comes.
"""
from __future__ import annotations

import csv
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import ROOT, skip_or_fail_on_ci

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("slurm")]

TINY = ["logger=none", "dataset.limit_train=64", "dataset.limit_val=32", "dataset.limit_test=32",
        "trainer.max_epochs=1", "trainer.enable_progress_bar=false", "deploy.num_threads=1"]
# ~0.5 s an epoch here: long enough to be mid-training at the time-limit warning, and ends in a few attempts
SLOW = ["logger=none", "dataset.limit_train=256", "dataset.limit_val=32", "dataset.limit_test=32", "T=16",
        "trainer.enable_progress_bar=false", "deploy.num_threads=1"]
EPOCHS = {"slurm": 120, "submitit_local": 40}  # SLURM's warning may come 45 s into a job
LAUNCHERS = {
    # 1 CPU, no GPU, 1 GB: what the single-node cluster has
    "slurm": ["hydra/launcher=slurm", "hydra.launcher.cpus_per_task=1", "hydra.launcher.gpus_per_node=0",
              "hydra.launcher.mem_gb=1", "hydra.launcher.timeout_min=10"],
    # submitit's local executor: its controller sends the warning signal_delay_s (30 s) before timeout_min
    "submitit_local": ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10"],
}


@functools.cache
def _slurm_problem() -> str | None:
    """Why no SLURM cluster can be used here (None: it can)."""
    if shutil.which("sinfo") is None:
        return "SLURM is not installed (no sinfo): `scripts/slurm_cluster.sh start` (as root) sets up a single-node cluster"
    probe = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30)
    states = probe.stdout.split()
    if probe.returncode != 0 or not any(s.rstrip("*") in ("idle", "mixed", "allocated") for s in states):
        return (f"no SLURM cluster is reachable (sinfo: {(probe.stderr or probe.stdout).strip() or 'no node up'}): "
                f"`scripts/slurm_cluster.sh start` (as root) starts one")
    return None


def require_slurm() -> None:
    """Skips without a cluster, except on CI (CI=true), which must run the SLURM tests: there it fails."""
    skip_or_fail_on_ci("the SLURM tests", _slurm_problem())


@pytest.fixture(params=list(LAUNCHERS))
def launcher(request) -> tuple[str, list[str]]:
    if request.param == "slurm":
        require_slurm()
    return request.param, LAUNCHERS[request.param]


def start_sweep(args: list[str], sweep_dir: Path) -> subprocess.Popen:
    # the jobs inherit the environment and this cwd, so they run this checkout's code in this venv
    return subprocess.Popen([sys.executable, str(ROOT / "run.py"), "-m", f"hydra.sweep.dir={sweep_dir}", *args],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


def results(run_dir: Path) -> dict:
    path = run_dir / "results.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def wait_until(condition, proc: subprocess.Popen, seconds: float, what: str, tick=None) -> None:
    deadline = time.time() + seconds
    while not condition():
        if proc.poll() is not None or time.time() > deadline:
            output = proc.communicate()[0] if proc.poll() is not None else ""
            raise AssertionError(f"{what} never happened (sweep exit {proc.returncode}):\n{output[-3000:]}")
        if tick is not None:
            tick()
        time.sleep(0.5)


def release_requeued() -> None:
    """SLURM holds a requeued job for about two minutes (BeginTime) before it may start again; the tests
    start such jobs at once (on CI the tests' jobs are the only ones). A real cluster waits out the hold."""
    pending = subprocess.run(["squeue", "-h", "-t", "PD", "-o", "%i %r"], capture_output=True, text=True).stdout
    for job_id, reason in (line.split(maxsplit=1) for line in pending.splitlines() if line.strip()):
        if reason.strip() == "BeginTime":
            subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], capture_output=True)


def test_a_three_job_sweep_ends_with_three_results_and_a_table(launcher, tmp_path):
    name, args = launcher
    sweep = start_sweep([*args, *TINY, "seed=0,1,2"], tmp_path)
    output, _ = sweep.communicate(timeout=600)
    assert sweep.returncode == 0, output[-3000:]
    jobs = [results(tmp_path / str(i)) for i in range(3)]
    assert [r.get("status") for r in jobs] == ["done"] * 3
    assert all(r["scheduler_job"].startswith("slurm:" if name == "slurm" else "local:") for r in jobs)
    assert len({r["scheduler_job"] for r in jobs}) == 3  # one scheduler job per sweep point
    table = subprocess.run([sys.executable, str(ROOT / "scripts/table.py"), str(tmp_path)], capture_output=True,
                           text=True)
    assert table.returncode == 0, table.stderr
    assert "| 3 |" in (tmp_path / "table.md").read_text()  # three seeds in the one row


def warn_of_time_limit(job: str) -> None:
    """What submitit's local controller does signal_delay_s before timeout_min, sent now: SIGUSR2 to the job's
    process (the controller's child; its id is the controller's pid)."""
    children = subprocess.run(["ps", "-o", "pid=", "--ppid", job.split(":", 1)[1]], capture_output=True, text=True)
    for pid in children.stdout.split():
        os.kill(int(pid), signal.SIGUSR2)


@pytest.mark.slow
def test_a_job_past_its_time_limit_is_requeued_and_finishes_from_its_checkpoint(launcher, tmp_path):
    """On SLURM, the real 1-minute limit: SLURM warns 45 s early (give or take its 30 s polling), as often
    as it takes. Locally, one warning once the first epoch has finished (the 30 s of a local attempt are
    too short to be sure of being mid-training, and too long to wait for several times)."""
    name, args = launcher
    run_dir = tmp_path / "0"
    epochs = EPOCHS[name]
    if name == "slurm":  # a 1-minute limit, warned 45 s early, as often as it takes
        args = [*(a for a in args if "timeout_min" not in a), "hydra.launcher.timeout_min=1",
                "hydra.launcher.signal_delay_s=45", "hydra.launcher.max_num_timeout=10"]
    sweep = start_sweep([*args, *SLOW, f"trainer.max_epochs={epochs}"], tmp_path)
    release = release_requeued if name == "slurm" else None
    if name == "submitit_local":
        wait_until(lambda: (run_dir / "checkpoints" / "last.ckpt").is_file(), sweep, 300, "the first epoch")
        warn_of_time_limit(results(run_dir)["scheduler_job"])

    def interrupted_mid_training() -> bool:  # SLURM's warning may also come before the first epoch ends
        stopped = results(run_dir)
        return stopped.get("status") == "interrupted" and (stopped.get("interrupted_at_epoch") or 0) >= 1

    wait_until(interrupted_mid_training, sweep, 600, "a time-limit warning mid-training", tick=release)
    stopped = results(run_dir)
    assert stopped["signal"] == "SIGUSR2"
    job = stopped["scheduler_job"]
    wait_until(lambda: results(run_dir).get("status") == "done", sweep, 600, "the requeued job's end", tick=release)
    output, _ = sweep.communicate(timeout=120)
    assert sweep.returncode == 0, output[-3000:]
    done = results(run_dir)
    assert done["scheduler_job"] == job and done["requeued"] >= 1  # the same job, back in its own dir
    assert done["resumed_from"] == str(run_dir / "checkpoints" / "last.ckpt")
    with open(run_dir / "metrics.csv", newline="") as f:
        trained = Counter(int(r["epoch"]) for r in csv.DictReader(f) if r["train/loss"])
    assert trained == Counter(range(epochs))  # every epoch once, across the attempts
    assert not (run_dir / "metrics.requeued.csv").exists()


def test_a_cancelled_job_is_recorded_as_interrupted_and_the_sweep_reports_it(launcher, tmp_path):
    name, args = launcher
    sweep = start_sweep([*args, *SLOW, "trainer.max_epochs=120,1"], tmp_path)  # job 0 long, job 1 short
    cancelled = tmp_path / "0"
    wait_until(lambda: (cancelled / "checkpoints" / "last.ckpt").is_file(), sweep, 300, "job 0's first epoch")
    job = results(cancelled)["scheduler_job"]
    kind, job_id = job.split(":", 1)
    if kind == "slurm":
        subprocess.run(["scancel", job_id], check=True)
    else:  # the local job's controller (its id is its pid) passes SIGTERM on to the job, as SLURM does
        os.kill(int(job_id), signal.SIGTERM)
    output, _ = sweep.communicate(timeout=300)
    stopped = results(cancelled)
    assert stopped["status"] == "interrupted" and stopped["signal"] == "SIGTERM", stopped
    epoch = stopped["interrupted_at_epoch"]
    assert sweep.returncode == 1, output[-3000:]
    assert f"{cancelled}: interrupted (SIGTERM) at epoch {epoch}" in output  # the sweep's failure report
    assert results(tmp_path / "1")["status"] == "done"  # the other job is unaffected
