"""The neuron and the max-pool after it as one kernel (`leaky_fire(..., pool=k)`, csnn's neuron before the
pool): the same pooled spikes, winners and gradients as the neuron's kernel followed by torch's max-pool.

The C++ kernel pools each step's spikes from a cache-resident chunk and rebuilds the spikes' gradient
from the pooled gradient and one byte per window; x and v0 gradients must equal the unfused path's
bit for bit, and the coefficients' (summed over chunks cut at other places) to rounding.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from snnexp.models import CSNN
from snnexp.network import blocks
from snnexp.neurons import ALIF, IF, LIF, PLIF
from snnexp.neurons.fused import cpu_fire, dispatch
from tests.neurons.conftest import fire_of


@pytest.fixture(autouse=True)
def kernels():
    fire_of("cpp")  # built, or skipped without a compiler


def image_inputs(T, N, C, H, W, dtype, seed=0):
    """x [T, N, C, H, W] in [-0.6, 2.4] with channels-last steps, as a conv's output unflattened; v0 likewise."""
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(T * N, C, H, W, generator=g, dtype=dtype) * 3.0 - 0.6).contiguous(
        memory_format=torch.channels_last).unflatten(0, (T, N))
    v0 = (torch.rand(N, C, H, W, generator=g, dtype=dtype) * 0.6).contiguous(memory_format=torch.channels_last)
    return x, v0


def run(fused: bool, neuron, x, v0, k, has_time, weights_seed=1):
    """(pooled s, v, gradients of x, v0 and the neuron's parameters) through the fused or unfused path."""
    x, v0 = x.detach().clone().requires_grad_(), v0.detach().clone().requires_grad_()
    coefficients, th, spec = neuron.charge_coefficients(), neuron.v_threshold, neuron.leaky_spec()
    if fused:
        assert cpu_fire.supports_pool(x, has_time, k)
        s, v = cpu_fire.fire(x, v0, *coefficients, th, spec, has_time, False, k)
        assert type(s.grad_fn).__name__ == "CppLeakyFireBackward"
    else:
        s, v = cpu_fire.fire(x, v0, *coefficients, th, spec, has_time)
        s = F.max_pool2d(s.flatten(0, 1), k).unflatten(0, s.shape[:2]) if has_time else F.max_pool2d(s, k)
    w = torch.randn(s.shape, generator=torch.Generator().manual_seed(weights_seed), dtype=s.dtype)
    loss = (s * w).sum() + v.square().sum()
    return s, v, torch.autograd.grad(loss, [x, v0, *neuron.parameters()])


def assert_equal(neuron, x, v0, k, has_time=True):
    s1, v1, g1 = run(True, neuron, x, v0, k, has_time)
    s2, v2, g2 = run(False, neuron, x, v0, k, has_time)
    assert 0 < s2.sum() < s2.numel()
    assert s1.shape == s2.shape and torch.equal(s1, s2) and torch.equal(v1, v2)
    step = s1[0] if has_time else s1
    assert step.is_contiguous(memory_format=torch.channels_last)  # the pool's layout, as the next conv wants
    assert torch.equal(g1[0], g2[0]) and torch.equal(g1[1], g2[1])  # x, v0: the same arithmetic per element
    for a, b in zip(g1[2:], g2[2:]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("cls,reset,detach", [(LIF, "subtract", False), (IF, "hard", True), (PLIF, "subtract", False),
                                              (PLIF, "hard", False)])
def test_fused_pool_equals_the_neuron_then_torch_s_pool(cls, reset, detach, dtype):
    neuron = cls(reset=reset, detach_reset=detach, learn_threshold=cls is PLIF,
                 v_reset=-0.3 if reset == "hard" else 0.0)
    assert_equal(neuron, *image_inputs(6, 3, 5, 8, 8, dtype), k=2)


@pytest.mark.parametrize("C,H,W,k", [(70, 4, 6, 2), (3, 9, 10, 3), (4, 6, 7, 2), (2, 4, 4, 1), (8, 44, 44, 2)])
def test_geometries(C, H, W, k):
    """More channels than one block; k = 3; columns past the last window (no gradient); k = 1; a layer
    larger than one chunk (several chunks of whole bands, and pieces in PLIF's recomputed backward)."""
    assert_equal(PLIF(learn_threshold=True), *image_inputs(5, 4, C, H, W, torch.float32), k=k)
    assert_equal(LIF(), *image_inputs(5, 4, C, H, W, torch.float32), k=k)


@pytest.mark.parametrize("cls", [LIF, PLIF])
def test_one_step(cls):
    x, v0 = image_inputs(1, 3, 6, 8, 8, torch.float32)
    assert_equal(cls(), x[0], v0, k=2, has_time=False)


def test_only_where_the_kernel_can_pool():
    x, _ = image_inputs(2, 2, 3, 8, 8, torch.float32)
    assert cpu_fire.supports_pool(x, True, 2)
    assert not cpu_fire.supports_pool(x.contiguous(), True, 2)  # NCHW: torch's pool after the neuron
    assert not cpu_fire.supports_pool(x[:, :, :, :7], True, 2)  # a row past the last window
    assert not cpu_fire.supports_pool(x.transpose(0, 1), True, 2)  # steps not one after another
    # elsewhere leaky_fire pools after the neuron: the same result
    neuron = LIF()
    a, b, c = neuron.charge_coefficients()
    xs = x.contiguous()[:, :, :, :7]
    s, _ = dispatch.leaky_fire(xs, torch.zeros_like(xs[0]), a, b, c, neuron.v_threshold, neuron.leaky_spec(), True,
                               pool=2)
    s_ref, _ = dispatch.leaky_fire(xs, torch.zeros_like(xs[0]), a, b, c, neuron.v_threshold, neuron.leaky_spec(), True)
    assert torch.equal(s, F.max_pool2d(s_ref.flatten(0, 1), 2).unflatten(0, (2, 2)))


def spiking_csnn(cls, step_mode):
    torch.manual_seed(0)
    model = CSNN(cls, in_shape=(1, 12, 12), num_classes=3, channels=(4, 6), pool_first=False, batch_norm=False,
                 step_mode=step_mode, readout="membrane")
    with torch.no_grad():  # strong enough weights that every layer fires (ALIF's threshold adapts)
        for p in model.parameters():
            p.mul_(40.0 if cls is ALIF else 4.0)  # ALIF: tau = 20 steps
    return model


@pytest.mark.parametrize("step_mode", ["m", "s"])
@pytest.mark.parametrize("cls", [LIF, PLIF, ALIF])
def test_csnn_fuses_its_neuron_and_pool_with_the_same_training_step(cls, step_mode, monkeypatch):
    """ALIF has no fused path: its own forward (which counts single steps for its homeostasis), then the pool."""
    x = (torch.rand(5, 3, 1, 12, 12, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    calls = []
    forward_pooled = cls.forward_pooled
    monkeypatch.setattr(cls, "forward_pooled", lambda self, x, k: calls.append(k) or forward_pooled(self, x, k))

    def step(fuse: bool):
        model = spiking_csnn(cls, step_mode)
        if not fuse:
            monkeypatch.setattr(blocks, "fusable_pool", lambda neuron, after: 0)
        pooled = []  # what the layers after the two pools receive: both pools pass spikes on
        for layer in (model.net[3], model.net[7]):
            layer.register_forward_pre_hook(lambda m, inputs: pooled.append(inputs[0].sum().item()))
        out = model(x)
        out.square().sum().backward()
        monkeypatch.undo()
        assert min(pooled) > 0
        return out, {n: p.grad for n, p in model.named_parameters()}

    out, grads = step(True)
    assert calls == [2, 2] * (1 if step_mode == "m" else 5)  # both blocks, fused
    out_ref, grads_ref = step(False)
    assert out_ref.abs().sum() > 0 and torch.equal(out, out_ref)
    for name, g in grads.items():
        assert grads_ref[name].abs().max() > 0, name
        torch.testing.assert_close(g, grads_ref[name], rtol=1e-5, atol=1e-6)


def test_a_hooked_neuron_or_pool_runs_unfused_so_its_hook_sees_the_spikes():
    """Activity metrics and rasters hook the neuron: the hook gets the full-size spikes, as without fusion."""
    model = spiking_csnn(LIF, "m")
    x = (torch.rand(4, 2, 1, 12, 12, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    seen = []
    handle = model.net[1].register_forward_hook(lambda m, i, s: seen.append(s.shape))
    assert blocks.fusable_pool(model.net[1], model.net[2]) == 0
    hooked = model(x)
    handle.remove()
    assert seen == [torch.Size([4, 2, 4, 12, 12])]
    assert blocks.fusable_pool(model.net[1], model.net[2]) == 2
    handle = model.net[2].register_forward_pre_hook(lambda m, i: None)
    assert blocks.fusable_pool(model.net[1], model.net[2]) == 0
    handle.remove()
    handle = torch.nn.modules.module.register_module_forward_hook(lambda m, i, o: None)  # on every module
    assert blocks.fusable_pool(model.net[1], model.net[2]) == 0
    handle.remove()
    assert torch.equal(model(x), hooked)


@pytest.mark.parametrize("backend", ["torch", "triton"])
def test_the_other_backends_pool_after_the_neuron_with_the_same_result(backend, use_backend):
    """On CUDA (Triton) and on the torch path, `leaky_fire(..., pool=k)` runs the neuron, then the pool."""
    x, v0 = image_inputs(3, 2, 4, 6, 6, torch.float32)
    neuron = PLIF()
    a, b, c = neuron.charge_coefficients()
    args = (a, b, c, neuron.v_threshold, neuron.leaky_spec(), True)
    fused, v_fused = cpu_fire.fire(x, v0, *args, False, 2)
    device = use_backend(backend)
    s, v = dispatch.leaky_fire(x.to(device), v0.to(device), *(t.to(device) for t in (a, b, c, neuron.v_threshold)),
                               neuron.leaky_spec(), True, pool=2)
    assert torch.equal(s.cpu(), fused) and torch.allclose(v.cpu(), v_fused)
