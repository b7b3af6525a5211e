"""The quiet console: what a default run prints, what it holds back, and what still shows."""
import json
import logging
import os
import re
import subprocess
import sys
import warnings

import pytest

from snnexp import console
from snnexp.loggers import csv_logger
from tests.conftest import ROOT

# `make run` with a few batches: progress bars, model summary setting, wandb logger all as by default.
SHORT = ["trainer.max_epochs=2", "trainer.limit_train_batches=3", "trainer.limit_val_batches=1",
         "trainer.limit_test_batches=1", "trainer.log_every_n_steps=1", "deploy.num_threads=1"]
NOISE = re.compile(r"Tip|deprecated|will be deleted|LeafSpec|litlogger|INFO|Run summary|Run history")


def run_py(args, run_dir):
    """run.py as `make run` starts it: wandb as the user has it (not silenced by the test settings)."""
    env = {k: v for k, v in os.environ.items() if k != "WANDB_SILENT"}
    env["WANDB_MODE"] = "offline"
    proc = subprocess.run([sys.executable, str(ROOT / "run.py"), *args, f"hydra.run.dir={run_dir}"], cwd=ROOT,
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == f"results: {run_dir / 'results.json'}"  # the last line printed
    return (proc.stderr + proc.stdout).strip().splitlines()  # all a terminal shows (stderr, wandb's, first here)


@pytest.mark.e2e
def test_default_run_prints_choices_bars_table_and_the_results_path(tmp_path):
    lines = run_py(SHORT, tmp_path)
    assert len(lines) <= 40, "\n".join(lines)
    assert not [line for line in lines if NOISE.search(line)], "\n".join(lines)
    assert lines[0] == ("dataset=digits encoding=poisson neuron=lif neuron/surrogate=atan model=csnn "
                        "learner=bptt learner/optimizer=adam learner/scheduler=cosine deploy=cpu trainer=default "
                        "logger=wandb")
    assert any(line.startswith("Epoch 1/1") for line in lines) and any(line.startswith("Testing") for line in lines)
    wandb_lines = [line for line in lines if line.startswith("wandb")]
    assert len(wandb_lines) == 1 and "wandb sync" in wandb_lines[0], wandb_lines
    results = json.loads((tmp_path / "results.json").read_text())
    assert f"test/acc             {results['test/acc']:.4f}" in lines
    assert lines[-1] == f"results: {tmp_path / 'results.json'}"


@pytest.mark.e2e
def test_verbose_brings_the_detail_back(tmp_path):
    lines = run_py(SHORT + ["verbose=true"], tmp_path)
    text = "\n".join(lines)
    assert "GPU available" in text  # Lightning's INFO lines
    assert "Trainable params" in text  # the model summary
    assert "Run summary" in text  # wandb's own output


def test_quiet_holds_back_dependency_chatter_only(caplog):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with console.quiet():
            warnings.warn_explicit("internal", FutureWarning, "_pytree.py", 21, module="pytorch_lightning.utilities._pytree")
            warnings.warn_explicit("old api", DeprecationWarning, "x.py", 1, module="torch.utils.x")
            warnings.warn_explicit("yours", DeprecationWarning, "m.py", 1, module="snnexp.models.m")
            warnings.warn_explicit("setting", UserWarning, "fit_loop.py", 1, module="pytorch_lightning.loops")
            lightning = logging.getLogger("pytorch_lightning.utilities.rank_zero")  # "GPU available: ...", tips
            assert not lightning.isEnabledFor(logging.INFO) and lightning.isEnabledFor(logging.WARNING)
            with caplog.at_level(logging.INFO):
                logging.getLogger("snnexp.deploy.loihi.target").warning("deploy=loihi: a note")
            assert os.environ["WANDB_SILENT"] == "true"
        warnings.warn_explicit("after", FutureWarning, "_pytree.py", 21, module="pytorch_lightning.utilities._pytree")
    assert [str(w.message) for w in seen] == ["yours", "setting", "after"]
    assert [r.getMessage() for r in caplog.records] == ["deploy=loihi: a note"]


def test_quiet_restores_the_environment(monkeypatch):
    monkeypatch.setenv("WANDB_SILENT", "false")
    before = logging.getLogger("pytorch_lightning").level
    with console.quiet():
        assert logging.getLogger("pytorch_lightning").level == logging.WARNING
    assert os.environ["WANDB_SILENT"] == "false" and logging.getLogger("pytorch_lightning").level == before
    with console.quiet(verbose=True):
        assert os.environ["WANDB_SILENT"] == "false"


def test_csv_logger_warns_only_when_it_deletes_something(tmp_path):
    (tmp_path / ".hydra").mkdir()  # a fresh run dir is not empty
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        csv_logger(tmp_path)
    assert not seen
    (tmp_path / "metrics.csv").write_text("epoch\n0\n")
    with pytest.warns(UserWarning, match="will be deleted"):
        csv_logger(tmp_path)
    assert not (tmp_path / "metrics.csv").exists()


def test_choices_line_follows_the_config_order():
    hydra_order = {"experiment": "fang_2021", "logger": "none", "neuron": "plif", "neuron/surrogate": "atan",
                   "dataset": "digits"}  # Hydra lists the defaults last-first
    assert console.choices_line(hydra_order) == ("dataset=digits neuron=plif neuron/surrogate=atan logger=none "
                                                 "experiment=fang_2021")
    assert console.choices_line({}) == ""


def test_metrics_table():
    table = console.metrics_table({"wall_s": 12.3456, "test/acc": 0.98765, "test/synops": 262169.5, "train/epochs": 20,
                                   "deploy/fixed_acc": 0.9, "deploy/notes": ["x"], "val/acc": None, "run_dir": "/r",
                                   "paper": {"metric": "test/acc", "value": 0.9438, "source": "Fang 2021"}})
    assert table.splitlines() == [
        "metric            value",
        "----------------  ----------",
        "test/acc          0.9877",
        "test/synops       262,170",
        "train/epochs      20",
        "wall_s            12.3456",
        "deploy/fixed_acc  0.9000",
        "paper test/acc    0.9438  (Fang 2021)",
    ]
