"""From a trained SpikingModel to Loihi's integer network: checks, BatchNorm folding, quantisation.

The result, a `LoihiNet`, is what the exporters write (`export.py`), what `FixedPointNet` runs in
torch (`fixed_point.py`) and what snnexp's Lava runner builds (`lava_runner.py`). The model is
read through its one representation (`snnexp.network.Network`): each node's role decides.
Loihi runs a chain of layers, each a synapse (SYNAPSE: Linear or Conv2d, no bias) followed by a
spiking layer (NEURON), which becomes a CUBA neuron (`snnexp.neurons.cuba`) with integer weights
(even, -256..254: lava-nc's Dense keeps 8 bits and drops the lowest one for mixed signs), a
17-bit threshold mantissa, 12-bit decays and a 13-bit bias mantissa. Between them: BatchNorm
(NORM) folds into the synapse (its shift becomes the bias), an average pool (POOL, not a
`maximum`) folds into a strided convolution (or, pooling spikes, into the Linear after it:
ResNet's global pool), flatten (SHAPE) and dropout (PASS) move nothing, and
fixed scales (SCALE: voting) after the last spiking layer apply to the output spike counts.
A recurrent layer (`snnexp.network.Recurrent` with one bias-free Linear feedback) keeps its
feedback as a Dense from the layer's neurons to themselves (`LoihiLayer.recurrent`), quantised at
the layer's scale. A residual sum before a neuron (`Residual(body, shortcut, "add")` whose body
ends with a synapse, followed by a neuron: the spiking ResNet) becomes a second synapse into that
layer (`LoihiLayer.skip`) from the block's input population (an identity weight, or the
projection), at the same scale; Lava delays it to the body's depth. Spikes added after a neuron
(SEW-ResNet) and the and/iand joins are refused.

Quantisation (and the IF initial membrane's pulse) is in `quantise.py`, the integer network in `net.py`.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import nir
import torch
from torch import Tensor, nn

from snnexp.deploy.loihi.net import LoihiNet
from snnexp.deploy.loihi.quantise import Synapse, quantise
from snnexp.errors import ConfigError
from snnexp.models.batchnorm import fold_batchnorm_params
from snnexp.network import INPUT, Network, Node, Role, Unsupported
from snnexp.network.layers.pairs import pair
from snnexp.neurons.base import SpikingNeuron
from snnexp.neurons.cuba import CUBA


@dataclass
class _Pop:
    """A node's output that is spikes: population `index` (a layer; -1: the network's input), maybe flattened,
    maybe averaged over windows (`pools`, from the population's `origin` shape) for the next synapse to fold in."""

    index: int
    shape: tuple[int, ...]
    flatten_from: tuple[int, ...] | None = None
    pools: tuple[nn.Module, ...] = ()
    origin: tuple[int, ...] | None = None  # the population's own shape, when pooled


@dataclass
class _Plan:
    """What Loihi runs of a network: its nodes in order, and each recurrent neuron's feedback synapse."""

    nodes: list[Node]  # every node but the feedback chains'
    feedback: dict[str, Node]  # recurrent neuron node name -> the Linear that feeds its spikes back


def refuse_unmappable(model: nn.Module) -> None:
    """Raise ConfigError naming the first layer Loihi cannot run (checked before training)."""
    _plan(Network.of(model))


def _plan(net: Network) -> _Plan:
    """The nodes Loihi maps, in order, and the recurrent neurons' feedback synapses; ConfigError naming the
    first layer that has no Loihi form by itself (`extract` refuses what does not fit its neighbours)."""
    feedback, inside = {}, set()
    for node in net:
        if node.delayed:
            chain = _feedback_chain(net, node)
            inside |= {n.name for n in chain}
            feedback[node.name] = _feedback_synapse(node, chain)
    nodes = [n for n in net if n.name not in inside]
    for node in nodes:
        _refuse(node)
    return _Plan(nodes, feedback)


def _feedback_chain(net: Network, neuron: Node) -> list[Node]:
    """The nodes from a recurrent neuron's spikes back to its input, in order."""
    chain, name = [], neuron.delayed[0]
    while name != neuron.name:
        node = net[name]
        chain.append(node)
        name = node.inputs[0]
    return chain[::-1]


def _feedback_synapse(neuron: Node, chain: list[Node]) -> Node:
    """The one bias-free Linear of a feedback chain (dropout aside): Loihi's Dense from a layer to itself."""
    synapses = [n for n in chain if n.role is Role.SYNAPSE]
    others = [n for n in chain if n.role not in (Role.SYNAPSE, Role.PASS)]
    if len(synapses) != 1 or others or synapses[0].module.weight.dim() != 2:
        raise ConfigError(
            f"deploy=loihi: the recurrent layer {neuron.name} feeds its spikes back through "
            f"{[type(n.module).__name__ for n in chain] or 'nothing (the identity)'}; Loihi's recurrent synapse is one "
            f"Dense: give the feedback one Linear without bias")
    _refuse(synapses[0])
    return synapses[0]


def _refuse(node: Node) -> None:
    """ConfigError when Loihi has no form for the node's layer, whatever its neighbours (its role decides)."""
    m, name, role = node.module, node.name, node.role
    if role is Role.SYNAPSE and m.bias is not None:
        raise ConfigError(
            f"deploy=loihi: layer {name} ({type(m).__name__}) has a bias, and Loihi's synapses have none; "
            f"set model.bias=false (with learner=ann2snn also learner.bias=false)")
    if role is Role.POOL and node.kind.maximum:
        raise ConfigError(
            f"deploy=loihi: layer {name} ({type(m).__name__}) is a max-pool: a maximum is not a weighted sum, "
            f"and netx/Lava have no pooling layer; set model.pool=avg (folded into a strided convolution; "
            f"with learner=ann2snn also learner.max_pool=avg)")
    if role is Role.NEURON and not node.kind.spiking:
        raise ConfigError(f"deploy=loihi: layer {name} is a non-spiking readout; Lava's output is spikes: "
                          f"set model.readout=spikes")
    if role is Role.NEURON and not (isinstance(m, SpikingNeuron)
                                    and (isinstance(m, CUBA) or m.charge_coefficients() is not None)):
        raise ConfigError(f"deploy=loihi: layer {name} ({type(m).__name__}) has no CUBA equivalent: Loihi's "
                          f"neuron needs a charge affine in (v, x) (charge_coefficients); use neuron=cuba, lif, plif "
                          f"or if")
    if role is Role.JOIN and m.connect != "add":
        raise ConfigError(f"deploy=loihi: the residual block {name} joins with '{m.connect}', a logic gate on spikes; "
                          f"Lava has no process for it (a gate would be a neuron, one step late): use connect=add")
    if role not in (Role.SYNAPSE, Role.NORM, Role.POOL, Role.SHAPE, Role.PASS, Role.SCALE, Role.NEURON, Role.JOIN):
        raise ConfigError(f"deploy=loihi: layer {name} ({type(m).__name__}, role: {role.value}) has no Loihi/netx "
                          f"equivalent (Loihi runs synapses, BatchNorm and average pools folded into them, flatten, "
                          f"spiking neurons, residual sums before a neuron, and a fixed scale of the output counts)")


def extract(model: nn.Module, in_shape: tuple[int, ...]) -> LoihiNet:
    """The trained model, fed [T, N, *in_shape], as a quantised LoihiNet (the model is unchanged).

    Each node's output is either spikes (`_Pop`: the input, a neuron layer, flattened or not) or a
    current being assembled (`Synapse`: a synapse, with BatchNorm, a pool and a shortcut folded in),
    which the next neuron layer quantises into a `LoihiLayer`.
    """
    in_shape = tuple(int(n) for n in in_shape)
    network = Network.of(model, in_shape)
    plan = _plan(network)
    values: dict[str, _Pop | Synapse] = {INPUT: _Pop(-1, in_shape)}
    layers, notes, readout = [], [], []
    for node in plan.nodes:
        m, name, role = node.module, node.name, node.role
        if readout and role not in (Role.SCALE, Role.PASS):
            raise ConfigError(f"deploy=loihi: layer {readout[0][0]} ({type(readout[0][1]).__name__}) is a fixed scale "
                              f"inside the network; Loihi applies one only to the output spike counts (after the "
                              f"last spiking layer)")
        x = values[node.inputs[0]]
        if role is Role.JOIN:
            x = _join(node, x, values[node.inputs[1]])
        elif role is Role.SHAPE:
            x = _flatten(node, _spikes(x, node))
        elif role is Role.SYNAPSE:
            x = _synapse(node, _spikes(x, node))
        elif role is Role.NORM:  # its shift becomes the neuron's bias
            syn = _current(x, name, "a BatchNorm")
            syn.weight, syn.bias = fold_batchnorm_params(syn.weight, syn.bias, m)
        elif role is Role.POOL and isinstance(x, _Pop):
            x = _pool_spikes(node, x)
        elif role is Role.POOL:
            _fold_avg_pool(_current(x, name, "an average pool"), node)
        elif role is Role.NEURON:
            feedback = plan.feedback.get(name)
            layer, layer_notes = quantise(_current(x, name, "a spiking layer", folds=False), m, name,
                                           None if feedback is None else feedback.module.weight)
            notes += [n for n in layer_notes if n not in notes]
            layers.append(layer)
            x = _Pop(len(layers) - 1, layer.out_shape)
        elif role is Role.SCALE:
            readout.append((name, m))
        values[name] = x
    if isinstance(values[network.output], Synapse):
        raise ConfigError(f"deploy=loihi: the last synapse layer {values[network.output].name} drives no spiking "
                          f"layer: a non-spiking readout (e.g. model.readout=membrane) has no Loihi form, whose output "
                          f"is spikes; set model.readout=spikes")
    return LoihiNet(in_shape, layers, nn.Sequential(*[copy.deepcopy(m) for _, m in readout]).eval(), notes)


def _spikes(x: _Pop | Synapse, node: Node) -> _Pop:
    """x as the spikes `node` reads; ConfigError when it is a synapse's current (no neuron in between)."""
    if isinstance(x, _Pop):
        return x
    if node.role is Role.SYNAPSE:
        raise ConfigError(f"deploy=loihi: {x.name} and {node.name} are two synapse layers in a row; "
                          f"Loihi needs a neuron after each")
    raise ConfigError(f"deploy=loihi: layer {node.name} ({type(node.module).__name__}) reshapes the current of "
                      f"{x.name}; Loihi reshapes spikes only: put it after the neuron")


def _current(x: _Pop | Synapse, name: str, what: str, folds: bool = True) -> Synapse:
    """x as the current `name` (a layer that is `what`) reads; folds: it folds into the synapse."""
    if isinstance(x, _Pop):
        raise ConfigError(f"deploy=loihi: layer {name} is {what} with no Linear/Conv2d before it to fold into")
    if x.skip is not None and folds:
        raise ConfigError(f"deploy=loihi: layer {name} is {what} after the residual sum of {x.name}; Loihi folds it "
                          f"into one synapse only: put it inside the block's body and shortcut")
    return x


def _flatten(node: Node, x: _Pop) -> _Pop:
    if len(node.shape) != 1:
        raise ConfigError(f"deploy=loihi: layer {node.name} ({type(node.module).__name__}) gives shape {node.shape}; "
                          f"netx's flatten flattens a whole sample")
    return _Pop(x.index, (math.prod(x.shape),), x.shape if len(x.shape) > 1 else x.flatten_from, x.pools, x.origin)


def _pool_spikes(node: Node, x: _Pop) -> _Pop:
    """An average (or sum) pool of a population's spikes (e.g. ResNet's global pool): a fixed weighted sum that
    the next synapse, a Linear, takes into its weights (`_synapse`)."""
    if not isinstance(_nir_node(node, node.in_shape), (nir.AvgPool2d, nir.SumPool2d)) or x.flatten_from is not None:
        raise ConfigError(f"deploy=loihi: layer {node.name} ({type(node.module).__name__}) pools spikes but is no "
                          f"average or sum over windows of an image")
    return _Pop(x.index, node.shape, None, x.pools + (node.module,), x.origin or x.shape)


def _join(node: Node, body: _Pop | Synapse, shortcut: _Pop | Synapse) -> Synapse:
    """A residual sum before a neuron: the body's current plus the shortcut's (a projection's, or the
    block input's spikes through an identity synapse), into the same neurons."""
    if isinstance(body, _Pop):
        raise ConfigError(f"deploy=loihi: the residual block {node.name} adds spikes after its last neuron "
                          f"(SEW-ResNet); Loihi's neurons add currents: end the body with a synapse so the sum comes "
                          f"before the neuron after the block (the spiking ResNet of model=resnet)")
    if body.skip is not None or (isinstance(shortcut, Synapse) and shortcut.skip is not None):
        raise ConfigError(f"deploy=loihi: the residual block {node.name} adds a second shortcut to {body.name}'s "
                          f"current; Loihi maps one shortcut per layer")
    if isinstance(shortcut, _Pop) and shortcut.pools:
        raise ConfigError(f"deploy=loihi: the identity shortcut of residual block {node.name} reads pooled spikes; "
                          f"give the shortcut a projection (a strided 1x1 conv)")
    if isinstance(shortcut, _Pop):
        shortcut = _identity(shortcut, body.weight.dtype)
    if shortcut.source > body.source:
        raise ConfigError(f"deploy=loihi: the shortcut of residual block {node.name} reads a later layer than its "
                          f"body's last synapse {body.name}; Lava can only delay a shortcut, not advance it")
    body.skip = shortcut
    return body


def _identity(x: _Pop, dtype: torch.dtype) -> Synapse:
    """The identity from population x as a synapse: eye(n) for vectors, a 1x1 conv for images."""
    if len(x.shape) == 1:
        return Synapse("identity", torch.eye(x.shape[0], dtype=dtype), torch.zeros(x.shape[0], dtype=dtype), x.shape,
                        x.flatten_from, x.index)
    c = x.shape[0]
    w = torch.eye(c, dtype=dtype).view(c, c, 1, 1)  # [out, in, 1, 1]
    return Synapse("identity", w, torch.zeros(c, dtype=dtype), x.shape, None, x.index)


def _nir_node(node: Node, shape: tuple[int, ...]):
    """The layer's NIR node: its declared form as a weighted sum (conv geometry, pooling window)."""
    try:
        return node.kind.to_nir(node.module, shape, 1e-4)
    except Unsupported as e:
        raise ConfigError(f"deploy=loihi: layer {node.name} ({type(node.module).__name__}): {e}") from None


def _synapse(node: Node, x: _Pop) -> Synapse:
    """A SYNAPSE node as a dense ([out, in] weight) or a conv ([out, in, kh, kw]) synapse reading x."""
    w = node.module.weight.detach().double()
    if x.pools:
        return _pooled_dense(node, w, x)
    syn = Synapse(node.name, w, torch.zeros(w.shape[0], dtype=torch.float64), x.shape, x.flatten_from, x.index)
    if w.dim() == 2:
        return syn
    conv = _nir_node(node, x.shape)
    if w.dim() != 4 or not isinstance(conv, nir.Conv2d) or int(conv.groups) != 1 or pair(conv.dilation) != (1, 1):
        raise ConfigError(f"deploy=loihi: layer {node.name} ({type(node.module).__name__}) needs to be a Linear or a "
                          f"Conv2d with groups=1, dilation=1, zero padding")
    syn.stride, syn.padding = pair(conv.stride), pair(conv.padding)
    return syn


@torch.no_grad()
def _pooled_dense(node: Node, w: Tensor, x: _Pop) -> Synapse:
    """A Linear after pooled (and flattened) spikes as one Dense from the whole population (exact): W P, with
    P [in, population] the pools and flatten as a matrix, read off by pooling each unit image."""
    if w.dim() != 2 or len(x.shape) != 1:
        raise ConfigError(f"deploy=loihi: layer {node.name} ({type(node.module).__name__}) reads average-pooled "
                          f"spikes; Loihi folds such a pool into a following Linear only: put the pool before the "
                          f"neuron (model.pool_first=true)")
    n = math.prod(x.origin)
    units = torch.eye(n, dtype=torch.float64).view(n, *x.origin)  # [n, C, H, W]: one spike per image
    for pool in x.pools:
        units = pool(units)
    p = units.flatten(1).T  # [in, n]
    return Synapse(node.name, w @ p, torch.zeros(w.shape[0], dtype=torch.float64), (n,), x.origin, x.index)


def _fold_avg_pool(syn: Synapse, node: Node) -> None:
    """conv(K, stride 1, pad p) then a k x k average (or sum) pool of stride k == conv(K + k - 1, stride k,
    pad p): the kernel summed over the k x k shifts of the window, times the pool's tap weight (exact)."""
    pool = _nir_node(node, node.in_shape)
    ks, st, pad = (pair(v) for v in (pool.kernel_size, pool.stride, pool.padding))
    k = ks[0]
    if not syn.conv or ks != (k, k) or st != (k, k) or pad != (0, 0) or syn.stride != (1, 1) or syn.pooled:
        raise ConfigError(f"deploy=loihi: layer {node.name} ({type(node.module).__name__}) folds only as a k x k pool "
                          f"of stride k right after a stride-1 convolution (model.pool=avg, model.pool_first=true)")
    tap = 1 / (k * k) if isinstance(pool, nir.AvgPool2d) else 1.0  # SumPool2d: 1 on each tap
    w = syn.weight  # [out, in, kh, kw]
    folded = w.new_zeros(w.shape[0], w.shape[1], w.shape[2] + k - 1, w.shape[3] + k - 1)
    for dy in range(k):
        for dx in range(k):
            folded[:, :, dy:dy + w.shape[2], dx:dx + w.shape[3]] += w * tap
    syn.weight, syn.stride, syn.pooled = folded, (k, k), True
