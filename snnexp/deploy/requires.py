"""What a deploy target needs of the other groups' values, applied to the composed config by one rule.

A target declares them on its class (`Target.requires`, e.g. LoihiTarget: model.bias=false).
`apply_requirements` sets each one in the config, so `deploy=loihi` alone trains a bias-free
model; a value the user set on the command line that contradicts one is refused before any work,
naming both; a part without that key (model=diehl_cook has no `bias`) has nothing to set.
A target's choice of another group's *option* (deploy=loihi selects model=mlp) is a defaults
entry of its YAML file instead, `- override /model@_global_.model: mlp`, which the command line
overrides (`deploy=loihi model=csnn`); Hydra applies it only to a group listed before the
target's in conf/config.yaml, and refuses one listed after. The values here do not depend on that
order: they are set after composition, over the groups' files and presets alike.

It runs where a config is composed (snnexp.compose, and experiment.run for `python run.py`'s
config), so .hydra/config.yaml records the values the run used.
"""
from __future__ import annotations

import copy
from typing import Any, Mapping, Sequence

from hydra.utils import get_object
from omegaconf import DictConfig, OmegaConf, open_dict

from snnexp.deploy.base import Target
from snnexp.errors import ConfigError


def apply_requirements(cfg: DictConfig, overrides: Sequence[str] = (),
                       choices: Mapping[str, Any] | None = None) -> DictConfig:
    """`cfg` with the values its deploy target requires set (a copy; `cfg` itself when none changes).

    `overrides`: the command line's (`key=value`, `+key=value`, `~key`): a required key set there to
    another value raises ConfigError. `choices`: the option chosen in each group, for the message.
    """
    try:
        target = get_object(cfg.deploy._target_)
    except ImportError as e:  # as snnexp.typecheck says it, before anything reads the config
        raise ConfigError(f"deploy._target_={cfg.deploy._target_!r} is invalid: it cannot be imported ({e})") from None
    requires = target.requires if isinstance(target, type) and issubclass(target, Target) else {}
    user_set = {item.lstrip("+~").split("=", 1)[0]: item for item in overrides}
    where = f"deploy={choices['deploy']}" if choices and choices.get("deploy") else f"deploy ({cfg.deploy._target_})"
    changed = cfg
    for key, required in requires.items():
        parent, _, leaf = key.rpartition(".")
        node = OmegaConf.select(cfg, parent)
        if not isinstance(node, DictConfig) or leaf not in node or node[leaf] == required.value:
            continue
        wanted = f"{key}={_yaml(required.value)}"
        if key in user_set:
            raise ConfigError(f"{user_set[key]} cannot run with {where}: {required.why}, so it needs {wanted} "
                              f"(set by itself when {key} is not given); remove {user_set[key]}")
        if changed is cfg:
            changed = copy.deepcopy(cfg)
        with open_dict(changed):
            OmegaConf.update(changed, key, required.value, merge=False)
    return changed


def _yaml(value: Any) -> str:
    """A value as it is written on the command line (false, not False)."""
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
