"""snnexp's fixed-point model against Intel's Lava, spike for spike (needs `make lava`).

The `lava_python` fixture (tests/conftest.py): on CI (CI=true) a missing Lava environment fails these
tests; elsewhere they skip with a message, and `make test` says so in its last line.
"""
import functools
import json

import h5py

import numpy as np
import pytest
import torch

from snnexp.deploy.loihi.convert import FixedPointNet, extract, pulse_weight
from snnexp.deploy.loihi.export import write_netx
from snnexp.deploy.loihi.lava_io import from_lava_layout, run_lava, to_lava_layout
from snnexp.models.mlp import MLP
from snnexp.neurons import CUBA, IF
from tests.conftest import QUICK, run_cli
from tests.deploy.test_loihi import small_csnn, trained_like


def compare(net, x_seq, python, tmp_path) -> tuple[torch.Tensor, torch.Tensor]:
    """(fixed-point torch output, Lava output), both [T+1, N, K]."""
    path = write_netx(net, tmp_path / "net.h5")
    spikes = to_lava_layout(x_seq, image=net.layers[0].kind == "conv")
    lava_out, _ = run_lava(path, spikes, python, tmp_path)
    return FixedPointNet(net)(x_seq), from_lava_layout(lava_out)


def random_spikes(shape, seed=0, p=0.4):
    return (torch.rand(shape, generator=torch.Generator().manual_seed(seed)) < p).float()


def test_dense_net_with_bias_and_current_memory_matches_lava(lava_python, tmp_path):
    """Two dense layers, BatchNorm bias and a synaptic current that outlives each sample: the per-layer
    reset, the silent step and the one-step delays must line up exactly."""
    torch.manual_seed(0)
    model = trained_like(MLP(neuron=lambda: CUBA(current_decay=0.25, voltage_decay=0.1), in_shape=(12,),
                             num_classes=5, hidden=(16,), batch_norm=True, bias=False))
    net = extract(model, (12,))
    for layer in net.layers:  # lower thresholds: busy neurons, so the test sees many spikes
        layer.vth = max(1, layer.vth // 3)
    fixed, lava = compare(net, random_spikes((7, 6, 12)), lava_python, tmp_path)
    assert fixed.shape == lava.shape == (8, 6, 5)
    assert fixed.sum() > 20 and fixed[1:].sum((0, 2)).min() > 0  # every sample's output spikes
    assert torch.equal(fixed, lava)


def test_conv_net_matches_lava(lava_python, tmp_path):
    net = extract(small_csnn(neuron=lambda: CUBA(current_decay=0.5, voltage_decay=0.25)), (1, 8, 8))
    for layer in net.layers:
        layer.vth = max(1, layer.vth // 4)
    fixed, lava = compare(net, random_spikes((6, 5, 1, 8, 8), seed=1), lava_python, tmp_path)
    assert fixed.shape == lava.shape == (7, 5, 10)
    assert fixed.sum() > 20
    assert torch.equal(fixed, lava)


@pytest.mark.parametrize("model", ["mlp", "csnn"])
def test_run_deploys_to_lava_end_to_end(model, lava_python, tmp_path):
    """2 epochs of 20 batches, then 50 test samples through the float model, the fixed-point model and
    Lava: each 0.88 to 0.96 (seeds 0, 1). Trained on shuffled labels they score 0.08; with the exported
    weights' sign flipped (Lava and the fixed-point model still agree) 0.40 (mlp) and 0.02 (csnn)."""
    extra = ["model.pool=avg"] if model == "csnn" else []
    run_cli(QUICK + ["deploy=loihi", f"model={model}", "deploy.samples=50", "logger=none", "trainer.max_epochs=2",
                     "trainer.limit_train_batches=20", *extra], run_dir=tmp_path)
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["deploy/spike_agreement"] == 1.0 and results["deploy/samples_compared"] == 50
    for key in ("deploy/float_acc", "deploy/fixed_acc", "deploy/lava_acc"):
        assert results[key] >= 0.6, (key, results[key])
    assert abs(results["deploy/fixed_acc"] - results["deploy/float_acc"]) <= 0.1  # quantisation costs little
    assert results["deploy/fixed_acc"] == results["deploy/lava_acc"]
    assert results["deploy/lava_samples_per_s"] > 0
    assert (tmp_path / "loihi" / "net.h5").is_file() and results["deploy/nir"] == str(tmp_path / "loihi" / "net.nir")
    assert np.isfinite(results["test/acc"])


def _busy_with_half_threshold_start(net, divisor):
    """Lower thresholds (busy neurons) and start every layer at half of its threshold, as QCFS does."""
    for layer in net.layers:
        layer.vth = max(1, layer.vth // divisor)
        layer.v_init_mant, layer.v_init_exp = pulse_weight(layer.vth // 2)
    return net


@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_initial_membrane_pulses_match_lava(kind, lava_python, tmp_path):
    """IF layers starting at theta/2: the clock-axon pulse in Lava equals FixedPointNet's first-step pulse."""
    torch.manual_seed(0)
    neuron = functools.partial(IF, reset="subtract", v_init=0.5)
    if kind == "dense":
        model = trained_like(MLP(neuron=neuron, in_shape=(12,), num_classes=5, hidden=(16,), bias=False))
        net, x_seq = _busy_with_half_threshold_start(extract(model, (12,)), 6), random_spikes((7, 6, 12))
    else:
        net = _busy_with_half_threshold_start(extract(small_csnn(neuron=neuron), (1, 8, 8)), 8)
        x_seq = random_spikes((6, 5, 1, 8, 8), seed=1)
    assert all(layer.v_init > 0 for layer in net.layers)
    fixed, lava = compare(net, x_seq, lava_python, tmp_path)
    assert fixed.sum() > 10
    assert torch.equal(fixed, lava)
    for layer in net.layers:  # the pulses matter: without them the spikes differ
        layer.v_init_mant = 0
    assert not torch.equal(FixedPointNet(net)(x_seq), fixed)


def test_qcfs_conversion_deploys_to_lava_end_to_end(lava_python, tmp_path):
    run_cli(["trainer.max_epochs=2", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
             "learner=ann2snn", "learner.method=qcfs", "learner.levels=4", "learner.input=poisson",
             "learner.T_list=[4,8]", "deploy=loihi", "deploy.samples=20", "logger=none"], run_dir=tmp_path)
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["deploy/spike_agreement"] == 1.0 and results["deploy/samples_compared"] == 20
    assert results["deploy/fixed_acc"] == results["deploy/lava_acc"] > 0.5
    assert sum("initial membrane" in note for note in results["deploy/notes"]) == 2  # hidden and output IF
    with h5py.File(tmp_path / "loihi" / "net.h5") as f:
        neurons = [g["neuron"] for g in f["layer"].values() if "neuron" in g]
        assert len(neurons) == 2
        for n in neurons:
            assert 0 < (int(n["vInitMant"][()]) << int(n["vInitExp"][()])) < int(n["vThMant"][()])
