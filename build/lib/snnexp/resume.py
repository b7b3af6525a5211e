"""Continue an interrupted run from its checkpoints/last.ckpt: `python run.py resume=<run dir>`.

The resumed run gets a new run dir (the old one stays as it was), takes the old
run's saved config (.hydra/config.yaml) plus any key=value overrides given
with `resume` (e.g. trainer.max_epochs=30), restores model, optimizer,
scheduler and loop state from the checkpoint, and starts its metrics.csv with
the old run's rows up to the checkpointed epoch, so the curves are continuous.
"""
from __future__ import annotations

import csv
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf, open_dict

from snnexp.errors import ConfigError


def resume_config(cfg: DictConfig, overrides: list[str]) -> tuple[DictConfig, Path]:
    """(the old run's config with `overrides` applied, its last checkpoint)."""
    old_dir = Path(cfg.resume)
    saved, ckpt = old_dir / ".hydra" / "config.yaml", old_dir / "checkpoints" / "last.ckpt"
    for needed in (saved, ckpt):
        if not needed.is_file():
            raise ConfigError(f"resume={cfg.resume!r} is invalid: {needed} does not exist; "
                              f"give the run dir of an earlier run (it holds .hydra/ and checkpoints/)")
    old = OmegaConf.load(saved)
    for override in OverridesParser.create().parse_overrides(overrides):
        key = override.key_or_group
        if key == "resume" or key.startswith("hydra."):
            continue
        if override.is_sweep_override() or isinstance(OmegaConf.select(old, key), DictConfig):
            raise ConfigError(f"{override.input_line} is not allowed with resume: a resumed run keeps its saved "
                              f"config groups; only key=value overrides such as trainer.max_epochs=30 apply")
        OmegaConf.update(old, key, override.value(), force_add=True)
    with open_dict(old):
        old.resume = str(old_dir)
    return old, ckpt


def prepend_metrics(old_csv: Path, new_csv: Path) -> None:
    """Put the old run's rows in front of the new run's metrics.csv, up to the epoch the new run
    started from (rows of an epoch cut short by the interruption are dropped: it ran again)."""
    if not old_csv.is_file():
        return
    new_rows = _read(new_csv) if new_csv.is_file() else []
    first_new = min((_epoch(r) for r in new_rows if _epoch(r) is not None), default=None)
    old_rows = [r for r in _read(old_csv) if _epoch(r) is not None and (first_new is None or _epoch(r) < first_new)]
    fields: list[str] = []
    for row in old_rows + new_rows:
        fields += [k for k in row if k not in fields]
    with open(new_csv, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=sorted(fields))
        writer.writeheader()
        writer.writerows(old_rows + new_rows)


def _epoch(row: dict[str, str]) -> int | None:
    value = row.get("epoch")
    return None if value in (None, "") else int(float(value))


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))
