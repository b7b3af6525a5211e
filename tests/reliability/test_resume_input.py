"""Bad input to resume: one message naming the file or the key, and the new run dir says failed."""
import json

import pytest

from tests.conftest import run_cli

pytestmark = pytest.mark.e2e


def test_a_corrupt_saved_config_is_named(finished_run_copy, tmp_path):
    old, new = finished_run_copy, tmp_path / "new"
    with open(old / ".hydra" / "config.yaml", "a") as f:
        f.write("model: [unclosed\n")
    proc = run_cli([f"resume={old}"], run_dir=new, check=False)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert f"{old}/.hydra/config.yaml cannot be read" in proc.stderr
    assert "Traceback" not in proc.stderr
    results = json.loads((new / "results.json").read_text())
    assert results["status"] == "failed" and "cannot be read" in results["error"]


def test_a_shape_key_cannot_change_on_resume(finished_run, tmp_path):
    old, new = finished_run, tmp_path / "new"  # a resumed run only reads the old dir
    proc = run_cli([f"resume={old}", "model.channels=[16,16]"], run_dir=new, check=False)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "model.channels=[16,16] changes the shape of model.net.0.weight" in proc.stderr
    assert "cannot change the network's shape keys" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert json.loads((new / "results.json").read_text())["status"] == "failed"
    assert not (new / "checkpoints").exists()
