"""What every backbone shares: the time loop over its layers and its readout.

A backbone maps x_seq [T, N, *in_shape] to out_seq [T, N, num_classes]; it
holds layers and knows nothing of training. Neurons come from a factory (the
`neuron` config group, a Hydra partial), so one backbone runs with any neuron.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable, ClassVar, Protocol, Sequence, runtime_checkable

import torch
from torch import Tensor, nn

from snnexp.errors import check
from snnexp.network import Layered, Network, run_layers
from snnexp.network.layers import Voting
from snnexp.neurons.base import SpikingNeuron, continuing, end_sequences, reset_states, set_step_mode
from snnexp.neurons.li import LI

if TYPE_CHECKING:
    from snnexp.neurons.fused.inhibited_alif import LayerEvents

READOUTS = ("spikes", "membrane")
NeuronFactory = Callable[..., SpikingNeuron]


class SpikingModel(Layered):
    """A series of layers run over time (residual and recurrent blocks among them: `snnexp.network`).

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
    metrics, rasters, STDP), which then see the two layers' own outputs as usual
    (`snnexp.network.run_layers`). Whatever needs the network's structure reads `network()`.

    What a model declares for the learners: `learners` (None: any; else the names of the only
    learners that can train it). How its plastic layers learn (the STDP rule, weight normalisation,
    the presentation protocol) is the learner's (conf/learner/stdp.yaml), never a model key.
    """

    learners: ClassVar[tuple[str, ...] | None] = None

    def __init__(self, layers: list[nn.Module] | dict[str, list[nn.Module]], step_mode: str, readout: str):
        """layers: the series, or the same grouped into named blocks ({"stem": [...], "stage1.block1": [...]}),
        which the activity, SynOps and energy metrics then also count per block (`block_of`)."""
        super().__init__()
        check(readout in READOUTS, "model.readout", readout, f"choose one of {list(READOUTS)}")
        if isinstance(layers, dict):
            self.block_names = [name for name, group in layers.items() for _ in group]  # per index of net
            layers = [m for group in layers.values() for m in group]
        else:
            self.block_names = []
        self.net = nn.Sequential(*layers)
        set_step_mode(self.net, step_mode)
        self.step_mode = step_mode
        self.readout = readout

    def forward(self, x_seq: Tensor) -> Tensor:
        """[T, N, *in_shape] -> [T, N, num_classes]; every neuron starts from rest."""
        reset_states(self.net)
        if self.step_mode == "s":
            out = torch.stack([run_layers(self.net, x_t, has_time=False) for x_t in x_seq])
            end_sequences(self.net)  # single-step neurons book the finished sequence (ALIF homeostasis)
            return out
        return run_layers(self.net, x_seq, has_time=True)

    def run_segment(self, x_seq: Tensor) -> Tensor:
        """Go on with the current sequence for x_seq's steps [k, N, *in_shape] -> [k, N, num_classes]:
        every layer starts from its carried state (`neurons.base.carried_states`; after `reset_states`:
        rest) and keeps its last. Segments run back to back equal one `forward` over their steps, except
        multi-step BatchNorm in training (statistics over each segment's frames). Books no sequence end."""
        if self.step_mode == "s":
            return torch.stack([run_layers(self.net, x_t, has_time=False) for x_t in x_seq])
        with continuing(self.net):
            return run_layers(self.net, x_seq, has_time=True)

    def network(self, in_shape: tuple[int, ...] | None = None) -> Network:
        """The network's one representation (`snnexp.network.Network`); shapes too with in_shape."""
        return Network.of(self, in_shape)

    def block_of(self, node_name: str) -> str | None:
        """The named block (the `layers` dict's key) that a node of `network()` belongs to; None without blocks."""
        if not self.block_names:
            return None
        return self.block_names[int(node_name.split(".")[1])]  # "net.<index>[.<path in the block>]"

    def spiking_layers(self) -> dict[str, SpikingNeuron]:
        """Spiking layers in order, named <neuron><path in net> (e.g. lif3, lif4_body_2), for rates and rasters."""
        return {node.label: node.module for node in self.network().spiking()}


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


def output_layers(width: int, num_classes: int, bias: bool, readout: str, neuron: NeuronFactory,
                  readout_tau: float, voting: int = 1) -> list[nn.Module]:
    """Linear -> readout neurons (-> Voting when each class has `voting` output neurons)."""
    check(int(voting) >= 1, "model.voting", voting, "must be >= 1 output neurons per class")
    layers = [nn.Linear(width, num_classes * int(voting), bias=bias), readout_layer(readout, neuron, readout_tau)]
    return layers + ([Voting(voting)] if int(voting) > 1 else [])


def scaled(widths: Sequence[int], width: float) -> list[int]:
    """Channel counts (or layer widths) times the `model.width` multiplier, at least 1 each."""
    return [max(1, round(int(c) * float(width))) for c in widths]


def flat_size(layers: list[nn.Module], in_shape: tuple[int, ...]) -> int:
    """Number of features after `layers` for one [in_shape] input."""
    net = Network.of(nn.Sequential(*layers), in_shape)
    return math.prod(net[net.output].shape)
