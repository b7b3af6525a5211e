"""scripts/table.py's metric columns: named sets and globs over results.json keys."""
import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.e2e


def test_neurobench_and_nir_columns(tmp_path):
    for seed, (acs, agree) in enumerate(((1000.0, 1.0), (3000.0, 0.5))):
        run = tmp_path / str(seed)
        run.mkdir()
        (run / "results.json").write_text(json.dumps({
            "overrides": [f"seed={seed}"], "test/acc": 0.9, "test/activation_sparsity": 0.8,
            "test/synops/ac": acs, "test/synops/mac": 10.0, "test/energy_nj": acs * 0.9e-3 + 10 * 4.6e-3,
            "model/footprint_bytes": 4096, "model/connection_sparsity": 0.0, "deploy/nir/float/acc": 0.9,
            "deploy/nir/snnexp/spike_agreement": 1.0, "deploy/nir/norse/spike_agreement": agree,
            "deploy/nir/snnexp/acc": 0.9, "deploy/nir/norse/acc": 0.85}))
    subprocess.run([sys.executable, str(ROOT / "scripts/table.py"), str(tmp_path), "--metrics", "neurobench,nir"],
                   check=True, capture_output=True)
    head, _, row = (tmp_path / "table.md").read_text().splitlines()[:3]
    assert head.split(" | ")[1:8] == ["test/activation_sparsity", "test/synops/ac", "test/synops/mac",
                                      "test/energy_nj", "model/footprint_bytes", "model/connection_sparsity",
                                      "deploy/nir/float/acc (%)"]
    assert "deploy/nir/norse/spike_agreement | deploy/nir/snnexp/spike_agreement" in head  # the glob, sorted
    assert "| 2000 ± 1.4e+03 |" in row and "| 0.75 ± 0.35 | 1 ± 0 |" in row and "| 4096 ± 0 |" in row
