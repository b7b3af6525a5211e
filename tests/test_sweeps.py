"""Sweeps, tables, DDP and resume, run as a user runs them."""
import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import QUICK, ROOT, run_cli

NO_LOGGER = ["logger=none"]


@pytest.mark.e2e
def test_joblib_sweep_then_table(tmp_path):
    sweep = tmp_path / "sweep"
    run_cli(["-m", "hydra/launcher=parallel", "neuron=if,lif", f"hydra.sweep.dir={sweep}"] + QUICK + NO_LOGGER)
    results = sorted(sweep.glob("*/results.json"))
    assert len(results) == 2
    proc = subprocess.run([sys.executable, str(ROOT / "scripts/table.py"), str(sweep), "--metrics", "test/acc,test/rate/mean"],
                          capture_output=True, text=True, check=True)
    table = (sweep / "table.md").read_text()
    assert "| neuron | test/acc (%) | test/rate/mean | seeds |" in table
    assert "| if |" in table and "| lif |" in table
    with open(sweep / "table.csv") as f:
        rows = list(csv.DictReader(f))
    accs = {r["neuron"]: float(r["test/acc/mean"]) for r in rows}
    for path in results:
        r = json.loads(path.read_text())
        neuron = r["overrides"][0].split("=")[1]
        assert abs(accs[neuron] - r["test/acc"]) < 1e-9
    assert (sweep / "table.png").stat().st_size > 0 and "wrote" in proc.stdout


@pytest.mark.e2e
def test_table_averages_over_seeds_and_shows_the_paper(tmp_path):
    for seed, acc in ((0, 0.80), (1, 0.90)):
        run = tmp_path / str(seed)
        run.mkdir()
        (run / "results.json").write_text(json.dumps({
            "overrides": ["model.hidden=[64]", f"seed={seed}"], "test/acc": acc,
            "paper": {"source": "Someone 2020", "metric": "test/acc", "value": 0.88}}))
    subprocess.run([sys.executable, str(ROOT / "scripts/table.py"), str(tmp_path), "--by", "model.hidden"],
                   check=True, capture_output=True)
    table = (tmp_path / "table.md").read_text()
    assert "| [64] | 85.00 ± 7.07 | 2 | 88.00 | Someone 2020 |" in table


@pytest.mark.e2e
def test_a_failing_job_does_not_lose_the_others(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_cli(["-m", "neuron.tau=2.0,0.5", f"hydra.sweep.dir={sweep}"] + QUICK + NO_LOGGER, check=False)
    assert proc.returncode == 1
    good, bad = (json.loads((sweep / str(i) / "results.json").read_text()) for i in (0, 1))
    assert isinstance(good["test/acc"], float) and "error" not in good
    assert "neuron.tau=0.5 is invalid" in bad["error"]
    assert "1 job(s) of the sweep" in proc.stderr + proc.stdout


@pytest.mark.e2e
def test_optuna_search_runs_trials(tmp_path):
    sweep = tmp_path / "optuna"
    run_cli(["-m", "hparams_search=bptt_optuna", "hydra.sweeper.n_trials=2", "hydra.sweeper.sampler.n_startup_trials=1",
             f"hydra.sweep.dir={sweep}"] + QUICK + NO_LOGGER)
    assert len(list(sweep.glob("*/results.json"))) == 2
    assert "best_value" in (sweep / "optimization_results.yaml").read_text()


@pytest.mark.e2e
@pytest.mark.xdist_group("ddp")  # two processes each
def test_ddp_on_cpu_with_two_processes(tmp_path):
    run_cli(["trainer=ddp", "trainer.devices=2"] + QUICK + NO_LOGGER, run_dir=tmp_path)
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["train/epochs"] == 1 and isinstance(results["test/acc"], float)
    assert list(tmp_path.glob("*process_1*")), "the second DDP process left no trace"


@pytest.mark.e2e
@pytest.mark.parametrize("learner", ["bptt", "stdp", "hybrid", "ann2snn"])
def test_resume_after_kill_continues_where_it_stopped(learner, tmp_path):
    """Every learner's checkpoint loads (plain hyper-parameters, weights_only) and continues its epochs."""
    first, second = tmp_path / "first", tmp_path / "second"
    args = [sys.executable, str(ROOT / "run.py"), f"learner={learner}", "trainer.max_epochs=60",
            "trainer.limit_train_batches=2", "trainer.limit_val_batches=1", "trainer.limit_test_batches=1",
            "trainer.enable_progress_bar=false", "deploy.num_threads=1", f"hydra.run.dir={first}"] + NO_LOGGER
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = first / "checkpoints" / "last.ckpt"
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # no clean shutdown: as a crash or a lost node
    proc.wait()
    assert ckpt.exists() and not (first / "plots").exists(), "the first run should have been cut short"
    run_cli(["resume=" + str(first), "trainer.max_epochs=4"], run_dir=second)
    results = json.loads((second / "results.json").read_text())
    assert results["train/epochs"] == 4 and results["resumed_from"] == str(ckpt)
    with open(second / "metrics.csv") as f:
        val_epochs = [int(float(r["epoch"])) for r in csv.DictReader(f) if r.get("val/acc")]
    assert val_epochs == [0, 1, 2, 3]  # each epoch once: the old ones, then the new ones


@pytest.mark.e2e
def test_resume_refuses_group_changes(finished_run, tmp_path):
    proc = run_cli(["resume=" + str(finished_run), "neuron=plif"], run_dir=tmp_path / "b", check=False)
    assert proc.returncode == 2 and "neuron=plif is not allowed with resume" in proc.stderr


@pytest.mark.e2e
@pytest.mark.xdist_group("ddp")  # two processes each
def test_ddp_inside_a_multirun_runs_each_job_once(tmp_path):
    """-m with trainer=ddp: each job's second process runs that job alone (not the sweep again), and
    the next job gets fresh processes (no DDP environment left over from the first)."""
    proc = run_cli(["-m", "trainer=ddp", "trainer.devices=2", "neuron=if,lif", f"hydra.sweep.dir={tmp_path}"]
                   + QUICK + NO_LOGGER)
    assert proc.stdout.count("results:") == 2 and (proc.stdout + proc.stderr).count("Launching 2 jobs") == 1
    for job in ("0", "1"):
        results = json.loads((tmp_path / job / "results.json").read_text())
        assert "error" not in results and results["train/epochs"] == 1
        assert (tmp_path / job / "train_ddp_process_1.log").is_file()  # its second process ran in the job's dir
