"""Every option of every config group composes and instantiates."""
import re

import pytest
import torch
import yaml
from hydra.utils import instantiate

import snnexp
from snnexp.errors import ConfigError
from snnexp.experiment import build
from tests.helpers import CONF, compose_cfg, options

GROUPS = ["dataset", "encoding", "neuron", "neuron/surrogate", "model", "learner", "learner/optimizer",
          "learner/scheduler", "learner/method", "learner/method/base", "deploy", "trainer", "logger"]
CASES = [(g, o) for g in GROUPS for o in options(g)]
# Options (or every option of a group) that need other groups changed too: composed with these extra overrides.
NEEDS = {
    "deploy=loihi": ["deploy.run_lava=false"],  # no Lava venv needed here (tests/deploy/test_loihi_lava.py)
    "encoding=frames": ["dataset=nmnist"],
    "learner/method": ["learner=ann2snn"],  # the conversion methods are ann2snn's
    "learner/method/base": ["learner=ann2snn", "learner/method=calibrate"],  # what calibrate calibrates
}


def test_every_group_has_options():
    for group in GROUPS:
        assert options(group), f"snnexp/conf/{group} is empty"
    top = {p.name for p in CONF.iterdir() if p.is_dir()}
    assert top <= set(GROUPS) | {"experiment", "neuron", "hparams_search", "hydra"}, f"a group no test covers: {top}"


def test_sweep_configs_compose():
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        for launcher in options("hydra/launcher"):
            cfg = compose("config", overrides=[f"hydra/launcher={launcher}"], return_hydra_config=True)
            assert cfg.hydra.launcher._target_.startswith("hydra_plugins.")
        metric = {"bptt_optuna": "val/acc", "diehl_cook_optuna": "stdp/val_acc"}  # what each one's runs report
        assert set(options("hparams_search")) == set(metric)
        for search in options("hparams_search"):
            cfg = compose("config", overrides=[f"hparams_search={search}"], return_hydra_config=True)
            assert cfg.hydra.sweeper.direction == "maximize" and cfg.optimized_metric == metric[search]


@pytest.mark.parametrize("group, option", CASES, ids=[f"{g}={o}" for g, o in CASES])
def test_option_instantiates(group, option, tmp_path):
    overrides = [*NEEDS.get(group, []), f"{group}={option}", *NEEDS.get(f"{group}={option}", [])]
    cfg = compose_cfg(overrides + (["deploy.num_threads=1"] if group != "deploy" else []))
    if group == "deploy" and option == "gpu" and not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="deploy=gpu needs a CUDA GPU"):
            build(cfg)
        return
    parts = build(cfg)
    assert parts.model(torch.zeros(cfg.T, 2, *parts.datamodule.in_shape)).shape == (cfg.T, 2, parts.datamodule.num_classes)
    check_optimizer(parts.learner)
    instantiate(cfg.trainer, logger=False, enable_checkpointing=False, **parts.target.trainer_kwargs())
    for logger_cfg in cfg.logger.values():
        instantiate(logger_cfg, save_dir=tmp_path)


def check_optimizer(learner) -> None:
    """A learner either optimizes some of its trainable parameters and nothing else, or (STDP) has no
    optimizer and nothing that takes gradients."""
    configured = learner.configure_optimizers()
    trainable = {id(p) for p in learner.parameters() if p.requires_grad}
    if configured is None:
        assert not trainable, "no optimizer, but parameters that take gradients"
        return
    opt = configured["optimizer"] if isinstance(configured, dict) else configured
    optimized = {id(p) for g in opt.param_groups for p in g["params"]}
    assert optimized and optimized <= trainable


@pytest.mark.parametrize("learner", ["bptt", "hybrid", "ann2snn"])
def test_optimizer_and_scheduler_groups_reach_every_gradient_learner(learner):
    """learner/optimizer and learner/scheduler pick the classes; lr and weight_decay stay the learner's keys."""
    cfg = compose_cfg([f"learner={learner}", "learner/optimizer=sgd", "learner/scheduler=step",
                       "learner.optimizer.lr=0.05", "learner.scheduler.step_size=3", "deploy.num_threads=1"])
    configured = build(cfg).learner.configure_optimizers()
    opt, sched = configured["optimizer"], configured["lr_scheduler"]["scheduler"]
    assert type(opt).__name__ == "SGD" and opt.defaults["lr"] == 0.05 and opt.defaults["momentum"] == 0.9
    assert type(sched).__name__ == "StepLR" and sched.step_size == 3


def test_surrogate_group_reaches_every_neuron():
    for neuron in options("neuron"):
        cfg = compose_cfg([f"neuron={neuron}", "neuron/surrogate=triangle", "neuron.surrogate.alpha=0.5"])
        layer = instantiate(cfg.neuron)()
        assert type(layer.surrogate).__name__ == "Triangle" and layer.surrogate.alpha == 0.5


def implied_choices(group: str, option: str) -> dict[str, str]:
    """The options of other groups an option selects: its `override /<g>@_global_.<g>: <x>` defaults entries."""
    entries = yaml.safe_load((CONF / group / f"{option}.yaml").read_text()).get("defaults", [])
    found = {}
    for entry in entries:
        for key, value in (entry.items() if isinstance(entry, dict) else ()):  # e.g. learner/stdp's `${model}` stays text
            match = re.fullmatch(r"override /([\w/]+)@_global_\.([\w.]+)", key)
            if match:
                found[match[1]] = value
    return found


IMPLYING = [(g, o, implied_choices(g, o)) for g in GROUPS for o in options(g) if implied_choices(g, o)]


def test_no_option_outside_presets_writes_other_groups():
    """An option's file holds its own group's keys: `@package _global_` is for presets and searches only."""
    outside = [str(p.relative_to(CONF)) for p in CONF.rglob("*.yaml") if "@package _global_" in p.read_text()
               and p.relative_to(CONF).parts[0] not in ("experiment", "hparams_search")]
    assert outside == []
    assert {f"{g}={o}" for g, o, _ in IMPLYING} >= {"model=wta", "deploy=loihi", "dataset=shd"}


@pytest.mark.parametrize("group, option, implied", IMPLYING, ids=[f"{g}={o}" for g, o, _ in IMPLYING])
def test_an_option_selects_what_it_implies_and_the_command_line_chooses_over_it(group, option, implied):
    choices = snnexp.compose([f"{group}={option}"]).hydra.runtime.choices
    assert {g: choices[g] for g in implied} == implied
    for g, x in implied.items():
        other = next(o for o in options(g) if o != x)
        for args in ([f"{group}={option}", f"{g}={other}"], [f"{g}={other}", f"{group}={option}"]):
            assert snnexp.compose(args).hydra.runtime.choices[g] == other
