import pytest
import torch
from torch import nn

from snnexp.metrics import ActivityMonitor, dense_ops, is_spikes, synaptic_ops
from snnexp.models import MLP
from snnexp.neurons import IF


def test_linear_synops_are_active_inputs_times_their_nonzero_weights():
    layer = nn.Linear(5, 7)
    with torch.no_grad():
        layer.weight.fill_(0.5)
        layer.weight[:3, 0] = 0  # input 0 reaches 4 outputs, not 7
    x = torch.tensor([[1.0, 0, 0, 1, 0], [0, 0, 0, 0, 1]])
    assert synaptic_ops(layer, x) == 4 + 7 + 7
    assert dense_ops(layer, tuple(x.shape)) == 2 * 5 * 7


def test_conv_synops_count_receptive_fields_exactly():
    layer = nn.Conv2d(2, 3, 3, padding=1)
    with torch.no_grad():
        layer.weight.fill_(1.0)
    x = torch.zeros(1, 2, 5, 5)
    x[0, 0, 0, 0] = 1  # a corner spike reaches 2x2 output positions
    x[0, 1, 2, 2] = 1  # a centre spike reaches 3x3
    assert synaptic_ops(layer, x) == (4 + 9) * 3
    with torch.no_grad():
        layer.weight[1, 1] = 0  # output channel 1 no longer listens to input channel 1
    assert synaptic_ops(layer, x) == 4 * 3 + 9 * 2


def test_conv_dense_ops_count_border_taps():
    # 3 positions per axis on a 3-wide input with padding 1: 2 + 3 + 2 = 7 taps in range, 7*7 in 2-d
    layer = nn.Conv2d(2, 4, 3, padding=1)
    assert dense_ops(layer, (5, 2, 3, 3)) == 5 * 4 * 2 * 49
    strided = nn.Conv2d(1, 1, 2, stride=2)  # 2x2 windows tile a 4x4 input: 4 windows x 4 taps
    assert dense_ops(strided, (1, 1, 4, 4)) == 16


def test_spike_test_follows_neurobench():
    assert bool(is_spikes(torch.tensor([0.0, 1.0, -1.0, 1.0])))
    assert not bool(is_spikes(torch.tensor([0.0, 0.5])))


def test_monitor_rates_sparsity_and_split_synops_per_sample():
    model = MLP(IF, in_shape=(4,), num_classes=2, hidden=(3,))
    with torch.no_grad():
        model.net[1].weight.fill_(1.0)  # hidden IF gets 4 * 1 input: fires every step
        model.net[1].bias.zero_()
        model.net[3].weight.fill_(-1.0)  # the output never fires
    x = torch.ones(5, 2, 4)  # T=5, N=2; ones are spikes
    with ActivityMonitor(model) as mon:
        model(x)
        mon.add_samples(2)
    m = {k: float(v) for k, v in mon.compute().items()}
    assert m["rate/if2"] == 1.0 and m["rate/if4"] == 0.0
    assert m["rate/mean"] == 3 / 5  # 3 of 5 neurons fire every step
    assert m["activation_sparsity"] == 2 / 5
    # per sample per step: 4 inputs * 3 fan-out + 3 hidden spikes * 2 fan-out = 18, over 5 steps, all spikes
    assert m["synops/ac"] == 5 * 18 and m["synops/mac"] == 0 and m["synops"] == 5 * 18
    assert m["synops/dense"] == 5 * (4 * 3 + 3 * 2)
    with ActivityMonitor(model) as mon:
        model(x * 0.5)  # analog input: the first layer's operations are MACs
        mon.add_samples(2)
    m = {k: float(v) for k, v in mon.compute().items()}
    assert m["synops/mac"] == 5 * 12


def test_monitor_hooks_never_read_a_tensor_back(monkeypatch):
    """Issue 13: the hooks add on the device; only compute() (once per epoch) reads values."""
    from snnexp.neurons import LIF
    from snnexp.models import CSNN

    model = CSNN(LIF, in_shape=(1, 8, 8), num_classes=3, channels=(2,), pool="avg", step_mode="s").eval()
    x = (torch.rand(4, 2, 1, 8, 8, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    reads = []

    def counting(name):
        original = getattr(torch.Tensor, name)

        def read(self, *args, **kwargs):
            if _in_metrics():
                reads.append(name)
            return original(self, *args, **kwargs)
        return read

    for name in ("item", "__float__", "__int__", "__bool__", "tolist", "numpy", "__index__"):
        monkeypatch.setattr(torch.Tensor, name, counting(name))
    with ActivityMonitor(model) as mon, torch.no_grad():
        model(x)
        mon.add_samples(2)
    assert reads == []
    assert float(mon.compute()["synops/ac"]) > 0  # compute() reads (outside the hooks), and counted ops


def _in_metrics() -> bool:
    import sys

    frame = sys._getframe(2)
    while frame is not None:
        if "/snnexp/metrics/" in frame.f_code.co_filename:
            return True
        frame = frame.f_back
    return False


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_monitor_hooks_do_not_sync_on_cuda():
    layer_l, layer_c = nn.Linear(16, 4).cuda(), nn.Conv2d(2, 3, 3, padding=1).cuda()
    mon = ActivityMonitor(nn.Sequential(layer_l, layer_c))
    s = (torch.rand(8, 16, device="cuda") < 0.3).float()
    img = torch.rand(8, 2, 5, 5, device="cuda")
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(3):
            mon._synapse_hook(layer_l, (s,), None)
            mon._synapse_hook(layer_c, (img,), None)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    m = mon.compute()
    assert float(m["synops/mac"]) > 0 and float(m["synops/ac"]) > 0


def test_monitor_counts_per_block_what_it_counts_in_total():
    """A model of named blocks (resnet: stem, stage<i>.block<j>, head) gets its rates, ACs, MACs and
    energy per block too; the blocks' synops sum to the total, a block's rate is its neurons' spikes
    over their neuron-steps."""
    from functools import partial

    from snnexp.metrics.energy import run_metrics
    from snnexp.models.resnet import ResNet
    from snnexp.neurons import LIF

    torch.manual_seed(0)
    eager = partial(LIF, v_threshold=0.05)  # every block spikes at initialisation
    model = ResNet(eager, (1, 8, 8), 3, depth=None, blocks=(1, 1), channels=(4, 8), channels_last=False).eval()
    with ActivityMonitor(model) as mon:
        model(torch.rand(4, 2, 1, 8, 8) * 3)  # analog input: the stem's conv does MACs, the rest ACs
        mon.add_samples(2)
    m = {k: float(v) for k, v in mon.compute().items()}
    assert mon.blocks == ["stem", "stage1.block1", "stage2.block1", "head"]
    for kind in ("ac", "mac"):
        assert sum(m[f"block/{b}/synops/{kind}"] for b in mon.blocks) == pytest.approx(m[f"synops/{kind}"])
    assert m["block/stem/synops/mac"] > 0 and m["block/stem/synops/ac"] == 0
    assert m["block/head/synops/mac"] > 0  # the classifier reads average-pooled spikes: analog values
    assert m["block/stage2.block1/synops/ac"] > 0
    layers = [n for n in mon.neurons if mon.neuron_block[n] == "stage1.block1"]
    assert len(layers) == 2  # the body's neuron and the one after the sum
    spikes = sum(m[f"rate/{n}"] * mon.slots[n] for n in layers)
    assert m["block/stage1.block1/rate"] == pytest.approx(spikes / sum(mon.slots[n] for n in layers))
    assert "block/head/rate" not in m  # the membrane readout is no spiking layer
    results = {f"test/{k}": v for k, v in m.items()}
    energy = run_metrics(model, results)
    assert sum(energy[f"test/block/{b}/energy_nj"] for b in mon.blocks) == pytest.approx(energy["test/energy_nj"])
