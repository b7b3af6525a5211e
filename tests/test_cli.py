"""`snnexp`, the command `pip install` puts on the PATH: the same app as `python run.py`, from any folder."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import QUICK

pytestmark = pytest.mark.e2e


def test_the_snnexp_command_runs_the_default_experiment_from_any_folder(tmp_path):
    command = Path(sys.executable).parent / "snnexp"
    assert command.is_file(), f"{command} is missing: reinstall the package (make venv, or pip install -e .)"
    proc = subprocess.run([str(command), *QUICK, "logger=none"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (results,) = (tmp_path / "outputs" / "runs").glob("*/*/results.json")
    assert json.loads(results.read_text())["status"] == "done"
    assert (results.parent / "run.log").is_file() and (results.parent / ".hydra" / "config.yaml").is_file()
    refused = subprocess.run([str(command), "foo=1"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert refused.returncode == 2 and "Could not override 'foo'" in refused.stderr
