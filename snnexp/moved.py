"""Config keys that moved to another group: set in the old place, they are refused with one message
naming the new key (the command line, `snnexp.compose`, and any config file, through typecheck).

The STDP rule, the weight normalisation, the teacher and Diehl & Cook's presentation protocol were
keys of model=diehl_cook and model=wta; they are learner=stdp's (conf/learner/stdp.yaml), and no
model takes them (tests/learners/test_stdp_keys.py checks that, so refusing them under `model.` is never
wrong). ann2snn's method keys were flat learner keys; each method object has its own now.
"""
from __future__ import annotations

from typing import Iterable

from snnexp.errors import ConfigError

MOVED = {  # the STDP learner's keys, once the models' (model=diehl_cook, model=wta)
    "model.stdp": "learner.stdp",
    "model.w_min": "learner.stdp.w_min",
    "model.w_max": "learner.stdp.w_max",
    "model.norm": "learner.norm",
    "model.norm_cap": "learner.norm_cap",
    "model.teacher_spikes": "learner.teacher_spikes",
    "model.min_spikes": "learner.min_spikes",
    "model.rate_boost": "learner.rate_boost",
    "model.max_boosts": "learner.max_boosts",
}
WHY = ("how the plastic layers learn (the STDP rule, weight normalisation, teacher, presentation protocol) "
       "is learner=stdp's, not the model's")
# ann2snn's method keys, once flat learner keys: each method (learner/method=rate|qcfs|calibrate) has its own
MOVED_ANN2SNN = {
    "learner.levels": "learner.method.levels",
    "learner.qcfs_threshold": "learner.method.threshold",
    "learner.calibration": "learner.method.mode",
    "learner.calib_samples": "learner.method.samples",
    "learner.calib_iters": "learner.method.iters",
    "learner.calib_lr": "learner.method.lr",
}
WHY_ANN2SNN = "a conversion method's keys are its own (learner/method=qcfs or calibrate selects it)"
TABLES = ((MOVED, WHY), (MOVED_ANN2SNN, WHY_ANN2SNN))


def _move(key: str) -> tuple[str, str] | None:
    """(the key that replaced `key`, why), e.g. model.stdp.lr_post -> learner.stdp.lr_post; None if it did not move."""
    for table, why in TABLES:
        for old, new in table.items():
            if key == old or key.startswith(old + "."):
                return new + key[len(old):], why
    return None


def moved_error(key: str, value: str | None = None) -> ConfigError | None:
    """The one refusal of a moved `key` (with the value the user gave, if any), or None."""
    move = _move(key)
    if move is None:
        return None
    new, why = move
    setting = new if value is None else f"{new}={value}"
    return ConfigError(f"{key} is now {new}: {why}; set {setting}")


def refuse_moved(overrides: Iterable[str]) -> None:
    """Raise the ConfigError of the first override (`key=value`, `+key=...`, `~key`) that sets a moved key."""
    for item in overrides:
        key, sep, value = str(item).lstrip("+~").partition("=")
        error = moved_error(key, value if sep else None)
        if error is not None:
            raise error
