"""A run owns its run dir: a second run into it, at once or later, stops before any work and changes nothing."""
import pytest
import hashlib
import subprocess
import sys

from tests.conftest import QUICK, ROOT, run_cli

ARGS = QUICK + ["logger=none"]
OWN_FILES = ("results.json", "metrics.csv", "checkpoints/last.ckpt", ".hydra/config.yaml", ".hydra/hydra.yaml")


def fingerprint(run_dir):
    return {name: hashlib.sha256((run_dir / name).read_bytes()).hexdigest() for name in OWN_FILES}


def assert_refused(proc, *phrases):
    assert proc.returncode == 2, proc.stderr[-3000:]
    for phrase in phrases:
        assert phrase in proc.stderr, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr + proc.stdout


@pytest.mark.e2e
def test_a_finished_runs_dir_is_not_overwritten(finished_run_copy):
    run_dir = finished_run_copy
    before = fingerprint(run_dir)
    proc = run_cli(ARGS + ["seed=1"], run_dir=run_dir, check=False)
    assert_refused(proc, f"hydra.run.dir={run_dir} already holds a run", f"resume={run_dir}")
    assert fingerprint(run_dir) == before


@pytest.mark.e2e
def test_resume_into_its_own_dir_is_refused(finished_run_copy):
    run_dir = finished_run_copy
    before = fingerprint(run_dir)
    proc = run_cli([f"resume={run_dir}", "trainer.max_epochs=2"], run_dir=run_dir, check=False)
    assert_refused(proc, f"resume={run_dir} with hydra.run.dir={run_dir} is invalid")
    assert fingerprint(run_dir) == before


@pytest.mark.e2e
def test_two_runs_started_together_into_one_dir(tmp_path):
    """One run's complete results, one clean refusal, whichever wins."""
    cmd = [sys.executable, str(ROOT / "run.py"), *ARGS, f"hydra.run.dir={tmp_path}"]
    procs = [subprocess.Popen(cmd + [f"seed={seed}"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for seed in (0, 1)]
    outs = [(p.wait(timeout=600), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in outs)
    assert codes == [0, 2], [err[-2000:] for _, _, err in outs]
    refused = next(err for code, _, err in outs if code == 2)
    assert "in use by a running run" in refused or "already holds a run" in refused, refused[-2000:]
    assert "Traceback" not in refused
    winner_seed = next(seed for seed, (code, _, _) in zip((0, 1), outs) if code == 0)
    import json

    results = json.loads((tmp_path / "results.json").read_text())
    assert results["status"] == "done"
    assert results["threads"] == 1  # deploy.num_threads=1 (QUICK): the count a result was made with
    assert f"seed={winner_seed}" in results["overrides"]
    assert "seed: " + str(winner_seed) in (tmp_path / ".hydra" / "config.yaml").read_text()
    epochs = [line.split(",") for line in (tmp_path / "metrics.csv").read_text().splitlines()]
    assert len(epochs) > 1


@pytest.mark.e2e
def test_an_unwritable_run_dir_is_named(tmp_path):
    proc = run_cli(ARGS, run_dir="/proc/snnexp-no/run", check=False)
    assert_refused(proc, "hydra.run.dir=/proc/snnexp-no/run is invalid: it cannot be written")


@pytest.mark.e2e
def test_a_failed_sweep_job_prints_one_line_and_logs_its_traceback(tmp_path):
    proc = run_cli(["-m", *ARGS, "seed=0,-1", f"hydra.sweep.dir={tmp_path}"], check=False)
    assert proc.returncode == 1, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert "job failed: seed=-1 is invalid" in out
    assert "Traceback" not in out
    assert "1 job(s) of the sweep" in out
    assert "Traceback" in (tmp_path / "1" / "run.log").read_text()


@pytest.mark.e2e
def test_table_of_a_dir_without_runs(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "table.py"), str(tmp_path)], capture_output=True,
                          text=True)
    assert proc.returncode == 2
    assert f"no results.json under {tmp_path}" in proc.stderr and "Traceback" not in proc.stderr
