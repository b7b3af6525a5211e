"""NIR export and import inside snnexp: node values by hand, refusals by name, exact round trips of chains,
residual and recurrent networks."""
from functools import partial

import nir
import numpy as np
import pytest
import torch
from torch import nn

from snnexp.deploy.nir import check_exportable, export_nir, layers_from_nir
from snnexp.deploy.nir.simulators import run_snnexp
from snnexp.errors import ConfigError
from snnexp.models import CSNN, MLP
from snnexp.models.base import SpikingModel
from snnexp.models.nir import NIRModel
from snnexp.network import Recurrent, Residual
from snnexp.network.layers import Gain, SumPool2d, Voting
from snnexp.neurons import ALIF, CUBA, IF, LI, LIF, PLIF
from tests.deploy.nir_nets import active, digit_spikes, recurrent, residual

hard = dict(reset="hard")


def nodes_of(graph: nir.NIRGraph, cls) -> list:
    return [n for n in graph.nodes.values() if isinstance(n, cls)]


def test_lif_time_constants_reset_and_threshold_are_written_in_seconds():
    model = MLP(partial(LIF, tau=4.0, v_threshold=0.5, v_reset=-0.25, **hard), in_shape=(3,), num_classes=2,
                hidden=(5,))
    graph = export_nir(model, (3,), dt=1e-3)
    lif = nodes_of(graph, nir.LIF)[0]
    assert lif.tau.shape == (5,) and np.allclose(lif.tau, 4e-3)  # 4 steps of 1 ms
    assert np.all(lif.r == 1) and np.all(lif.v_leak == -0.25) and np.all(lif.v_reset == -0.25)
    assert np.all(lif.v_threshold == 0.5) and graph.metadata["dt"] == 1e-3
    no_decay = export_nir(MLP(partial(LIF, tau=4.0, decay_input=False, **hard), in_shape=(3,), num_classes=2,
                              hidden=(5,)), (3,))
    assert np.all(nodes_of(no_decay, nir.LIF)[0].r == 4.0)  # v += x: r = tau/dt


def test_plif_if_cuba_and_li_nodes():
    plif = MLP(partial(PLIF, init_tau=3.0, **hard), in_shape=(2,), num_classes=2, hidden=(4,), readout="membrane",
               readout_tau=5.0)
    graph = export_nir(plif, (2,))
    assert np.allclose(nodes_of(graph, nir.LIF)[0].tau, 3e-4)  # the learnt 1/sigmoid(w)
    li = nodes_of(graph, nir.LI)[0]
    assert np.allclose(li.tau, 5e-4) and np.all(li.r == 1) and np.all(li.v_leak == 0)
    iaf = nodes_of(export_nir(MLP(partial(IF, v_threshold=2.0, **hard), in_shape=(2,), num_classes=2), (2,)), nir.IF)[0]
    assert np.all(iaf.r == 1) and np.all(iaf.v_threshold == 2.0)
    cuba = nodes_of(export_nir(MLP(partial(CUBA, current_decay=0.5, voltage_decay=0.25), in_shape=(2,),
                                   num_classes=2), (2,)), nir.CubaLIF)[0]
    # u = 0.5 u + x; v = 0.75 v + u:  tau_syn = dt/0.5, w_in = 2, tau_mem = dt/0.25, r = 4
    assert np.allclose(cuba.tau_syn, 2e-4) and np.all(cuba.w_in == 2.0)
    assert np.allclose(cuba.tau_mem, 4e-4) and np.all(cuba.r == 4.0) and np.all(cuba.v_leak == 0)


def test_batch_norm_is_folded_and_voting_becomes_a_block_matrix():
    model = active("csnn")
    graph = export_nir(model, (1, 8, 8))
    assert not any("batchnorm" in type(n).__name__.lower() for n in graph.nodes.values())
    conv, bn = model.net[0], model.net[1]
    x = torch.rand(2, 1, 8, 8)
    node = graph.nodes["conv0"]
    folded = nn.functional.conv2d(x, torch.from_numpy(node.weight), torch.from_numpy(node.bias), padding=1)
    with torch.no_grad():
        assert torch.allclose(folded, bn(conv(x)), atol=1e-5)
    voting = MLP(partial(LIF, **hard), in_shape=(2,), num_classes=3, voting=2)
    weight = nodes_of(export_nir(voting, (2,)), nir.Linear)[0].weight
    assert np.array_equal(weight, [[0.5, 0.5, 0, 0, 0, 0], [0, 0, 0.5, 0.5, 0, 0], [0, 0, 0, 0, 0.5, 0.5]])


@pytest.mark.parametrize("model, in_shape, match", [
    (lambda: CSNN(partial(LIF, **hard), in_shape=(1, 8, 8), num_classes=2, pool="max"), (1, 8, 8),
     r"net\.2 \(MaxPool2d\) is a max-pool.*model\.pool=avg"),
    (lambda: MLP(LIF, in_shape=(2,), num_classes=2), (2,), r"net\.2 \(LIF\) resets by subtraction.*neuron\.reset=hard"),
    (lambda: MLP(partial(ALIF, **hard), in_shape=(2,), num_classes=2), (2,), r"net\.2 \(ALIF\) has an adaptive threshold"),
    (lambda: MLP(partial(CUBA, fixed_point=True), in_shape=(2,), num_classes=2), (2,), r"fixed-point.*deploy=loihi"),
    (lambda: nn.Sequential(nn.Linear(2, 2), nn.ReLU()), (2,), r"net\.1 \(ReLU\) has no NIR node"),
], ids=["max-pool", "subtract", "alif", "fixed-point", "relu"])
def test_what_nir_cannot_express_is_refused_by_name(model, in_shape, match):
    with pytest.raises(ConfigError, match=match):
        check_exportable(model())
    with pytest.raises(ConfigError, match=match):
        export_nir(model(), in_shape)


@pytest.mark.parametrize("kind, avg_pool", [("mlp", "avg"), ("csnn", "avg"), ("csnn", "sum")])
def test_snnexp_to_nir_to_snnexp_gives_identical_spikes(kind, avg_pool, tmp_path):
    model = active(kind)
    x, _ = digit_spikes()
    export_nir(model, (1, 8, 8), tmp_path / "net.nir", avg_pool=avg_pool)
    graph = nir.read(str(tmp_path / "net.nir"))
    assert any(isinstance(n, nir.SumPool2d) for n in graph.nodes.values()) == (avg_pool == "sum")
    with torch.no_grad():
        ref = model(x)
    assert ref.sum(0).count_nonzero() > 100  # the output layer fires
    assert torch.equal(run_snnexp(graph, x), ref)


def test_sum_pool_folds_into_the_synapse_after_pooled_spikes():
    """pool_first=False pools spikes: the 1/4 goes into the next conv's weights (exact: a power of two)."""
    model = active("csnn", pool_first=False, batch_norm=False)
    x, _ = digit_spikes(20)
    graph = export_nir(model, (1, 8, 8), avg_pool="sum")
    assert torch.allclose(torch.from_numpy(graph.nodes["conv3"].weight), model.net[3].weight / 4)
    with torch.no_grad():
        ref = model(x)
    assert ref.count_nonzero() > 0 and torch.equal(run_snnexp(graph, x), ref)


def test_every_neuron_survives_the_round_trip():
    x, _ = digit_spikes(20)
    neurons = [partial(IF, **hard), partial(LIF, tau=3.0, decay_input=False, v_reset=0.1, **hard),
               partial(PLIF, init_tau=2.5, **hard), partial(CUBA, current_decay=0.5, voltage_decay=0.125)]
    for neuron in neurons:
        torch.manual_seed(0)
        model = MLP(neuron, in_shape=(1, 8, 8), num_classes=10, hidden=(32,)).eval()
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, nn.Linear):
                    m.weight.mul_(4)
            ref = model(x)
        out = run_snnexp(export_nir(model, (1, 8, 8)), x)
        assert ref.count_nonzero() > 0 and torch.equal(out, ref), neuron


def test_membrane_readout_round_trip():
    torch.manual_seed(0)
    model = MLP(partial(LIF, **hard), in_shape=(1, 8, 8), num_classes=10, hidden=(32,), readout="membrane").eval()
    x, _ = digit_spikes(10)
    with torch.no_grad():
        ref = model(x)
    layers = layers_from_nir(export_nir(model, (1, 8, 8))).layers
    assert isinstance(layers[-1], LI) and torch.equal(run_snnexp(export_nir(model, (1, 8, 8)), x), ref)


def _graph(*middle: nir.NIRNode, shape=(4,)) -> nir.NIRGraph:
    return nir.NIRGraph.from_list(nir.Input(input_type={"input": np.array(shape)}), *middle,
                                  nir.Output(output_type={"output": np.array([2])}))


def test_import_maps_each_node_type():
    conv = nir.Conv2d(input_shape=(4, 4), weight=np.ones((2, 1, 3, 3), np.float32), stride=1, padding=1, dilation=1,
                      groups=1, bias=np.zeros(2, np.float32))
    full = lambda shape, v: np.full(shape, v)  # noqa: E731
    graph = _graph(conv, nir.SumPool2d(np.array([2, 2]), np.array([2, 2]), np.array([0, 0])),
                   nir.IF(r=full((2, 2, 2), 1.0), v_threshold=full((2, 2, 2), 1.0)),
                   nir.AvgPool2d(np.array([2, 2]), np.array([2, 2]), np.array([0, 0])),
                   nir.Flatten(input_type={"input": np.array([2, 1, 1])}, start_dim=0),
                   nir.Affine(weight=np.ones((6, 2), np.float32), bias=np.zeros(6, np.float32)),
                   nir.CubaLIF(tau_syn=full(6, 2e-4), tau_mem=full(6, 4e-4), r=full(6, 4.0), v_leak=full(6, 0.0),
                               v_threshold=full(6, 1.0), w_in=full(6, 2.0)),
                   nir.Linear(weight=np.kron(np.eye(2), np.full((1, 3), 1 / 3)).astype(np.float32)),
                   shape=(1, 4, 4))
    layers = layers_from_nir(graph).layers
    kinds = [type(m) for m in layers]
    assert kinds == [nn.Conv2d, SumPool2d, IF, nn.AvgPool2d, nn.Flatten, nn.Linear, CUBA, Voting]
    assert layers[4].start_dim == 1  # NIR's shapes have no batch
    assert layers[6].i_decay == 2048 and layers[6].v_decay == 1024 and layers[7].per_class == 3
    x = torch.ones(1, 1, 4, 4)
    assert torch.equal(layers[1](layers[0](x)), nn.functional.avg_pool2d(layers[0](x), 2) * 4)  # a sum


def test_import_refuses_unsupported_nodes_and_non_chains_by_name():
    with pytest.raises(ConfigError, match=r"NIR node 'threshold' \(Threshold\) is not supported"):
        layers_from_nir(_graph(nir.Linear(weight=np.ones((2, 4))), nir.Threshold(threshold=np.ones(2))))
    lif = nir.LIF(tau=np.full(2, 2e-4), r=np.ones(2), v_leak=np.zeros(2), v_threshold=np.array([1.0, 2.0]))
    with pytest.raises(ConfigError, match=r"'lif' \(LIF\) has a different v_threshold per neuron"):
        layers_from_nir(_graph(nir.Linear(weight=np.ones((2, 4))), lif))
    branch = _graph(nir.Linear(weight=np.ones((2, 4))))
    branch.edges.append(("input", "output"))
    with pytest.raises(ConfigError, match=r"NIR node 'input' \(Input\) has 2 outgoing edges"):
        layers_from_nir(branch)


def test_model_nir_checks_the_dataset_against_the_graph(tmp_path):
    path = tmp_path / "mlp.nir"
    export_nir(active("mlp"), (1, 8, 8), path)
    model = NIRModel(None, in_shape=(1, 8, 8), num_classes=10, path=str(path))
    assert model.readout == "spikes" and model.dt == 1e-4
    with pytest.raises(ConfigError, match=r"Input takes shape \(1, 8, 8\), the dataset gives in_shape \(1, 28, 28\)"):
        NIRModel(None, in_shape=(1, 28, 28), num_classes=10, path=str(path))
    with pytest.raises(ConfigError, match=r"Output has shape \(10,\), the dataset has 5 classes"):
        NIRModel(None, in_shape=(1, 8, 8), num_classes=5, path=str(path))
    with pytest.raises(ConfigError, match="model.path"):
        NIRModel(None, in_shape=(1, 8, 8), num_classes=10, path=str(tmp_path / "missing.nir"))
    flat = tmp_path / "flat.nir"
    export_nir(MLP(partial(LIF, **hard), in_shape=(64,), num_classes=10), (64,), flat)
    assert isinstance(NIRModel(None, in_shape=(1, 8, 8), num_classes=10, path=str(flat)).net[0], nn.Flatten)


# -- graphs: residual and recurrent networks ---------------------------------------------------------

@pytest.mark.parametrize("sew, pool, avg_pool", [(False, True, "avg"), (False, True, "sum"), (True, True, "sum"),
                                                  (False, False, "avg")], ids=["resnet", "resnet-sum", "sew-sum",
                                                                               "no-pool"])
def test_residual_network_round_trip_gives_identical_spikes(sew, pool, avg_pool, tmp_path):
    model = residual(sew=sew, pool=pool)
    x, _ = digit_spikes()
    export_nir(model, (1, 8, 8), tmp_path / "net.nir", avg_pool=avg_pool)
    graph = nir.read(str(tmp_path / "net.nir"))
    imported = layers_from_nir(graph)
    assert sum(isinstance(m, Residual) for m in nn.Sequential(*imported.layers).modules()) == 2
    with torch.no_grad():
        ref = model(x)
    assert ref.sum(0).count_nonzero() > 100  # the output layer fires
    assert torch.equal(run_snnexp(graph, x), ref)


def test_residual_graph_sums_both_branches_in_the_node_after_the_block():
    """The add join is left out: the neuron after a block reads the body's last conv and the shortcut."""
    graph = export_nir(residual(), (1, 8, 8))
    into = lambda name: sorted(src for src, dst in graph.edges if dst == name)  # noqa: E731
    assert into("lif4") == ["conv3_body_3", "lif2"]  # identity shortcut: the block's input
    assert into("lif7") == ["conv6_body_3", "conv6_shortcut_0"]  # 1x1 conv projection
    assert into("conv6_body_0") == into("conv6_shortcut_0") == ["avgpool5"]
    assert not any("join" in name or "bn" in name for name in graph.nodes)  # folded, left out


def test_nested_and_three_way_forks_round_trip():
    """x -> lif; lif + fc_a(lif) + fc_b(lif) (three branches) and a block inside a block's body."""
    torch.manual_seed(0)
    lif = partial(LIF, reset="hard", v_threshold=0.3)
    model = SpikingModel([nn.Flatten(), nn.Linear(64, 16), lif(),
                          Residual([Residual([nn.Linear(16, 16)], [nn.Linear(16, 16)])], []), lif(),
                          Residual([nn.Linear(16, 16), lif(), Residual([nn.Linear(16, 16)], []), nn.Linear(16, 16)],
                                   [nn.Linear(16, 16)]), lif(), nn.Linear(16, 10), lif()], "m", "spikes").eval()
    x, _ = digit_spikes(50)
    graph = export_nir(model, (1, 8, 8))
    into = sorted(src for src, dst in graph.edges if dst == "lif4")
    assert into == ["fc3_body_0_body_0", "fc3_body_0_shortcut_0", "lif2"]  # three branches, one sum
    with torch.no_grad():
        ref = model(x)
    assert ref.count_nonzero() > 0 and torch.equal(run_snnexp(graph, x), ref)


def test_recurrent_network_round_trip_gives_identical_spikes(tmp_path):
    model = recurrent()
    x, _ = digit_spikes()
    export_nir(model, (1, 8, 8), tmp_path / "net.nir")
    graph = nir.read(str(tmp_path / "net.nir"))
    assert {("lif2_neuron", "fc2_feedback_0"), ("fc2_feedback_0", "lif2_neuron")} <= set(graph.edges)
    layers = layers_from_nir(graph).layers
    block = [m for m in layers if isinstance(m, Recurrent)][0]
    assert torch.equal(block.feedback[0].weight, model.net[2].feedback[0].weight)
    with torch.no_grad():
        ref = model(x)
    assert ref.sum(0).count_nonzero() > 50 and torch.equal(run_snnexp(graph, x), ref)
    single = NIRModel(None, in_shape=(1, 8, 8), num_classes=10, path=str(tmp_path / "net.nir"), step_mode="s").eval()
    with torch.no_grad():
        assert torch.equal(single(x), ref)  # single-step mode too


def test_what_a_graph_export_cannot_express_is_refused_by_name():
    lif = partial(LIF, reset="hard")
    gate = nn.Sequential(nn.Linear(4, 4), lif(), Residual([nn.Linear(4, 4), lif()], [], "iand"))
    with pytest.raises(ConfigError, match=r"layer net\.2 \(Residual\).*'iand' is a logic gate.*connect=add"):
        check_exportable(gate)
    # avg_pool=sum: the pool's readers are a block's body and its identity shortcut: no weights for its 1/window
    pooled = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), lif(), nn.AvgPool2d(2),
                           Residual([nn.Conv2d(2, 2, 3, padding=1), lif()], []), nn.Flatten(), nn.Linear(32, 2))
    with pytest.raises(ConfigError, match=r"avg_pool=sum: layer net\.2 \(AvgPool2d\).*layer net\.4 \(Flatten\) "
                                          r"reads it.*avg_pool=avg"):  # the sum through the left-out join
        check_exportable(pooled, avg_pool="sum")
    check_exportable(pooled)  # as an AvgPool2d it exports


def _lif(n: int, **kw) -> nir.LIF:
    return nir.LIF(tau=np.full(n, 2e-4), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n), **kw)


def test_import_refuses_a_cycle_through_two_neurons_and_branches_that_never_meet():
    nodes = {"input": nir.Input(input_type={"input": np.array([4])}), "fc": nir.Linear(weight=np.ones((4, 4))),
             "a": _lif(4), "b": _lif(4), "output": nir.Output(output_type={"output": np.array([4])})}
    loop = nir.NIRGraph(nodes=nodes, edges=[("input", "fc"), ("fc", "a"), ("a", "b"), ("b", "a"), ("b", "output")])
    with pytest.raises(ConfigError, match=r"NIR node '(a|b)' \(LIF\) lies on a cycle .*two neuron layers"):
        layers_from_nir(loop)
    nodes = {"input": nir.Input(input_type={"input": np.array([4])}), "fa": nir.Linear(weight=np.ones((4, 4))),
             "fb": nir.Linear(weight=np.ones((4, 4))), "a": _lif(4), "b": _lif(4),
             "output": nir.Output(output_type={"output": np.array([4])})}
    apart = nir.NIRGraph(nodes=nodes, edges=[("input", "fa"), ("input", "fb"), ("fa", "a"), ("fb", "b"),
                                             ("a", "output"), ("b", "b")])
    with pytest.raises(ConfigError, match=r"NIR node 'b' \(LIF\) has no outgoing edge"):
        layers_from_nir(apart)


def test_cuba_lif_with_any_gain_equals_the_euler_discretisation_of_its_ode():
    """CubaLIF with w_in = 3, r = 2, v_leak = 0.5 at dt = 1e-4 (di = 1/4, dv = 1/8: exact in CUBA's 12 bits):
    I += di (w_in x - I);  v += dv (v_leak - v + r I);  spike when v >= 1, then v = 0 (I goes on)."""
    n, steps = 6, 60
    node = nir.CubaLIF(tau_syn=np.full(n, 4e-4), tau_mem=np.full(n, 8e-4), r=np.full(n, 2.0), w_in=np.full(n, 3.0),
                       v_leak=np.full(n, 0.5), v_threshold=np.ones(n), v_reset=np.zeros(n))
    graph = nir.NIRGraph.from_list(nir.Input(input_type={"input": np.array([n])}), node,
                                   nir.Output(output_type={"output": np.array([n])}))
    layers = layers_from_nir(graph, dt=1e-4).layers
    assert [type(m) for m in layers] == [Gain, CUBA]
    assert layers[0].gain.item() == 3 * 0.25 * 2 * 0.125 and layers[1].bias.item() == 0.5 * 0.125
    x = torch.rand(steps, 4, n, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2
    i, v, euler = torch.zeros(4, n, dtype=torch.float64), torch.zeros(4, n, dtype=torch.float64), []
    for x_t in x:
        i = i + 0.25 * (3.0 * x_t - i)
        v = v + 0.125 * (0.5 - v + 2.0 * i)
        s = (v >= 1).double()
        v = v * (1 - s)
        euler.append(s)
    with torch.no_grad():
        out = SpikingModel(layers, "m", "spikes")(x.float())
    assert torch.stack(euler).sum() > 20 and torch.equal(out.double(), torch.stack(euler))


def test_a_declared_batch_dimension_of_one_is_read_as_the_sample_shape():
    conv = nir.Conv2d(input_shape=None, weight=np.ones((2, 1, 3, 3), np.float32), stride=1, padding=1, dilation=1,
                      groups=1, bias=np.zeros(2, np.float32))
    imported = layers_from_nir(nir.NIRGraph(nodes={
        "input": nir.Input(input_type={"input": np.array([1, 1, 4, 4])}), "conv": conv, "lif": _lif(1),
        "flat": nir.Flatten(input_type={"input": np.array([2, 4, 4])}, start_dim=0),
        "fc": nir.Affine(weight=np.ones((3, 32), np.float32), bias=np.zeros(3, np.float32)), "out_lif": _lif(3),
        "output": nir.Output(output_type={"output": np.array([1, 3])})},
        edges=[("input", "conv"), ("conv", "lif"), ("lif", "flat"), ("flat", "fc"), ("fc", "out_lif"),
               ("out_lif", "output")], type_check=False))
    assert imported.in_shape == (1, 4, 4) and imported.out_shape == (3,)  # Norse's (1, 1, 8, 8) form
    flat = layers_from_nir(nir.NIRGraph(nodes={
        "input": nir.Input(input_type={"input": np.array([1, 4])}), "fc": nir.Linear(weight=np.ones((2, 4))),
        "lif": _lif(2), "output": nir.Output(output_type={"output": np.array([1, 2])})},
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")], type_check=False))
    assert flat.in_shape == (4,) and flat.out_shape == (2,)
    image = layers_from_nir(export_nir(active("csnn"), (1, 8, 8)))  # a channel of 1 stays a channel
    assert image.in_shape == (1, 8, 8) and image.out_shape == (10,)
