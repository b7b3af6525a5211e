"""What every learner offers the experiment, declared once: the base class of bptt, stdp, hybrid, ann2snn.

A learner is a LightningModule holding `.model` (a SpikingModel) and `.encoder`. The experiment
uses, besides Lightning's hooks:
- `generator(stage)`: the encoder's explicit torch.Generator (training draws from one stream;
  evaluation from another, re-seeded every evaluation, so it sees the same input spikes each time);
- `extra_results(run_dir) -> dict` merged into results.json after testing, and
  `extra_plots(run_dir) -> [png paths]` (both empty by default);
- `unused_keys()`: keys of its config group this run does not use (the experiment refuses them
  when the user sets them, instead of ignoring them silently);
- `unused_groups`: the config groups it does not use, each with why (ann2snn encodes its input
  itself and converts to its own neuron): the `encoding` group is then not built, and choosing an
  option or setting a key of any of them is refused, by one rule (snnexp.experiment.build);
- `check_setup(trainer_cfg)`: before training, refuses Trainer options it cannot honour and builds
  its optimizer once, so a bad `learner.optimizer` value stops the run at once;
- `deployed_model()`: the spiking network a deploy target will get after training, so the target
  can refuse it before training (ann2snn: the conversion of its untrained ANN).
A model that only some learners can train names them in `SpikingModel.learners`; the check is here.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, Mapping

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf

from snnexp.errors import ConfigError, check

OptimizerFactory = Callable[..., torch.optim.Optimizer]
SchedulerFactory = Callable[..., Any]


class Learner(pl.LightningModule):
    """Base class: the model check, seeded encoder generators and the optional result hooks."""

    name: ClassVar[str]  # the option name in snnexp/conf/learner/ (what SpikingModel.learners lists)
    unused_groups: ClassVar[dict[str, str]] = {}  # group -> why this learner does not use it
    streams: ClassVar[dict[str, int]] = {"train": 0, "eval": 1}  # random stream -> its seed offset

    def __init__(self, model: torch.nn.Module, encoder: Any, seed: int = 0):
        super().__init__()
        accepted = getattr(type(model), "learners", None)
        check(accepted is None or self.name in accepted, "learner", self.name,
              f"model {type(model).__name__} trains with learner={'|'.join(accepted or ())} only")
        self.model = model
        self.encoder = encoder
        self.seed = int(seed)
        self._generators: dict[str, torch.Generator] = {}

    def generator(self, stage: str) -> torch.Generator:
        """The generator of `stage`'s stream (`streams`; "val" and "test" share "eval"), on the learner's device."""
        key = stage if stage in self.streams else "eval"
        gen = self._generators.get(key)
        if gen is None or gen.device != self.device:
            gen = torch.Generator(device=self.device)
            gen.manual_seed(self.seed + self.streams[key])
            self._generators[key] = gen
        return gen

    def reseed_evaluation(self) -> None:
        """The next evaluation encodes from the start of its stream again (same spikes every time)."""
        self._generators.pop("eval", None)

    def unused_keys(self) -> set[str]:
        """Keys of `learner.*` that this run ignores (the experiment refuses them when set by the user)."""
        return set()

    def restored(self, datamodule: pl.LightningDataModule) -> None:
        """After a checkpoint was loaded into a fresh learner (snnexp.load): rebuild what a checkpoint
        does not hold. Nothing by default; ann2snn converts its trained ANN again."""

    def check_setup(self, trainer: Mapping[str, Any]) -> None:
        """Before training: refuse Trainer options (`trainer`: the trainer group) this learner cannot
        honour, and build its optimizer once, so a bad optimizer value fails now, by name."""
        if not self.automatic_optimization:  # Lightning clips and accumulates automatic steps only
            for key, off in (("gradient_clip_val", (None, 0)), ("accumulate_grad_batches", (None, 1))):
                check(trainer.get(key) in off, f"trainer.{key}", trainer.get(key),
                      f"learner={self.name} updates its weights itself (manual optimization), so Lightning cannot "
                      f"apply it: remove it")
        self.configure_optimizers()

    def steps_kept(self, T: int) -> int:
        """Time steps of activations a training step keeps at once (snnexp.capacity's estimate):
        none by default (evaluation and local rules free each step's); BPTT keeps all T."""
        return 0

    def memory_advice(self) -> str:
        """What else to try when a run's activations will not fit (snnexp.capacity's message)."""
        return ""

    def deployed_model(self) -> torch.nn.Module:
        """The spiking network that training produces, as a deploy target will receive it."""
        return self.model

    def extra_results(self, run_dir: Path) -> dict[str, Any]:
        return {}

    def extra_plots(self, run_dir: Path) -> list[Path]:
        return []


def plain(value: Any) -> Any:
    """Hydra containers (DictConfig, ListConfig) as plain dicts and lists; other values unchanged.

    Checkpoints must load with torch.load(weights_only=True) (resume), which refuses omegaconf objects.
    """
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def configure(optimizer: OptimizerFactory, scheduler: SchedulerFactory | None, params: Iterable) -> Any:
    """`configure_optimizers`' answer: the optimizer over `params`, with its epoch-wise scheduler if any.

    A value torch refuses (`learner.optimizer.lr=-1`) is a ConfigError naming the group and the values.
    """
    opt = _build("learner.optimizer", optimizer, params=list(params))
    if scheduler is None:
        return opt
    return {"optimizer": opt, "lr_scheduler": {"scheduler": _build("learner.scheduler", scheduler, opt),
                                               "interval": "epoch"}}


def _build(key: str, factory: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return factory(*args, **kwargs)
    except ValueError as e:  # torch's own range checks (types and names: snnexp.typecheck, before)
        what = getattr(getattr(factory, "func", factory), "__qualname__", repr(factory))
        values = ", ".join(f"{k}={v!r}" for k, v in getattr(factory, "keywords", {}).items())
        raise ConfigError(f"{key} ({what}: {values}) is invalid: torch refuses it ({e}); "
                          f"fix the value under {key}") from None
