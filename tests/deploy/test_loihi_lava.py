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
from torch import nn

from snnexp.deploy.loihi.convert import extract
from snnexp.deploy.loihi.fixed_point import FixedPointNet
from snnexp.deploy.loihi.export import write_lava, write_netx
from snnexp.deploy.loihi.lava_io import from_lava_layout, run_lava, to_lava_layout
from snnexp.deploy.loihi.quantise import pulse_weight
from snnexp.models.base import SpikingModel
from snnexp.models.mlp import MLP
from snnexp.network import Recurrent, Residual
from snnexp.neurons import CUBA, IF
from tests.conftest import QUICK, run_cli
from tests.deploy.test_loihi import _relay_net, residual_mlp, small_csnn, trained_like

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("lava")]  # each runs the Lava venv's python: one worker


def compare(net, x_seq, python, tmp_path) -> tuple[torch.Tensor, torch.Tensor]:
    """(fixed-point torch output, Lava output), both [T+1, N, K]. A net that is no chain goes through lava.h5."""
    path = write_netx(net, tmp_path / "net.h5") if net.is_chain() else write_lava(net, tmp_path / "lava.h5")
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
             "learner=ann2snn", "learner/method=qcfs", "learner.method.levels=4", "learner.input=poisson",
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


def test_a_recurrent_dense_matches_lava_across_samples(lava_python, tmp_path):
    """Neuron 1 repeats neuron 0 one step later through the recurrent Dense. Samples 0 and 2 end on a spike,
    which Lava's Dense still holds at the next sample's reset step: the runner clears it (s_{-1} = 0)."""
    x_seq = torch.tensor([[1.0, 0, 1, 1, 0, 1], [0, 1, 1, 0, 0, 0], [1, 1, 0, 0, 1, 1], [0, 0, 0, 1, 0, 0]]).T
    fixed, lava = compare(_relay_net(), x_seq.unsqueeze(-1), lava_python, tmp_path)  # x [T=6, N=4, 1]
    assert fixed.shape == lava.shape == (7, 4, 2)
    assert fixed[:, 0, 1].tolist() == [0, 0, 1, 0, 1, 1, 0] and fixed[0].sum() == 0
    assert torch.equal(fixed, lava)


def test_a_network_of_two_recurrent_layers_matches_lava(lava_python, tmp_path):
    """Two recurrent layers at depths 1 and 2 (a pause per sample each), BatchNorm bias, synaptic current
    memory and a plain readout: spike for spike."""
    torch.manual_seed(0)

    def cuba():
        return CUBA(current_decay=0.25, voltage_decay=0.1)

    model = trained_like(SpikingModel([
        nn.Linear(12, 16, bias=False), nn.BatchNorm1d(16), Recurrent(cuba(), nn.Linear(16, 16, bias=False)),
        nn.Linear(16, 10, bias=False), Recurrent(cuba(), nn.Linear(10, 10, bias=False)),
        nn.Linear(10, 5, bias=False), cuba()], "m", "spikes"))
    net = extract(model, (12,))
    assert [layer.recurrent is not None for layer in net.layers] == [True, True, False]
    for layer in net.layers:  # lower thresholds: busy neurons, so the test sees many spikes
        layer.vth = max(1, layer.vth // 3)
    x_seq = random_spikes((8, 6, 12), seed=3)
    fixed, lava = compare(net, x_seq, lava_python, tmp_path)
    assert fixed.shape == lava.shape == (9, 6, 5)
    assert fixed.sum() > 20 and fixed[1:].sum((0, 2)).min() > 0
    assert torch.equal(fixed, lava)
    for layer in net.layers:  # the recurrent weights matter: without them the spikes differ
        layer.recurrent = None
    assert not torch.equal(FixedPointNet(net)(x_seq), fixed)


def test_run_deploys_a_recurrent_network_to_lava_end_to_end(lava_python, tmp_path):
    run_cli(QUICK + ["deploy=loihi", "model=rsnn", "model.readout=spikes", "model.hidden=[32]", "deploy.netx=false",
                     "deploy.samples=30", "logger=none", "trainer.max_epochs=2", "trainer.limit_train_batches=20"],
            run_dir=tmp_path)
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["deploy/spike_agreement"] == 1.0 and results["deploy/samples_compared"] == 30
    assert results["deploy/fixed_acc"] == results["deploy/lava_acc"]
    assert results["deploy/lava_net"] == str(tmp_path / "loihi" / "lava.h5") and "deploy/netx" not in results
    assert not (tmp_path / "loihi" / "net.h5").exists()
    assert "recurrent [32, 32]" in results["deploy/layers"][0]


def residual_cnn() -> SpikingModel:
    """Conv blocks: an identity shortcut over two convs, then a 1x1-conv projection over three (two relays);
    an average pool of spikes (folded into the Linear after it) at the end."""
    def cuba():
        return CUBA(current_decay=0.5, voltage_decay=0.25)

    def conv(c_in, c_out, k=3):
        return nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False)

    return trained_like(SpikingModel([
        conv(1, 4), nn.BatchNorm2d(4), cuba(),
        Residual([conv(4, 4), nn.BatchNorm2d(4), cuba(), conv(4, 4)], [], "add"), cuba(),
        Residual([conv(4, 6), cuba(), conv(6, 6), cuba(), conv(6, 6), nn.BatchNorm2d(6)],
                 [conv(4, 6, 1), nn.BatchNorm2d(6)], "add"), cuba(),
        nn.AvgPool2d(2), nn.Flatten(), nn.Linear(6 * 4, 5, bias=False), cuba()], "m", "spikes"))


@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_residual_networks_match_lava(kind, lava_python, tmp_path):
    """Shortcuts delayed to their layer's depth (dense: DelayDense; conv: relay neurons), spike for spike;
    without the shortcuts the spikes differ."""
    torch.manual_seed(0)
    if kind == "dense":
        net, x_seq = extract(residual_mlp(), (16,)), random_spikes((7, 6, 16), seed=4, p=0.5)
        delays = {2: 1, 5: 2}
    else:
        net, x_seq = extract(residual_cnn(), (1, 4, 4)), random_spikes((6, 5, 1, 4, 4), seed=5, p=0.5)
        delays = {2: 1, 5: 2}
    assert {i: net.skip_delay(i) for i, layer in enumerate(net.layers) if layer.skip is not None} == delays
    for layer in net.layers:  # lower thresholds: busy neurons, so the test sees many spikes
        layer.vth = max(1, layer.vth // 4)
    fixed, lava = compare(net, x_seq, lava_python, tmp_path)
    assert fixed.sum() > 20 and fixed[1:].sum((0, 2)).min() > 0
    assert torch.equal(fixed, lava)
    for layer in net.layers:
        layer.skip = None
    assert not torch.equal(FixedPointNet(net)(x_seq), fixed)
