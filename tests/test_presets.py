"""Paper presets: each composes, names itself and its paper, and runs end to end (on digits, briefly)."""
import json

import pytest

from snnexp.experiment import paper_reference
from tests.conftest import QUICK, run_cli
from tests.helpers import compose_cfg, options

PRESETS = options("experiment")
ON_THEIR_DATA = ["shd_rsnn_quick"]  # presets whose quick data is a fixture they name (dataset.root)


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


@pytest.mark.e2e
def test_every_preset_runs(tmp_path):
    """`run.py -m experiment=...`, on digits with tiny limits (MNIST is not on this machine); the paper-sized
    backbones (every model with a `width` key) at width 1/16, which keeps their structure (channel counts
    multiples of 4: torch 2.13's CPU backward of a strided 1x1 channels-last conv from 6 channels corrupts the
    heap at random, docs/notes.md)."""
    presets = [p for p in PRESETS if p not in ON_THEIR_DATA]
    wide = [p for p in presets if "width" in compose_cfg([f"experiment={p}"]).model]
    for group, extra in ((wide, ["++model.width=0.0625"]), ([p for p in presets if p not in wide], [])):
        run_cli(["-m", f"experiment={','.join(group)}", "dataset=digits", "T=4", *extra,
                 f"hydra.sweep.dir={tmp_path / str(len(extra))}", "logger=none"] + QUICK, check=True)
    results = [json.loads(p.read_text()) for p in tmp_path.glob("*/*/results.json")]
    assert len(wide) >= 8 and len(results) == len(presets)
    for r in results:
        assert "error" not in r and isinstance(r["test/acc"], float), r.get("preset")


@pytest.mark.e2e
def test_shd_rsnn_quick_runs_on_the_fixture_the_script_writes(tmp_path):
    """scripts/write_event_fixtures.py writes the SHD-format order task that shd_rsnn_quick reads."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    subprocess.run([sys.executable, str(ROOT / "scripts" / "write_event_fixtures.py"), str(tmp_path / "fixtures")],
                   check=True, capture_output=True)
    cfg = compose_cfg(["experiment=shd_rsnn_quick"])
    assert cfg.dataset.root == "outputs/fixtures/shd_order"  # where the script writes by default
    run_cli(["experiment=shd_rsnn_quick", f"dataset.root={tmp_path / 'fixtures' / 'shd_order'}", "T=20",
             f"dataset.cache_dir={tmp_path / 'cache'}", "logger=none"] + QUICK, run_dir=tmp_path / "run", check=True)
    r = json.loads((tmp_path / "run" / "results.json").read_text())
    assert r["status"] == "done" and isinstance(r["test/acc"], float)
