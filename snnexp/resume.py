"""Continue an interrupted run from its checkpoints/last.ckpt: `python run.py resume=<run dir>`.

The resumed run gets a new run dir (the old one stays as it was), takes the old
run's saved config (.hydra/config.yaml) plus any key=value overrides given
with `resume` (e.g. trainer.max_epochs=30), restores model, optimizer,
scheduler and loop state from the checkpoint, and starts its metrics.csv with
the old run's rows up to the checkpointed epoch, so the curves are continuous. It records the
old run's config group choices (not the new command line's), and saves the config it really runs
as its own .hydra/config.yaml (snnexp.context.RunContext), so a resumed run can be resumed again.
"""
from __future__ import annotations

import csv
import pickle
import zipfile
from pathlib import Path

import torch
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
    check_checkpoint(ckpt, cfg.resume)
    try:
        old = OmegaConf.load(saved)
    except Exception as e:  # yaml's ParserError/ScannerError, OmegaConf's own: the file was edited or cut short
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"resume={cfg.resume!r} is invalid: {saved} cannot be read ({first}); it is corrupt: "
                          f"restore it, or start the run again") from None
    if not isinstance(old, DictConfig):
        raise ConfigError(f"resume={cfg.resume!r} is invalid: {saved} does not hold a config (a mapping); restore it, "
                          f"or start the run again")
    for override in OverridesParser.create().parse_overrides(overrides):
        key = override.key_or_group
        if key == "resume" or key.startswith("hydra."):
            continue
        if override.is_sweep_override() or override.is_delete() or isinstance(OmegaConf.select(old, key), DictConfig):
            raise ConfigError(f"{override.input_line} is not allowed with resume: a resumed run keeps its saved "
                              f"config groups; only key=value overrides such as trainer.max_epochs=30 apply")
        adding = override.is_add() or override.is_force_add()
        if not adding and OmegaConf.select(old, key, default=_ABSENT) is _ABSENT:
            raise ConfigError(f"{override.input_line} is not allowed with resume: {key} is not a key of the resumed "
                              f"run's config ({saved}); check the spelling (a new key needs a leading +)")
        OmegaConf.update(old, key, override.value(), force_add=adding)
    with open_dict(old):
        old.resume = str(old_dir)
    return old, ckpt


_ABSENT = object()


def check_checkpoint(ckpt: Path, resume: str) -> None:
    """ConfigError naming the file unless `ckpt` loads as resume will load it (torch, weights_only)."""
    try:
        torch.load(ckpt, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"resume={resume!r} is invalid: {ckpt} cannot be read ({first}); it is truncated or "
                          f"corrupt: resume from a run whose checkpoint is intact, or start the run again") from None


def check_shapes(ckpt: Path, module: torch.nn.Module, resume: str, overrides: list[str]) -> None:
    """ConfigError unless every tensor of the checkpoint fits `module` (the resumed run, built): a key
    that changes a shape (model.channels, the dataset's image size, ...) cannot change on resume."""
    saved = torch.load(ckpt, map_location="cpu", weights_only=True, mmap=True).get("state_dict", {})  # shapes only
    now = module.state_dict()
    for name, tensor in saved.items():
        if name in now and tuple(now[name].shape) != tuple(tensor.shape):
            changed = [o for o in overrides if not o.split("=", 1)[0].lstrip("+~").startswith(("resume", "hydra."))]
            raise ConfigError(f"resume={resume!r}: {' '.join(changed) or 'the config'} changes the shape of {name} "
                              f"(checkpoint {list(tensor.shape)}, now {list(now[name].shape)}); a resumed run "
                              f"cannot change the network's shape keys: drop the override, or start a new run")


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
