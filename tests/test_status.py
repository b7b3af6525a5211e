"""A run's status in results.json: written at the start, so a killed job shows as failed; an interrupted
run says so and at which epoch; an unreadable results.json is named, never a traceback."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from snnexp.status import STARTED, failure, read_results, write_results
from snnexp.sweep import failed_jobs
from tests.conftest import ROOT

LONG = ["trainer.max_epochs=60", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1", "trainer.enable_progress_bar=false", "deploy.num_threads=1", "logger=none"]


def wait_for(path: Path, proc: subprocess.Popen, seconds: float = 180) -> None:
    deadline = time.time() + seconds
    while not path.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert path.exists(), f"{path} never appeared"


def test_results_are_written_whole_and_read_back_or_named(tmp_path):
    path = tmp_path / "results.json"
    write_results(path, {"status": STARTED, "run_dir": str(tmp_path)})
    assert read_results(path) == {"status": STARTED, "run_dir": str(tmp_path)}
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left
    assert "did not finish" in failure(read_results(path))
    path.write_text('{"test/acc": 0.9, "sta')  # truncated
    bad = read_results(path)
    assert bad["unreadable"] and str(path) in bad["error"] and failure(bad) == bad["error"]
    assert failure({"status": "done", "test/acc": 0.9}) is None


@pytest.mark.e2e
def test_a_truncated_results_json_is_a_named_failure_in_the_report_and_the_table(tmp_path):
    good, bad = tmp_path / "0", tmp_path / "1"
    for run, acc in ((good, 0.8), (bad, 0.9)):
        run.mkdir()
        (run / "results.json").write_text(json.dumps({"overrides": [f"neuron.tau={acc * 10}"], "test/acc": acc}))
    (bad / ".hydra").mkdir()
    (bad / ".hydra" / "overrides.yaml").write_text("- neuron.tau=9.0\n")
    (bad / "results.json").write_text((bad / "results.json").read_text()[:20])  # cut off mid-write
    assert [(p, e.split(" (")[0]) for p, e in failed_jobs(tmp_path)] == [(bad, "unreadable results.json")]
    proc = subprocess.run([sys.executable, str(ROOT / "scripts/table.py"), str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert str(bad / "results.json") in proc.stderr and "rerun the job" in proc.stderr
    table = (tmp_path / "table.md").read_text()
    assert "| 8.0 | 80.00 | 1 |" in table and "| 9.0 | — | 0 (1 failed) |" in table  # its row, from .hydra/


@pytest.mark.e2e
def test_a_sweep_job_killed_by_the_os_shows_as_failed(tmp_path):
    """SIGKILL a joblib worker mid-training: its job never writes its final results.json (nor does the
    other, stopped by joblib), but the one written at the start says `started`, so the failure report
    and table.py count both as failed."""
    sweep = tmp_path / "sweep"
    proc = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "-m", "hydra/launcher=parallel", "seed=0,1",
                             f"hydra.sweep.dir={sweep}", *LONG], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    wait_for(sweep / "0" / "checkpoints" / "last.ckpt", proc)
    wait_for(sweep / "1" / "results.json", proc)  # on a loaded machine job 1 may still be importing torch
    for job in ("0", "1"):
        assert json.loads((sweep / job / "results.json").read_text())["status"] == STARTED
    workers = subprocess.run(["ps", "-ww", "-o", "pid=,args=", "--ppid", str(proc.pid)], capture_output=True, text=True)
    loky = [int(line.split()[0]) for line in workers.stdout.splitlines() if "popen_loky" in line]
    assert loky, workers.stdout
    os.kill(loky[0], signal.SIGKILL)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode != 0
    report = stdout + stderr  # Hydra's log goes to stdout
    assert "2 job(s) of the sweep" in report
    for job in ("0", "1"):
        assert f"{sweep / job}: did not finish (status: started)" in report
    table = subprocess.run([sys.executable, str(ROOT / "scripts/table.py"), str(sweep)], capture_output=True, text=True)
    assert table.returncode == 0, table.stderr
    assert "0 (2 failed)" in table.stdout and "did not finish" in table.stdout


@pytest.mark.e2e
def test_an_interrupted_run_keeps_its_checkpoint_and_says_when(tmp_path):
    """A real Ctrl+C (SIGINT) during training."""
    # a shell's background job ignores SIGINT, and so would Python started from it: restore the default
    proc = subprocess.Popen([sys.executable, str(ROOT / "run.py"), f"hydra.run.dir={tmp_path}", *LONG], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    wait_for(ckpt, proc)
    time.sleep(0.5)
    os.kill(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in stderr  # 128 + SIGINT, as a shell reports it
    assert f"resume={tmp_path}" in stderr
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["status"] == "interrupted" and results["interrupted_at_epoch"] >= 1
    assert f"at epoch {results['interrupted_at_epoch']}" in results["error"]
    assert f"resume={tmp_path}" in results["error"]
    assert ckpt.is_file() and not (tmp_path / "plots").exists()
