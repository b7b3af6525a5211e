import functools

import numpy as np
import pytest
import torch
from torch import nn

from snnexp.errors import ConfigError
from snnexp.learners.conversion import (activation_scales, ann_counterpart, fold_batchnorm, normalise, percentile,
                                        to_snn)
from snnexp.learners.over_time import OverTime
from snnexp.models import CSNN, MLP, SpikingMaxPool2d, SpikingModel
from snnexp.network import Recurrent, Residual
from snnexp.neurons import IF, LI, LIF

IF_SUB = functools.partial(IF, reset="subtract")


def _with_running_stats(net: nn.Sequential, x: torch.Tensor) -> nn.Sequential:
    """Give every BatchNorm non-trivial running statistics and affine parameters."""
    net.train()
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = None  # cumulative average: the stats of all batches seen
            nn.init.uniform_(m.weight, 0.5, 2.0)
            nn.init.uniform_(m.bias, -0.5, 0.5)
    with torch.no_grad():
        for _ in range(3):
            net(x * 3 + 1)
    return net.eval()


def _conv_ann(pool_first: bool = True, max_pool: str = "spiking", bias: bool = True) -> nn.Sequential:
    torch.manual_seed(0)
    model = CSNN(LIF, in_shape=(1, 8, 8), num_classes=5, channels=(4, 6), hidden=(12,), pool_first=pool_first,
                 batch_norm=False, bias=bias)
    return ann_counterpart(model.net, max_pool=max_pool, bias=bias)


def test_ann_counterpart_has_relu_for_neurons_and_ends_in_logits():
    model = CSNN(LIF, in_shape=(1, 8, 8), num_classes=5, channels=(4, 6), hidden=(12,), readout="membrane")
    assert isinstance(model.net[-1], LI)
    ann = ann_counterpart(model.net, max_pool="avg")
    assert isinstance(ann[-1], nn.Linear)
    assert sum(isinstance(m, nn.ReLU) for m in ann) == 3
    assert not any(isinstance(m, nn.MaxPool2d) for m in ann) and sum(isinstance(m, nn.AvgPool2d) for m in ann) == 2
    assert ann(torch.rand(2, 1, 8, 8)).shape == (2, 5)
    assert any(isinstance(m, nn.MaxPool2d) for m in ann_counterpart(model.net, max_pool="spiking"))


def test_bias_free_counterpart_has_no_bias_and_refuses_batchnorm():
    ann = _conv_ann(bias=False)
    assert all(m.bias is None for m in ann if isinstance(m, (nn.Conv2d, nn.Linear)))
    with_bn = CSNN(LIF, in_shape=(1, 8, 8), num_classes=5, batch_norm=True)
    with pytest.raises(ConfigError, match="learner.bias=False is invalid.*model.batch_norm=false"):
        ann_counterpart(with_bn.net, bias=False)
    with pytest.raises(ConfigError, match="learner.max_pool"):
        ann_counterpart(with_bn.net, max_pool="min")


@pytest.mark.parametrize("cls, kwargs, shape", [
    (CSNN, {"channels": (4, 6), "hidden": (12,)}, (1, 8, 8)),
    (MLP, {"hidden": (16, 8), "batch_norm": True}, (1, 4, 4)),
])
def test_folded_model_equals_the_original_in_eval_mode(cls, kwargs, shape):
    torch.manual_seed(0)
    ann = ann_counterpart(cls(LIF, in_shape=shape, num_classes=5, **kwargs).net)
    x = torch.randn(32, *shape)
    ann = _with_running_stats(ann, x)
    folded = fold_batchnorm(ann)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in folded)
    assert any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in ann)  # the original is kept
    with torch.no_grad():
        assert (folded(x) - ann(x)).abs().max() < 1e-5


def test_fold_refuses_a_batchnorm_it_cannot_merge():
    with pytest.raises(ValueError, match="must follow a Conv2d or Linear"):
        fold_batchnorm(nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.BatchNorm1d(3)))


def test_percentile_matches_numpy_beyond_torch_quantile_limits():
    g = torch.Generator().manual_seed(0)
    for n, qs in ((1, (50.0,)), (2, (0.0, 50.0, 100.0)), (1000, (0.0, 50.0, 99.9, 100.0)), (2**24 + 5, (99.9,))):
        v = torch.rand(n, generator=g)
        for q in qs:
            assert percentile(v, q) == pytest.approx(np.percentile(v.numpy(), q), rel=1e-5, abs=1e-7), (n, q)
    assert np.isnan(percentile(torch.empty(0), 99.9))


def test_if_rate_times_threshold_tends_to_relu_of_constant_input():
    for th in (1.0, 0.5):
        x = torch.linspace(-th, th, 41)  # constant input currents within the non-saturated range
        errors = []
        for T in (10, 100, 1000):
            s_seq = IF(v_threshold=th, reset="subtract")(x.expand(T, -1))
            rate = s_seq.mean(0)
            errors.append(float((rate * th - torch.relu(x)).abs().max()))
            assert errors[-1] <= th / T + 1e-5  # reset by subtraction loses at most one threshold of charge
        assert errors[0] > errors[1] > errors[2]


def test_normalisation_leaves_the_predictions_unchanged_and_bounds_the_activations():
    ann = _conv_ann()
    x = torch.rand(64, 1, 8, 8)
    with torch.no_grad():
        scales = activation_scales(ann, [x[:32], x[32:]], q=100.0)
        norm = normalise(ann, scales)
        assert torch.equal(norm(x).argmax(1), ann(x).argmax(1))
        assert torch.allclose(norm(x), ann(x) / scales[len(ann) - 1], atol=1e-5)
        assert torch.allclose(normalise(ann, scales, output=False)(x), ann(x), atol=1e-5)
        h = x
        for i, m in enumerate(norm):  # max-norm: every ReLU's largest activation is exactly 1
            h = m(h)
            if isinstance(m, nn.ReLU):
                assert float(h.max()) == pytest.approx(1.0, rel=1e-5), i
    assert len(scales) == 4 and all(s > 0 for s in scales.values())
    with torch.no_grad():  # any percentile: a positive scale per layer keeps every prediction
        assert torch.equal(normalise(ann, activation_scales(ann, [x], q=99.9))(x).argmax(1), ann(x).argmax(1))


def test_percentile_scales_are_below_max_scales():
    ann = _conv_ann()
    x = torch.rand(64, 1, 8, 8)
    p = activation_scales(ann, [x], q=99.0)
    m = activation_scales(ann, [x], q=100.0)
    assert all(p[i] < m[i] for i in m)


def test_spiking_max_pool_passes_the_input_with_the_largest_total():
    x = torch.tensor([[[[0.2, 0.9], [0.5, -1.0]]]])  # [1, 1, 2, 2]
    pool = SpikingMaxPool2d(2, step_mode="m")
    assert torch.equal(pool(x.expand(4, -1, -1, -1, -1)), torch.full((4, 1, 1, 1, 1), 0.9))  # currents: exact
    g = torch.Generator().manual_seed(0)
    rates = torch.tensor([0.2, 0.7, 0.5, 0.1]).view(1, 1, 2, 2)
    spikes = (torch.rand(2000, 1, 1, 2, 2, generator=g) < rates).float()
    assert float(pool(spikes).mean()) == pytest.approx(0.7, abs=0.03)  # spikes: the highest rate wins


@pytest.mark.parametrize("pool_first, max_pool", [(True, "spiking"), (False, "spiking"), (True, "avg")])
def test_converted_snn_output_tends_to_the_ann_as_T_grows(pool_first, max_pool):
    ann = _conv_ann(pool_first=pool_first, max_pool=max_pool)
    x = torch.rand(16, 1, 8, 8)
    with torch.no_grad():
        norm = normalise(ann, activation_scales(ann, [x], q=100.0), output=False)
        snn = SpikingModel(list(to_snn(norm, IF_SUB, readout="membrane")), step_mode="s", readout="membrane")
        assert not any(isinstance(m, (nn.ReLU, nn.MaxPool2d)) for m in snn.net)
        out_seq = snn(x.expand(512, *x.shape))  # direct input: constant current
        target = norm(x)
        err = [float((out_seq[:T].mean(0) - target).abs().mean()) for T in (16, 64, 512)]
    assert err[0] > err[2] and err[2] < 0.02 * float(target.abs().mean()) + 1e-3, err


def test_threshold_is_folded_into_the_weights():
    torch.manual_seed(0)
    norm = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))
    x = torch.rand(8, 4)
    a = SpikingModel(list(to_snn(norm, functools.partial(IF, v_threshold=1.0))), "s", "spikes")
    b = SpikingModel(list(to_snn(norm, functools.partial(IF, v_threshold=0.25))), "s", "spikes")
    x_seq = x.expand(20, -1, -1)
    assert torch.equal(a(x_seq), b(x_seq))  # same spikes: currents scale with the threshold


def test_accuracy_at_every_T_from_one_long_run_equals_separate_runs():
    torch.manual_seed(0)
    snn = SpikingModel(list(to_snn(nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3)), IF_SUB)), "s", "spikes")
    x_seq, y = torch.rand(40, 50, 4) * 2, torch.randint(0, 3, (50,))
    with OverTime(snn, 40) as over:
        over.update(x_seq, y)
    curve = over.compute([1, 7, 25, 40])
    assert sorted(curve) == [1, 7, 25, 40]
    for T in (1, 7, 25, 40):  # most output spikes in T steps, ties to the lower class
        assert curve[T][0] == (snn(x_seq[:T]).sum(0).argmax(-1) == y).sum().item() / len(y)
    assert len({acc for acc, _ in curve.values()}) > 1  # the prefix matters: not one accuracy for all T


@pytest.mark.parametrize("readout", ["spikes", "membrane"])
def test_voting_readout_converts_with_the_vote_after_the_output_neurons(readout):
    torch.manual_seed(0)
    model = MLP(LIF, in_shape=(1, 4, 4), num_classes=3, hidden=(8,), readout=readout, voting=4, dropout=0.1)
    ann = ann_counterpart(model.net)
    kinds = [type(m).__name__ for m in ann]
    expected = ["Flatten", "Linear", "ReLU", "Dropout", "Linear", "ReLU", "Voting"] if readout == "spikes" else \
        ["Flatten", "Linear", "ReLU", "Dropout", "Linear", "Voting"]
    assert kinds == expected
    x = torch.rand(32, 1, 4, 4)
    with torch.no_grad():
        norm = normalise(ann.eval(), activation_scales(ann, [x], q=100.0), output=readout == "spikes")
        assert torch.equal(norm(x).argmax(1), ann(x).argmax(1))
    snn = to_snn(norm, IF_SUB, readout)
    assert [type(m).__name__ for m in snn] == [k.replace("ReLU", "IF") for k in expected if k != "Dropout"]
    assert SpikingModel(list(snn), "s", readout)(x.expand(5, *x.shape)).shape == (5, 32, 3)


def test_spiking_readout_neuron_goes_right_after_the_output_layer():
    snn = to_snn(nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Dropout(0.5), nn.Linear(6, 3), nn.Identity()), IF_SUB)
    assert [type(m).__name__ for m in snn] == ["Linear", "IF", "Linear", "IF", "Identity"]


# -- residual networks (Hu et al. 2018): conv-BN-neuron-conv-BN + shortcut, summed, neuron ------------------------

def _resnet_ann(seed: int = 0) -> nn.Sequential:
    """A small spiking ResNet's ANN (an identity and a projection shortcut), with trained BatchNorm statistics."""
    torch.manual_seed(seed)

    def conv_bn(c_in, c_out, k, stride=1):
        return [nn.Conv2d(c_in, c_out, k, stride, k // 2, bias=False), nn.BatchNorm2d(c_out)]

    def block(c_in, c_out, stride):  # Hu et al. 2018: conv-BN-neuron-conv-BN + shortcut, summed, neuron
        shortcut = conv_bn(c_in, c_out, 1, stride) if stride != 1 or c_in != c_out else []
        return [Residual(conv_bn(c_in, c_out, 3, stride) + [LIF()] + conv_bn(c_out, c_out, 3), shortcut, "add"), LIF()]

    layers = conv_bn(1, 4, 3) + [LIF()] + block(4, 4, 1) + block(4, 6, 2) + [nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                                                             nn.Linear(6, 5), LI()]
    ann = ann_counterpart(SpikingModel(layers, "m", "membrane").net)
    with torch.no_grad():  # BN biases up, so that every layer is active
        for m in ann.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.momentum = None
                nn.init.uniform_(m.weight, 0.5, 2.0)
                nn.init.uniform_(m.bias, 0.0, 0.5)
        ann.train()
        for _ in range(3):
            ann(torch.rand(32, 1, 8, 8))
    return ann.eval()


def _types(seq) -> list[str]:
    return [type(m).__name__ for m in seq]


def test_residual_counterpart_keeps_the_blocks_with_relu_where_the_neurons_were():
    ann = _resnet_ann()
    assert _types(ann) == ["Conv2d", "BatchNorm2d", "ReLU", "Residual", "ReLU", "Residual", "ReLU",
                           "AdaptiveAvgPool2d", "Flatten", "Linear"]
    assert _types(ann[3].body) == ["Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "BatchNorm2d"]
    assert not len(ann[3].shortcut)
    assert _types(ann[5].shortcut) == ["Conv2d", "BatchNorm2d"]
    assert ann(torch.rand(3, 1, 8, 8)).shape == (3, 5)  # the blocks take [N, ...]: an ANN has no time axis


def test_residual_fold_and_normalisation_keep_the_function_and_put_the_shortcut_on_the_sums_scale():
    ann = _resnet_ann()
    x = torch.rand(64, 1, 8, 8)
    folded = fold_batchnorm(ann)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in folded.modules())
    with torch.no_grad():
        assert (folded(x) - ann(x)).abs().max() < 1e-5
        scales = activation_scales(folded, [x], q=100.0)
        assert list(scales) == [1, "2.body.1", 3, "4.body.1", 5, 8]  # every ReLU, in blocks too, and the output
        norm = normalise(folded, scales)
        assert torch.allclose(norm(x), folded(x) / scales[8], atol=1e-5)
        assert torch.equal(norm(x).argmax(1), folded(x).argmax(1))
        seen = []
        hooks = [m.register_forward_hook(lambda m, i, o: seen.append(float(o.max()))) for m in norm.modules()
                 if isinstance(m, nn.ReLU)]
        norm(x)
        for h in hooks:
            h.remove()
    assert seen == pytest.approx([1.0] * 5, rel=1e-5)  # max-norm: every activation's largest value is 1
    gain = norm[2].shortcut[0]  # the identity shortcut carries the block input (scale lambda_1) into the sum (lambda_3)
    assert _types(norm[2].shortcut) == ["Gain"] and float(gain.gain) == pytest.approx(scales[1] / scales[3])
    assert _types(norm[4].shortcut) == ["Conv2d"]  # a projection takes the factor into its weights
    assert not len(folded[2].shortcut)  # the input network is left alone


@pytest.mark.parametrize("threshold", [1.0, 0.5])
def test_a_converted_residual_snns_rates_approach_the_anns_activations_as_T_grows(threshold):
    folded = fold_batchnorm(_resnet_ann())
    x = torch.rand(16, 1, 8, 8)
    with torch.no_grad():
        norm = normalise(folded, activation_scales(folded, [x], q=100.0), output=False)
        snn = to_snn(norm, functools.partial(IF, reset="subtract", v_threshold=threshold), readout="membrane")
        if threshold != 1.0:  # the identity shortcut's spikes become a current in threshold units, like a synapse's
            assert _types(snn[2].shortcut) == ["Gain", "Gain"] and float(snn[2].shortcut[1].gain) == threshold
        else:
            assert _types(snn[2].shortcut) == ["Gain"]
        model = SpikingModel(list(snn), step_mode="s", readout="membrane")
        anns = []
        relus = [m for m in norm.modules() if isinstance(m, nn.ReLU)]
        hooks = [m.register_forward_hook(lambda m, i, o: anns.append(o)) for m in relus]
        target = norm(x) * threshold  # the output layer's current carries the threshold
        for h in hooks:
            h.remove()
        neurons = list(model.spiking_layers().values())
        assert len(neurons) == len(relus) == 5
        counts = [[] for _ in neurons]
        hooks = [n.register_forward_hook(lambda m, i, o, k=k: counts[k].append(o)) for k, n in enumerate(neurons)]
        out_seq = model(x.expand(512, *x.shape))
        for h in hooks:
            h.remove()
    for k, a in enumerate(anns):  # each layer: spikes per step -> the normalised activation
        s = torch.stack(counts[k])
        err = [float((s[:T].mean(0) - a).abs().mean()) for T in (16, 64, 512)]
        assert err[0] > err[2] and err[2] < 0.01, (k, err)
    err = [float((out_seq[:T].mean(0) - target).abs().mean()) for T in (16, 64, 512)]
    assert err[0] > err[1] > err[2] and err[2] < 0.02 * float(target.abs().mean()), err


def test_a_sew_add_after_the_neuron_normalises_with_both_branches_on_one_scale():
    torch.manual_seed(0)
    ann = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(),
                        Residual([nn.Conv2d(3, 3, 3, padding=1), nn.ReLU()], [], "add"), nn.Flatten(), nn.Linear(48, 4))
    ann[2].step_mode = "s"
    x = torch.rand(32, 1, 4, 4)
    with torch.no_grad():
        scales = activation_scales(ann, [x], q=100.0)
        norm = normalise(ann, scales)
        assert torch.allclose(norm(x), ann(x) / scales[4], atol=1e-5)
    assert float(norm[2].shortcut[0].gain) == pytest.approx(scales[1] / scales["2.body.1"])


@pytest.mark.parametrize("block, match", [
    (lambda: Residual([nn.Linear(2, 2), LIF()], [], "and"), r"net\.1 \(Residual\) joins with connect='and'"),
    (lambda: Residual([nn.Linear(2, 2), LIF()], [], "iand"), r"connect='iand'.*use model connect=add"),
    (lambda: Recurrent(LIF(), nn.Linear(2, 2)), r"net\.1\.neuron \(LIF\) is recurrent.*feed-forward"),
])
def test_sew_logic_connections_and_recurrent_layers_are_refused_with_the_reason(block, match):
    net = nn.Sequential(nn.Linear(3, 2), block(), nn.Linear(2, 2))
    with pytest.raises(ConfigError, match=match):
        ann_counterpart(net)
    ann = nn.Sequential(nn.Linear(3, 2), block(), nn.Linear(2, 2))  # a hand-built ANN with one: refused too
    with pytest.raises(ConfigError, match=match.replace(r"net\.", "")):
        to_snn(ann, IF_SUB)


def test_a_sum_of_a_neurons_spikes_and_a_projection_takes_the_projections_scale():
    torch.manual_seed(0)
    ann = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), Residual([nn.Linear(6, 5), nn.ReLU()], [nn.Linear(6, 5)], "add"),
                        nn.ReLU(), nn.Linear(5, 3))
    ann[2].step_mode = "s"
    x = torch.rand(32, 4)
    with torch.no_grad():
        scales = activation_scales(ann, [x], q=100.0)
        norm = normalise(ann, scales)
        assert torch.allclose(norm(x), ann(x) / scales[4], atol=1e-5)
    assert _types(norm[2].body) == ["Linear", "ReLU", "Gain"] and _types(norm[2].shortcut) == ["Linear"]
    assert float(norm[2].body[2].gain) == pytest.approx(scales["2.body.1"] / scales[3])
