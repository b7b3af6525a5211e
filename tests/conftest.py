"""Shared test settings: one torch thread (docs/notes.md: 2 threads collapse when the other core is busy),
no network, and a helper that runs `run.py` the way a user does."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
torch.set_num_threads(1)

# Overrides that make an end-to-end run take a second or two.
QUICK = [
    "trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=1", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
    "deploy.num_threads=1",
]


def run_cli(args: list[str], run_dir: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """`python run.py ARGS` in the repo root; the run dir goes to `run_dir` when given."""
    cmd = [sys.executable, str(ROOT / "run.py"), *args]
    if run_dir is not None:
        cmd.append(f"hydra.run.dir={run_dir}")
    env = {**os.environ, "WANDB_MODE": "offline", "HYDRA_FULL_ERROR": "1"}
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"run.py failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


@pytest.fixture
def quick() -> list[str]:
    return list(QUICK)
