"""resume=<run dir>: refusals before any training, and a resumed run that records the run it continues."""
import json
import shutil

import pytest

import snnexp
from tests.conftest import QUICK, refusal, run_cli

pytestmark = pytest.mark.e2e

PAPER = "paper={source:Someone 2020,metric:test/acc,by:[model],values:{mlp:0.5,csnn:0.9}}"


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory):
    """A finished one-epoch run of model=mlp (not the default csnn), with a paper number by model, made once
    (in-process: snnexp.run writes what run.py does) for the tests here, which only read it and resume from it."""
    run_dir = tmp_path_factory.mktemp("mlp") / "old"
    snnexp.run(QUICK + ["logger=none", "model=mlp", PAPER], run_dir=run_dir)
    return run_dir


def test_a_resumed_run_records_the_choices_and_paper_of_the_run_it_continues(mlp_run, tmp_path):
    old = json.loads((mlp_run / "results.json").read_text())
    assert old["choices"]["model"] == "mlp" and old["paper"]["value"] == 0.5
    run_cli(["resume=" + str(mlp_run), "trainer.max_epochs=2"], run_dir=tmp_path / "new")
    new = json.loads((tmp_path / "new" / "results.json").read_text())
    assert new["train/epochs"] == 2 and new["status"] == "done"
    assert new["choices"] == old["choices"]  # not the new command line's model=csnn, learner=bptt, ...
    assert new["paper"] == old["paper"]
    # ... and it can be resumed in turn: its .hydra/config.yaml is the config it ran
    run_cli(["resume=" + str(tmp_path / "new"), "trainer.max_epochs=3"], run_dir=tmp_path / "third")
    third = json.loads((tmp_path / "third" / "results.json").read_text())
    assert third["train/epochs"] == 3 and third["choices"]["model"] == "mlp" and third["paper"]["value"] == 0.5


@pytest.mark.parametrize("override, message", [
    ("+trainer.max_epocs=4", "trainer.max_epocs is not an option of trainer"),  # misspelt, added with +
    ("model.channels=[4]", "model.channels is not a key of the resumed run's config"),  # csnn's key; the run is mlp
])
def test_resume_refuses_a_key_the_run_does_not_have(mlp_run, tmp_path, override, message):
    """In-process; the command line's side (exit 2, no traceback) of a resume refusal: the truncated checkpoint's."""
    assert message in refusal(["resume=" + str(mlp_run), override], run_dir=tmp_path / "new")
    assert not (tmp_path / "new" / "checkpoints").exists()


def test_resume_refuses_a_truncated_checkpoint_naming_it(mlp_run, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(mlp_run, broken)
    ckpt = broken / "checkpoints" / "last.ckpt"
    ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    proc = run_cli(["resume=" + str(broken)], run_dir=tmp_path / "new", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{ckpt} cannot be read" in proc.stderr and "truncated or corrupt" in proc.stderr
    assert not (tmp_path / "new" / "checkpoints").exists()
