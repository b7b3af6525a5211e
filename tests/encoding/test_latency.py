import math

import pytest
import torch

from snnexp.encoding.latency import Latency, latency_times
from snnexp.errors import ConfigError


def test_linear_brighter_fires_earlier_exact_steps():
    x = torch.tensor([1.0, 0.505, 0.01, 0.0])
    # (1 - x) / 0.99 * 7: 0, 3.5 -> round half to even = 4, silent at or below the threshold
    assert latency_times(x, T=8).tolist() == [0.0, 4.0, math.inf, math.inf]
    s = Latency(T=8)(x.view(1, 4))
    assert s.shape == (8, 1, 4)
    assert s[0, 0, 0] == 1 and s[4, 0, 1] == 1 and s.sum() == 2


def test_at_most_one_spike_and_order_preserved():
    x = torch.rand(16, 1, 8, 8)
    for mapping in ("linear", "log"):
        s = Latency(T=10, mapping=mapping)(x)
        assert s.sum(0).max() <= 1
        first = torch.where(s.any(0), s.argmax(0).float(), torch.tensor(math.inf))
        flat_x, flat_t = x.flatten(), first.flatten()
        fired = torch.isfinite(flat_t)
        order = torch.argsort(flat_x[fired], descending=True)
        assert torch.all(flat_t[fired][order][1:] >= flat_t[fired][order][:-1])  # brighter never later


def test_log_mapping_fits_the_window_hand_computed():
    # tau = 7 / ln(100) = 1.5200 steps; t = tau * ln(1 / x):
    # 1 -> 0; 0.5 -> 7 ln2 / ln100 = 1.054 -> 1; 0.2 -> 2.446 -> 2; 0.05 -> 4.554 -> 5; 0.02 -> 5.946 -> 6;
    # 0.011 -> 6.855 -> 7 (the last step); 0.01 (= threshold) and 0 stay silent
    x = torch.tensor([1.0, 0.5, 0.2, 0.05, 0.02, 0.011, 0.01, 0.0])
    assert latency_times(x, T=8, mapping="log").tolist() == [0.0, 1.0, 2.0, 5.0, 6.0, 7.0, math.inf, math.inf]


def test_log_mapping_with_a_time_constant_hand_computed():
    # tau = 2 steps: 0.5 -> 2 ln2 = 1.386 -> 1; 0.2 -> 3.219 -> 3; 0.1 -> 4.605 -> 5; 0.05 -> 5.991 -> 6;
    # 0.03 -> 7.013 -> 7 (the last step); 0.02 -> 7.824 -> 8 > T - 1: silent within the window
    x = torch.tensor([0.5, 0.2, 0.1, 0.05, 0.03, 0.02])
    assert latency_times(x, T=8, mapping="log", tau=2.0).tolist() == [1.0, 3.0, 5.0, 6.0, 7.0, math.inf]


def test_log_mapping_spreads_over_every_step():
    """Intensities spread over (threshold, 1] fire at every one of the T steps, few at step 0 (the old
    charging-RC formula with tau = 5 put every pixel brighter than 0.1 at step 0: 91 % of these)."""
    x = torch.linspace(0.0101, 1.0, 10_000)
    s = Latency(T=8, mapping="log")(x.view(1, -1))
    per_step = s.sum((1, 2))
    assert s.sum() == len(x) and (per_step > 0).all()
    assert per_step[0] / len(x) < 0.3 and per_step[-1] > 0
    assert (x[s[0, 0] > 0] > 0.7).all()  # step 0 holds only the brightest


def test_log_tau_null_needs_a_threshold():
    with pytest.raises(ConfigError, match="encoding.threshold"):
        Latency(T=4, mapping="log", threshold=0.0)
    assert Latency(T=4, mapping="log", threshold=0.0, tau=2.0)(torch.ones(1, 2)).sum() == 2
    with pytest.raises(ConfigError, match="encoding.tau"):
        Latency(T=4, mapping="log", tau=-1.0)


def test_invalid_mapping_names_key():
    with pytest.raises(ConfigError, match="encoding.mapping"):
        Latency(T=4, mapping="exp")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_latency_on_cuda_equals_the_cpu():
    x = torch.rand(16, 1, 8, 8)
    for mapping in ("linear", "log"):
        s = Latency(T=8, mapping=mapping)(x.cuda())
        assert s.is_cuda and torch.equal(s.cpu(), Latency(T=8, mapping=mapping)(x))
