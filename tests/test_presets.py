"""Paper presets: each composes, names itself and its paper, and runs end to end (on digits, briefly)."""
import json

import pytest

from snnexp.experiment import paper_reference
from tests.conftest import QUICK, run_cli
from tests.helpers import compose_cfg, options

PRESETS = options("experiment")


@pytest.mark.parametrize("name", PRESETS)
def test_preset_names_itself_and_quick_variants_say_so(name):
    cfg = compose_cfg([f"experiment={name}"])
    assert cfg.preset.startswith(name)
    if name.endswith("_quick"):
        assert "(" in cfg.preset, "a quick variant says what it cut"
        assert f"{name[:-6]}" in PRESETS


def test_paper_number_follows_the_chosen_options():
    cfg = compose_cfg(["experiment=fang_2021", "neuron=lif"])
    ref = paper_reference(cfg, {"dataset": "fashion_mnist", "neuron": "lif"})
    assert ref["value"] == 0.9417 and "Fang" in ref["source"]
    assert paper_reference(cfg, {"dataset": "digits", "neuron": "lif"})["value"] is None
    cfg = compose_cfg(["experiment=diehl_cook_2015", "model.n_neurons=400"])
    assert paper_reference(cfg, {"dataset": "mnist"})["value"] == 0.870


def test_every_preset_runs(tmp_path):
    """`run.py -m experiment=glob(*)`, on digits with tiny limits (MNIST is not on this machine)."""
    run_cli(["-m", "experiment=glob(*)", "dataset=digits", "T=4",
             f"hydra.sweep.dir={tmp_path}", "logger=none"] + QUICK, check=True)
    results = [json.loads(p.read_text()) for p in tmp_path.glob("*/results.json")]
    assert len(results) == len(PRESETS)
    for r in results:
        assert "error" not in r and isinstance(r["test/acc"], float), r.get("preset")
