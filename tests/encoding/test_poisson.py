import pytest
import torch

from snnexp.encoding import Direct, Poisson, poisson_encode
from snnexp.errors import ConfigError


def test_rate_matches_intensity():
    x = torch.tensor([0.0, 0.1, 0.5, 0.9, 1.0]).expand(400, 5).contiguous()  # 400 samples of 5 pixels
    g = torch.Generator().manual_seed(0)
    s = poisson_encode(x, T=50, generator=g)  # 20,000 Bernoulli draws per pixel value
    assert s.shape == (50, 400, 5)
    assert set(s.unique().tolist()) <= {0.0, 1.0}
    rate = s.mean((0, 1))
    assert rate[0] == 0 and rate[-1] == 1
    # binomial std at p = 0.5 over 20,000 draws is 0.0035; allow 4 sigma
    assert torch.allclose(rate, x[0], atol=0.014)


def test_max_rate_scales_probability():
    x = torch.ones(2000, 1)
    s = Poisson(T=20, max_rate=0.25)(x, generator=torch.Generator().manual_seed(1))
    assert abs(s.mean().item() - 0.25) < 0.01


def test_same_generator_seed_same_spikes_and_input_unchanged():
    x = torch.rand(3, 1, 4, 4)
    x0 = x.clone()
    enc = Poisson(T=5)
    a = enc(x, generator=torch.Generator().manual_seed(7))
    b = enc(x, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b) and torch.equal(x, x0)


def test_direct_repeats_image():
    x = torch.rand(2, 1, 3, 3)
    s = Direct(T=4)(x)
    assert s.shape == (4, 2, 1, 3, 3) and all(torch.equal(s[t], x) for t in range(4))


@pytest.mark.parametrize("make, key", [
    (lambda: Poisson(T=0), "T"), (lambda: Direct(T=0), "T"), (lambda: Poisson(T=4, max_rate=1.5), "encoding.max_rate"),
])
def test_invalid_values_name_their_key(make, key):
    with pytest.raises(ConfigError, match=f"^{key}="):
        make()


def test_spikes_are_drawn_where_the_input_lies():
    x = torch.rand(2, 3)
    s = poisson_encode(x, T=4, generator=torch.Generator(device=x.device).manual_seed(0))
    assert s.device == x.device and s.dtype == x.dtype
    with pytest.raises(ValueError, match="generator is on cpu, the input on meta"):  # refused, not copied over
        poisson_encode(torch.empty(2, 3, device="meta"), T=4, generator=torch.Generator().manual_seed(0))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_generator_same_seed_same_spikes_on_the_device():
    x = torch.rand(64, 1, 8, 8, device="cuda")
    a = Poisson(T=6)(x, generator=torch.Generator(device="cuda").manual_seed(3))
    b = Poisson(T=6)(x, generator=torch.Generator(device="cuda").manual_seed(3))
    c = Poisson(T=6)(x, generator=torch.Generator(device="cuda").manual_seed(4))
    assert a.is_cuda and torch.equal(a, b) and not torch.equal(a, c)
    assert abs(a.mean().item() - x.mean().item()) < 0.02
