"""The memory estimate: a run whose activations cannot fit stops before training, naming T and the batch size."""
import resource
import subprocess
import sys

import pytest

from snnexp.capacity import activation_bytes_per_step
from snnexp.experiment import build
from tests.conftest import QUICK, ROOT
from tests.helpers import compose_cfg


def test_the_estimate_counts_every_layer_output_of_one_sample_and_step():
    # csnn on 28x28: conv 32 (28x28) + BN + LIF, pool to 14x14, conv 32 + BN + LIF, pool to 7x7, flatten, linear 10, readout
    parts = build(compose_cfg(["dataset=fashion_mnist", "deploy.num_threads=1", "logger=none"]))
    per_step = activation_bytes_per_step(parts.model, (1, 28, 28))
    assert per_step == 79_988 * 4  # 20.5 MB at batch 64: issue 25's measured 20 MB per step


@pytest.mark.e2e
def test_an_event_run_that_full_bptt_cannot_fit_is_refused_up_front(tmp_path):
    from tests.data.event_files import write_nmnist

    write_nmnist(tmp_path / "nm", per_class=2)
    cmd = [sys.executable, str(ROOT / "run.py"), *QUICK, "logger=none", "dataset=nmnist", f"dataset.root={tmp_path / 'nm'}",
           "T=512", "dataset.batch_size=16", f"hydra.run.dir={tmp_path / 'run'}"]
    limit = 3_000_000 * 1024  # `ulimit -v 3000000`: full BPTT needs ~3.6 GB here
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600,
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit)))
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "T=512 and dataset.batch_size=16 need about" in proc.stderr
    assert "learner.memory=checkpoint or online" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "run" / "checkpoints").exists()
