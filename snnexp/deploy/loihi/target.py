"""deploy=loihi: train on the CPU, then convert to Loihi's fixed point, export, run in Lava, compare."""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Literal

import pytorch_lightning as pl
import torch
from torch import Tensor

from snnexp.deploy.base import Required
from snnexp.deploy.cpu import CPUTarget
from snnexp.deploy.loihi.convert import extract
from snnexp.deploy.loihi.export import refuse_netx, write_lava, write_netx, write_nir
from snnexp.deploy.loihi.fixed_point import FixedPointNet, predictions
from snnexp.deploy.loihi.lava_io import from_lava_layout, lava_python, run_lava, to_lava_layout
from snnexp.deploy.loihi.net import LoihiNet
from snnexp.errors import ConfigError, check
from snnexp.learners.base import Learner

log = logging.getLogger(__name__)


class LoihiTarget(CPUTarget):
    """Trains on the CPU like deploy=cpu. Before training (`check_learner`) it converts the untrained
    network and encodes a few training samples, so every refusal below comes before any training;
    after training (`after_training`):

    1. checks the model maps to Loihi (no layer bias, no max-pool, spiking readout, residual sums
       only before a neuron), folds BatchNorm (its shift becomes the neuron bias) and average pools
       (into strided convs, or into the Linear after pooled spikes), quantises each layer to Loihi's
       integers and converts its neurons to fixed-point CUBA (a recurrent layer keeps its feedback
       as a Dense to itself, a residual block its shortcut as a second synapse into its layer);
    2. evaluates the float model and the fixed-point torch model on `samples` test samples;
    3. writes `<run_dir>/loihi/net.h5` (lava-dl netx; `netx`: chains only, so a recurrent or
       residual network needs netx=false) or, with netx=false, `lava.h5` (snnexp's runner's own),
       and `net.nir` (NIR);
    4. runs that file in Lava (`lava_venv`, a subprocess; Loihi2SimCfg fixed_pt) on the same spikes
       and compares the output spike trains with the fixed-point model's, sample by sample.
    run_lava=false stops after step 3 (no Lava environment needed).
    """

    requires = {"model.bias": Required(False, "Loihi's synapses have no bias")}

    def __init__(self, num_threads: int | Literal["auto"] | None = 1, samples: int = 200, run_lava: bool = True,
                 lava_venv: str | None = None, nir_dt: float = 1e-4, timeout_s: float = 1800, netx: bool = True):
        super().__init__(num_threads)
        check(int(samples) >= 1, "deploy.samples", samples, "must be >= 1 test samples")
        check(float(nir_dt) > 0, "deploy.nir_dt", nir_dt, "must be > 0 seconds per step")
        check(float(timeout_s) > 0, "deploy.timeout_s", timeout_s, "must be > 0 seconds for the Lava run")
        self.samples = int(samples)
        self.run_lava = bool(run_lava)
        self.lava_venv = lava_venv
        self.nir_dt = float(nir_dt)
        self.timeout_s = float(timeout_s)
        self.netx = bool(netx)
        self.python = lava_python(lava_venv) if self.run_lava else None  # stop at once when it is missing

    def check_learner(self, learner: Learner, datamodule: pl.LightningDataModule) -> None:
        """Before training: the network training will produce, converted now (untrained: the checks read
        its layers, not its values), and its input, encoded from a few training samples, must map to
        Loihi; otherwise a ConfigError names the layer or the key and the fix."""
        datamodule.setup("fit")
        x, _ = next(iter(datamodule.train_dataloader()))
        with torch.no_grad():
            x_seq = learner.encoder(x[:8].to(learner.device), generator=torch.Generator(learner.device).manual_seed(0))
        net = extract(learner.deployed_model(), tuple(x_seq.shape[2:]))
        if self.netx:
            refuse_netx(net)
        refuse_analog(x_seq, learner)

    def after_training(self, learner: pl.LightningModule, datamodule: pl.LightningDataModule,
                       run_dir: Path) -> dict[str, Any]:
        model = learner.model.cpu().eval()
        x_seq, y = self._test_spikes(learner, datamodule)
        net = extract(model, tuple(x_seq.shape[2:]))
        with torch.no_grad():
            float_pred = model(x_seq).sum(0).argmax(-1)
        fixed = FixedPointNet(net)(x_seq)  # [T+1, N, K]: Lava's reset step, then the T steps
        fixed_pred = predictions(fixed[1:].sum(0), net.readout)
        out_dir = run_dir / "loihi"
        net_path = write_netx(net, out_dir / "net.h5") if self.netx else write_lava(net, out_dir / "lava.h5")
        nir_path = out_dir / "net.nir"
        write_nir(net, nir_path, self.nir_dt)
        results: dict[str, Any] = {
            "deploy/float_acc": _acc(float_pred, y),
            "deploy/fixed_acc": _acc(fixed_pred, y),
            "deploy/netx" if self.netx else "deploy/lava_net": str(net_path),
            "deploy/nir": str(nir_path),
            "deploy/layers": _describe(net),
        }
        if net.notes:
            results["deploy/notes"] = net.notes
            for note in net.notes:
                log.warning("deploy=loihi: %s", note)
        if not self.run_lava:
            return results
        spikes = to_lava_layout(x_seq, image=net.layers[0].kind == "conv")  # [N, X, T]
        lava_out, seconds = run_lava(net_path, spikes, self.python, out_dir, self.timeout_s)
        lava_seq = from_lava_layout(lava_out)  # [N, K, T+1] -> [T+1, N, K]
        same = (lava_seq == fixed).flatten(2).all(-1).all(0)  # [N]: identical spike trains
        results.update({
            "deploy/lava_acc": _acc(predictions(lava_seq[1:].sum(0), net.readout), y),
            "deploy/spike_agreement": same.double().mean().item(),
            "deploy/samples_compared": int(len(y)),
            "deploy/lava_samples_per_s": len(y) / seconds["run_s"],  # the compile is once, apart
            **{f"deploy/lava_{k}": v for k, v in seconds.items()},
        })
        return results

    def _test_spikes(self, learner: pl.LightningModule, datamodule: pl.LightningDataModule) -> tuple[Tensor, Tensor]:
        """The first `samples` test samples, encoded as the learner tests: ([T, N, ...] spikes, [N] labels)."""
        xs, ys, n = [], [], 0
        generator = learner.generator("test")
        start = time.perf_counter()
        for x, y in datamodule.test_dataloader():
            with torch.no_grad():
                xs.append(learner.encoder(x.to(learner.device), generator=generator).cpu())
            ys.append(y)
            n += len(y)
            if n >= self.samples:
                break
        x_seq, y = torch.cat(xs, 1)[:, :self.samples], torch.cat(ys)[:self.samples]
        refuse_analog(x_seq, learner)  # checked before training on a few samples; these are the test samples
        log.info("deploy=loihi: %d test samples encoded in %.2f s", len(y), time.perf_counter() - start)
        return x_seq, y


def refuse_analog(x_seq: Tensor, learner: Learner) -> None:
    """Loihi's input is spikes: refuse any other value, saying where the input comes from."""
    if torch.equal(x_seq, x_seq.bool().to(x_seq.dtype)):
        return
    fix = ("choose an encoding that spikes (encoding=poisson or encoding=latency)" if "encoding" not in learner.unused_groups else
           f"learner={learner.name} encodes its input itself: make it spikes (learner.input=poisson)")
    raise ConfigError(f"deploy=loihi needs spike input (0 or 1), but the network's input has other values "
                      f"(e.g. {float(x_seq[(x_seq != 0) & (x_seq != 1)][0]):g}): {fix}")


def _describe(net: LoihiNet) -> list[str]:
    """One line per layer: its source, kind, weight shape and neuron constants."""
    return [f"{l.name}: {l.kind} {list(l.weight.shape)} vth={l.vth} iDecay={l.i_decay} vDecay={l.v_decay}"
            + (f" recurrent {list(l.recurrent.shape)}" if l.recurrent is not None else "") for l in net.layers]


def _acc(pred: Tensor, y: Tensor) -> float:
    return (pred.cpu() == y.cpu()).double().mean().item()
