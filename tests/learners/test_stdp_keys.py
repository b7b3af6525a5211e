"""Each key of how STDP learns exists once, in learner=stdp: set there it changes the run; set in the
model's old place it is refused naming the new key; the defaults give the weights of before the move."""
import hashlib
import inspect
import subprocess
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from hydra.utils import get_object
from torch.utils.data import DataLoader, TensorDataset

import snnexp
from snnexp.errors import ConfigError
from snnexp.experiment import build
from snnexp.moved import MOVED
from tests.helpers import compose_cfg, options

ROOT = Path(__file__).resolve().parents[2]
TINY = {"diehl_cook": ["model=diehl_cook", "model.n_neurons=7"], "wta": ["model=wta"]}


def trained_weights(model: str, *overrides: str) -> torch.Tensor:
    """The plastic weights after two training batches of fixed random 8x8 images (digits' shape, T = 30)."""
    cfg = compose_cfg([*TINY[model], "dataset=digits", "T=30", "deploy.num_threads=1", "logger=none", *overrides])
    learner = build(cfg).learner
    gen, data = torch.Generator().manual_seed(7), torch.Generator().manual_seed(11)
    with warnings.catch_warnings():  # present() logs outside a Trainer
        warnings.simplefilter("ignore")
        for _ in range(2):
            x, y = torch.rand(6, 1, 8, 8, generator=data), torch.randint(0, 10, (6,), generator=data)
            learner.present(x, gen, y)
    return learner.layers[0].weight.detach()


def digest(w: torch.Tensor) -> str:
    return hashlib.sha256(w.contiguous().numpy().tobytes()).hexdigest()[:16]


# Computed by the same two batches on 2edc217, the commit before the keys moved, with the same settings
# given in their old place there (model.norm=7.6, model.stdp.lr_post=0.0037, model.min_spikes=2, ...).
PROTOCOL = ("learner.norm=7.6", "learner.stdp.lr_post=0.0037", "learner.min_spikes=2", "learner.rate_boost=0.1",
            "learner.max_boosts=3", "encoding.max_rate=0.05")
BEFORE = {("diehl_cook",): "d8e979a93ce0060a", ("diehl_cook", "model.event_driven=false"): "d8e979a93ce0060a",
          ("diehl_cook", "encoding.max_rate=0.05"): "66ee5701391099ad",  # images shown again (min_spikes 5)
          ("diehl_cook", *PROTOCOL): "a23c8c90a2c4c027",
          ("wta",): "9e475209e9615327",
          ("wta", "learner.teacher_spikes=3", "learner.norm=20.0", "learner.stdp.lr_post=0.01"): "ac5f64c5e7daf1ff"}


@pytest.mark.parametrize("model, overrides", [(k[0], k[1:]) for k in BEFORE], ids=[" ".join(k) for k in BEFORE])
def test_the_defaults_train_the_same_weights_as_before_the_keys_moved(model, overrides):
    assert digest(trained_weights(model, *overrides)) == BEFORE[(model, *overrides)]


# One override per key of the rule, the normalisation, the teacher and the protocol, each in its one place
# (the protocol's on input too dim to make 5 spikes at first, so that images are shown again).
DIM = ("encoding.max_rate=0.05",)
KEYS = [
    ("diehl_cook", "learner.stdp.lr_post=0.02"), ("diehl_cook", "learner.stdp.lr_pre=0.01"),
    ("diehl_cook", "learner.stdp.tau_pre=5"), ("diehl_cook", "learner.stdp.tau_post=5"),
    ("diehl_cook", "learner.stdp.w_min=0.01"), ("diehl_cook", "learner.stdp.w_max=0.1"),
    ("diehl_cook", "learner.stdp.mu=1"), ("diehl_cook", "learner.stdp.reduce=mean"),
    ("diehl_cook", "learner.norm=5.0"),
    ("diehl_cook", "learner.min_spikes=null", DIM), ("diehl_cook", "learner.rate_boost=0.3", DIM),
    ("diehl_cook", "learner.max_boosts=1", DIM),
    ("wta", "learner.teacher_spikes=2"), ("wta", "learner.punish_wrong=false"),
    ("wta", "learner.norm_cap=false"),  # D&C's rows rise above their sum, where a cap changes nothing
]


@pytest.mark.parametrize("model, override, base", [(*k, ())[:3] for k in KEYS], ids=[k[1] for k in KEYS])
def test_each_key_set_in_its_one_place_changes_the_run(model, override, base):
    assert not torch.equal(trained_weights(model, *base, override), trained_weights(model, *base))


@pytest.mark.parametrize("old", sorted(MOVED))
def test_a_model_group_refuses_the_key_and_names_its_new_place(old):
    new = MOVED[old]
    key = old + ".lr_post" if old == "model.stdp" else old
    with pytest.raises(ConfigError, match=rf"{key} is now {new}.*set {new}"):
        snnexp.compose(["model=diehl_cook", f"{key}=1"])
    with pytest.raises(ConfigError, match=rf"{key} is now {new}"):
        snnexp.compose(["model=wta", f"+{key}=1"])


def test_a_moved_key_in_a_config_file_is_refused_too():
    """A preset of one's own that still writes `model: {stdp: ...}` reaches typecheck, which names the new key."""
    from omegaconf import open_dict

    cfg = compose_cfg(["model=diehl_cook", "deploy.num_threads=1"])
    with open_dict(cfg):
        cfg.model.stdp = {"lr_post": 0.02}
    with pytest.raises(ConfigError, match=r"model.stdp is now learner.stdp"):
        build(cfg)


def test_no_model_takes_a_moved_key():
    """So refusing them under `model.` is never wrong, whichever model is chosen."""
    moved = {old.split(".", 1)[1] for old in MOVED}
    for option in options("model"):
        cfg = compose_cfg([f"model={option}"])
        params = inspect.signature(get_object(cfg.model._target_)).parameters
        assert not moved & (set(cfg.model) | set(params)), option


@pytest.mark.e2e
def test_the_command_line_refuses_a_moved_key_in_one_message():
    proc = subprocess.run([sys.executable, "run.py", "model=diehl_cook", "model.stdp.lr_post=0.02"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "model.stdp.lr_post is now learner.stdp.lr_post" in proc.stderr
    assert "set learner.stdp.lr_post=0.02" in proc.stderr and "Traceback" not in proc.stderr


def test_each_model_gets_its_own_defaults_and_a_user_can_pick_another_file():
    dc = compose_cfg(["model=diehl_cook"]).learner
    assert (dc.stdp.lr_post, dc.stdp.tau_pre, dc.norm, dc.min_spikes) == (0.01, 20.0, "0.1/input", 5)
    wta = compose_cfg(["model=wta"]).learner
    assert (wta.stdp.w_max, wta.norm, wta.norm_cap, wta.teacher_spikes) == (4.0, "0.5/input", True, 4)
    csnn = compose_cfg(["learner=stdp"]).learner  # csnn: the group's own values
    assert (csnn.stdp.lr_post, csnn.norm, csnn.min_spikes) == (0.0001, None, None)
    other = compose_cfg(["model=diehl_cook", "learner/stdp_defaults=wta"]).learner
    assert other.stdp.w_max == 4.0 and other.teacher_spikes == 4
    assert compose_cfg(["model=diehl_cook", "learner.stdp.lr_post=0.5"]).learner.stdp.lr_post == 0.5  # the user wins


@pytest.mark.parametrize("norm, total", [("0.1/input", 6.4), (5.0, 5.0), ("0.05/input", 3.2)])
def test_norm_is_a_sum_or_per_input_and_applies_before_training(norm, total):
    learner = build(compose_cfg([*TINY["diehl_cook"], "dataset=digits", f"learner.norm={norm}",
                                 "deploy.num_threads=1"])).learner
    sums = learner.layers[0].weight.detach().sum(1)
    assert torch.allclose(sums, torch.full_like(sums, total), rtol=1e-6)


@pytest.mark.parametrize("norm", ["0.1/pixel", "abc/input", -1.0, "-2/input"])
def test_a_bad_norm_names_the_key(norm):
    with pytest.raises(ConfigError, match="learner.norm"):
        build(compose_cfg([*TINY["diehl_cook"], "dataset=digits", f"learner.norm={norm}", "deploy.num_threads=1"]))


def test_rate_boost_without_the_protocol_is_refused():
    cfg = compose_cfg([*TINY["diehl_cook"], "dataset=digits", "learner.min_spikes=null", "learner.rate_boost=0.1",
                       "deploy.num_threads=1"])
    with pytest.raises(ConfigError, match="learner.rate_boost=0.1 has no effect"):
        build(cfg, ["learner.min_spikes=null", "learner.rate_boost=0.1"])


# -- labelling from a held-out part of the training data ----------------------------------------------
def _labelling_learner(label_from: str):
    learner = build(compose_cfg([*TINY["diehl_cook"], "dataset=digits", "T=30", "learner.min_spikes=null",
                                 f"learner.label_from={label_from}", "learner.label_samples=12",
                                 "deploy.num_threads=1"])).learner
    g = torch.Generator().manual_seed(0)
    train = DataLoader(TensorDataset(torch.rand(12, 1, 8, 8, generator=g), torch.arange(12) % 10), batch_size=5)
    val = DataLoader(TensorDataset(torch.rand(12, 1, 8, 8, generator=g), (torch.arange(12) + 3) % 10), batch_size=5)
    return learner, SimpleNamespace(train_dataloader=lambda: train, val_dataloader=lambda: val,
                                    split_sizes=lambda: {"train": 12, "val": 12}), train, val


@pytest.mark.parametrize("label_from", ["train", "val"])
def test_labels_come_from_the_split_label_from_names(label_from, monkeypatch):
    from snnexp.learners.stdp import STDP
    from snnexp.models.readouts import assign_labels

    learner, dm, train, val = _labelling_learner(label_from)
    monkeypatch.setattr(STDP, "trainer", property(lambda self: SimpleNamespace(datamodule=dm)))
    learner.assign_labels()
    gen = torch.Generator().manual_seed(learner.seed + 2)
    source = val if label_from == "val" else train
    counts = torch.cat([learner.present(x, gen)[1] for x, _ in source])
    expected, _ = assign_labels(counts, source.dataset.tensors[1], 10)
    assert counts.sum() > 0 and torch.equal(learner.readout.assignments, expected)


def test_labelling_from_val_needs_a_validation_split(monkeypatch):
    from snnexp.learners.stdp import STDP

    learner, dm, _, _ = _labelling_learner("val")
    dm.split_sizes = lambda: {"train": 12, "val": 0}
    monkeypatch.setattr(STDP, "trainer", property(lambda self: SimpleNamespace(datamodule=dm)))
    with pytest.raises(ConfigError, match="learner.label_from.*dataset.val_fraction"):
        learner.on_fit_start()
    with pytest.raises(ConfigError, match="learner.label_from"):
        _labelling_learner("test")
