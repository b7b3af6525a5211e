"""ANN->SNN conversion as pure functions on an nn.Sequential of layers (Rueckauer et al. 2017, Front. Neurosci. 11:682).

    ann = ann_counterpart(snn_model.net)      # the backbone with ReLU where its neurons were
    ... train ann by gradient descent ...
    folded = fold_batchnorm(ann.eval())       # BN merged into the conv/linear before it
    scales = activation_scales(folded, batches, percentile=99.9)
    snn = to_snn(normalise(folded, scales), IF, readout="spikes")

Every function returns a new network and leaves its input alone, and reads the network through its
one representation (`snnexp.network.Network`: layer roles and kinds), so a layer type is known by
its kind, not by a list here. Normalisation relies on every layer between a synapse (conv/linear)
and its activation being positively homogeneous (f(c x) = c f(x) for c > 0, the kind's
`homogeneous` flag): pooling, dropout, flatten, voting, a residual sum.

Residual networks (Hu et al. 2018, "Spiking Deep Residual Networks"; Rueckauer et al. 2017): the
spiking ResNet block `Residual(body, shortcut, "add")` followed by a neuron converts from its ANN
`Residual([conv, BN, ReLU, conv, BN], shortcut, "add")`, ReLU. Both inputs of a sum must be on one
scale: the body's last synapse is normalised to the lambda of the activation after the sum
(lambda_out), like any synapse. The shortcut carries the block input, which in the SNN is the
previous neuron layer's **spikes** (rate = activation / lambda_in); a projection shortcut (1x1
conv-BN) turns them into a current with its weights scaled by lambda_in / lambda_out, and an
identity shortcut gets a fixed scale layer (`Gain`) of lambda_in / lambda_out (times the neuron's
threshold in the SNN, like every synapse). So at the sum both branches carry **currents** in units
of the threshold, and the neuron after the sum integrates them as it does any synapse's output.
SEW-ResNet's `and`/`iand` connections are logic gates on spikes with no ANN counterpart, and a
`Recurrent` layer's feedback has none in a feed-forward ANN: both are refused.
`snnexp.learners.over_time` gives the SNN's accuracy at every T <= T_max from one run.
"""
from __future__ import annotations

import copy
import math
from typing import Callable, Iterable

import torch
from torch import Tensor, nn

from snnexp.errors import ConfigError, check
from snnexp.models.batchnorm import fold_batchnorm  # noqa: F401 (re-exported: the conversion's first step)
from snnexp.network import INPUT, Network, Node, Role, Unsupported
from snnexp.network.layers import Gain
from snnexp.neurons.base import set_step_mode

MAX_POOLS = ("avg", "spiking")
Key = int | str  # a layer's path in the Sequential: its index (int) at the top level, else "4.body.2"
Scales = dict[Key, float]  # key of an activation (or of the output conv/linear) -> lambda
Edit = tuple[str, str, "nn.Module | None"]  # (node name, "set" | "after", the new layer; None with set: removed)


def key(name: str) -> Key:
    """The scales key of the node named `name` ("3" -> 3, "4.body.2" stays)."""
    return int(name) if name.isdigit() else name


def key_order(k: Key) -> tuple:
    """Sort key that orders scales keys as their layers run (body before shortcut)."""
    return tuple(int(p) if p.isdigit() else p for p in str(k).split("."))


def refuse_unconvertible(net: Network, where: str = "") -> None:
    """ConfigError naming the first layer a rate conversion cannot express: a SEW `and`/`iand` connection
    or a recurrent layer. where: the path prefix for messages ("net.")."""
    for node in net.branched():
        what = f"layer {where}{node.name} ({type(node.module).__name__})"
        if node.delayed:
            raise ConfigError(f"{what} is recurrent: its feedback carries the previous step's spikes, which a "
                              f"feed-forward ANN has no counterpart for; ANN->SNN conversion takes feed-forward "
                              f"networks (use learner=bptt for recurrent ones)")
        if node.role is Role.JOIN and node.module.connect != "add":
            raise ConfigError(f"{what} joins with connect={node.module.connect!r}, a logic gate on spikes (SEW-ResNet) "
                              f"that no ANN activation approximates; ANN->SNN conversion takes residual sums: use "
                              f"model connect=add")


def ann_counterpart(net: nn.Sequential, max_pool: str = "spiking", bias: bool = True) -> nn.Sequential:
    """The ANN of a spiking backbone's layers: ReLU for every neuron, no readout neuron.

    A copy of `net` (e.g. SpikingModel.net) where each layer becomes its kind's `ann` counterpart:
    a spiking neuron becomes nn.ReLU, except the network's last layer (the spiking readout), which
    is dropped so the ANN ends in logits; so is a non-spiking readout (leaky integrator). Readout
    neurons followed by Voting stay ReLU: the vote averages their rates. Residual blocks keep their
    form, their branches mapped the same way, in single-step mode (an ANN has no time axis); SEW
    `and`/`iand` connections and recurrent layers are refused (`refuse_unconvertible`).
    max_pool "spiking": max-pools kept (the SNN gets SpikingMaxPool2d); "avg": each max-pool becomes
    the average pool of the same windows (linear, so exact in the SNN). bias=False removes every
    conv/linear bias (targets without biases); BatchNorm is then refused, since folding it creates biases.
    """
    check(max_pool in MAX_POOLS, "learner.max_pool", max_pool, f"choose one of {list(MAX_POOLS)}")
    out = copy.deepcopy(net)
    graph = Network.of(out)
    refuse_unconvertible(graph, "net.")
    edits: list[Edit] = []
    for node in graph:
        if node.role is Role.JOIN:
            continue  # the block stays; its branches' layers are nodes of their own
        if node.role is Role.POOL and node.kind.maximum and max_pool == "avg":
            try:
                edits.append((node.name, "set", node.kind.average(node.module)))
            except Unsupported as e:
                raise ConfigError(f"learner.max_pool='avg' is invalid for layer net.{node.name}: {e}; "
                                  f"use spiking") from None
        else:
            edits.append((node.name, "set", node.kind.ann(node.module, node.name == graph.output)))
    out = _apply(out, graph, edits)
    set_step_mode(out, "s")  # an ANN has no time: its residual blocks take [N, ...] like any layer
    if not bias:
        graph = Network.of(out)
        check(not graph.with_role(Role.NORM), "learner.bias", bias,
              "a bias-free network cannot have BatchNorm (folding it creates biases): set model.batch_norm=false")
        for node in graph.with_role(Role.SYNAPSE):
            node.module.bias = None
    return out


def replaced(net: nn.Sequential, new: Callable[[Node], nn.Module | None]) -> nn.Sequential:
    """A copy of `net` with new(node) in place of each layer (None: removed; the node's own module: kept)."""
    out = copy.deepcopy(net)
    graph = Network.of(out)
    edits = [(n.name, "set", m) for n in graph if n.role is not Role.JOIN and (m := new(n)) is not n.module]
    return _apply(out, graph, edits)


def _apply(root: nn.Sequential, graph: Network, edits: list[Edit]) -> nn.Sequential:
    """Carry out `edits` on `root` (whose network is `graph`), the last layer first, so that removing or
    inserting a layer moves only the paths of layers already edited."""
    order = {name: i for i, name in enumerate(graph.nodes)}
    for name, how, m in sorted(edits, key=lambda e: (order[e[0]], e[1] == "after"), reverse=True):
        parent_path, _, child = name.rpartition(".")
        parent = root.get_submodule(parent_path) if parent_path else root
        if how == "after":
            parent.insert(int(child) + 1, m)
        elif m is None:
            del parent[int(child)]
        else:
            setattr(parent, child, m)
    return root


def percentile(values: Tensor, q: float) -> float:
    """The q-th percentile (0..100) of `values`, interpolated like numpy.percentile; NaN if empty.

    Uses kthvalue, so it works on more than torch.quantile's 2**24 elements.
    """
    v = values.flatten().float()
    n = v.numel()
    if n == 0:
        return float("nan")
    pos = q / 100.0 * (n - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, n - 1)
    a = float(v.kthvalue(lo + 1).values)
    b = float(v.kthvalue(hi + 1).values) if hi != lo else a
    return a + (b - a) * (pos - lo)


@torch.no_grad()
def activation_scales(net: nn.Sequential, batches: Iterable[Tensor], q: float = 99.9) -> Scales:
    """lambda per activation and for the output: the q-th percentile of its positive activations.

    batches: training inputs [N, ...] (a few hundred samples suffice). q = 100 is max-norm
    (Diehl et al. 2015); q = 99.9 is Rueckauer et al.'s robust choice. Like their toolbox, zeros
    are left out (else a sparse layer's percentile is 0). A layer never active gets lambda 1.
    Keys (`key`): each activation's path in `net` and the last conv/linear's (its positive outputs).
    """
    check(0 < q <= 100, "learner.percentile", q, "must be in (0, 100] (100 = max-norm)")
    graph = Network.of(net)
    points = graph.with_role(Role.ACTIVATION) + [_last_synapse(graph)]
    active: dict[Key, list[Tensor]] = {key(n.name): [] for n in points}
    hooks = [n.module.register_forward_hook(_keep_positive(active[key(n.name)])) for n in points]
    net.eval()
    try:
        for x in batches:
            net(x)
    finally:
        for h in hooks:
            h.remove()
    scales = {k: percentile(torch.cat(v), q) if v else float("nan") for k, v in active.items()}
    return {k: s if math.isfinite(s) and s > 0 else 1.0 for k, s in scales.items()}


def _keep_positive(store: list[Tensor]):
    def hook(module, inputs, output):
        store.append(output[output > 0].cpu())
    return hook


@torch.no_grad()
def normalise(net: nn.Sequential, scales: Scales, output: bool = True) -> nn.Sequential:
    """A copy of `net` whose activation outputs are divided by their lambda:
    W_l *= lambda_{l-1} / lambda_l, b_l /= lambda_l.

    `net` must have its BatchNorms folded. The hidden activations then lie in [0, 1] but for the
    top (100 - q) %, and every prediction is unchanged (logits / lambda_out, or logits when
    output=False: a non-spiking readout needs no bound). Input scale lambda_0 = 1 (images in [0, 1]).
    A synapse's lambda_l is that of the activation its output reaches (through pools and residual
    sums). At a residual sum whose shortcut has no synapse (identity), the shortcut carries the
    block input on its own scale lambda_in: a `Gain` of lambda_in / lambda_out at the shortcut's
    end puts it on the sum's scale (module docstring). Likewise a body that ends in an activation
    (SEW-ResNet's ADD after the neuron) gets a Gain onto the scale of a projection shortcut, or the
    identity shortcut one onto the body's.
    """
    out = copy.deepcopy(net)
    graph = Network.of(out)
    refuse_unconvertible(graph)
    scale = {INPUT: 1.0}  # node -> what its output is divided by in the normalised network
    synapse_fed = {INPUT: False}  # node -> its output comes through a synapse not yet followed by an activation
    edits: list[Edit] = []
    for node in graph:
        source = node.inputs[0]
        if node.role is Role.SYNAPSE:
            lam = _target_scale(graph, node, scales, output)
            _scale(node.module, scale[source] / lam, 1.0 / lam)
            scale[node.name], synapse_fed[node.name] = lam, True
        elif node.role is Role.ACTIVATION:
            if not synapse_fed[source]:
                raise ValueError(f"activation at {node.name} ({node.module}) has no conv/linear before it")
            scale[node.name], synapse_fed[node.name] = scales[key(node.name)], False
        elif node.role is Role.JOIN:
            body, shortcut = node.inputs
            # the sum takes a synapse-fed branch's scale (that synapse was scaled for the activation after
            # the sum); a branch without a synapse (an identity shortcut) keeps its input's scale: a Gain fixes it
            on, fixed, branch = (shortcut, body, "body") if synapse_fed[shortcut] and not synapse_fed[body] else \
                (body, shortcut, "shortcut")
            if scale[fixed] != scale[on]:
                gain = Gain.scalar(scale[fixed] / scale[on])
                edits.append((node.name, "set",
                              node.module.rebuilt(lambda name, part: _then(part, gain, name, branch))))
            scale[node.name], synapse_fed[node.name] = scale[on], synapse_fed[body] or synapse_fed[shortcut]
        elif node.kind.homogeneous:
            scale[node.name], synapse_fed[node.name] = scale[source], synapse_fed[source]
        else:
            raise ValueError(f"cannot normalise through {node.module} at {node.name}: fold BatchNorm first; only "
                             f"positively homogeneous layers (pools, dropout, flatten, voting, residual sums) may "
                             f"sit between a layer and its activation")
    return _apply(out, graph, edits)


def _target_scale(graph: Network, synapse: Node, scales: Scales, output: bool) -> float:
    """lambda of the activation the synapse's output reaches through homogeneous layers and residual sums
    (the output's lambda, or 1 with output=False, where it reaches none)."""
    found: set[Key | None] = set()
    frontier = [synapse]
    while frontier:
        node = frontier.pop()
        if node.name == graph.output:
            found.add(None)
        for nxt in graph.successors(node.name):
            if nxt.role is Role.ACTIVATION:
                found.add(key(nxt.name))
            elif nxt.role is Role.SYNAPSE:
                raise ValueError(f"layer {nxt.name} ({nxt.module}) follows a weighted layer ({synapse.name}) without "
                                 f"an activation in between")
            else:
                frontier.append(nxt)  # a non-homogeneous layer is refused when normalise reaches it
    if len(found) != 1:
        raise ValueError(f"the output of layer {synapse.name} ({synapse.module}) reaches "
                         f"{sorted(map(str, found))}: it must reach one activation (or the output) to have one scale")
    target = found.pop()
    if target is None:
        return scales.get(key(synapse.name), 1.0) if output else 1.0
    return scales[target]


def _then(part: nn.Module, gain: nn.Module, name: str, branch: str = "shortcut") -> nn.Module:
    """The residual part `name`, with `gain` appended when it is `branch`."""
    return nn.Sequential(*part, gain) if name == branch else part


def _last_synapse(graph: Network) -> Node:
    """The last conv/linear layer of the network."""
    synapses = graph.with_role(Role.SYNAPSE)
    if not synapses:
        raise ValueError("the network has no Conv2d or Linear layer")
    return synapses[-1]


def _scale(layer: nn.Module, weight_factor: float, bias_factor: float) -> None:
    layer.weight.mul_(weight_factor)
    if layer.bias is not None:
        layer.bias.mul_(bias_factor)


@torch.no_grad()
def to_snn(net: nn.Sequential, neuron: Callable[[], nn.Module], readout: str = "spikes") -> nn.Sequential:
    """The spiking network of a normalised ANN: IF neurons for activations, biases as constant current.

    A copy of `net` with neuron() for every activation and each other layer's kind's `snn` form
    (max-pools become SpikingMaxPool2d, in either order relative to the neuron; dropout is removed),
    and weights and biases multiplied by the neuron's threshold (a normalised activation of 1 then
    fires at every step). A bias is added at every step: a constant input current. At a residual
    sum, a branch that carries spikes (an identity shortcut) meets one that carries a synapse's
    current: it gets a `Gain` of the threshold, so both are currents on one scale. readout "spikes":
    IF neurons after the output layer (prediction: most spikes), unless an activation follows it
    already (before a Voting layer); "membrane": no neuron (prediction: most integrated current).
    The SNN runs in single-step mode.
    """
    check(readout in ("spikes", "membrane"), "model.readout", readout, "choose spikes or membrane")
    threshold = float(getattr(neuron(), "v_threshold", 1.0))
    out = copy.deepcopy(net)
    graph = Network.of(out)
    refuse_unconvertible(graph)
    current = {INPUT: False}  # node -> its output is a synapse's current (True) or spikes / the input (False)
    edits: list[Edit] = []
    for node in graph:
        if node.role is Role.ACTIVATION:
            edits.append((node.name, "set", neuron()))
            current[node.name] = False
        elif node.role is Role.SYNAPSE:
            _scale(node.module, threshold, threshold)
            current[node.name] = True
        elif node.role is Role.JOIN:
            body, shortcut = node.inputs
            if current[body] != current[shortcut] and threshold != 1.0:
                branch = "shortcut" if current[body] else "body"  # the one that carries spikes
                gain = Gain.scalar(threshold)
                edits.append((node.name, "set",
                              node.module.rebuilt(lambda name, part: _then(part, gain, name, branch))))
            current[node.name] = current[body] or current[shortcut]
        else:
            edits.append((node.name, "set", node.kind.snn(node.module)))
            current[node.name] = current[node.inputs[0]]
    last = _last_synapse(graph)
    names = list(graph.nodes)
    after = [graph[n] for n in names[names.index(last.name) + 1:]]
    if readout == "spikes" and not any(n.role is Role.ACTIVATION for n in after):
        edits.append((last.name, "after", neuron()))  # right after the output layer (before a Voting)
    out = _apply(out, graph, edits)
    set_step_mode(out, "s")
    return out
