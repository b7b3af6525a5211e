"""STDP and gradient descent in one training step (SpikingJelly's STDP + gradient example).

The spiking conv/linear layers chosen by `stdp_layers` learn by STDP; every other parameter
(the readout, BatchNorm, PLIF's tau, ...) by the optimizer on the BPTT loss. Both changes are
made in `training_step`, in plain sight: backward and optimizer step for the gradient part, then
w += dw (clamped to [w_min, w_max]) under no_grad for the STDP part. The STDP weights are left out
of the optimizer and take no gradient (requires_grad=False), so no hook writes into `.grad`.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import torch
from torch import Tensor

from snnexp.errors import check
from snnexp.learners.base import configure, plain
from snnexp.learners.bptt import BPTT
from snnexp.learners.plastic import Plastic, Recorder, plastic_layers
from snnexp.rules.stdp import STDPParams, apply_dw_, check_params, normalise_, stdp_sequence

WORKS_WITH = "learner=hybrid works with model=csnn and model=mlp (a spiking conv/linear layer before the readout)"


class Hybrid(BPTT):
    """BPTT's loss, metrics and optimizer for all but the STDP layers; STDP for those.

    stdp_layers: indices into the model's plastic layers before the readout (null: all of them).
    stdp: the rule (`STDPParams` fields). norm: incoming-weight sum after each update (null: off).
    """

    name = "hybrid"

    def __init__(
        self,
        model: torch.nn.Module,
        encoder: Callable[..., Tensor],
        num_classes: int,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        loss: str = "ce",
        stdp: Mapping[str, float | str] | None = None,  # STDPParams fields (reduce is a str)
        stdp_layers: Sequence[int] | None = None,
        norm: float | None = None,
        seed: int = 0,
        memory: str = "full",
        memory_steps: int | None = None,
    ):
        super().__init__(model, encoder, num_classes, optimizer, scheduler, loss, seed, memory=memory,
                         memory_steps=memory_steps)
        self.save_hyperparameters(plain(dict(num_classes=int(num_classes), loss=loss, seed=int(seed), stdp=stdp,
                                             stdp_layers=stdp_layers, norm=norm, memory=memory,
                                             memory_steps=memory_steps)), logger=False)
        self.automatic_optimization = False
        hidden = [p for p in plastic_layers(model) if not p.is_output]
        check(len(hidden) > 0, "learner", "hybrid", f"{type(model).__name__} has no spiking conv/linear layer "
              f"before its readout; {WORKS_WITH}")
        chosen = range(len(hidden)) if stdp_layers is None else [int(i) for i in stdp_layers]
        check(all(0 <= i < len(hidden) for i in chosen), "learner.stdp_layers", list(chosen),
              f"indices into the {len(hidden)} STDP-capable layers ({[p.name for p in hidden]})")
        self.layers: list[Plastic] = [hidden[i] for i in chosen]
        self.rule = check_params(STDPParams(**dict(stdp or {})))
        self.norm = None if norm is None else float(norm)
        for layer in self.layers:
            layer.weight.requires_grad_(False)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        x_seq = self.encoder(x, generator=self.generator("train"))
        # gradient part: every parameter but the STDP weights (learner.memory: tbptt and online
        # backpropagate each window inside train_forward; outside the recorder, checkpoint's recomputation
        # in the backward records nothing)
        opt = self.optimizers()
        opt.zero_grad()
        with Recorder(self.layers, x_seq.shape[0]) as rec:
            out_seq, loss = self.train_forward(x_seq, y, self.manual_backward)
        if not self.windowed:
            self.manual_backward(loss)
        opt.step()
        # STDP part: the recorded spikes of this same forward pass
        with torch.no_grad():
            for layer in self.layers:
                pre, post = rec.pre_post(layer)
                apply_dw_(layer.weight, stdp_sequence(pre, post, layer.weight, self.rule, layer.conv), self.rule)
                if self.norm is not None:
                    normalise_(layer.weight, self.norm, self.rule.w_max)
        self.log_step("train", out_seq.mean(0), loss, y)
        return loss

    def on_train_epoch_end(self) -> None:
        sched = self.lr_schedulers()
        if sched is not None:
            sched.step()

    def configure_optimizers(self):
        return configure(self.optimizer_factory, self.scheduler_factory, (p for p in self.parameters() if p.requires_grad))
