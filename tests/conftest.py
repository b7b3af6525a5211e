"""Shared test settings: one torch thread (docs/notes.md: 2 threads collapse when the other core is busy),
no network, and a helper that runs `run.py` the way a user does."""
from __future__ import annotations

import functools
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


@functools.cache
def _lava_problem() -> str | None:
    """Why the Lava tests cannot run here (None: they can): the venv must exist and import lava."""
    from snnexp.deploy.loihi.lava_io import DEFAULT_VENV

    python = DEFAULT_VENV / "bin" / "python"
    if not python.is_file():
        return f"no Lava environment at {DEFAULT_VENV}: `make lava` builds it (Python 3.10, lava-nc 0.10)"
    probe = subprocess.run([str(python), "-c", "import lava.magma.core, h5py"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"the Lava environment at {DEFAULT_VENV} cannot import lava-nc: rebuild it (rm -r it; make lava)"
    return None


def require_lava() -> Path:
    """The Lava venv's python; skips the test without one, except on CI (CI=true), where it fails."""
    from snnexp.deploy.loihi.lava_io import DEFAULT_VENV

    skip_or_fail_on_ci("the Lava tests", _lava_problem())
    return DEFAULT_VENV / "bin" / "python"


def skip_or_fail_on_ci(what: str, problem: str | None) -> None:
    """Tests that need an environment (Lava, a SLURM cluster): skipped without it, except on CI
    (CI=true), which must run them: there they fail with the reason."""
    if problem is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run {what}, but {problem}")
    pytest.skip(problem)


@pytest.fixture
def lava_python() -> Path:
    return require_lava()
