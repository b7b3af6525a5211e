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


def test_log_mapping_values():
    # t = 5 ln(x / (x - 0.01)) - 5 ln(1 / 0.99): x = 1 -> 0; x = 0.02 -> 5 ln 2 - 0.05 = 3.42 -> 3
    assert latency_times(torch.tensor([1.0, 0.02]), T=8, mapping="log").tolist() == [0.0, 3.0]
    # x = 0.011: 5 ln 11 = 11.9 > 7 -> silent within T = 8
    assert latency_times(torch.tensor([0.011]), T=8, mapping="log").item() == math.inf


def test_invalid_mapping_names_key():
    with pytest.raises(ConfigError, match="encoding.mapping"):
        Latency(T=4, mapping="exp")
