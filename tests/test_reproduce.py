"""scripts/reproduce.py: the command it would run, and the docs it writes from a finished sweep."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "reproduce.py"


def reproduce(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_dry_run_prints_the_preset_sweep_with_the_extra_overrides():
    proc = reproduce("diehl_cook_2015", "dataset=fashion_mnist", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ("python run.py -m experiment=diehl_cook_2015 model.n_neurons=100,400 "
                                   "dataset=fashion_mnist logger=none trainer.enable_progress_bar=false")
    proc = reproduce("diehl_cook_2015", "model.n_neurons=1600", "--dry-run")  # replaces the preset's sweep of it
    assert proc.stdout.strip() == ("python run.py -m experiment=diehl_cook_2015 model.n_neurons=1600 "
                                   "logger=none trainer.enable_progress_bar=false")


def _job(sweep: Path, name: str, n: int, acc: float | None, status: str) -> None:
    job = sweep / name
    job.mkdir(parents=True)
    results = {"overrides": ["experiment=diehl_cook_2015", f"model.n_neurons={n}", "dataset=fashion_mnist"],
               "status": status, "wall_s": 60.0, "train/samples_per_s": 100.0 / n,
               "data/samples": {"train": 60000, "val": 0, "test": 10000}}
    if acc is not None:
        results["test/acc"] = acc
    (job / "results.json").write_text(json.dumps(results))


def test_docs_from_a_finished_sweep_give_the_command_deviations_notes_and_failed_jobs(tmp_path):
    sweep = tmp_path / "sweep"
    _job(sweep, "0", 100, 0.5, "done")
    _job(sweep, "1", 400, 0.625, "done")
    _job(sweep, "2", 1600, None, "started")  # killed: it never finished
    command = "python run.py -m experiment=diehl_cook_2015 model.n_neurons=100,400,1600 dataset=fashion_mnist"
    (sweep / "reproduce.json").write_text(json.dumps({"command": command, "wall_s": 600.0, "exit": 0,
                                                      "commit": "abc1234"}))
    out = tmp_path / "docs"
    proc = reproduce("diehl_cook_2015", "dataset=fashion_mnist", "learner.min_spikes=null", "--from", str(sweep),
                     "--out", str(out), "--note", "min_spikes=null: every image is shown once")
    assert proc.returncode == 0, proc.stderr
    readme = (out / "README.md").read_text()
    assert f"Command (from the repository root): `{command}`" in readme
    assert "Commit: abc1234" in readme and "Wall time: 10.0 min for the sweep" in readme
    assert "3 run(s), 1 failed" in readme
    assert "train 60,000" in readme and "test 10,000" in readme
    assert "dataset=fashion_mnist instead of the paper's mnist" in readme
    assert "`learner.min_spikes=null` given on top of the preset (the preset: 5)" in readme
    assert "- min_spikes=null: every image is shown once" in readme
    assert "| 100 | 50.00 |" in readme and "| 400 | 62.50 |" in readme
    assert "| MNIST | 100 excitatory neurons | 82.9 |" in readme  # the paper's figures, apart and labelled
    assert (out / "table.csv").is_file() and (out / "table.png").is_file()
