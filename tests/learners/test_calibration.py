import copy
import functools

import pytest
import torch
from torch import nn

from snnexp.errors import ConfigError
from snnexp.learners.calibration import calibrate, calibration_points, fit_preactivation, mean_errors, snn_rates
from snnexp.learners.conversion import activation_scales, ann_counterpart, normalise, to_snn
from snnexp.learners.qcfs import as_qcfs, as_relu, with_qcfs
from snnexp.models import CSNN
from snnexp.neurons import IF, LIF, set_step_mode

IF_SUB = functools.partial(IF, reset="subtract")


def _normalised_conv_ann(seed: int = 0, max_pool: str = "avg") -> tuple[nn.Sequential, torch.Tensor]:
    """A small conv ANN (conv-pool-ReLU x2, linear-ReLU, linear), normalised on its data, and that data."""
    torch.manual_seed(seed)
    model = CSNN(LIF, in_shape=(1, 8, 8), num_classes=5, channels=(4, 6), hidden=(12,), batch_norm=False,
                 channels_last=False)
    ann = ann_counterpart(model.net, max_pool=max_pool).eval()
    x = torch.rand(128, 1, 8, 8)
    return normalise(ann, activation_scales(ann, [x], q=99.9)), x


def _builder(neuron=IF_SUB):
    def build(source: nn.Sequential) -> nn.Sequential:
        net = to_snn(source, neuron, "spikes")
        set_step_mode(net, "s")
        return net.eval()
    return build


def test_points_pair_each_weighted_layer_with_its_activation():
    source, _ = _normalised_conv_ann()
    kinds = [type(m).__name__ for m in source]
    assert kinds[:7] == ["Conv2d", "AvgPool2d", "ReLU", "Conv2d", "AvgPool2d", "ReLU", "Flatten"]
    assert calibration_points(source) == [(0, 2), (3, 5), (7, 8)]  # the output layer has no activation


def test_snn_rates_are_spike_counts_over_T():
    source, x = _normalised_conv_ann()
    snn = _builder()(source)
    x_seq = x[:8].expand(6, *x[:8].shape)
    ins, outs = snn_rates(snn, x_seq, chunk=3)
    assert torch.allclose(ins[0], x[:8])  # direct input: the image itself
    spikes = []
    hook = snn[2].register_forward_hook(lambda m, i, o: spikes.append(o))  # the first IF
    from snnexp.neurons import reset_states
    reset_states(snn)
    with torch.no_grad():
        for x_t in x_seq:
            snn(x_t)
    hook.remove()
    assert torch.allclose(outs[0], torch.stack(spikes).mean(0))
    assert set(torch.unique(outs[0] * 6).tolist()) <= set(range(7))


@pytest.mark.parametrize("mode", ["light", "advanced"])
@pytest.mark.parametrize("max_pool", ["avg", "spiking"])
def test_calibration_reduces_every_layers_mean_error_on_the_calibration_set(mode, max_pool):
    source, x = _normalised_conv_ann(max_pool=max_pool)
    build, T = _builder(), 4
    x_seq = x.expand(T, *x.shape)
    before = mean_errors(source, source, build, x, x_seq)
    calibrated = calibrate(source, source, build, x, x_seq, mode=mode, iters=100, lr=1e-3)
    after = mean_errors(calibrated, source, build, x, x_seq)
    assert len(before) == len(after) == 3
    for k, (b, a) in enumerate(zip(before, after)):
        assert a < 0.5 * b, (k, before, after)
    assert source[3].weight is not calibrated[3].weight  # a calibrated copy; the source is kept
    same_weights = torch.equal(source[3].weight, calibrated[3].weight)
    assert same_weights == (mode == "light")  # light moves only biases; advanced fits weights too


def test_the_weight_fit_gives_the_anns_pre_activation_from_the_snns_input_rates():
    source, x = _normalised_conv_ann(seed=1)
    build, T = _builder(), 4
    x_seq = x.expand(T, *x.shape)
    inputs, _ = snn_rates(build(source), x_seq)
    block = copy.deepcopy(source[3:5])  # the second conv and its pool
    with torch.no_grad():
        z = source[:5](x)  # its ANN pre-activation, from the ANN's own inputs
        before = float((block(inputs[1]) - z).pow(2).mean())
    fit_preactivation(block, inputs[1], z, iters=300, lr=1e-3, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        after = float((block(inputs[1]) - z).pow(2).mean())
    assert after < 0.8 * before, (before, after)
    assert not block[0].weight.requires_grad


def test_qcfs_base_calibrates_against_the_qcfs_ann():
    source, x = _normalised_conv_ann()
    qcfs_ann = with_qcfs(source, levels=4, threshold=1.0)
    relu, scales = as_relu(qcfs_ann)
    source = normalise(relu, scales)
    reference = as_qcfs(source, 4)
    build, T = _builder(functools.partial(IF, reset="subtract", v_init=0.5)), 2
    x_seq = x.expand(T, *x.shape)
    before = mean_errors(source, reference, build, x, x_seq)
    after = mean_errors(calibrate(source, reference, build, x, x_seq), reference, build, x, x_seq)
    assert all(a < b for a, b in zip(after, before)), (before, after)


def test_calibration_refuses_a_residual_network_with_the_reason():
    from snnexp.network import Residual

    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), Residual([nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4)], [], "add",
                                                             step_mode="s"), nn.ReLU(), nn.Linear(4, 2))
    with pytest.raises(ConfigError, match=r"learner/method=calibrate calibrates chains.*layer 2, Residual.*use "
                                          r"learner/method=rate or qcfs"):
        calibration_points(net)
