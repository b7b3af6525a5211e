"""deploy=loihi without Lava: refusals, folding, quantisation, recurrent layers, the netx HDF5 layout, NIR,
Lava's layout."""
import functools

import h5py
import numpy as np
import pytest
import torch
from torch import nn

from snnexp.deploy.loihi.convert import extract, refuse_unmappable
from snnexp.deploy.loihi.fixed_point import FirstStepPulse, FixedPointNet
from snnexp.deploy.loihi.export import write_netx, write_nir
from snnexp.deploy.loihi.quantise import pulse_weight
from snnexp.deploy.loihi.lava_io import to_lava_layout
from snnexp.errors import ConfigError
from snnexp.models.base import SpikingModel
from snnexp.models.batchnorm import fold_batchnorm_params
from snnexp.models.csnn import CSNN
from snnexp.models.mlp import MLP
from snnexp.models.rsnn import RSNN
from snnexp.neurons import CUBA, IF, LIF


def cuba(**kw):
    return CUBA(current_decay=0.5, voltage_decay=0.25, **kw)


def trained_like(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights and BatchNorm statistics, as after training."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return model.eval()


def small_csnn(**kw) -> CSNN:
    args = dict(neuron=cuba, in_shape=(1, 8, 8), num_classes=10, channels=(4, 6), pool="avg", bias=False,
                channels_last=False)
    return trained_like(CSNN(**{**args, **kw}))


def test_a_layer_bias_is_refused_naming_the_layer_and_the_key():
    with pytest.raises(ConfigError, match=r"net\.1 \(Linear\) has a bias.*model\.bias=false"):
        refuse_unmappable(MLP(neuron=cuba, in_shape=(1, 8, 8), num_classes=10, bias=True))


def test_max_pool_is_refused_naming_the_layer_and_why():
    with pytest.raises(ConfigError, match=r"net\.2 \(MaxPool2d\).*not a weighted sum.*model\.pool=avg"):
        refuse_unmappable(CSNN(neuron=cuba, in_shape=(1, 8, 8), num_classes=10, pool="max", bias=False))


def test_membrane_readout_is_refused():
    with pytest.raises(ConfigError, match="model.readout=spikes"):
        refuse_unmappable(MLP(neuron=cuba, in_shape=(1, 8, 8), num_classes=10, bias=False, readout="membrane"))


def test_batch_norm_and_avg_pool_fold_exactly():
    """conv -> BN -> avgpool(2) equals the folded stride-2 conv plus a per-channel bias (before rounding)."""
    model = small_csnn()
    conv, bn, pool = model.net[0], model.net[1], model.net[2]
    x = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = pool(bn(conv(x)))
    layer = extract(model, (1, 8, 8)).layers[0]
    assert layer.kind == "conv" and layer.weight.shape == (4, 1, 4, 4) and layer.stride == (2, 2)
    assert layer.out_shape == (4, 4, 4)
    w = torch.from_numpy(layer.weight).float() / layer.scale
    folded = nn.functional.conv2d(x, w, stride=2, padding=1) + torch.from_numpy(layer.bias).float().view(-1, 1, 1) \
        * (layer.i_decay / 4096) / layer.scale  # the stored bias is the steady-state voltage bias
    assert (folded - ref).abs().max() < 17 / layer.scale  # 16 taps rounded to even, and the bias


def test_quantised_weights_fit_loihi():
    net = extract(small_csnn(), (1, 8, 8))
    for layer in net.layers:
        w = layer.weight
        assert w.dtype == np.int32 and w.min() >= -256 and w.max() <= 254 and np.all(w % 2 == 0)
        assert np.abs(w).max() >= 250  # the scale uses the range
        assert 1 <= layer.vth <= 2 ** 17 - 1 and np.all(np.abs(layer.bias) < 2 ** 12)
    assert [l.kind for l in net.layers] == ["conv", "conv", "dense"]
    assert net.layers[2].flatten_from == (6, 2, 2) and net.layers[2].in_shape == (24,)


def test_lif_converts_with_its_input_decay_folded():
    model = MLP(neuron=lambda: LIF(tau=2.0, reset="hard"), in_shape=(4,), num_classes=2, hidden=(), bias=False)
    net = extract(model, (4,))
    (layer,) = net.layers
    assert (layer.i_decay, layer.v_decay) == (4096, 2048) and not net.notes
    # LIF decay_input: v += x / tau, so the weights are halved relative to the threshold
    w = model.net[1].weight.detach().numpy()
    np.testing.assert_allclose(layer.weight / layer.vth, w / 2, atol=2 / layer.vth + 1e-6)
    soft = MLP(neuron=lambda: LIF(tau=2.0), in_shape=(4,), num_classes=2, hidden=(), bias=False)
    assert "resets by subtraction" in extract(soft, (4,)).notes[0]


def test_fixed_point_net_runs_the_integers():
    net = extract(small_csnn(), (1, 8, 8))
    x_seq = (torch.rand(5, 3, 1, 8, 8, generator=torch.Generator().manual_seed(2)) < 0.5).float()
    out = FixedPointNet(net)(x_seq)
    assert out.shape == (6, 3, 10) and set(out.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(FixedPointNet(net).model.net[0].weight, torch.from_numpy(net.layers[0].weight).double())


def test_netx_hdf5_layout_field_by_field(tmp_path):
    net = extract(small_csnn(), (1, 8, 8))
    path = write_netx(net, tmp_path / "net.h5")
    with h5py.File(path, "r") as f:
        assert list(f.keys()) == ["layer"]
        layers = f["layer"]
        assert sorted(layers.keys(), key=int) == ["0", "1", "2", "3", "4"]
        types = [layers[k]["type"][0].decode() for k in ("0", "1", "2", "3", "4")]
        assert types == ["input", "conv", "conv", "flatten", "dense"]
        assert layers["0/type"].dtype == np.dtype("S10") and layers["0/type"].shape == (1,)
        np.testing.assert_array_equal(layers["0/shape"][()], [1, 8, 8])
        conv = layers["1"]
        assert set(conv.keys()) >= {"type", "shape", "inChannels", "outChannels", "kernelSize", "stride", "padding",
                                    "dilation", "groups", "weight", "neuron"}
        np.testing.assert_array_equal(conv["shape"][()], [4, 4, 4])
        assert conv["inChannels"][()] == 1 and conv["outChannels"][()] == 4 and conv["groups"][()] == 1
        for key, value in (("kernelSize", [4, 4]), ("stride", [2, 2]), ("padding", [1, 1]), ("dilation", [1, 1])):
            np.testing.assert_array_equal(conv[key][()], value)
        np.testing.assert_array_equal(conv["weight"][()], net.layers[0].weight)
        np.testing.assert_array_equal(conv["bias"][()], net.layers[0].bias)
        np.testing.assert_array_equal(layers["3/shape"][()], [24])
        dense = layers["4"]
        assert dense["inFeatures"][()] == 24 and dense["outFeatures"][()] == 10
        np.testing.assert_array_equal(dense["shape"][()], [10])
        assert dense["weight"].shape == (10, 24) and "bias" not in dense  # no BatchNorm before the readout
        for g, layer in ((conv, net.layers[0]), (dense, net.layers[2])):
            n = g["neuron"]
            assert n["type"][0].decode() == "CUBA"
            assert n["iDecay"][()] == layer.i_decay == 2048 and n["vDecay"][()] == layer.v_decay == 1024
            assert n["vThMant"][()] == layer.vth and n["refDelay"][()] == 1 and not n["gradedSpike"][()]


def test_nir_reloads_with_node_types_and_shapes(tmp_path):
    import nir

    net = extract(small_csnn(), (1, 8, 8))
    write_nir(net, tmp_path / "net.nir")
    graph = nir.read(str(tmp_path / "net.nir"))
    kinds = {name: type(node).__name__ for name, node in graph.nodes.items()}
    assert kinds == {"input": "Input", "conv0": "Conv2d", "lif0": "CubaLIF", "conv1": "Conv2d", "lif1": "CubaLIF",
                     "flatten2": "Flatten", "fc2": "Linear", "lif2": "CubaLIF", "output": "Output"}
    assert ("input", "conv0") in graph.edges and ("lif2", "output") in graph.edges and len(graph.edges) == 8
    np.testing.assert_array_equal(graph.nodes["input"].input_type["input"], [1, 8, 8])
    assert graph.nodes["conv0"].weight.shape == (4, 1, 4, 4) and graph.nodes["fc2"].weight.shape == (10, 24)
    assert graph.nodes["lif0"].tau_syn.shape == (4, 4, 4) and graph.nodes["lif2"].v_threshold.shape == (10,)
    np.testing.assert_array_equal(graph.nodes["output"].output_type["output"], [10])
    np.testing.assert_allclose(graph.nodes["lif0"].tau_syn, 1e-4 / 0.5)  # dt / current decay
    np.testing.assert_allclose(graph.nodes["lif2"].v_threshold, net.layers[2].vth)


def test_lava_layout_is_sample_major_time_last():
    x_seq = torch.zeros(4, 2, 3, 5, 6)  # [T, N, C, H, W]
    x_seq[1, 0, 2, 3, 4] = 1
    img = to_lava_layout(x_seq, image=True)
    assert img.shape == (2, 6, 5, 3, 4) and img[0, 4, 3, 2, 1] == 1 and img.sum() == 1  # [N, x, y, c, T]
    flat = to_lava_layout(x_seq, image=False)
    assert flat.shape == (2, 90, 4) and flat[0, 2 * 30 + 3 * 6 + 4, 1] == 1  # [N, X, T], torch's flatten order


@pytest.mark.e2e
def test_run_refuses_max_pool_before_training(tmp_path):
    from tests.conftest import QUICK, run_cli

    proc = run_cli(QUICK + ["deploy=loihi", "model=csnn", "deploy.run_lava=false", "logger=none"], run_dir=tmp_path,
                   check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "net.2 (MaxPool2d)" in proc.stderr and "model.pool=avg" in proc.stderr
    assert not (tmp_path / "checkpoints").exists()  # stopped before training


def test_pulse_weight_is_the_nearest_8bit_mantissa_and_exponent():
    assert [pulse_weight(v) for v in (0, 200, 255, 256, 440, 511, 1848)] == [
        (0, 0), (200, 0), (255, 0), (128, 1), (220, 1), (128, 2), (231, 3)]
    with pytest.raises(ConfigError, match="v_init < 0"):
        pulse_weight(-4, "net.1")


def test_an_if_initial_membrane_becomes_a_first_step_pulse():
    neuron = functools.partial(IF, reset="subtract", v_init=0.5)
    net = extract(trained_like(MLP(neuron=neuron, in_shape=(12,), num_classes=5, hidden=(16,), bias=False)), (12,))
    for layer in net.layers:
        assert layer.v_init == pytest.approx(layer.vth / 2, rel=0.01)  # theta/2 within the 8-bit mantissa
    assert sum("initial membrane" in n for n in net.notes) == 2
    fixed = FixedPointNet(net)
    assert sum(isinstance(m, FirstStepPulse) for m in fixed.model.net) == 2
    pulse = FirstStepPulse(3.0)
    x_seq = torch.zeros(4, 2, 5)
    assert pulse(x_seq)[:, 0, 0].tolist() == [0.0, 3.0, 0.0, 0.0]  # step 1: the sample's first, after the reset step
    lif = LIF(reset="hard")
    lif.v_init = 0.3  # a leaky neuron's initial membrane has no pulse form
    with pytest.raises(ConfigError, match="only IF"):
        extract(SpikingModel([nn.Linear(4, 3, bias=False), lif], "m", "spikes"), (4,))


@pytest.mark.parametrize("w_max, vth, pulse", [(0.5, 508, (254, 0)), (0.25, 1016, (254, 1))])
def test_theta_half_maps_to_the_pulse_of_half_the_threshold_mantissa(w_max, vth, pulse):
    # scale = 254 / max|w| (no bias; the threshold 1.0 fits): vth = scale, v_init = 0.5 * scale -> 8 bits << exp
    model = MLP(neuron=functools.partial(IF, reset="subtract", v_init=0.5), in_shape=(3,), num_classes=2,
                hidden=(), bias=False)
    with torch.no_grad():
        model.net[1].weight.copy_(torch.tensor([[w_max, -w_max / 2, 0.0], [0.0, w_max / 4, -w_max]]))
    (layer,) = extract(model, (3,)).layers
    assert layer.vth == vth and (layer.v_init_mant, layer.v_init_exp) == pulse and layer.v_init == vth // 2
    np.testing.assert_array_equal(layer.weight, [[254, -128, 0], [0, 64, -254]])


def test_a_first_step_pulse_starts_the_membrane_in_fixed_point(tmp_path):
    """One IF-like CUBA neuron (no leak, no current memory), weight 100, threshold 254, pulse 127, 5 input spikes.

    With the pulse, v (in mantissas) = 227, 327 > 254: spike and reset to 0, 100, 200, 300 > 254: spike;
    without, 100, 200, 300: spike, 100, 200: the pulse moves the spikes as a membrane started at 127 does.
    """
    from snnexp.deploy.loihi.net import LoihiLayer, LoihiNet

    def net(mant: int, exp: int) -> LoihiNet:
        layer = LoihiLayer("net.0", "dense", np.array([[100]], dtype=np.int32), np.zeros(1, dtype=np.int32), (1,),
                           (1,), i_decay=4096, v_decay=0, vth=254, v_init_mant=mant, v_init_exp=exp)
        return LoihiNet((1,), [layer])

    x_seq = torch.ones(5, 1, 1)
    pulsed = FixedPointNet(net(127, 0))(x_seq)[:, 0, 0].tolist()  # step 0: Lava's silent reset step
    assert pulsed == [0, 0, 1, 0, 0, 1]
    assert FixedPointNet(net(0, 0))(x_seq)[:, 0, 0].tolist() == [0, 0, 0, 1, 0, 0]
    assert FixedPointNet(net(254, 2))(x_seq)[:, 0, 0].tolist() == [0, 1, 0, 0, 1, 0]  # 1016: spike at once; Loihi resets to 0
    path = write_netx(net(220, 1), tmp_path / "net.h5")  # what the Lava runner reads back
    with h5py.File(path, "r") as f:
        n = f["layer/1/neuron"]
        assert (int(n["vInitMant"][()]), int(n["vInitExp"][()])) == (220, 1)
    with h5py.File(write_netx(net(0, 0), tmp_path / "plain.h5"), "r") as f:
        assert "vInitMant" not in f["layer/1/neuron"]  # a net without initial membranes stays plain netx
    graph = write_nir(net(220, 1), tmp_path / "net.nir")
    assert graph.metadata["v_init"] == [440.0]


def small_rsnn(**kw) -> RSNN:
    args = dict(neuron=cuba, in_shape=(12,), num_classes=5, hidden=(16,), bias=False, readout="spikes")
    return trained_like(RSNN(**{**args, **kw}))


def test_a_recurrent_layer_keeps_its_feedback_at_the_layers_one_scale():
    model = small_rsnn()
    with torch.no_grad():
        model.net[2].feedback[0].weight.mul_(3)  # the feedback's largest weight sets the layer's scale
    hidden, readout = extract(model, (12,)).layers
    w, r = model.net[1].weight.detach().numpy(), model.net[2].feedback[0].weight.detach().numpy()
    assert hidden.kind == "dense" and hidden.recurrent.shape == (16, 16) and readout.recurrent is None
    assert hidden.scale == pytest.approx(254 / np.abs(r).max()) and np.abs(hidden.recurrent).max() == 254
    assert np.all(hidden.recurrent % 2 == 0) and np.abs(hidden.weight).max() < 254
    np.testing.assert_allclose(hidden.recurrent, r * hidden.scale, atol=1.0)  # rounded to even
    np.testing.assert_allclose(hidden.weight, w * hidden.scale, atol=1.0)


def _relay_net() -> "LoihiNet":
    """Neuron 0 fires at each input spike (200 > 150); neuron 1 only through the recurrent weight from neuron 0."""
    from snnexp.deploy.loihi.net import LoihiLayer, LoihiNet

    layer = LoihiLayer("net.0", "dense", np.array([[200], [0]], dtype=np.int32), np.zeros(2, dtype=np.int32), (1,),
                       (2,), i_decay=4096, v_decay=4095, vth=150,
                       recurrent=np.array([[0, 0], [200, 0]], dtype=np.int32))
    return LoihiNet((1,), [layer])


def test_a_recurrent_dense_delivers_the_layers_spikes_one_step_later():
    """h_t = x_t + W s_{t-1}: neuron 1 repeats neuron 0 one step later, also across the last input step,
    and nothing comes back into the silent step 0 (s_{-1} = 0)."""
    x_seq = torch.tensor([1.0, 0, 1, 1, 0, 1]).view(6, 1, 1)
    out = FixedPointNet(_relay_net())(x_seq)[:, 0]  # [T+1, 2]
    assert out[:, 0].tolist() == [0, 1, 0, 1, 1, 0, 1]
    assert out[:, 1].tolist() == [0, 0, 1, 0, 1, 1, 0]


def test_netx_refuses_a_recurrent_network_and_nir_keeps_its_cycle(tmp_path):
    import nir

    from snnexp.deploy.loihi.export import write_lava

    net = extract(small_rsnn(), (12,))
    with pytest.raises(ConfigError, match=r"after net\.1 is recurrent.*netx.*chains of layers only.*netx=false"):
        write_netx(net, tmp_path / "net.h5")
    assert not (tmp_path / "net.h5").exists()
    with h5py.File(write_lava(net, tmp_path / "lava.h5"), "r") as f:
        np.testing.assert_array_equal(f["layer/1/recurrent"][()], net.layers[0].recurrent)  # layer 0: the input
        assert "recurrent" not in f["layer/2"] and f["layer/1/type"][0] == b"dense"
    write_nir(net, tmp_path / "net.nir")
    graph = nir.read(str(tmp_path / "net.nir"))
    assert ("lif0", "rec0") in graph.edges and ("rec0", "lif0") in graph.edges and ("lif0", "fc1") in graph.edges
    np.testing.assert_array_equal(graph.nodes["rec0"].weight, net.layers[0].recurrent)


def test_recurrent_feedback_must_be_one_bias_free_linear():
    from snnexp.network import Recurrent

    for feedback, why in (([nn.Linear(4, 4, bias=True)], r"net\.1\.feedback\.0 \(Linear\) has a bias"),
                          ([nn.Linear(4, 4, bias=False), nn.Linear(4, 4, bias=False)], "one Dense"),
                          ([], r"nothing \(the identity\)")):
        model = SpikingModel([nn.Linear(3, 4, bias=False), Recurrent(cuba(), feedback), nn.Linear(4, 2, bias=False),
                              cuba()], "m", "spikes")
        with pytest.raises(ConfigError, match=why):
            refuse_unmappable(model)


def test_an_average_pool_of_spikes_folds_into_the_linear_after_it():
    """ResNet's global pool: Linear(avgpool(s)) is one Dense over the whole image, W / 16 on each of its taps."""
    model = trained_like(SpikingModel([nn.Conv2d(1, 3, 3, padding=1, bias=False), cuba(), nn.AdaptiveAvgPool2d(1),
                                       nn.Flatten(), nn.Linear(3, 4, bias=False), cuba()], "m", "spikes"))
    dense = extract(model, (1, 4, 4)).layers[1]
    assert dense.kind == "dense" and dense.flatten_from == (3, 4, 4) and dense.weight.shape == (4, 48)
    spread = np.repeat(model.net[4].weight.detach().double().numpy() / 16, 16, axis=1)  # [4, 3] -> [4, 3*16]
    np.testing.assert_allclose(dense.weight, spread * dense.scale, atol=1.0)
    assert np.abs(dense.weight).max() == 254
    conv_after_pool = SpikingModel([nn.Conv2d(1, 3, 3, padding=1, bias=False), cuba(), nn.AvgPool2d(2),
                                    nn.Conv2d(3, 3, 1, bias=False), cuba()], "m", "spikes")
    with pytest.raises(ConfigError, match=r"net\.3 \(Conv2d\) reads average-pooled spikes.*model\.pool_first=true"):
        extract(conv_after_pool, (1, 4, 4))


def residual_mlp() -> SpikingModel:
    """A dense spiking ResNet: an identity block (shortcut skips 1 layer) and a projection block (skips 2)."""
    from snnexp.network import Residual

    return trained_like(SpikingModel([
        nn.Linear(16, 12, bias=False), cuba(),
        Residual([nn.Linear(12, 12, bias=False), nn.BatchNorm1d(12), cuba(), nn.Linear(12, 12, bias=False)], [],
                 "add"), cuba(),
        Residual([nn.Linear(12, 10, bias=False), cuba(), nn.Linear(10, 10, bias=False), cuba(),
                  nn.Linear(10, 10, bias=False)], [nn.Linear(12, 10, bias=False), nn.BatchNorm1d(10)], "add"), cuba(),
        nn.Linear(10, 5, bias=False), cuba()], "m", "spikes"))


def test_a_residual_sum_before_a_neuron_becomes_a_shortcut_at_the_layers_scale(tmp_path):
    import nir

    from snnexp.deploy.loihi.export import write_lava

    model = residual_mlp()
    net = extract(model, (16,))
    assert [None if l.skip is None else (l.skip.source, l.skip.kind) for l in net.layers] == [
        None, None, (0, "dense"), None, None, (2, "dense"), None]
    assert [net.skip_delay(i) for i in (2, 5)] == [1, 2]  # the layers each shortcut skips
    identity, projection = net.layers[2], net.layers[5]
    np.testing.assert_array_equal(identity.skip.weight, np.eye(12) * 2 * round(identity.scale / 2))  # 1.0, rounded even
    assert identity.scale == pytest.approx(254 / max(model.net[2].body[3].weight.abs().max().item(), 1.0))
    # the projection's BatchNorm folds into its weights and its shift adds to the layer's bias
    conv, bn = model.net[4].shortcut
    w, b = fold_batchnorm_params(conv.weight.detach().double(), None, bn)
    np.testing.assert_allclose(projection.skip.weight, w.numpy() * projection.scale, atol=1.0)
    # current decay 0.5: a bias is the steady-state voltage bias, b / 0.5
    np.testing.assert_allclose(projection.bias, b.numpy() * projection.scale / 0.5, atol=0.5)
    assert not net.is_chain() and extract(small_csnn(), (1, 8, 8)).is_chain()
    with pytest.raises(ConfigError, match=r"after net\.2\.body\.3 has a residual shortcut.*deploy\.netx=false"):
        write_netx(net, tmp_path / "net.h5")
    with h5py.File(write_lava(net, tmp_path / "lava.h5"), "r") as f:
        assert f["layer/6/skip/type"][0] == b"dense" and f["layer/6/skip/source"][()] == 2
        np.testing.assert_array_equal(f["layer/6/skip/weight"][()], projection.skip.weight)
    graph = write_nir(net, tmp_path / "net.nir")
    assert {("lif0", "skip2"), ("skip2", "lif2"), ("lif2", "skip5"), ("skip5", "lif5")} <= set(graph.edges)
    assert isinstance(nir.read(str(tmp_path / "net.nir")).nodes["skip5"], nir.Linear)


def test_residual_joins_loihi_cannot_add_are_refused_naming_the_block():
    from snnexp.network import Residual

    def block(connect, body_ends_with_neuron):
        body = [nn.Linear(4, 4, bias=False), cuba()] + ([] if body_ends_with_neuron else [nn.Linear(4, 4, bias=False)])
        return SpikingModel([nn.Linear(3, 4, bias=False), cuba(), Residual(body, [], connect), cuba(),
                             nn.Linear(4, 2, bias=False), cuba()], "m", "spikes")

    with pytest.raises(ConfigError, match=r"residual block net\.2 joins with 'iand'.*use connect=add"):
        refuse_unmappable(block("iand", True))
    with pytest.raises(ConfigError, match=r"residual block net\.2 adds spikes after its last neuron \(SEW-ResNet\)"):
        extract(block("add", True), (3,))
    assert extract(block("add", False), (3,)).layers[2].skip.source == 0  # the sum before the neuron maps


@pytest.mark.e2e
def test_run_refuses_a_recurrent_network_for_netx_before_training(tmp_path):
    from tests.conftest import QUICK, run_cli

    proc = run_cli(QUICK + ["deploy=loihi", "model=rsnn", "model.readout=spikes", "deploy.run_lava=false",
                            "logger=none"], run_dir=tmp_path, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "is recurrent" in proc.stderr and "deploy.netx=false" in proc.stderr
    assert not (tmp_path / "checkpoints").exists()  # stopped before training
