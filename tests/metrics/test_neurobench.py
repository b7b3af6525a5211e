"""snnexp's metrics against the `neurobench` package (test extra) on the same model and data."""
import pytest
import torch
from torch import nn

from snnexp.metrics import ActivityMonitor, static_metrics
from snnexp.models import CSNN
from snnexp.neurons import LIF
from snnexp.neurons.base import SpikingNeuron

neurobench = pytest.importorskip("neurobench")


class TimeSecond(nn.Module):
    """NeuroBench feeds [N, T, ...]; snnexp models are time-first."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.transpose(0, 1)).sum(0)


def pruned_csnn() -> CSNN:
    torch.manual_seed(0)
    model = CSNN(LIF, in_shape=(1, 8, 8), num_classes=4, channels=(4, 6), pool="avg", pool_first=True,
                 hidden=(12,), step_mode="s").eval()
    with torch.no_grad():  # some zero weights: connection sparsity and effective operations see them
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                m.weight.mul_(10).masked_fill_(torch.rand_like(m.weight) < 0.3, 0.0)
    return model


def test_metrics_agree_with_neurobench():
    from neurobench.benchmarks import Benchmark
    from neurobench.metrics.static import ConnectionSparsity, Footprint
    from neurobench.metrics.workload import ActivationSparsity, SynapticOperations
    from neurobench.models import TorchModel

    model = pruned_csnn()
    g = torch.Generator().manual_seed(1)
    x = torch.rand(6, 5, 1, 8, 8, generator=g)  # [N, T, ...]: analog input (the first conv does MACs)
    data = [(x[:3], torch.zeros(3, dtype=torch.long)), (x[3:], torch.zeros(3, dtype=torch.long))]
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, torch.zeros(6, dtype=torch.long)),
                                         batch_size=3)
    wrapped = TorchModel(TimeSecond(model))
    wrapped.add_activation_module(SpikingNeuron)
    bench = Benchmark(wrapped, loader, [], [], [[Footprint, ConnectionSparsity],
                                                 [ActivationSparsity, SynapticOperations]])
    theirs = bench.run(quiet=True)

    with ActivityMonitor(model) as mon, torch.no_grad():
        for xb, _ in data:
            model(xb.transpose(0, 1))
            mon.add_samples(len(xb))
    ours = {k: float(v) for k, v in mon.compute().items()}
    static = static_metrics(model)

    assert static["model/footprint_bytes"] == theirs["Footprint"]
    assert round(static["model/connection_sparsity"], 4) == theirs["ConnectionSparsity"]  # they round to 4
    assert 0.2 < static["model/connection_sparsity"] < 0.4
    ops = theirs["SynapticOperations"]
    assert ours["synops/mac"] == ops["Effective_MACs"] > 0  # the analog input into conv0
    assert ours["synops/ac"] == ops["Effective_ACs"] > 0  # spikes and ...
    assert ours["synops/dense"] == ops["Dense"]
    # activation sparsity over every spiking layer, all steps and samples (a mean per batch in
    # NeuroBench, so equal batches make the two the same)
    assert ours["activation_sparsity"] == pytest.approx(theirs["ActivationSparsity"], abs=1e-12)
