"""What every backbone shares: the time loop over its layers and its readout.

A backbone maps x_seq [T, N, *in_shape] to out_seq [T, N, num_classes]; it
holds layers and knows nothing of training. Neurons come from a factory (the
`neuron` config group, a Hydra partial), so one backbone runs with any neuron.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, ClassVar, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from snnexp.errors import check
from snnexp.models.pooling import MaxPool2d
from snnexp.neurons.base import Neuron, SpikingNeuron, end_sequences, reset_states, set_step_mode
from snnexp.neurons.li import LI
from snnexp.rules.stdp import Plasticity

if TYPE_CHECKING:
    from snnexp.neurons.fused.inhibited_alif import LayerEvents

READOUTS = ("spikes", "membrane")
NeuronFactory = Callable[..., SpikingNeuron]


class SpikingModel(nn.Module):
    """A sequence of layers run over time.

    step_mode "s": the whole network advances one time step at a time (batch
    N per call; less memory). step_mode "m": each layer sees all T steps at once
    (stateless layers on [T*N, ...] frames; one big matmul per Linear, best for
    MLPs, and on the CPU the faster mode for csnn with the neuron before the pool:
    docs/benchmarks.md). Both give the same result, except BatchNorm in
    training: its batch statistics are per step in "s" and over all T*N frames in "m".
    `readout`: "spikes" (the output layer is the chosen neuron; logits are its
    firing rates) or "membrane" (a non-spiking leaky integrator; logits are its
    mean membrane potential).
    A neuron followed by a non-overlapping max-pool runs as one layer (`Neuron.forward_pooled`:
    the fused kernel pools the spikes as it makes them) unless either has hooks (activity
    metrics, rasters, STDP), which then see the two layers' own outputs as usual.

    What a model declares for the learners: `learners` (None: any; else the names of the only
    learners that can train it) and `plasticity` (None, or the STDP rule it carries itself).
    """

    learners: ClassVar[tuple[str, ...] | None] = None
    plasticity: Plasticity | None = None

    def __init__(self, layers: list[nn.Module], step_mode: str, readout: str):
        super().__init__()
        check(readout in READOUTS, "model.readout", readout, f"choose one of {list(READOUTS)}")
        self.net = nn.Sequential(*layers)
        set_step_mode(self.net, step_mode)
        self.step_mode = step_mode
        self.readout = readout

    def forward(self, x_seq: Tensor) -> Tensor:
        """[T, N, *in_shape] -> [T, N, num_classes]; every neuron starts from rest."""
        reset_states(self.net)
        if self.step_mode == "s":
            out = torch.stack([self._through(x_t, has_time=False) for x_t in x_seq])
            end_sequences(self.net)  # single-step neurons book the finished sequence (ALIF homeostasis)
            return out
        return self._through(x_seq, has_time=True)

    def _through(self, x: Tensor, has_time: bool) -> Tensor:
        """x through every layer: one step [N, ...], or all steps [T, N, ...] with has_time."""
        layers = list(self.net)
        i = 0
        while i < len(layers):
            layer, after = layers[i], layers[i + 1] if i + 1 < len(layers) else None
            i += 1
            if isinstance(layer, Neuron) and (k := fusable_pool(layer, after)):
                x = layer.forward_pooled(x, k)
                i += 1
            elif isinstance(layer, Neuron) or not has_time:
                x = layer(x)
            else:  # [T, N, ...] -> [T*N, ...] -> layer -> [T, N, ...]
                x = layer(x.flatten(0, 1)).unflatten(0, x.shape[:2])
        return x

    def spiking_layers(self) -> dict[str, SpikingNeuron]:
        """Spiking layers in order, named <neuron><index in net> (e.g. lif3), for rates and rasters."""
        return {f"{type(m).__name__.lower()}{i}": m for i, m in enumerate(self.net) if isinstance(m, SpikingNeuron)}


HOOKS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
GLOBAL_HOOKS = tuple(name.replace("_", "_global_", 1) for name in HOOKS)  # torch's hooks on every module


def fusable_pool(neuron: Neuron, after: nn.Module | None) -> int:
    """k when `after` is csnn's k x k max-pool with stride k and neither it nor the neuron has hooks
    (a hook on either would miss the full-size spikes, or the call itself); else 0."""
    if not isinstance(after, MaxPool2d) or after.window is None:
        return 0
    hooked = any(getattr(nn.modules.module, name, None) for name in GLOBAL_HOOKS) or any(
        getattr(m, name) for m in (neuron, after) for name in HOOKS)
    return 0 if hooked else after.window


@runtime_checkable
class ClassThresholds(Protocol):
    """A model whose output neurons fire at a threshold per class, set from the training data (wta)."""

    def set_class_activity(self, activity: Tensor) -> None:
        """activity [K]: mean input spikes per step of each class's training samples."""

    def class_thresholds(self) -> Tensor:
        """[K] the thresholds in use."""


@runtime_checkable
class EventDriven(Protocol):
    """A model with one plastic layer that runs it as events (diehl_cook): STDP reads the events
    instead of recording [T, N, n] spikes through hooks."""

    def run_events(self, x_seq: Tensor) -> "LayerEvents":
        """x_seq [T, N, *in_shape] -> the plastic layer's spikes as events (neurons' homeostasis booked
        in training mode, as a forward call would)."""


@runtime_checkable
class AdaptiveThresholds(Protocol):
    """A model whose neurons keep a threshold increase across samples (diehl_cook's theta)."""

    def thresholds(self) -> Tensor:
        """[n] each neuron's threshold increase (theta) carried from sample to sample."""


def readout_layer(readout: str, neuron: NeuronFactory, readout_tau: float) -> nn.Module:
    """The output neuron layer: the chosen spiking neuron, or a leaky-integrator membrane."""
    check(readout in READOUTS, "model.readout", readout, f"choose one of {list(READOUTS)}")
    return neuron() if readout == "spikes" else LI(tau=readout_tau)


class Voting(nn.Module):
    """Average each class's group of `per_class` output neurons: [..., K*per_class] -> [..., K].

    Fang et al. (2021) read 10 classes out of 100 spiking neurons this way.
    """

    def __init__(self, per_class: int):
        super().__init__()
        self.per_class = int(per_class)

    def forward(self, x: Tensor) -> Tensor:
        return x.unflatten(-1, (-1, self.per_class)).mean(-1)

    def extra_repr(self) -> str:
        return f"per_class={self.per_class}"


def output_layers(width: int, num_classes: int, bias: bool, readout: str, neuron: NeuronFactory,
                  readout_tau: float, voting: int = 1) -> list[nn.Module]:
    """Linear -> readout neurons (-> Voting when each class has `voting` output neurons)."""
    check(int(voting) >= 1, "model.voting", voting, "must be >= 1 output neurons per class")
    layers = [nn.Linear(width, num_classes * int(voting), bias=bias), readout_layer(readout, neuron, readout_tau)]
    return layers + ([Voting(voting)] if int(voting) > 1 else [])


def flat_size(layers: list[nn.Module], in_shape: tuple[int, ...]) -> int:
    """Number of features after `layers` for one [in_shape] input (neurons keep shapes)."""
    x = torch.zeros(1, *in_shape)
    with torch.no_grad():
        for layer in layers:
            if not isinstance(layer, Neuron):
                x = layer.eval()(x)
                layer.train()
    return x[0].numel()
