"""NIR round trips against the peers (test extra: snnTorch 1.0, Norse 1.1), spike for spike on 100 digits.

snnexp -> NIR -> snnTorch / Norse, and snnTorch / Norse -> NIR -> snnexp: chains, snnTorch's RLeaky, Norse's
LIFCell (CubaLIF), and snnexp's residual and recurrent networks. Where a peer's importer cannot take
a graph, the test asserts the peer's actual failure and that snnexp's runner names the node.
"""
import contextlib
import copy
import io
import warnings
from functools import partial

import nir
import numpy as np
import pytest
import torch

from snnexp.deploy.nir import PeerRefusal, export_nir, simulate
from snnexp.deploy.nir.simulators import run_snnexp
from snnexp.deploy.nir.target import spike_agreement
from snnexp.models import MLP
from snnexp.network import Recurrent
from snnexp.network.layers import Gain
from snnexp.neurons import IF
from tests.deploy.nir_nets import active, digit_spikes, recurrent, residual

snntorch = pytest.importorskip("snntorch")
norse_torch = pytest.importorskip("norse.torch")
pytestmark = pytest.mark.slow  # the peers' own simulators, 100 digits each: about a minute in all on 2 cores


def exported(kind: str, tmp_path, avg_pool: str = "avg", **kw) -> tuple[torch.nn.Module, nir.NIRGraph]:
    model = active(kind, **kw)
    export_nir(model, (1, 8, 8), tmp_path / "net.nir", avg_pool=avg_pool)
    return model, nir.read(str(tmp_path / "net.nir"))  # the file, as a peer gets it


def reference(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        out = model(x)
    assert out.sum(0).count_nonzero() > 100  # the outputs fire: agreement is not 0 == 0
    return out


@pytest.mark.parametrize("sim", ["snntorch", "norse"])
def test_mlp_gives_identical_spikes_in_the_peers(sim, tmp_path):
    model, graph = exported("mlp", tmp_path)
    x, _ = digit_spikes(100)
    assert spike_agreement(simulate(sim, graph, x), reference(model, x)) == 1.0


def test_csnn_with_avg_pooling_gives_identical_spikes_in_snntorch(tmp_path):
    model, graph = exported("csnn", tmp_path)
    x, _ = digit_spikes(100)
    assert any(isinstance(n, nir.AvgPool2d) for n in graph.nodes.values())
    assert spike_agreement(simulate("snntorch", graph, x), reference(model, x)) == 1.0


def test_norse_cannot_take_avg_pool2d(tmp_path):
    """Norse 1.1's _import_norse_module has no AvgPool2d case; nirtorch.load drops the node and then
    fails on its edge (KeyError: 'avgpool2')."""
    model, graph = exported("csnn", tmp_path)
    with warnings.catch_warnings(), pytest.raises(KeyError, match="avgpool2"):
        warnings.simplefilter("ignore")
        norse_torch.from_nir(graph, dt=1e-4)
    with pytest.raises(PeerRefusal, match=r"node 'avgpool2' \(AvgPool2d\) has no mapping.*KeyError: 'avgpool2'"):
        simulate("norse", graph, digit_spikes(2)[0])


@pytest.mark.parametrize("sim", ["snntorch", "norse"])
def test_csnn_with_avg_pooling_written_as_sum_pools_gives_identical_spikes(sim, tmp_path):
    model, graph = exported("csnn", tmp_path, avg_pool="sum")
    x, _ = digit_spikes(100)
    assert spike_agreement(simulate(sim, graph, x), reference(model, x)) == 1.0


def test_snntorch_misreads_if_nodes(tmp_path):
    """snnTorch 1.0 maps nir.IF to snn.Leaky(beta=0.9) with reset by subtraction and init_hidden=False,
    whose (spk, mem) tuple the next Linear cannot take."""
    from snntorch.import_nir import import_from_nir

    graph = export_nir(MLP(partial(IF, reset="hard"), in_shape=(1, 8, 8), num_classes=10, hidden=(16,)), (1, 8, 8))
    with contextlib.redirect_stdout(io.StringIO()):
        net = import_from_nir(graph)
    leaky = [m for m in net.modules() if isinstance(m, snntorch.Leaky)]
    assert [round(float(m.beta), 4) for m in leaky] == [0.9, 0.9]  # IF has no leak
    assert {m.reset_mechanism for m in leaky} == {"subtract"} and not any(m.init_hidden for m in leaky)
    with pytest.raises(TypeError, match="must be Tensor, not tuple"):
        net(torch.zeros(1, 8, 8))
    with pytest.raises(PeerRefusal, match=r"node 'if2' \(IF\) becomes snn.Leaky\(beta=0.9\)"):
        simulate("snntorch", graph, digit_spikes(2)[0])
    assert simulate("norse", graph, digit_spikes(2)[0]).shape == (8, 2, 10)  # Norse's IAF takes it


def test_neither_peer_takes_a_leaky_integrator_readout(tmp_path):
    from snntorch.import_nir import import_from_nir

    model = active("mlp", readout="membrane")
    graph = export_nir(model, (1, 8, 8))
    with pytest.raises(ValueError, match="Unknown node type <class 'nir.ir.neuron.LI'>"):
        with contextlib.redirect_stdout(io.StringIO()):
            import_from_nir(graph)
    with warnings.catch_warnings():  # Norse drops the LI silently: the output is fc3's current
        warnings.simplefilter("ignore")
        net = norse_torch.from_nir(graph, dt=1e-4)
    assert "li4" not in dict(net.named_children()) and "fc3" in dict(net.named_children())
    x = torch.rand(1, 8, 8)
    assert torch.equal(net(x)[0], model.net[3](model.net[2].run(model.net[1](x.flatten()).unsqueeze(0))[0][0]))
    for sim, match in [("snntorch", r"'li4' \(LI\) has no mapping"), ("norse", r"'li4' \(LI\).*leaves it out silently")]:
        with pytest.raises(PeerRefusal, match=match):
            simulate(sim, graph, digit_spikes(2)[0])


def leaky(n, beta: float, shape=None):
    shape = shape or (n,)
    return snntorch.Leaky(beta=torch.full(shape, beta), threshold=torch.ones(shape), init_hidden=True,
                          reset_mechanism="zero", reset_delay=False)


def snntorch_run(net: torch.nn.Module, x_seq: torch.Tensor) -> torch.Tensor:
    """The snnTorch network itself, batched: [T, N, ...] -> [T, N, K]."""
    for m in net.modules():
        if isinstance(m, snntorch.SpikingNeuron):
            m.mem = torch.zeros(0)
    with torch.no_grad():
        return torch.stack([net(x_t) for x_t in x_seq])


@pytest.mark.parametrize("beta", [0.5, 0.9])
def test_snntorch_graphs_give_identical_spikes_in_snnexp(beta, tmp_path):
    """snnTorch -> NIR -> snnexp: an MLP and a conv net with average pooling (reset to zero, which NIR
    expresses). snnTorch's exporter needs per-neuron beta/threshold tensors (a scalar one is written with
    shape [], which nir's type check rejects) and ignore_dims=[0] (else the batch enters the shapes)."""
    from snntorch.export_nir import export_to_nir

    from snnexp.models.nir import NIRModel

    torch.manual_seed(0)
    nets = {
        "mlp": torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 64), leaky(64, beta),
                                   torch.nn.Linear(64, 10), leaky(10, beta)),
        "conv": torch.nn.Sequential(torch.nn.Conv2d(1, 6, 3, padding=1), torch.nn.AvgPool2d(2),
                                    leaky(0, beta, (6, 4, 4)), torch.nn.Flatten(), torch.nn.Linear(96, 10),
                                    leaky(10, beta)),
    }
    x, _ = digit_spikes(100)
    for name, net in nets.items():
        with torch.no_grad():
            for m in net.modules():
                if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
                    m.weight.mul_(3)
        with contextlib.redirect_stdout(io.StringIO()):
            graph = export_to_nir(net, torch.zeros(1, 1, 8, 8), ignore_dims=[0])
        nir.write(str(tmp_path / f"{name}.nir"), graph)
        ref = snntorch_run(net, x)
        assert ref.sum(0).count_nonzero() > 50, name
        model = NIRModel(None, in_shape=(1, 8, 8), num_classes=10, path=str(tmp_path / f"{name}.nir")).eval()
        with torch.no_grad():
            assert spike_agreement(model(x), ref) == 1.0, name
        assert spike_agreement(run_snnexp(nir.read(str(tmp_path / f"{name}.nir")), x), ref) == 1.0


def test_snntorch_synaptic_becomes_snnexp_cuba(tmp_path):
    """snn.Synaptic exports as CubaLIF; decays that are multiples of 1/4096 (snnexp's CUBA keeps Loihi's
    12 bits) give identical spikes."""
    from snntorch.export_nir import export_to_nir

    from snnexp.models.nir import NIRModel
    from snnexp.neurons import CUBA

    torch.manual_seed(0)

    def synaptic(n):
        return snntorch.Synaptic(alpha=torch.full((n,), 0.75), beta=torch.full((n,), 0.875), threshold=torch.ones(n),
                                 init_hidden=True, reset_mechanism="zero", reset_delay=False)

    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 32), synaptic(32), torch.nn.Linear(32, 10),
                              synaptic(10))
    with contextlib.redirect_stdout(io.StringIO()):
        graph = export_to_nir(net, torch.zeros(1, 1, 8, 8), ignore_dims=[0])
    nir.write(str(tmp_path / "syn.nir"), graph)
    x, _ = digit_spikes(100)
    for m in net.modules():
        if isinstance(m, snntorch.Synaptic):
            m.syn = torch.zeros(0)
    ref = snntorch_run(net, x)
    model = NIRModel(None, in_shape=(1, 8, 8), num_classes=10, path=str(tmp_path / "syn.nir")).eval()
    cuba = [m for m in model.modules() if isinstance(m, CUBA)]
    assert [(m.i_decay, m.v_decay) for m in cuba] == [(1024, 512)] * 2  # 1 - 0.75, 1 - 0.875, of 4096
    with torch.no_grad():
        out = model(x)
    assert ref.sum(0).count_nonzero() > 50 and spike_agreement(out, ref) == 1.0


# -- graphs: recurrent and residual networks -----------------------------------------------------------

def snntorch_reset(net: torch.nn.Module) -> None:
    for m in net.modules():
        if isinstance(m, snntorch.SpikingNeuron):
            m.mem = torch.zeros(0)
            if isinstance(m, snntorch.RLeaky):
                m.spk = torch.zeros(0)  # the spikes it feeds back


def test_snntorch_rleaky_network_loads_with_model_nir_and_gives_identical_spikes(tmp_path):
    """Linear -> RLeaky (all-to-all recurrent Linear with a bias) -> Linear -> Leaky, exported by snnTorch as
    LIF <-> Affine (a recurrent edge); snnexp reads it as Recurrent(LIF, Linear). snnTorch's own importer fails."""
    from snntorch.export_nir import export_to_nir
    from snntorch.import_nir import import_from_nir

    from snnexp.models.nir import NIRModel

    torch.manual_seed(0)
    rleaky = snntorch.RLeaky(beta=torch.full((32,), 0.8), linear_features=32, all_to_all=True,
                             threshold=torch.ones(32), init_hidden=True, reset_mechanism="zero", reset_delay=False)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 32), rleaky, torch.nn.Linear(32, 10),
                              leaky(10, 0.8))
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.Linear):
                m.weight.mul_(3)
    with contextlib.redirect_stdout(io.StringIO()):
        graph = export_to_nir(net, torch.zeros(1, 1, 8, 8), ignore_dims=[0])
    assert {("2.lif", "2.w_rec"), ("2.w_rec", "2.lif")} <= set(graph.edges)
    nir.write(str(tmp_path / "rleaky.nir"), graph)
    x, _ = digit_spikes(100)
    snntorch_reset(net)
    ref = snntorch_run(net, x)
    model = NIRModel(None, in_shape=(1, 8, 8), num_classes=10, path=str(tmp_path / "rleaky.nir")).eval()
    assert any(isinstance(m, Recurrent) for m in model.modules())
    with torch.no_grad():
        out = model(x)
    assert ref.sum(0).count_nonzero() > 100 and spike_agreement(out, ref) == 1.0
    with pytest.raises(AttributeError, match="'GraphModule' object has no attribute 'items'"):
        with contextlib.redirect_stdout(io.StringIO()):
            import_from_nir(nir.read(str(tmp_path / "rleaky.nir")))


def norse_lif_net() -> torch.nn.Module:
    """Conv2d -> LIFCell -> Flatten -> Linear -> LIFCell; decays dt/tau of 1/4 and 1/8 at dt = 1 ms (exact
    in snnexp's 12-bit CUBA decays)."""
    torch.manual_seed(0)
    p = norse_torch.LIFParameters(tau_syn_inv=torch.tensor(250.0), tau_mem_inv=torch.tensor(125.0),
                                  v_th=torch.tensor(0.3))
    net = norse_torch.SequentialState(torch.nn.Conv2d(1, 4, 3, padding=1), norse_torch.LIFCell(p),
                                      torch.nn.Flatten(), torch.nn.Linear(256, 10), norse_torch.LIFCell(p))
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
                m.weight.mul_(4)
    return net


def norse_graph(net: torch.nn.Module, dt: float, repair_w_in: bool) -> nir.NIRGraph:
    """Norse 1.1's to_nir, repaired: tau = 1/tau_inv (it writes dt/tau_inv: norse issue #411), a Flatten
    (it writes None), and, with repair_w_in, w_in = tau_syn/dt: LIFCell adds its input to the current
    with gain 1 (i += x), which is w_in dt/tau_syn = 1 in NIR's Euler reading (Norse writes w_in = 1)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = norse_torch.to_nir(net, torch.zeros(1, 1, 8, 8), dt=dt)
    assert np.array_equal(graph.nodes["input"].input_type["input"], [1, 1, 8, 8])  # the batch of 1
    for name, node in list(graph.nodes.items()):
        if node is None:
            graph.nodes[name] = nir.Flatten(input_type={"input": np.array([4, 8, 8])}, start_dim=0)
        elif isinstance(node, nir.CubaLIF):
            value = lambda f: np.atleast_1d(np.asarray(getattr(node, f), np.float64))  # noqa: E731
            tau_syn, tau_mem = value("tau_syn") / dt, value("tau_mem") / dt
            graph.nodes[name] = nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=value("r"), v_leak=value("v_leak"),
                                            v_threshold=value("v_threshold"), v_reset=value("v_reset"),
                                            w_in=tau_syn / dt if repair_w_in else value("w_in"))
    graph.metadata = {"dt": dt}
    return graph


def norse_run(net: torch.nn.Module, x_seq: torch.Tensor) -> torch.Tensor:
    """Norse's own forward pass, batched: [T, N, ...] -> [T, N, K]."""
    state, out = None, []
    with torch.no_grad():
        for x_t in x_seq:
            o, state = net(x_t, state)
            out.append(o)
    return torch.stack(out)


def test_norse_lifcell_network_gives_identical_spikes_in_snnexp():
    """Norse's CubaLIF export (Input with a batch of 1, gains not 1) read by snnexp agrees with Norse's own
    forward pass once tau and w_in are repaired. With tau alone repaired, snnexp and Norse's own importer
    (the third side) agree with each other and both disagree with Norse's LIFCell: w_in is Norse's bug."""
    from snnexp.models.nir_import import layers_from_nir

    net, dt = norse_lif_net(), 1e-3
    x, _ = digit_spikes(100)
    ref = norse_run(net, x)
    assert ref.sum(0).count_nonzero() > 100
    graph = norse_graph(net, dt, repair_w_in=True)
    imported = layers_from_nir(graph)
    assert imported.in_shape == (1, 8, 8) and imported.out_shape == (10,)
    gains = [m.gain.item() for m in imported.layers if isinstance(m, Gain)]
    assert gains == [pytest.approx(0.125, rel=1e-6)] * 2  # w_in dt/tau_syn r dt/tau_mem = 1 * 1/8 (float32 taus)
    assert spike_agreement(run_snnexp(graph, x), ref) == 1.0
    assert spike_agreement(simulate("norse", graph, x), ref) == 1.0
    tau_only = norse_graph(net, dt, repair_w_in=False)
    ours, theirs = spike_agreement(run_snnexp(tau_only, x), ref), spike_agreement(simulate("norse", tau_only, x), ref)
    assert ours == theirs < 0.1


def test_residual_network_in_the_peers(tmp_path):
    """snnexp's residual conv network: snnTorch 1.0 (torch.fx over the graph) agrees; Norse 1.1 runs graphs
    with nirtorch 2.6's GraphExecutor, which orders nodes depth-first and returns the last one it ran: a
    shortcut's current, not the output."""
    model = residual()
    x, _ = digit_spikes(100)
    ref = reference(model, x)
    export_nir(model, (1, 8, 8), tmp_path / "avg.nir")
    assert spike_agreement(simulate("snntorch", nir.read(str(tmp_path / "avg.nir")), x), ref) == 1.0
    export_nir(model, (1, 8, 8), tmp_path / "sum.nir", avg_pool="sum")  # Norse has no AvgPool2d
    graph = nir.read(str(tmp_path / "sum.nir"))
    assert spike_agreement(simulate("snntorch", graph, x), ref) == 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = norse_torch.from_nir(graph, dt=1e-4)
    out, _ = net(x[0, 0], None)
    assert [n.name for n in net.execution_order][-2:] == ["output", "conv6_shortcut_0"]
    assert out.shape == (16, 4, 4)  # the projection shortcut's current, not the (10,) output
    with pytest.raises(PeerRefusal, match=r"node 'lif4' \(LIF\) sums 2 inputs"):
        simulate("norse", graph, x)


def test_recurrent_network_in_the_peers(tmp_path):
    """snnexp's Recurrent(LIF, Linear): snnTorch 1.0's importer fails on the file's recurrent edge (and runs the
    graph object before writing with other spikes). Norse 1.1 runs it but leaves the feedback out at the first
    step (no previous value): it agrees only without a feedback bias."""
    from snntorch.import_nir import import_from_nir

    from snnexp.deploy.nir.simulators import run_norse, run_snntorch

    model = recurrent()
    x, _ = digit_spikes(100)
    with torch.no_grad():
        ref = model(x)
    graph = export_nir(model, (1, 8, 8), tmp_path / "rec.nir")
    with pytest.raises(AttributeError, match="'GraphModule' object has no attribute 'items'"):
        with contextlib.redirect_stdout(io.StringIO()):
            import_from_nir(nir.read(str(tmp_path / "rec.nir"))).forward(torch.zeros(1, 8, 8))
    with pytest.raises(PeerRefusal, match=r"'lif2_neuron' \(LIF\) reads its own output"):
        simulate("snntorch", graph, x)
    with pytest.raises(PeerRefusal, match=r"through 'fc2_feedback_0', whose bias the executor leaves out"):
        simulate("norse", graph, x)
    with pytest.MonkeyPatch.context() as mp:  # what they would give (snnTorch: the graph object, before writing)
        mp.setattr("snnexp.deploy.nir.simulators.snntorch_refusal", lambda g: None)
        mp.setattr("snnexp.deploy.nir.simulators.norse_refusal", lambda g: None)
        assert spike_agreement(run_snntorch(copy.deepcopy(graph), x), ref) < 0.5
        assert spike_agreement(run_norse(copy.deepcopy(graph), x), ref) < 0.9
    with torch.no_grad():
        model.net[2].feedback[0].bias.zero_()
        ref = model(x)
    assert ref.sum(0).count_nonzero() > 50
    assert spike_agreement(simulate("norse", export_nir(model, (1, 8, 8)), x), ref) == 1.0
