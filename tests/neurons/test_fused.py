"""Every fused backend (torch, C++, Triton) equals the loop of step functions, in values and every gradient.

The reference is `run_loop`: autograd through lif_step/iaf_step. Cases cover tau != 2 (where
the charge coefficients a and b differ), decay_input on and off, both resets, detached resets,
a learnt threshold, PLIF's learnt tau, v_reset != 0 (so c != 0), all five surrogates, a given
initial membrane, single steps, channels-last layouts and the gradients a loss actually sends.
"""
import itertools

import pytest
import torch

from snnexp.neurons import IF, LIF, PLIF
from snnexp.neurons.base import MembraneState
from snnexp.neurons.surrogate import ATan, FastSigmoid, Rectangle, Sigmoid, Triangle
from tests.neurons.conftest import BACKENDS, device_of, fire_of

SURROGATES = [Sigmoid(3.0), ATan(1.5), Triangle(0.6), FastSigmoid(4.0), Rectangle(0.7)]
LEAKY = list(itertools.product([LIF, PLIF], ["subtract", "hard"], [False, True], [False, True], [2.0, 3.7],
                               [True, False]))
AFFINE = LEAKY + [(IF, r, d, lt, None, None) for r, d, lt in itertools.product(["subtract", "hard"], [0, 1], [0, 1])]


def make(cls, reset="subtract", detach=False, learn_threshold=False, tau=None, decay_input=None, surrogate=None,
         **kw):
    extra = {}
    if tau is not None:
        extra = {"tau": tau} if cls is LIF else {"init_tau": tau}
    if decay_input is not None:
        extra["decay_input"] = decay_input
    return cls(reset=reset, detach_reset=bool(detach), learn_threshold=bool(learn_threshold),
               v_reset=-0.3 if reset == "hard" else 0.0, surrogate=surrogate or ATan(), **extra, **kw)


def loss_and_grads(neuron, x, v0, weights, fire=None):
    """(s, v_T, grads of a loss on spikes and final membrane w.r.t. x, v0 and every parameter)."""
    if fire is None:
        s, final = neuron.run_loop(x, MembraneState(v0))
        v = final.v
    else:
        s, v = fire(x, v0, *neuron.charge_coefficients(), neuron.v_threshold, neuron.leaky_spec(), True)
    loss = (s * weights).sum() + (v * weights[0]).square().sum()
    return s, v, torch.autograd.grad(loss, [x, v0, *neuron.parameters()])


def assert_same(got, ref, atol=1e-10):
    s1, v1, g1 = got
    s2, v2, g2 = ref
    assert 0 < s2.sum() < s2.numel() and torch.equal(s1, s2)
    assert torch.allclose(v1, v2, atol=atol)
    assert len(g1) == len(g2)
    for a, b in zip(g1, g2):
        assert b.abs().max() > 0
        assert torch.allclose(a, b, atol=atol, rtol=1e-7), (a - b).abs().max()


def inputs(device, T=7, shape=(3, 5), dtype=torch.float64, seed=0, scale=1.0):
    """x in [-0.2, 1.4]*scale (a leak that scales the input down needs a larger one to fire), v0, weights."""
    g = torch.Generator().manual_seed(seed)
    x = ((torch.rand(T, *shape, generator=g, dtype=dtype) * 1.6 - 0.2) * scale).to(device).requires_grad_()
    v0 = (torch.rand(*shape, generator=g, dtype=dtype) * 0.6).to(device).requires_grad_()
    w = torch.randn(T, *shape, generator=g, dtype=dtype).to(device)
    return x, v0, w


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cls, reset, detach, learn_threshold, tau, decay_input", AFFINE)
def test_fused_equals_loop(backend, cls, reset, detach, learn_threshold, tau, decay_input):
    fire, device = fire_of(backend), device_of(backend)
    case = AFFINE.index((cls, reset, detach, learn_threshold, tau, decay_input))
    neuron = make(cls, reset, detach, learn_threshold, tau, decay_input, SURROGATES[case % 5]).double().to(device)
    x, v0, w = inputs(device, seed=case, scale=tau if decay_input else 1.0)
    assert_same(loss_and_grads(neuron, x, v0, w, fire), loss_and_grads(neuron, x, v0, w))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("surrogate", SURROGATES, ids=repr)
def test_each_surrogate_and_its_alpha(backend, surrogate):
    fire, device = fire_of(backend), device_of(backend)
    neuron = make(PLIF, "hard", tau=3.0, learn_threshold=True, surrogate=surrogate).double().to(device)
    x, v0, w = inputs(device, T=5, shape=(4, 6), seed=3, scale=2.5)
    assert_same(loss_and_grads(neuron, x, v0, w, fire), loss_and_grads(neuron, x, v0, w))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cls", [LIF, PLIF, IF])
@pytest.mark.parametrize("learn_threshold", [False, True])  # without learnt parameters the state updates in place
def test_single_step_equals_multi_step_equals_loop(backend, cls, learn_threshold, use_backend):
    device = use_backend(backend)
    kw = {} if cls is IF else {"tau": 3.7, "decay_input": cls is PLIF}
    multi = make(cls, "hard", learn_threshold=learn_threshold, surrogate=Triangle(0.8), **kw).double().to(device)
    single = make(cls, "hard", learn_threshold=learn_threshold, surrogate=Triangle(0.8), step_mode="s",
                  **kw).double().to(device)
    single.load_state_dict(multi.state_dict())
    x, _, w = inputs(device, T=6, shape=(2, 8), seed=4, scale=2.0)
    s_multi = multi(x)
    s_single = torch.stack([single(x_t) for x_t in x])
    s_loop, final = multi.run_loop(x, multi.initial_state(x[0]))
    assert s_loop.sum() > 0 and torch.equal(s_multi, s_loop) and torch.equal(s_single, s_loop)
    assert torch.allclose(single.state.v, final.v, atol=1e-12)
    grads = [torch.autograd.grad((s * w).sum(), [x, *n.parameters()])
             for s, n in ((s_multi, multi), (s_single, single), (s_loop, multi))]
    for g in grads[:2]:
        for a, b in zip(g, grads[2]):
            assert torch.allclose(a, b, atol=1e-10)


@pytest.mark.parametrize("backend", BACKENDS)
def test_channels_last_keeps_its_layout_and_values(backend, use_backend):
    device = use_backend(backend)
    lif = LIF(tau=3.0).double().to(device)
    x_nchw = (torch.rand(4, 2, 3, 5, 6, dtype=torch.float64) * 5).to(device)
    # [T, N, C, H, W] whose every step is channels-last, as a channels-last conv writes it
    x_cl = x_nchw.flatten(0, 1).contiguous(memory_format=torch.channels_last).unflatten(0, (4, 2))
    x_nchw.requires_grad_()
    x_cl.requires_grad_()
    w = torch.randn(4, 2, 3, 5, 6, dtype=torch.float64, device=device)
    s1, s2 = lif(x_nchw), lif(x_cl)
    assert s1.sum() > 0 and torch.equal(s1, s2)
    assert s2[0].is_contiguous(memory_format=torch.channels_last)
    g1, g2 = torch.autograd.grad((s1 * w).sum(), x_nchw), torch.autograd.grad((s2 * w).sum(), x_cl)
    assert torch.allclose(g1[0], g2[0], atol=1e-12)
    step = LIF(tau=3.0, step_mode="s").double().to(device)
    out = step(x_cl[0])
    assert out.is_contiguous(memory_format=torch.channels_last) and torch.equal(out, s1[0])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("loss", ["sum", "mean_over_time", "membrane_only", "spikes_only"])
def test_gradients_of_the_losses_models_use(backend, loss):
    """Broadcast gradients (a sum, a mean over T), and one output unused (its gradient is None)."""
    fire, device = fire_of(backend), device_of(backend)
    neuron = make(PLIF, tau=2.5, learn_threshold=True, surrogate=ATan(2.0)).double().to(device)
    x, v0, w = inputs(device, T=6, shape=(3, 4), seed=5, scale=2.0)

    def grads(use_fire):
        if use_fire:
            s, v = fire(x, v0, *neuron.charge_coefficients(), neuron.v_threshold, neuron.leaky_spec(), True)
        else:
            s, final = neuron.run_loop(x, MembraneState(v0))
            v = final.v
        value = {"sum": s.sum(), "mean_over_time": (s.mean(0) * w[0]).sum(), "membrane_only": (v * w[0]).sum(),
                 "spikes_only": (s * w).sum()}[loss]
        return torch.autograd.grad(value, [x, v0, *neuron.parameters()])

    for a, b in zip(grads(True), grads(False)):
        assert torch.allclose(a, b, atol=1e-10)


@pytest.mark.parametrize("backend", BACKENDS)
def test_float32_matches_the_loop(backend):
    fire, device = fire_of(backend), device_of(backend)
    neuron = make(LIF, tau=3.0, surrogate=Sigmoid(4.0)).to(device)
    x, v0, w = inputs(device, T=8, shape=(16, 40), dtype=torch.float32, seed=6, scale=2.5)
    s1, v1, g1 = loss_and_grads(neuron, x, v0, w, fire)
    s2, v2, g2 = loss_and_grads(neuron, x, v0, w)
    assert (s1 != s2).float().mean() < 1e-3  # h is rounded differently; a spike at the threshold may flip
    assert torch.allclose(v1, v2, atol=1e-4)
    for a, b in zip(g1, g2):
        assert torch.allclose(a, b, atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_triton_half_precision_computes_in_float32(dtype):
    """bf16/fp16 activations (mixed precision): the kernel computes and saves h in float32."""
    fire, device = fire_of("triton"), device_of("triton")
    neuron = make(PLIF, tau=3.0).to(device)
    x32, v0, w = inputs(device, T=6, shape=(8, 16), dtype=torch.float32, seed=7, scale=2.5)
    x = x32.detach().to(dtype).requires_grad_()
    ref_x = x.detach().float().requires_grad_()  # the same values, in float32 through the loop
    s, v = fire(x, v0.detach(), *neuron.charge_coefficients(), neuron.v_threshold, neuron.leaky_spec(), True)
    assert s.dtype == dtype and v.dtype == torch.float32
    (gx, gw) = torch.autograd.grad((s.float() * w).sum(), [x, neuron.w])
    s_ref, _ = neuron.run_loop(ref_x, MembraneState(v0.detach()))
    gx_ref, gw_ref = torch.autograd.grad((s_ref * w).sum(), [ref_x, neuron.w])
    assert s.float().sum() > 0 and (s.float() != s_ref).float().mean() < 1e-2
    assert gx.dtype == dtype and torch.allclose(gx.float(), gx_ref, atol=2e-2, rtol=2e-2)
    assert torch.allclose(gw, gw_ref, rtol=2e-2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("reset,detach", [("subtract", False), ("hard", True)])
def test_the_cpp_backward_recomputes_the_saved_membranes_bit_for_bit(dtype, reset, detach):
    """Multi-step runs keep x and v0, not h: the C++ backward recomputes h piece by piece (several
    pieces per chunk here, and two chunks) and gives the gradients of a saved h, exactly."""
    fire_of("cpp")  # built, or skipped without a compiler
    ops = torch.ops.snnexp_fused
    neuron = make(PLIF, reset, detach, learn_threshold=True, tau=3.7)
    a, b, c = (t.detach().to(dtype) for t in neuron.charge_coefficients())
    th, spec = neuron.v_threshold.detach().to(dtype), neuron.leaky_spec()
    x, v0, w = inputs("cpu", T=40, shape=(4, 9000), dtype=dtype, scale=1.5)
    x, v0 = x.detach(), v0.detach()
    s, h, v = ops.leaky_forward(x, v0, a, b, c, th, True, spec.v_reset, spec.soft, True, False)
    args = (a, b, c, th, True, spec.v_reset, spec.soft, spec.detach_reset, 0, spec.surrogate.alpha, True, True)
    saved = ops.leaky_backward(w, v, h, v0, x, *args)
    again = ops.leaky_backward(w, v, None, v0, x, *args)
    assert 0 < s.sum() < s.numel()
    assert torch.equal(saved[0], again[0]) and torch.equal(saved[1], again[1])  # grad x, grad v0
    torch.testing.assert_close(saved[2], again[2], rtol=1e-12, atol=0)  # a, b, c, th: summed in another order
