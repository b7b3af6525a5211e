"""Synaptic operations of one synapse call, as NeuroBench counts them (Yik et al. 2025).

NeuroBench's SynapticOperations (neurobench 2.3, `metrics/workload/synaptic_operations.py`):
- effective operations: pairs (nonzero input, nonzero weight) that meet in the layer, i.e. the
  layer's output when every nonzero input and weight is replaced by 1 and the bias by 0;
- an input tensor whose every value is 0, 1 or -1 is spikes: its operations are accumulates
  (ACs); any other input is analog: multiply-accumulates (MACs), decided per forward call;
- dense operations: the same count with every input and weight set to 1 (exact at borders).
Each synapse's kind counts its own (`LayerKind.synops`, `dense_ops`: Linear and Conv2d in
snnexp/network/layers/synapses.py). Everything stays on the tensor's device (no host sync).
"""
from __future__ import annotations

from torch import Tensor, nn

from snnexp.network import kind_of


def synaptic_ops(layer: nn.Module, x: Tensor) -> Tensor:
    """Effective operations of `layer(x)`: a float64 0-dim tensor on x's device."""
    return kind_of(layer).synops(layer, x)


def is_spikes(x: Tensor) -> Tensor:
    """0-dim bool tensor: every value of x is 0, 1 or -1 (NeuroBench's test for spike input)."""
    return ((x == 0) | (x == 1) | (x == -1)).all()


def dense_ops(layer: nn.Module, shape: tuple[int, ...]) -> int:
    """Operations of `layer` on an input of `shape` if every input and weight were nonzero."""
    return kind_of(layer).dense_ops(layer, shape)
