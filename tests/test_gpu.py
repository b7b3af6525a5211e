"""deploy=gpu end to end, on a CUDA device (marked `cuda`: skipped without one; scripts/device_check.sh runs them)."""
from __future__ import annotations

import pytest
import torch

from snnexp.experiment import run
from tests.conftest import QUICK
from tests.helpers import compose_cfg

pytestmark = [pytest.mark.cuda, pytest.mark.e2e, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]
TRAIN = [o for o in QUICK if not o.startswith(("trainer.limit_train", "trainer.max_epochs"))] + [
    "trainer.max_epochs=3", "logger=none"]


@pytest.mark.parametrize("overrides, at_least", [
    (["model=csnn", "learner=bptt"], 0.6),  # the fused Triton neurons in training
    (["model=mlp", "learner=bptt", "neuron=plif"], 0.6),
    (["model=mlp", "learner=ann2snn"], 0.8),
    (["model=wta", "learner=stdp"], 0.3),
])
def test_each_learner_trains_on_the_gpu_as_on_the_cpu(overrides, at_least, tmp_path):
    results = {}
    for deploy in ("gpu", "cpu"):
        results[deploy] = run(compose_cfg(TRAIN + overrides + [f"deploy={deploy}"], run_dir=tmp_path / deploy))
    gpu, cpu = results["gpu"]["test/acc"], results["cpu"]["test/acc"]
    assert gpu >= at_least, gpu
    assert abs(gpu - cpu) <= 0.1, (gpu, cpu)  # the same run, other kernels: close, not bit-equal


def test_the_gpu_target_trains_on_cuda_with_cudnn_benchmark(tmp_path):
    cfg = compose_cfg(QUICK + ["deploy=gpu", "logger=none"], run_dir=tmp_path)
    results = run(cfg)
    assert results["status"] == "done" and torch.backends.cudnn.benchmark
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["state_dict"], "a trained model was saved"
