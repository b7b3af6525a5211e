"""NaN and inf: refused in config values and in the data; a non-finite loss stops the run (or skips the update)."""
import json

import pytest
import torch

from snnexp.nonfinite import NonFiniteGuard, NonFiniteUpdate
from tests.conftest import QUICK, run_cli

ARGS = QUICK + ["logger=none"]
BAD_DATA = "dataset._target_=tests.reliability.parts.DigitsWithBadPixels"
NAN_LOSS = "learner._target_=tests.reliability.parts.BPTTWithNaNLoss"


@pytest.mark.parametrize("encoding, bad", [("direct", "not_a_number"), ("direct", "infinite"),
                                           ("poisson", "not_a_number"), ("poisson", "infinite")])
@pytest.mark.e2e
def test_non_finite_pixels_are_refused_naming_the_batch(encoding, bad, tmp_path):
    proc = run_cli(ARGS + [f"encoding={encoding}", BAD_DATA, f"+dataset.bad={bad}"], run_dir=tmp_path, check=False)
    assert proc.returncode == 2, proc.stderr[-3000:]
    count = "NaN and 0 inf" if bad == "not_a_number" else "0 NaN and"
    assert "the dataset's training batch 0 (epoch 0, shape [64, 1, 8, 8]) holds" in proc.stderr, proc.stderr[-2000:]
    assert count in proc.stderr
    assert "Traceback" not in proc.stderr
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["status"] == "failed"
    assert not (tmp_path / "checkpoints" / "last.ckpt").exists()  # not one update was made


@pytest.mark.e2e
def test_a_nan_loss_stops_the_run_with_the_epoch_and_step_and_keeps_the_last_checkpoint(tmp_path):
    # 2 batches an epoch: the loss turns NaN at global step 3, in epoch 1
    args = [a for a in ARGS if not a.startswith("trainer.max_epochs")] + ["trainer.max_epochs=3"]
    proc = run_cli(args + [NAN_LOSS, "+learner.nan_from_step=3"], run_dir=tmp_path, check=False)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "non-finite gradients at epoch 1, step 3" in proc.stderr
    assert "checkpoints/last.ckpt holds epoch 0" in proc.stderr
    assert "Traceback" not in proc.stderr
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["status"] == "failed" and "epoch 1, step 3" in results["error"]
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["epoch"] == 0
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point())


@pytest.mark.e2e
def test_nonfinite_skip_drops_those_updates_and_counts_them(tmp_path):
    args = [a for a in ARGS if not a.startswith("trainer.max_epochs")] + ["trainer.max_epochs=2"]
    proc = run_cli(args + [NAN_LOSS, "+learner.nan_from_step=3", "nonfinite=skip"], run_dir=tmp_path, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["status"] == "done"
    assert results["train/skipped_batches"] == 1  # steps 0..3: only step 3 had NaN gradients
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point())


def test_the_guard_checks_every_gradient_in_one_reduction():
    w = torch.nn.Parameter(torch.ones(3))
    b = torch.nn.Parameter(torch.ones(2))
    opt = torch.optim.SGD([w, b], lr=1.0)

    class Trainer:
        current_epoch, global_step, callback_metrics = 2, 17, {}

    w.grad, b.grad = torch.zeros(3), torch.tensor([0.0, float("inf")])
    with pytest.raises(NonFiniteUpdate, match="epoch 2, step 17"):
        NonFiniteGuard("stop").on_before_optimizer_step(Trainer(), None, opt)
    guard = NonFiniteGuard("skip")
    guard.on_before_optimizer_step(Trainer(), None, opt)
    assert w.grad is None and b.grad is None and guard.results() == {"train/skipped_batches": 1}
    w.grad, b.grad = torch.zeros(3), torch.zeros(2)
    NonFiniteGuard("stop").on_before_optimizer_step(Trainer(), None, opt)  # finite: nothing happens
    assert w.grad is not None
