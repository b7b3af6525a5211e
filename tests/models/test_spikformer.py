"""model=spikformer: the paper's parameter count, tokens, both step modes, and the refusals of NIR and Loihi."""
from __future__ import annotations

import pytest
import torch

from snnexp.errors import ConfigError
from snnexp.models.spikformer import Spikformer
from snnexp.network import Role
from snnexp.neurons import LIF
from snnexp.neurons.base import set_step_mode


def test_spikformer_4_384_has_the_papers_parameter_count():
    """Zhou et al. 2023, Table (CIFAR-10): Spikformer-4-384, 9.32M parameters. The authors' cifar10/model.py
    builds 9,324,730 with Linear q/k/v/proj/MLP layers with bias and BN after each (plus two LayerNorms per
    block that its forward never calls, which snnexp leaves out)."""
    assert sum(p.numel() for p in Spikformer(LIF, (3, 32, 32), 10).parameters()) == 9_324_730


def test_tokens_attention_and_residuals():
    model = Spikformer(LIF, (1, 28, 28), 10, depth=1, width=0.25)
    net = model.network((1, 28, 28))
    product = net.with_role(Role.ATTENTION)
    assert len(product) == 1 and product[0].inputs == ("net.16.body.0.q.2", "net.16.body.0.k.2", "net.16.body.0.v.2")
    assert product[0].shape == (49, 96)  # 28 -> 14 -> 7 pixels: 49 tokens of 96 features
    assert len(net.with_role(Role.JOIN)) == 3  # the position conv's, the attention's and the MLP's residuals


def test_both_step_modes_agree():
    torch.manual_seed(0)
    model = Spikformer(LIF, (1, 16, 16), 4, depth=1, dim=32, heads=4).eval()
    x = (torch.rand(4, 2, 1, 16, 16) < 0.5).float()
    out = model(x)
    set_step_mode(model.net, "s")
    model.step_mode = "s"
    torch.testing.assert_close(model(x), out)


def test_bad_values_name_their_key():
    with pytest.raises(ConfigError, match="model.heads"):
        Spikformer(LIF, (3, 32, 32), 10, heads=0)
    assert Spikformer(LIF, (3, 32, 32), 10, depth=1, dim=30, heads=7).net[-2].in_features == 28  # 7 x 4
    with pytest.raises(ConfigError, match="spikformer needs images"):
        Spikformer(LIF, (700,), 20)
