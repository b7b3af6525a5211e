"""csnn's max-pool (snnexp.network.layers.MaxPool2d): the C++ kernel for non-overlapping windows on
channels-last tensors gives torch's values, winners and gradients; NCHW and other geometries run
torch's own."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from snnexp.network.layers import MaxPool2d
from snnexp.neurons.fused.build import build_and_load
from snnexp.neurons.fused.dispatch import max_pool2d


@pytest.fixture(autouse=True, scope="module")
def kernels():
    build_and_load()  # gcc is on every machine this suite runs on: a failed build is a failure


def inputs(kind: str, shape, dtype) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    if kind == "spikes":  # binary: ties everywhere, and all-zero windows
        return (torch.rand(shape, generator=g) < 0.3).to(dtype)
    x = torch.randn(shape, generator=g, dtype=dtype)
    if kind == "nan":
        x.view(-1)[::7] = float("nan")
    return x


def same(x: torch.Tensor, k: int):
    x = x.contiguous(memory_format=torch.channels_last)
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    out, ref = max_pool2d(a, k), F.max_pool2d(b, k)
    assert type(out.grad_fn).__name__ == "CppMaxPool2dBackward"  # the kernel ran, not a fallback
    assert out.stride() == ref.stride() or out.shape[-2:] == (1, 1)  # the input's layout, as torch's
    torch.testing.assert_close(out, ref, rtol=0, atol=0, equal_nan=True)
    g = torch.randn(ref.shape, generator=torch.Generator().manual_seed(1), dtype=x.dtype)
    out.backward(g)
    ref.backward(g)
    torch.testing.assert_close(a.grad, b.grad, rtol=0, atol=0)  # the same winner in every window


@pytest.mark.parametrize("kind", ["spikes", "normal", "nan"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_values_winners_and_gradients_equal_torch(kind, dtype):
    same(inputs(kind, (3, 5, 8, 8), dtype), 2)
    same(inputs(kind, (2, 70, 4, 6), dtype), 2)  # more channels than one block of the kernel


@pytest.mark.parametrize("k,size", [(2, (7, 9)), (3, (10, 8)), (1, (4, 4)), (4, (4, 4))])
def test_odd_sizes_and_kernels_equal_torch(k, size):
    """Rows and columns past the last whole window get no gradient, as in torch's floor mode."""
    same(inputs("spikes", (2, 3, *size), torch.float32), k)
    same(inputs("normal", (2, 3, *size), torch.float32), k)


def test_the_module_uses_the_kernel_only_where_it_is_torch_s_pooling():
    x = inputs("normal", (2, 4, 8, 8), torch.float32).contiguous(memory_format=torch.channels_last).requires_grad_()
    assert type(MaxPool2d(2)(x).grad_fn).__name__ == "CppMaxPool2dBackward"
    nchw = MaxPool2d(2)(x.detach().contiguous().requires_grad_())
    assert type(nchw.grad_fn).__name__ != "CppMaxPool2dBackward"  # torch's kernel: as fast in NCHW
    for other in (dict(kernel_size=3, stride=2), dict(kernel_size=2, padding=1), dict(kernel_size=2, ceil_mode=True),
                  dict(kernel_size=(2, 3))):
        out = MaxPool2d(**other)(x)
        assert type(out.grad_fn).__name__ != "CppMaxPool2dBackward", other
        torch.testing.assert_close(out, nn.MaxPool2d(**other)(x))
    assert isinstance(MaxPool2d(2), nn.MaxPool2d)  # NIR, Loihi and conversion see a max-pool


def test_a_csnn_with_neuron_before_pool_trains_as_with_torch_s_pool(monkeypatch):
    """One training step of csnn (LIF before the pool) gives the same gradients with either pooling."""
    from snnexp.models import CSNN
    from snnexp.neurons import LIF

    def grads():
        torch.manual_seed(0)
        model = CSNN(LIF, in_shape=(1, 12, 12), num_classes=3, channels=(4, 4), pool_first=False, batch_norm=False)
        assert isinstance(model.net[2], MaxPool2d)
        x = (torch.rand(4, 2, 1, 12, 12) < 0.5).float()
        model(x).sum().backward()
        return [p.grad.clone() for p in model.parameters()]

    fast = grads()
    monkeypatch.setattr("snnexp.network.layers.pools.max_pool2d", F.max_pool2d)
    for a, b in zip(fast, grads()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
