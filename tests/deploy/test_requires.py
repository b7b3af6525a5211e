"""What a deploy target requires of other groups' values (snnexp.deploy.requires): set for the user,
kept when the user set the same, refused when the user set another, whatever presets say."""
import pytest

import snnexp
from snnexp.errors import ConfigError
from tests.conftest import QUICK, run_cli
from tests.helpers import compose_cfg


def test_a_target_sets_the_values_it_requires():
    assert snnexp.compose(["deploy=loihi"]).model.bias is False
    assert snnexp.compose(["deploy=nir"]).neuron.reset == "hard"
    cpu = snnexp.compose(["deploy=cpu"])
    assert cpu.model.bias is True and cpu.neuron.reset == "subtract"  # only the targets that need it
    assert compose_cfg(["deploy=loihi"]).model.bias is False  # the tests compose as snnexp.compose does


def test_the_users_choices_stay_and_the_required_value_follows_the_chosen_part():
    cfg = snnexp.compose(["deploy=loihi", "model=csnn", "model.bias=false"])  # the same value: no conflict
    assert cfg.hydra.runtime.choices.model == "csnn" and cfg.model.bias is False
    assert "bias" not in snnexp.compose(["deploy=loihi", "model=wta"]).model  # a model without the key gets none


def test_a_required_value_wins_over_a_preset_whatever_the_order():
    """shd_rsnn's neuron.reset=subtract used to win over deploy=nir's hard reset (a preset merges last)."""
    assert snnexp.compose(["experiment=shd_rsnn"]).neuron.reset == "subtract"
    for args in (["experiment=shd_rsnn", "deploy=nir"], ["deploy=nir", "experiment=shd_rsnn"]):
        assert snnexp.compose(args).neuron.reset == "hard"


@pytest.mark.parametrize("args, message", [
    (["deploy=loihi", "model.bias=true"],
     "model.bias=true cannot run with deploy=loihi: Loihi's synapses have no bias, so it needs model.bias=false "
     "(set by itself when model.bias is not given); remove model.bias=true"),
    (["deploy=nir", "neuron=plif", "neuron.reset=subtract"],
     "neuron.reset=subtract cannot run with deploy=nir: every NIR neuron resets to v_reset (no reset by "
     "subtraction), so it needs neuron.reset=hard (set by itself when neuron.reset is not given); "
     "remove neuron.reset=subtract"),
])
def test_a_contradicting_value_on_the_command_line_is_refused(args, message):
    with pytest.raises(ConfigError) as refused:
        snnexp.compose(args)
    assert str(refused.value) == message


def test_a_target_that_does_not_import_is_refused_by_name():
    with pytest.raises(ConfigError, match=r"deploy._target_='snnexp.deploy.Nope' is invalid: it cannot be imported"):
        snnexp.compose(["deploy._target_=snnexp.deploy.Nope"])


def test_run_py_refuses_it_before_training(tmp_path):
    """run.py composes with Hydra's own app: experiment.run applies the same rule before it records the config."""
    proc = run_cli(QUICK + ["logger=none", "deploy=loihi", "deploy.run_lava=false", "model.bias=true"],
                   run_dir=tmp_path, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert "model.bias=true cannot run with deploy=loihi: Loihi's synapses have no bias" in proc.stderr
    assert not (tmp_path / "checkpoints").exists()
