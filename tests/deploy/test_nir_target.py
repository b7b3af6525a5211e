"""deploy=nir end to end: train, export, run the graph in every installed simulator, results.json."""
import json
import subprocess
import sys

import nir
import numpy as np
import pytest

from snnexp.deploy.nir import installed
from snnexp.experiment import run
from tests.conftest import QUICK, ROOT, run_cli
from tests.helpers import compose_cfg

pytestmark = pytest.mark.e2e


def test_deploy_nir_on_digits_writes_agreement_and_accuracy_per_simulator(tmp_path):
    proc = run_cli(QUICK[:-1] + ["deploy=nir", "logger=none", "trainer.limit_train_batches=10", "learner.optimizer.lr=0.02"],
                   run_dir=tmp_path)
    assert proc.stdout.strip().splitlines()[-1] == f"results: {tmp_path / 'results.json'}"
    results = json.loads((tmp_path / "results.json").read_text())
    assert (tmp_path / "nir" / "net.nir").is_file() and results["deploy/nir/samples_compared"] == 100
    assert results["test/rate/lif4"] > 0  # the output layer fires: agreement is not 0 == 0
    for sim in installed():
        assert results[f"deploy/nir/{sim}/spike_agreement"] == 1.0, sim
        assert results[f"deploy/nir/{sim}/acc"] == results["deploy/nir/float/acc"], sim
    # scripts/export.py rebuilds the model from the run dir's checkpoint: the same graph
    proc = subprocess.run([sys.executable, str(ROOT / "scripts/export.py"), str(tmp_path), "--to", "nir"],
                          capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == str(tmp_path / "export" / "net.nir")
    exported, deployed = nir.read(proc.stdout.strip()), nir.read(str(tmp_path / "nir" / "net.nir"))
    assert list(exported.nodes) == list(deployed.nodes)
    for name, node in deployed.nodes.items():
        if hasattr(node, "weight"):
            assert np.array_equal(exported.nodes[name].weight, node.weight), name


def test_a_peer_that_cannot_run_the_graph_is_reported_by_node(tmp_path):
    if "norse" not in installed():
        pytest.skip("needs Norse (the nir test extra)")
    cfg = compose_cfg(QUICK + ["deploy=nir", "model=csnn", "model.pool=avg", "model.channels=[4]", "logger=none",
                               "deploy.samples=10", "deploy.simulators=[snnexp,norse]"], run_dir=tmp_path)
    results = run(cfg)
    assert results["deploy/nir/snnexp/spike_agreement"] == 1.0
    assert results["deploy/nir/norse/spike_agreement"] is None
    assert "node 'avgpool2' (AvgPool2d) has no mapping" in results["deploy/nir/norse/error"]


def test_a_model_nir_cannot_express_stops_before_training(tmp_path):
    proc = run_cli(QUICK[:-1] + ["deploy=nir", "model=csnn", "logger=none"], run_dir=tmp_path, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "(MaxPool2d) is a max-pool" in proc.stderr and "model.pool=avg" in proc.stderr
    assert not (tmp_path / "checkpoints").exists()


def test_model_nir_trains_on_an_exported_graph(tmp_path):
    """model=nir: the graph deploy=nir wrote is trained again by BPTT and deployed again."""
    first = run(compose_cfg(QUICK + ["deploy=nir", "logger=none", "deploy.simulators=[snnexp]"],
                            run_dir=tmp_path / "a"))
    graph = first["deploy/nir"]
    again = run(compose_cfg(QUICK + ["deploy=nir", "model=nir", f"model.path={graph}", "logger=none",
                                     "deploy.simulators=[snnexp]"], run_dir=tmp_path / "b"))
    assert again["deploy/nir/snnexp/spike_agreement"] == 1.0 and 0 <= again["test/acc"] <= 1
