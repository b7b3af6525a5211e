"""STDP as a Lightning learner: no optimizer, weight changes applied under no_grad.

Works with every model that has a plastic layer (`snnexp.learners.plastic`):
- model=diehl_cook: unsupervised STDP on the input weights; after each training epoch the
  excitatory neurons are labelled from `label_samples` images (no plasticity) of the training split
  or of the validation split held out of it (`label_from`), and the model's readout predicts from
  those labels.
- model=wta: the output layer learns with a teacher (the correct class's neurons fire
  `teacher_spikes` times per sample); per-class thresholds come from the training set's
  mean input activity per class before training.
- model=csnn / mlp (readout=spikes): every hidden conv/linear layer learns unsupervised by STDP
  (its weights clamped to [w_min, w_max]), BatchNorm tracks its statistics by forward passes, and
  the output layer learns supervised by STDP with the teacher (`teacher_spikes` per sample).
  Neuron parameters such as PLIF's tau stay fixed (nothing here takes gradients).
"""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch import Tensor
from torchmetrics.classification import MulticlassAccuracy

from snnexp.errors import check
from snnexp.learners.base import Learner, plain
from snnexp.learners.evaluation import EncodingAndActivity
from snnexp.learners.plastic import Plastic, Recorder, fixed_synapses, plastic_layers
from snnexp.learners.progress import Progress
from snnexp.rules.stdp import (STDPParams, apply_dw_, apply_rows_, check_params, norm_total, normalise_,
                               stdp_events, stdp_sequence)
from snnexp.metrics.activity import ActivityMonitor
from snnexp.models.base import AdaptiveThresholds, ClassThresholds, EventDriven
from snnexp.neurons.fused.inhibited_alif import LayerEvents
from snnexp.learners.stdp_parts import best_sample_mask, readout_of, teacher_spikes, weight_plot  # noqa: F401

log = logging.getLogger(__name__)

LABEL_FROM = ("train", "val")
WORKS_WITH = "learner=stdp works with model=diehl_cook (neuron=alif), model=wta, model=csnn and model=mlp (model.readout=spikes)"


class STDP(EncodingAndActivity, Learner):
    """Trains `model`'s plastic layers by trace STDP (`stdp_sequence`, weights fixed within a batch,
    the batch's changes summed), then clamps and optionally normalises them.

    Every key of how the plastic layers learn is here, once: `stdp` is the rule (`STDPParams`
    fields); `stdp_output` replaces some of its values for a taught output layer (csnn, mlp; null:
    none). `norm`: each neuron's incoming weights sum to this before training and after every
    update (a number, "<x>/input", or null: off; `norm_cap`: a ceiling only, rows are only scaled
    down). `teacher_spikes`: the correct class's spikes per sample in a taught output layer;
    `punish_wrong`: there the wrong classes' own spikes enter the rule with a minus sign (their
    active inputs are depressed). `min_spikes` / `rate_boost` / `max_boosts`: Diehl & Cook's
    presentation protocol (`present`; null: every sample is shown once). Their defaults per model
    are in conf/learner/stdp_defaults/<model>.yaml (diehl_cook: BindsNET's PostPre rule, the sum
    78.4 per 784 inputs and the paper's re-presentation; wta: the seed's rule with a teacher).
    `one_sample_per_neuron`: each post neuron learns only from the sample of the batch in which it
    fired most (`best_sample_mask`; null: only for models read out by label assignment). Logs
    val/test accuracy, train/val/test firing rates and test SynOps.
    An `EventDriven` model (diehl_cook) runs its plastic layer as events (`run_events`) and learns
    from them (`learn_events`: `stdp_events`, only the rows of neurons that spiked), equal to the
    recorded dense path to rounding. `label_samples` / `label_from` (label-assignment models): the
    neurons are labelled from the first `label_samples` images of the training split ("train") or of
    the validation split held out of the training data ("val": images STDP never saw).
    `record_every` / `record_samples`: `Progress` rows of validation accuracy, winners and theta
    against training images seen.
    """

    name = "stdp"

    def __init__(
        self,
        model: torch.nn.Module,
        encoder: Callable[..., Tensor],
        num_classes: int,
        stdp: Mapping[str, float | str] | None = None,  # STDPParams fields (reduce is a str)
        stdp_output: Mapping[str, float | str] | None = None,  # STDPParams fields (reduce is a str)
        norm: float | str | None = None,
        norm_cap: bool = False,
        teacher_spikes: int = 4,
        min_spikes: int | None = None,
        rate_boost: float = 0.032,
        max_boosts: int = 20,
        label_samples: int = 1000,
        label_from: str = "train",
        one_sample_per_neuron: bool | None = None,
        punish_wrong: bool = False,
        record_every: int | None = None,
        record_samples: int = 1000,
        seed: int = 0,
    ):
        super().__init__(model, encoder, seed)
        self.automatic_optimization = False
        self.save_hyperparameters(plain(dict(
            num_classes=int(num_classes), stdp=stdp, stdp_output=stdp_output, norm=norm, norm_cap=norm_cap,
            teacher_spikes=teacher_spikes, min_spikes=min_spikes, rate_boost=rate_boost, max_boosts=max_boosts,
            label_samples=label_samples, label_from=label_from, one_sample_per_neuron=one_sample_per_neuron,
            punish_wrong=punish_wrong, record_every=record_every, record_samples=record_samples, seed=int(seed))),
            logger=False)
        self.num_classes = int(num_classes)
        self.layers: list[Plastic] = plastic_layers(model)
        check(len(self.layers) > 0, "learner", "stdp", f"{type(model).__name__} has no STDP-capable layer "
              f"(a Linear/Conv2d followed by a spiking neuron); {WORKS_WITH}")
        if fixed := fixed_synapses(model):
            log.warning("learner=stdp trains %s and leaves %s as initialised: recurrent synapses and synapses "
                        "that feed a residual join are not plastic here", [p.name for p in self.layers], fixed)
        self.readout = readout_of(model)
        check(self.readout is not None or self.layers[-1].is_output,
              "model.readout", getattr(model, "readout", None), f"its output layer is not spiking; {WORKS_WITH}")
        self.rule = check_params(STDPParams(**dict(stdp or {})))
        # the taught output layer of csnn/mlp may learn faster than the unsupervised hidden layers
        self.rule_output = self.rule if not stdp_output else check_params(
            STDPParams(**{**dict(stdp or {}), **dict(stdp_output)}), "learner.stdp_output")
        self.norm, self.norm_cap = norm, bool(norm_cap)
        # the sum each layer's rows keep, from its fan-in ("<x>/input"); None: off
        self.norm_totals = {p.name: norm_total(norm, p.weight[0].numel()) for p in self.layers}
        check(int(teacher_spikes) >= 1, "learner.teacher_spikes", teacher_spikes, "must be >= 1 spikes per sample")
        self.teacher_spikes = int(teacher_spikes)
        check(min_spikes is None or int(min_spikes) >= 1, "learner.min_spikes", min_spikes, "must be null or >= 1")
        check(float(rate_boost) > 0 and int(max_boosts) >= 1, "learner.rate_boost", (rate_boost, max_boosts),
              "rate_boost must be > 0 and max_boosts >= 1")
        self.min_spikes = None if min_spikes is None else int(min_spikes)
        self.rate_boost = float(rate_boost)
        self.max_boosts = int(max_boosts) if self.min_spikes is not None else 0  # no protocol: one showing
        check(self.min_spikes is None or (encoder is not None and encoder.rate_coded),
              "learner.min_spikes", self.min_spikes, f"re-showing weak samples at a higher rate needs a rate code "
              f"(encoding=poisson), not {type(encoder).__name__}; set learner.min_spikes=null")
        check(label_from in LABEL_FROM, "learner.label_from", label_from,
              f"choose one of {list(LABEL_FROM)} (the training split, or the validation split held out of it)")
        self.label_from = label_from
        check(int(label_samples) >= 1, "learner.label_samples", label_samples, "must be >= 1 training images")
        self.label_samples = int(label_samples)
        self.punish_wrong = bool(punish_wrong)
        # null: on for unsupervised networks read out by label assignment (diehl_cook)
        self.one_sample_per_neuron = self.readout is not None if one_sample_per_neuron is None else bool(one_sample_per_neuron)
        for p in model.parameters():  # STDP takes no gradients (PLIF's tau stays as it is)
            p.requires_grad_(False)
        self.acc = torch.nn.ModuleDict({s: MulticlassAccuracy(self.num_classes, average="micro")
                                        for s in ("train_", "val_", "test_")})
        self._monitor: ActivityMonitor | None = None
        self._labels_stale = self.readout is not None
        # an event-driven model (diehl_cook) hands over its one plastic layer's spikes as events
        self.events = isinstance(model, EventDriven) and len(self.layers) == 1 and self.readout is not None
        check(record_every is None or int(record_every) >= 1, "learner.record_every", record_every,
              "must be null (at the end of each epoch only) or >= 1 training images")
        check(int(record_samples) >= 1, "learner.record_samples", record_samples, "must be >= 1 images")
        self.progress = None if self.readout is None else Progress(
            self.layers[-1].weight.shape[0], None if record_every is None else int(record_every), int(record_samples))
        for layer in self.layers:  # every value checked: the initial weights get the sum too
            self.normalise(layer)

    def unused_keys(self) -> set[str]:
        unused = set() if self.min_spikes is not None else {"rate_boost", "max_boosts"}
        if self.readout is None:  # a taught output layer; no label assignment without a readout
            return unused | {"label_samples", "label_from", "record_every", "record_samples"}
        return unused | {"punish_wrong", "stdp_output", "teacher_spikes"}  # no taught output layer

    def normalise(self, layer: Plastic) -> None:
        """Scale `layer`'s rows to its `norm` sum (clipped at its rule's w_max); nothing when norm is off."""
        total = self.norm_totals[layer.name]
        if total is not None:
            rule = self.rule_output if layer.is_output else self.rule
            normalise_(layer.weight, total, rule.w_max, cap=self.norm_cap)

    def forward(self, x: Tensor, stage: str = "test") -> Tensor:
        """[N, ...] images -> [N, K] time-averaged class scores."""
        return self.present(x, self.generator(stage))[0]

    @torch.no_grad()
    def present(self, x: Tensor, generator: torch.Generator, y: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Encode and run the batch x [N, ...]; with `y`, learn from it (one STDP update per presentation).

        With the model's `min_spikes` (Diehl & Cook's protocol), each sample whose last plastic layer
        fired fewer spikes is shown again with the encoder's rate raised by `rate_boost`, up to
        `max_boosts` times, learning from every presentation when training. Returns, from each
        sample's last presentation, the time-averaged class scores [N, K] and the last plastic
        layer's spike counts [N, n].
        """
        encoder, idx = self.encoder, torch.arange(len(x), device=x.device)
        scores = counts = None
        for boost in range(self.max_boosts + 1):
            x_seq = encoder(x[idx], generator=generator)  # [T, n, ...]
            if self.events:
                out, c = self._run_events(x_seq, y if y is None else y[idx], log=boost == 0)
            else:
                with Recorder(self.layers if y is not None else self.layers[-1:], x_seq.shape[0]) as rec:
                    out = self.model(x_seq).mean(0)  # [T, n, K] -> [n, K]
                if y is not None:
                    self.learn(rec, y[idx], x_seq.shape[0], log=boost == 0)
                c = rec.pre_post(self.layers[-1])[1].sum(0).flatten(1)  # [T, n, ...] -> [n, neurons]
            if scores is None:
                scores, counts = out, c
            else:
                scores[idx], counts[idx] = out, c
            if self.min_spikes is None or boost == self.max_boosts:
                break
            weak = c.sum(1) < self.min_spikes
            if not weak.any() or encoder.max_rate >= 1.0:  # a spike every step is as high as a rate goes
                break
            idx = idx[weak]
            encoder = dataclasses.replace(encoder, max_rate=min(encoder.max_rate + self.rate_boost, 1.0))
        return scores, counts

    def _run_events(self, x_seq: Tensor, y: Tensor | None, log: bool) -> tuple[Tensor, Tensor]:
        """An event-driven model's run (`EventDriven`): scores [n, K] and counts [n, neurons]; with `y`
        one STDP update from the events; while evaluating, its spikes and SynOps go to the monitor."""
        events = self.model.run_events(x_seq)
        T = x_seq.shape[0]
        if y is not None:
            self.learn_events(x_seq.flatten(2), events, log)
        elif self._monitor is not None:
            layer = self.layers[0]
            name = next(k for k, m in self._monitor.neurons.items() if m is layer.neuron)
            self._monitor.add_spikes(name, events.counts.sum(dtype=torch.float64), events.t.numel(),
                                     T * events.counts.numel())
            self._monitor.add_synapse(layer.synapse, x_seq)
        return self.readout(events.counts) / T, events.counts  # mean over t of the readout of s_t

    # -- training: one STDP update per batch ---------------------------------------------------
    def on_fit_start(self) -> None:
        dm = self.trainer.datamodule
        if self.readout is not None and self.label_from == "val" and dm is not None:  # before any training
            check(dm.split_sizes().get("val", 0) > 0, "learner.label_from", self.label_from,
                  "needs a validation split to label from: set dataset.val_fraction > 0")

    def on_train_start(self) -> None:
        if isinstance(self.model, ClassThresholds):  # wta: per-class thresholds from the data
            self.model.set_class_activity(self.class_activity())

    @torch.no_grad()
    def class_activity(self) -> Tensor:
        """Mean input spikes per step of each class's training samples [K], counted on the encoded
        input itself (any encoding: rates, latencies, event frames), from the training stream."""
        total = torch.zeros(self.num_classes, device=self.device)
        count = torch.zeros(self.num_classes, device=self.device)
        gen = torch.Generator(device=self.device).manual_seed(self.seed + 3)
        for x, y in self.trainer.datamodule.train_dataloader():
            x, y = x.to(self.device), y.to(self.device)
            x_seq = self.encoder(x, generator=gen)  # [T, N, ...]
            total.index_add_(0, y, x_seq.sum(0).flatten(1).sum(1).to(total.dtype) / x_seq.shape[0])
            count.index_add_(0, y, torch.ones_like(y, dtype=total.dtype))
        return total / count.clamp(min=1)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch
        out, counts = self.present(x, self.generator("train"), y)
        if self.readout is None:
            self.acc["train_"](out, y)
            self.log("train/acc", self.acc["train_"], on_step=False, on_epoch=True, batch_size=len(y))
        self._labels_stale = self.readout is not None
        if self.progress is not None:
            self.progress.note_training(counts)
            if self.progress.due():
                self.record_progress()

    def on_train_epoch_end(self) -> None:
        if self.progress is not None and self.progress.seen > 0 and not self._recorded_at_end():
            self.record_progress()

    def _recorded_at_end(self) -> bool:
        return bool(self.progress.rows) and self.progress.rows[-1]["images"] == self.progress.seen

    @torch.no_grad()
    def record_progress(self) -> None:
        """`Progress.record`: label from `record_samples` training images, classify as many validation
        images (no plasticity), log the row with step = training images seen. Needs a validation split."""
        dm = self.trainer.datamodule
        if dm is None or dm.split_sizes().get("val", 0) == 0:
            check(self.progress.every is None, "learner.record_every", self.progress.every,
                  "needs a validation split to measure accuracy on: set dataset.val_fraction > 0")
            return  # the end-of-epoch row needs one too; without it the wins and theta still get plotted
        label_samples, self.label_samples = self.label_samples, self.progress.samples
        was_training = self.model.training
        try:
            self.assign_labels("train")  # never the validation images it is about to score
            self.model.eval()
            gen = torch.Generator(device=self.device).manual_seed(self.seed + 4)  # the same spikes every row
            right = total = 0
            for x, y in dm.val_dataloader():
                left = self.progress.samples - total
                x, y = x[:left].to(self.device), y[:left].to(self.device)
                right += int((self.present(x, gen)[0].argmax(1) == y).sum())
                total += len(y)
                if total >= self.progress.samples:
                    break
        finally:
            self.label_samples = label_samples
            self.model.train(was_training)
        theta = self.model.thresholds() if isinstance(self.model, AdaptiveThresholds) else None
        row = self.progress.record(right / max(total, 1), theta)
        for logger in self.loggers:
            logger.log_metrics({f"progress/{k}": v for k, v in row.items() if k != "images"}, step=int(row["images"]))
        self._labels_stale = True

    @torch.no_grad()
    def learn(self, rec: Recorder, y: Tensor, T: int, log: bool = True) -> None:
        """One STDP update of every plastic layer from the spikes `rec` recorded of one model run."""
        for layer in self.layers:
            pre, post = rec.pre_post(layer)
            if log:
                self.log(f"train/rate/{layer.name}", post.mean(), on_step=False, on_epoch=True, batch_size=len(y))
            if layer.is_output and self.readout is None:  # supervised: the teacher's spikes
                teacher = teacher_spikes(y, T, post.shape[-1], self.num_classes, self.teacher_spikes).to(post)
                # punish_wrong: a wrong neuron's own spikes count negative, reversing the rule for them
                wrong = post * (teacher.amax(0, keepdim=True) == 0) if self.punish_wrong else 0
                post = teacher - wrong
            elif self.one_sample_per_neuron:
                post = post * best_sample_mask(post)
            rule = self.rule_output if layer.is_output else self.rule
            dw = stdp_sequence(pre, post, layer.weight, rule, layer.conv)
            apply_dw_(layer.weight, dw, rule)
            self.normalise(layer)

    @torch.no_grad()
    def learn_events(self, pre_seq: Tensor, events: LayerEvents, log: bool = True) -> None:
        """`learn` for an event-driven model's one (unsupervised) layer: pre_seq [T, N, in], its post events."""
        layer, (t, b, j) = self.layers[0], events[1:4]
        if log:
            n_slots = pre_seq.shape[0] * events.counts.numel()
            self.log(f"train/rate/{layer.name}", t.numel() / n_slots, on_step=False, on_epoch=True,
                     batch_size=pre_seq.shape[1])
        if self.one_sample_per_neuron:  # the events of each neuron's best sample (`best_sample_mask`)
            keep = b == events.counts.argmax(0).index_select(0, j)
            t, b, j = t[keep], b[keep], j[keep]
        rows, dw_rows = stdp_events(pre_seq, t, b, j, layer.weight, self.rule)
        apply_rows_(layer.weight, rows, dw_rows, self.rule)
        self.normalise(layer)

    def configure_optimizers(self):
        return None  # STDP: no optimizer

    # -- label assignment (diehl_cook) -----------------------------------------------------------
    @torch.no_grad()
    def assign_labels(self, split: str | None = None) -> None:
        """Label the readout's neurons from the first `label_samples` images of `split` ("train" or "val";
        None: `label_from`), plasticity off."""
        was_training = self.model.training
        self.model.eval()
        dm = self.trainer.datamodule
        loader = dm.val_dataloader() if (split or self.label_from) == "val" else dm.train_dataloader()
        sized = hasattr(loader.dataset, "__len__")
        total = min(self.label_samples, len(loader.dataset)) if sized else self.label_samples
        # One buffer for all the counts, filled batch by batch: a list of per-batch tensors, each
        # allocated between one batch's large recordings and the next, fragments the heap (with
        # 1,600 neurons the process grew by a [T, N, n] recording every few batches, to 21 GB).
        counts, labels, seen = None, torch.empty(total, dtype=torch.long, device=self.device), 0
        gen = torch.Generator(device=self.device).manual_seed(self.seed + 2)
        try:
            for x, y in loader:
                x, y = x[: total - seen].to(self.device), y[: total - seen].to(self.device)
                c = self.present(x, gen)[1]  # [N, n] spike counts of the excitatory layer
                if counts is None:
                    counts = torch.empty(total, c.shape[1], dtype=c.dtype, device=self.device)
                counts[seen: seen + len(y)], labels[seen: seen + len(y)] = c, y
                seen += len(y)
                if seen >= total:
                    break
        finally:
            self.model.train(was_training)
        self.readout.assign(counts[:seen], labels[:seen])
        self._labels_stale = False

    # -- evaluation -------------------------------------------------------------------------------
    def _eval_step(self, batch: tuple[Tensor, Tensor], stage: str) -> None:
        x, y = batch
        out = self(x, stage)
        acc = self.acc[stage + "_"]
        acc(out, y)
        self.log(f"{stage}/acc", acc, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(y))
        if self._monitor is not None:
            self._monitor.add_samples(len(y))

    def validation_step(self, batch, batch_idx):
        self._eval_step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._eval_step(batch, "test")

    def _start_eval(self) -> None:
        if self._labels_stale and self.trainer.datamodule is not None:
            self.assign_labels()
        super()._start_eval()

    # -- what the experiment adds to the run dir ----------------------------------------------------
    def extra_results(self, run_dir: Path) -> dict[str, Any]:
        out: dict[str, Any] = {"stdp/layers": [p.name for p in self.layers]}
        w = self.layers[0].weight
        out["stdp/w_mean"], out["stdp/w_max"] = float(w.mean()), float(w.max())
        if self.readout is not None:
            a = self.readout.assignments
            out["stdp/assigned_per_class"] = torch.bincount(a[a >= 0], minlength=self.num_classes).tolist()
            out["stdp/unassigned"] = int((a < 0).sum())
        if isinstance(self.model, ClassThresholds):
            out["stdp/class_thresholds"] = [round(float(t), 4) for t in self.model.class_thresholds()]
        if self.progress is not None:
            out.update(self.progress.results())
        return out

    def extra_plots(self, run_dir: Path) -> list[Path]:
        plots = [weight_plot(self.model, self.layers[0], run_dir, self.num_classes, self.readout)]
        if self.progress is not None:
            theta = self.model.thresholds() if isinstance(self.model, AdaptiveThresholds) else None
            plots += self.progress.plots(run_dir, theta)
        return plots
