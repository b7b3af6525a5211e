"""Layers made of layers: the two ways a network leaves a straight chain, and the one executor.

- `Residual(body, shortcut, connect)`: the block's input goes through `body` and through
  `shortcut` (a projection, or nothing: the identity), and the two meet: `add` (a + s: spiking
  ResNet with the sum before the neuron, SEW-ResNet's ADD after it), `and` (a * s) or `iand`
  ((1 - a) * s), SEW-ResNet's spike-wise connections (Fang et al., NeurIPS 2021).
- `Recurrent(neuron, feedback)`: a neuron layer whose own spikes of the previous step come back
  through `feedback` (a Linear, or a small chain of stateless layers) and add to its input:
  h_t = x_t + feedback(s_{t-1}), s_{-1} = 0 (so a feedback bias acts from the first step, as in
  snnTorch's RLeaky and NIR's graphs).

`run_layers` runs an nn.Sequential of layers over one step or over all T steps; a model, a
residual's branches and a feedback chain all run through it, so a spiking neuron followed by a
fusable max-pool runs as one kernel wherever it sits.
"""
from __future__ import annotations

from typing import Callable, Protocol

import torch
from torch import Tensor, nn

from snnexp.errors import ConfigError, check
from snnexp.network.kinds import LayerKind, Role, Unsupported, find_kind, register
from snnexp.neurons.base import Neuron, Stepped, set_step_mode

CONNECTS = ("add", "and", "iand")
HOOKS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
GLOBAL_HOOKS = tuple(name.replace("_", "_global_", 1) for name in HOOKS)  # torch's hooks on every module


def run_layers(layers: nn.Sequential, x: Tensor, has_time: bool) -> Tensor:
    """x through `layers`: one step [N, ...], or all steps [T, N, ...] with has_time.

    Stepped layers (neurons, blocks) take x as it is; any other layer sees [T*N, ...] frames in
    multi-step mode. A spiking neuron right before a pool whose kind fuses it (`fused_window`)
    runs both as one call (`Neuron.forward_pooled`) unless either has hooks.
    """
    modules = list(layers)
    i = 0
    while i < len(modules):
        layer, after = modules[i], modules[i + 1] if i + 1 < len(modules) else None
        i += 1
        if isinstance(layer, Neuron) and after is not None and (k := fusable_pool(layer, after)):
            x = layer.forward_pooled(x, k)
            i += 1
        elif isinstance(layer, Stepped) or not has_time:
            x = layer(x)
        else:  # [T, N, ...] -> [T*N, ...] -> layer -> [T, N, ...]
            x = layer(x.flatten(0, 1)).unflatten(0, x.shape[:2])
    return x


def fusable_pool(neuron: Neuron, after: nn.Module) -> int:
    """k when `after`'s kind fuses into the neuron before it and neither has hooks (a hook on either
    would miss the full-size spikes, or the call itself); else 0."""
    kind = find_kind(after)
    k = kind.fused_window(after) if kind is not None else 0
    if not k:
        return 0
    hooked = any(getattr(nn.modules.module, name, None) for name in GLOBAL_HOOKS) or any(
        getattr(m, name) for m in (neuron, after) for name in HOOKS)
    return 0 if hooked else k


class Builder(Protocol):
    """What a block expands itself with (`snnexp.network.graph` builds the network)."""

    shapes: dict[str, tuple[int, ...] | None]  # each node's output shape (one sample), None when unknown

    def series(self, layers: nn.Sequential, prefix: str, src: str) -> str:
        """Nodes for `layers` one after the other from node `src`; the last one's name (src if empty)."""

    def add(self, name: str, m: nn.Module, inputs: tuple[str, ...], delayed: tuple[str, ...],
            shape: tuple[int, ...] | None) -> str:
        """One node of module m (its kind found by kind_of) reading `inputs` (and `delayed` a step late)."""


class Block(Stepped):
    """A layer made of nn.Sequential parts, run in the model's step mode; `expand` declares
    its nodes in the network representation."""

    def forward(self, x: Tensor) -> Tensor:
        return self.run(x, has_time=self.step_mode == "m")

    def run(self, x: Tensor, has_time: bool) -> Tensor:
        raise NotImplementedError

    def rebuilt(self, part: Callable[[str, nn.Module], nn.Module]) -> "Block":
        """A new block of the same kind with part(name, p) in place of every part p (conversion)."""
        raise NotImplementedError

    def expand(self, builder: Builder, name: str, src: str) -> str:
        """Add the block's nodes (it is at path `name`, reading node `src`); the name of its output node."""
        raise NotImplementedError


def sequential(layers: nn.Module | list[nn.Module] | None) -> nn.Sequential:
    """A block's part as an nn.Sequential: None -> empty, a list -> its layers, a module -> itself alone."""
    if layers is None:
        return nn.Sequential()
    if isinstance(layers, nn.Sequential):
        return layers
    return nn.Sequential(*layers) if isinstance(layers, (list, tuple)) else nn.Sequential(layers)


class Residual(Block):
    """connect(body(x), shortcut(x)); an empty shortcut is the identity. Shapes must agree."""

    def __init__(self, body: nn.Module | list[nn.Module], shortcut: nn.Module | list[nn.Module] | None = None,
                 connect: str = "add", step_mode: str = "m"):
        super().__init__(step_mode)
        check(connect in CONNECTS, "model.connect", connect, f"choose one of {list(CONNECTS)}")
        self.body = sequential(body)
        self.shortcut = sequential(shortcut)
        self.connect = connect

    def run(self, x: Tensor, has_time: bool) -> Tensor:
        a = run_layers(self.body, x, has_time)
        s = run_layers(self.shortcut, x, has_time) if len(self.shortcut) else x
        if self.connect == "add":
            return a + s
        if self.connect == "and":
            return a * s
        return (1 - a) * s  # iand: the input's spikes where the body did not fire

    def rebuilt(self, part: Callable[[str, nn.Module], nn.Module]) -> "Residual":
        return Residual(part("body", self.body), part("shortcut", self.shortcut), self.connect, self.step_mode)

    def expand(self, builder: Builder, name: str, src: str) -> str:
        """The body's and the shortcut's nodes from src, then a JOIN node (this module) reading both."""
        body = builder.series(self.body, f"{name}.body", src)
        shortcut = builder.series(self.shortcut, f"{name}.shortcut", src)
        a, s = builder.shapes[body], builder.shapes[shortcut]
        if a is not None and s is not None and a != s:
            raise ConfigError(f"residual block {name}: its body gives shape {a} and its shortcut {s}; they must "
                              f"agree (give the shortcut a projection, e.g. a strided 1x1 conv)")
        return builder.add(name, self, (body, shortcut), (), a if a is not None else s)

    def extra_repr(self) -> str:
        return f"connect={self.connect}" + ("" if len(self.shortcut) else ", shortcut=identity")


class Recurrent(Block):
    """A neuron layer fed its own previous spikes through `feedback`: h_t = x_t + feedback(s_{t-1}).

    Both step modes step the neuron once per time step (the feedback needs s_{t-1}), in its
    single-step mode (its fused single-step kernel where it has one; its hooks see each step).
    x [T, N, n] or [N, n] -> spikes of the same shape.
    """

    def __init__(self, neuron: Neuron, feedback: nn.Module | list[nn.Module], step_mode: str = "m"):
        super().__init__(step_mode)
        check(isinstance(neuron, Neuron), "model.neuron", type(neuron).__name__, "a recurrent layer needs a neuron")
        self.neuron = neuron
        self.feedback = sequential(feedback)
        self.prev: Tensor | None = None  # single-step mode: s_{t-1}

    def run(self, x: Tensor, has_time: bool) -> Tensor:
        if not has_time:
            prev = torch.zeros_like(x) if self.prev is None else self.prev
            self.prev = self.neuron(x + run_layers(self.feedback, prev, has_time=False))
            return self.prev
        # all T steps: the neuron runs single steps (its hooks see every step, as in "s"), then books the sequence
        carried = (self.neuron.carried_state(), self.prev) if self.continues else (None, None)
        set_step_mode(self.neuron, "s")  # (resets the neuron)
        self.neuron.carry_state(carried[0])
        self.prev = carried[1]
        try:
            out = torch.stack([self.run(x_t, has_time=False) for x_t in x])
            last = (self.neuron.carried_state(), self.prev)
            if not self.continues:  # a segment is not the end of the sequence
                self.neuron.end_sequence()
        finally:
            set_step_mode(self.neuron, "m")
            self.prev = None
        if self.continues:
            self.neuron.carry_state(last[0])
            self.prev = last[1]
        return out

    def carried_state(self) -> Tensor | None:
        return self.prev  # the neuron carries its own state

    def carry_state(self, state: Tensor | None) -> None:
        self.prev = state

    def reset(self) -> None:
        self.prev = None

    def rebuilt(self, part: Callable[[str, nn.Module], nn.Module]) -> "Recurrent":
        return Recurrent(part("neuron", self.neuron), part("feedback", self.feedback), self.step_mode)

    def expand(self, builder: Builder, name: str, src: str) -> str:
        """The neuron's node, reading src now and the feedback's last node a step late, then the feedback."""
        neuron = f"{name}.neuron"
        feedback_end = f"{name}.feedback.{len(self.feedback) - 1}" if len(self.feedback) else neuron
        shape = builder.shapes[src]
        builder.add(neuron, self.neuron, (src,), (feedback_end,), shape)
        end = builder.series(self.feedback, f"{name}.feedback", neuron)
        if shape is not None and builder.shapes[end] != shape:
            raise ConfigError(f"recurrent layer {name}: its feedback maps shape {shape} to {builder.shapes[end]}; "
                              f"it must give the neuron's own shape back")
        return neuron


@register(Residual)
class JoinKind(LayerKind):
    """Where a residual branch meets its block's output. In NIR a node's inputs are summed, so an
    `add` join needs no node of its own: its readers read both branches."""

    role = Role.JOIN
    name = "join"
    homogeneous = True  # add: c a + c s = c (a + s); and/iand act on spikes, which conversion never scales

    def to_nir(self, m: Residual, shape, dt):
        if m.connect != "add":
            raise Unsupported(f"a residual connection '{m.connect}' is a logic gate on spikes, not a sum; NIR has "
                              f"no node for it: use connect=add")
        return None
