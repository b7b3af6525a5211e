"""The STDP learner: plastic layers, teacher spikes, one update per batch, incompatible models refused."""
from functools import partial

import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from snnexp.encoding.poisson import Poisson
from snnexp.errors import ConfigError
from snnexp.learners.plastic import Recorder, plastic_layers
from snnexp.learners.stdp import STDP, best_sample_mask, teacher_spikes
from snnexp.rules.stdp import normalise_, stdp_sequence
from snnexp.models import CSNN, MLP
from snnexp.models.wta import WTA
from snnexp.neurons import LIF, PLIF


def test_teacher_spikes_fire_the_right_class_evenly():
    s = teacher_spikes(torch.tensor([2, 0]), T=8, n_out=6, num_classes=3, spikes=4)  # 2 neurons per class
    assert s.shape == (8, 2, 6)
    assert s[:, 0].sum(0).tolist() == [0, 0, 0, 0, 4, 4] and s[:, 1].sum(0).tolist() == [4, 4, 0, 0, 0, 0]
    assert s[:, 0, 4].nonzero().flatten().tolist() == [0, 2, 4, 6]


def test_best_sample_mask_keeps_one_sample_per_neuron():
    post = torch.zeros(5, 3, 2)
    post[:, 0, 0], post[:2, 1, 0], post[:3, 2, 1] = 1, 1, 1  # neuron 0: sample 0 most; neuron 1: sample 2
    mask = best_sample_mask(post)
    assert mask[0].tolist() == [[1, 0], [0, 0], [0, 1]]
    conv = torch.zeros(2, 2, 3, 2, 2)
    conv[:, 1, 0] = 1
    assert best_sample_mask(conv).shape == (1, 2, 3, 1, 1)


def test_plastic_layers_of_csnn_and_mlp():
    csnn = CSNN(partial(LIF), (1, 8, 8), 10)
    found = plastic_layers(csnn)
    assert [(p.pooled, p.conv is not None, p.is_output) for p in found] == [
        (True, True, False), (True, True, False), (False, False, True)]
    mlp = MLP(partial(LIF), (1, 8, 8), 10, readout="membrane")
    assert [p.is_output for p in plastic_layers(mlp)] == [False]


def test_recorder_gives_time_first_pre_and_post_in_both_step_modes():
    torch.manual_seed(0)
    x_seq = (torch.rand(4, 3, 1, 8, 8) < 0.5).float()
    for step_mode in ("s", "m"):
        model = CSNN(partial(LIF), (1, 8, 8), 10, step_mode=step_mode, channels=[4])
        layers = plastic_layers(model)
        with torch.no_grad(), Recorder(layers, 4) as rec:
            model(x_seq)
        pre, post = rec.pre_post(layers[0])
        assert pre.shape == (4, 3, 1, 8, 8) and torch.equal(pre, x_seq)
        assert post.shape == (4, 3, 4, 8, 8)  # pooled 4x4 spikes copied back onto the 8x8 conv output


def test_incompatible_models_stop_with_the_working_combinations():
    with pytest.raises(ConfigError, match="learner=stdp works with model=diehl_cook"):
        STDP(MLP(partial(LIF), (1, 8, 8), 10, hidden=[], readout="membrane"), Poisson(T=4), 10)
    with pytest.raises(ConfigError, match="model.readout"):
        STDP(MLP(partial(LIF), (1, 8, 8), 10, readout="membrane"), Poisson(T=4), 10)


def test_plif_tau_is_fixed():
    model = CSNN(partial(PLIF), (1, 8, 8), 10)
    STDP(model, Poisson(T=4), 10)
    assert not any(p.requires_grad for p in model.parameters())


class Batches(pl.LightningDataModule):
    def __init__(self, x, y):
        super().__init__()
        self.ds = TensorDataset(x, y)

    def train_dataloader(self):
        return DataLoader(self.ds, batch_size=len(self.ds))

    val_dataloader = test_dataloader = train_dataloader


def fit_one_batch(learner, x, y):
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0)
    trainer.fit(learner, datamodule=Batches(x, y))
    return trainer


def test_wta_teacher_update_equals_the_rule_and_touches_only_the_taught_class():
    torch.manual_seed(0)
    model = WTA(partial(LIF), (1, 4, 4), 3, w_init_max=0.2)
    x = torch.rand(4, 1, 4, 4)
    y = torch.tensor([1, 1, 2, 1])
    learner = STDP(model, Poisson(T=6), 3, seed=0, stdp={"lr_post": 0.01, "lr_pre": 0.002}, norm=4.0, norm_cap=True,
                   teacher_spikes=3)
    w0 = model.synapse.weight.detach().clone()
    # the expected change: the same encoding, the teacher's spikes, the rule
    gen = torch.Generator().manual_seed(0)
    x_seq = Poisson(T=6)(x, generator=gen)
    post = teacher_spikes(y, 6, 3, 3, 3)
    expected = (w0 + stdp_sequence(x_seq.flatten(2), post, w0, learner.rule)).clamp(0, 1)
    normalise_(expected, 4.0, 1.0, cap=True)
    fit_one_batch(learner, x, y)
    w = model.synapse.weight.detach()
    assert torch.allclose(w[0], w0[0])  # class 0 was never taught
    assert not torch.allclose(w[1], w0[1])
    assert torch.allclose(w, expected, atol=1e-6)


def test_csnn_stdp_changes_weights_within_range():
    torch.manual_seed(0)
    model = CSNN(partial(LIF), (1, 8, 8), 2, channels=[4])
    learner = STDP(model, Poisson(T=4), 2, stdp={"lr_post": 0.5, "lr_pre": 0.1, "w_min": -0.5, "w_max": 0.5})
    before = [p.weight.detach().clone() for p in learner.layers]
    fit_one_batch(learner, torch.rand(8, 1, 8, 8), torch.randint(0, 2, (8,)))
    for p, b in zip(learner.layers, before):
        assert not torch.equal(p.weight, b)
        assert float(p.weight.min()) >= -0.5 and float(p.weight.max()) <= 0.5


@pytest.mark.parametrize("overrides, message", [
    # model=diehl_cook selects neuron=alif and learner=stdp; a user who chooses otherwise is stopped
    (["model=diehl_cook", "neuron=lif"], "needs adaptive thresholds: use neuron=alif"),
    (["model=diehl_cook", "learner=bptt"], "trains with learner=stdp only"),
    (["model=wta", "learner=hybrid"], "trains with learner=stdp only"),
    (["learner=stdp", "model=mlp", "model.readout=membrane"], "learner=stdp works with model=diehl_cook"),
])
def test_incompatible_choices_stop_before_training(overrides, message):
    from snnexp.experiment import build
    from tests.helpers import compose_cfg

    with pytest.raises(ConfigError, match=message):
        build(compose_cfg(overrides + ["deploy.num_threads=1"]))


def test_a_model_option_selects_the_learner_and_neuron_it_needs():
    from snnexp.experiment import build
    from tests.helpers import compose_cfg

    parts = build(compose_cfg(["model=diehl_cook", "model.n_neurons=8", "deploy.num_threads=1"]))
    assert type(parts.learner).__name__ == "STDP" and type(parts.model.excitatory.neuron).__name__ == "ALIF"


def _diehl_cook():
    from snnexp.models.diehl_cook import DiehlCook
    from snnexp.neurons.alif import ALIF

    exc = dict(tau=100.0, decay_input=False, tau_theta=1e7, theta_plus=0.05, v_threshold=13.0, reset="hard")
    return DiehlCook(partial(ALIF), (1, 8, 8), 10, n_neurons=12, exc=exc)


def _dc(encoder, **kw):
    """STDP on a fresh small Diehl & Cook network: the paper's rule (STDPParams' defaults), 0.1 per input."""
    return STDP(_diehl_cook(), encoder, 10, norm="0.1/input", **kw)


def test_weak_samples_are_shown_again_at_a_higher_rate():
    """Diehl & Cook's protocol: a sample making fewer than min_spikes excitatory spikes is shown again with
    the input rate raised by rate_boost (at most max_boosts times); the others keep their first showing."""
    torch.manual_seed(0)
    x = torch.rand(6, 1, 8, 8)
    x[:3] *= 0.15  # three dim images: silent at the base rate, 1 spike at 0.5, 2 at 1.0 (checked)
    encoder = Poisson(T=60, max_rate=0.2)
    once = _dc(encoder)
    boosted = _dc(encoder, min_spikes=2, rate_boost=0.3, max_boosts=4)
    out1, c1 = once.present(x, torch.Generator().manual_seed(1))
    out2, c2 = boosted.present(x, torch.Generator().manual_seed(1))
    assert c1.sum(1).tolist()[:3] == [0, 0, 0]
    assert (c2.sum(1) >= 2).all()  # every sample was shown until it drove the layer (the dim ones at 0.8 or 1.0)
    bright = c1.sum(1) >= 2
    assert torch.equal(c2[bright], c1[bright]) and torch.equal(out2[bright], out1[bright])


def test_rate_boost_needs_a_rate_code():
    from snnexp.encoding.latency import Latency

    with pytest.raises(ConfigError, match="learner.min_spikes"):
        _dc(Latency(T=10), min_spikes=5)


def test_labels_come_from_the_first_label_samples_training_images_in_one_buffer(monkeypatch):
    """assign_labels (which fills one preallocated buffer batch by batch) labels from exactly the first
    label_samples images, a partial batch included: the same assignment as the counts of those images
    presented one batch at a time and concatenated."""
    from types import SimpleNamespace

    from snnexp.models.readouts import assign_labels

    torch.manual_seed(0)
    x, y = torch.rand(23, 1, 8, 8), torch.arange(23) % 10
    loader = DataLoader(TensorDataset(x, y), batch_size=5)
    learner = _dc(Poisson(T=40, max_rate=0.3), label_samples=17)
    monkeypatch.setattr(STDP, "trainer", property(lambda self: SimpleNamespace(
        datamodule=SimpleNamespace(train_dataloader=lambda: loader))))
    learner.assign_labels()
    gen = torch.Generator().manual_seed(learner.seed + 2)
    counts = torch.cat([learner.present(xb, gen)[1] for xb in (x[0:5], x[5:10], x[10:15], x[15:17])])
    expected, _ = assign_labels(counts, y[:17], 10)
    assert counts.sum() > 0 and torch.equal(learner.readout.assignments, expected)


def _dense_present(learner, x, gen, y=None):
    """The learner's presentation before the event path (c61ea8e): the model's dense forward recorded
    by hooks, `learn` (best_sample_mask, stdp_sequence), the same re-presentation protocol."""
    import dataclasses

    from snnexp.learners.plastic import Recorder

    encoder, idx, counts = learner.encoder, torch.arange(len(x)), None
    for boost in range(learner.max_boosts + 1):
        x_seq = encoder(x[idx], generator=gen)
        with Recorder(learner.layers, x_seq.shape[0]) as rec:
            learner.model(x_seq)
        if y is not None:
            learner.learn(rec, y[idx], x_seq.shape[0], log=False)
        c = rec.pre_post(learner.layers[-1])[1].sum(0)
        if counts is None:
            counts = c
        else:
            counts[idx] = c
        if learner.min_spikes is None or boost == learner.max_boosts:
            break
        weak = c.sum(1) < learner.min_spikes
        if not weak.any():
            break
        idx = idx[weak]
        encoder = dataclasses.replace(encoder, max_rate=min(encoder.max_rate + learner.rate_boost, 1.0))
    return counts


@pytest.mark.parametrize("min_spikes", [None, 3])
def test_event_driven_training_equals_the_dense_recorded_path(min_spikes):
    """Three training batches through the event path (C++ layer, STDP from events) give the spikes,
    theta and weights of the dense path (forward + hooks + stdp_sequence): weights equal to rounding."""
    from snnexp.neurons.fused.dispatch import available

    if not available("cpu"):
        pytest.skip("no C++ compiler here")
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(3, 8, 1, 8, 8, generator=g), torch.randint(0, 10, (3, 8), generator=g)
    protocol = dict(min_spikes=min_spikes) if min_spikes is None else dict(min_spikes=min_spikes, rate_boost=0.2,
                                                                              max_boosts=3)
    fast = _dc(Poisson(T=80, max_rate=0.3), **protocol)
    dense = _dc(Poisson(T=80, max_rate=0.3), **protocol)
    assert fast.events and torch.equal(fast.model.synapse.weight, dense.model.synapse.weight)
    g_fast, g_dense = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    for xb, yb in zip(x, y):
        c_fast = fast.present(xb, g_fast, yb)[1]
        c_dense = _dense_present(dense, xb, g_dense, yb)
        assert torch.equal(c_fast, c_dense) and c_fast.sum() > 0
        w_fast, w_dense = fast.model.synapse.weight, dense.model.synapse.weight
        assert torch.allclose(w_fast, w_dense, rtol=0, atol=1e-6)
        assert torch.equal(fast.model.excitatory.neuron.theta_rest, dense.model.excitatory.neuron.theta_rest)
    assert not torch.equal(w_fast, _dc(Poisson(T=80)).model.synapse.weight)  # it learnt something


def test_event_driven_evaluation_counts_activity_as_the_hooks_do():
    """While evaluating, the event path reports the spikes and SynOps that the monitor's hooks count
    on the dense forward of the same input."""
    from snnexp.metrics.activity import ActivityMonitor

    x = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    learner = _dc(Poisson(T=50, max_rate=0.4))
    learner.model.eval()
    learner._monitor = ActivityMonitor(learner.model).__enter__()
    learner.present(x, torch.Generator().manual_seed(3))
    got = learner._monitor.compute()
    learner._monitor.__exit__()
    with ActivityMonitor(learner.model) as hooks, torch.no_grad():
        learner.model(Poisson(T=50, max_rate=0.4)(x, generator=torch.Generator().manual_seed(3)))
    want = hooks.compute()
    assert want["rate/exc"] > 0 and want["synops"] > 0
    for key in ("rate/exc", "synops", "synops/dense", "activation_sparsity"):
        assert torch.allclose(got[key], want[key]), key


@pytest.mark.e2e
def test_progress_is_recorded_against_images_seen(tmp_path):
    """learner.record_every: rows of validation accuracy, winners and theta every so many training images
    (and at the epoch's end) in results.json, metrics.csv (step = images seen) and plots/progress.png."""
    import csv
    import json

    from tests.conftest import run_cli

    run_cli(["experiment=diehl_cook_2015_quick", "dataset=digits", "T=60", "encoding.max_rate=0.5", "model.n_neurons=20",
             "dataset.batch_size=20", "dataset.limit_train=100", "dataset.limit_val=40", "dataset.limit_test=40",
             "learner.label_samples=60", "learner.record_every=40", "learner.record_samples=30", "logger=none",
             "trainer.enable_progress_bar=false", "deploy.num_threads=1"], run_dir=tmp_path)
    results = json.loads((tmp_path / "results.json").read_text())
    rows = results["stdp/progress"]
    assert [r["images"] for r in rows] == [40, 80, 100]
    assert all(0 <= r["val_acc"] <= 1 and r["winners_ever"] >= r["winners_recent"] for r in rows)
    assert rows[-1]["winners_ever"] == results["stdp/winners_ever"] > 0
    assert results["stdp/val_acc"] == rows[-1]["val_acc"]
    assert rows[-1]["theta_max"] >= rows[-1]["theta_p90"] >= rows[-1]["theta_p10"] >= 0
    with open(tmp_path / "metrics.csv", newline="") as f:
        steps = [int(r["step"]) for r in csv.DictReader(f) if r.get("progress/val_acc")]
    assert steps == [40, 80, 100]
    assert (tmp_path / "plots" / "progress.png").exists() and (tmp_path / "plots" / "neurons.png").exists()


@pytest.mark.e2e
def test_record_every_needs_a_validation_split(tmp_path):
    from tests.conftest import run_cli

    proc = run_cli(["experiment=diehl_cook_2015_quick", "dataset=digits", "T=10", "model.n_neurons=5",
                    "dataset.val_fraction=0", "dataset.limit_val=null", "dataset.limit_train=40", "dataset.limit_test=20",
                    "dataset.batch_size=20", "learner.record_every=20", "logger=none", "trainer.limit_val_batches=0",
                    "trainer.enable_progress_bar=false", "deploy.num_threads=1"], run_dir=tmp_path, check=False)
    assert proc.returncode == 2 and "learner.record_every" in proc.stderr
