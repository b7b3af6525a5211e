"""The supervised WTA network: per-class thresholds, one winner per step, class layout."""
from functools import partial

import pytest
import torch

from snnexp.errors import ConfigError
from snnexp.models.wta import WTA
from snnexp.neurons import LIF


def test_shapes_thresholds_and_voting():
    m = WTA(partial(LIF), (1, 4, 4), 3, per_class=2, threshold=0.5, w_init_max=0.2)
    assert m(torch.zeros(4, 2, 1, 4, 4)).shape == (4, 2, 3)
    w = m.synapse.weight.detach()
    assert w.shape == (6, 16) and float(w.min()) >= 0 and float(w.max()) <= 0.2  # uniform on [0, w_init_max]
    m.set_class_activity(torch.tensor([2.0, 4.0, 8.0]))
    assert torch.allclose(m.class_thresholds(), torch.tensor([1.0, 2.0, 4.0]))
    assert torch.allclose(m.net[2].gain, torch.tensor([1.0, 1.0, 0.5, 0.5, 0.25, 0.25]))


def test_dense_class_does_not_drown_a_sparse_one():
    # class 0: 2 pixels, class 1: 8 pixels (a superset, learnt a little stronger). With one threshold
    # class 1 wins on class 0's image too; per-class thresholds (from their activity) let class 0 win.
    m = WTA(partial(LIF), (1, 1, 8), 2, threshold=0.5, k_wta=1)
    img0 = torch.tensor([1.0, 1, 0, 0, 0, 0, 0, 0])
    img1 = torch.ones(8)
    with torch.no_grad():
        m.synapse.weight.copy_(torch.stack([img0, 1.2 * img1]))
    x = img0.view(1, 1, 1, 8).expand(6, 1, 1, 1, 8)
    m.set_class_activity(torch.ones(2))
    assert m(x).sum(0).argmax().item() == 1
    m.set_class_activity(torch.tensor([2.0, 8.0]))
    assert m(x).sum(0).argmax().item() == 0


def test_one_winner_per_step():
    m = WTA(partial(LIF), (1, 4, 4), 5, threshold=0.05)
    s = m.output(m.synapse(torch.ones(10, 3, 16)))
    assert s.sum(-1).max() == 1


@pytest.mark.parametrize("kwargs, key", [({"threshold": 0}, "model.threshold"), ({"per_class": 0}, "model.per_class"),
                                         ({"w_init_max": 0}, "model.w_init_max"),
                                         ({"w_init": "zeros"}, "model.w_init")])
def test_invalid_values_name_their_key(kwargs, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        WTA(partial(LIF), (1, 4, 4), 3, **kwargs)
