"""Shared test settings: one torch thread (docs/notes.md: 2 threads collapse when the other core is busy),
no network, a helper that runs `run.py` the way a user does, one finished run shared by the tests that
only read one, and a refusal checked in-process the way `run.py` makes it.

The tiers (`make test` runs all of them, `make test-fast` only the first):
- unit: everything not marked below;
- `e2e`: runs snnexp as a user does: a whole experiment (`run.py`, `snnexp.run`), or a command
  (scripts/, the Lava venv's python) in a subprocess;
- `slow`: a long run, the NIR peers' simulators, or the Triton kernels under the interpreter
  (tests/neurons/conftest.py).
Under pytest-xdist (`make test`: `-n`, `--dist loadgroup`), tests that share a resource carry
`xdist_group` marks: "lava" (the Lava venv's processes), "slurm" (the one cluster), "ddp" (two
processes each, on the same machine's ports).
"""
from __future__ import annotations

import functools
import os
import shutil
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


FINISHED_ARGS = QUICK + ["logger=none"]  # the run `finished_run` holds


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory) -> Path:
    """The run dir of one finished `run.py *FINISHED_ARGS` (made in-process, once per test session: once
    per xdist worker), for tests that only read it. A test that writes into it, or starts a run from it
    (resume=), takes `finished_run_copy` instead."""
    import snnexp

    run_dir = tmp_path_factory.mktemp("finished") / "run"
    snnexp.run(FINISHED_ARGS, run_dir=run_dir)
    return run_dir


@pytest.fixture
def finished_run_copy(finished_run, tmp_path) -> Path:
    """A copy of `finished_run` of this test's own, to change or resume from."""
    return Path(shutil.copytree(finished_run, tmp_path / "finished_run"))


def refusal(args: list[str], run_dir: Path | None = None) -> str:
    """What `run.py ARGS` refuses, found in-process: the message of the ConfigError it would print before
    exiting 2. Without `run_dir`: from composing the config and building its parts, which write nothing;
    with it: from `snnexp.run` into `run_dir`, for what a run checks once it has started (resume=, the run
    dir), leaving there what a refused CLI run leaves. Fails the test when nothing is refused."""
    import snnexp
    from snnexp.errors import config_error

    try:
        if run_dir is None:
            snnexp.build(snnexp.compose(args))
        else:
            snnexp.run(args, run_dir=run_dir)
    except Exception as e:
        error = config_error(e)  # as run.py: a ConfigError, also behind Hydra's wrapper; anything else is a bug
        if error is None:
            raise
        return str(error)
    pytest.fail(f"run.py {' '.join(args)} was not refused")


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
