"""SIGTERM (SLURM's time limit and preemption, docker stop, systemd) stops a run as interrupted: exit 143,
results.json says so with the epoch, and the run resumes from its checkpoint to the end."""
import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from snnexp.signals import Interrupted, as_interrupted, signal_of
from tests.conftest import ROOT
from tests.test_status import LONG, wait_for


@pytest.mark.e2e
def test_sigterm_is_recorded_as_interrupted_exits_143_and_resumes_to_the_end(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    proc = subprocess.Popen([sys.executable, str(ROOT / "run.py"), f"hydra.run.dir={first}", *LONG], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wait_for(first / "checkpoints" / "last.ckpt", proc)  # mid-training: an epoch has finished
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 143, output[-3000:]  # 128 + SIGTERM: a scheduler sees the job was killed
    assert "Traceback" not in output
    results = json.loads((first / "results.json").read_text())
    epoch = results["interrupted_at_epoch"]
    assert results["status"] == "interrupted" and results["signal"] == "SIGTERM" and epoch >= 1
    assert f"`python run.py resume={first}`" in output  # how to continue, printed
    assert f"interrupted (SIGTERM) at epoch {epoch}" in output

    # the resume (a new run dir) runs the missing epochs and a few more, each once
    end = epoch + 2
    resumed = subprocess.run([sys.executable, str(ROOT / "run.py"), f"resume={first}", f"trainer.max_epochs={end}",
                              f"hydra.run.dir={second}"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Traceback" not in resumed.stdout + resumed.stderr
    done = json.loads((second / "results.json").read_text())
    assert done["status"] == "done" and done["train/epochs"] == end
    with open(second / "metrics.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["train/loss"]]
    assert Counter(int(r["epoch"]) for r in rows) == Counter(range(end))  # every epoch once
    assert json.loads((first / "results.json").read_text())["status"] == "interrupted"  # the old run kept


def test_signals_behind_the_exceptions_that_reach_the_run():
    from pytorch_lightning.utilities.exceptions import SIGTERMException

    assert signal_of(Interrupted(signal.SIGTERM)) == signal.SIGTERM
    assert signal_of(SIGTERMException()) == signal.SIGTERM  # Lightning's, without a code: exit 0 if let through
    assert signal_of(KeyboardInterrupt()) == signal.SIGINT
    assert signal_of(ValueError("x")) is None
    stop = as_interrupted(SIGTERMException())
    assert isinstance(stop, Interrupted) and stop.exit_code == 143
    assert Interrupted(signal.SIGINT).exit_code == 130
    error = ValueError("x")
    assert as_interrupted(error) is error


@pytest.mark.e2e
def test_sigterm_stops_a_sweep_in_this_process_and_its_report_lists_the_job(tmp_path):
    """Hydra's basic launcher runs the jobs in this process: SIGTERM is for the whole sweep (exit 143), and
    the failure report lists the job it interrupted (a scheduler's job is stopped alone: tests/test_cluster.py)."""
    proc = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "-m", f"hydra.sweep.dir={tmp_path}", "seed=0,1",
                             *LONG], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wait_for(tmp_path / "0" / "checkpoints" / "last.ckpt", proc)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 143, output[-3000:]
    epoch = json.loads((tmp_path / "0" / "results.json").read_text())["interrupted_at_epoch"]
    assert f"{tmp_path / '0'}: interrupted (SIGTERM) at epoch {epoch}" in output
    assert not (tmp_path / "1").exists()  # the sweep stopped there
