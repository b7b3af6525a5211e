"""model=vgg: the conversion papers' VGG, its pools on small images, and its parameter count."""
from __future__ import annotations

import pytest
import torch

from snnexp.errors import ConfigError
from snnexp.models.vgg import VGG
from snnexp.network import Role
from snnexp.neurons import LIF


def test_vgg16_has_the_qcfs_authors_parameter_count():
    """QCFS's VGG-16 for CIFAR-10 (putshua/SNN_conversion_QCFS, Models/VGG.py): 13 convs 3x3 with bias, each
    with BN, 5 max-pools, classifier 512-4096-4096-10: 14,714,688 conv + 8,448 BN + 18,923,530 FC."""
    assert sum(p.numel() for p in VGG(LIF, (3, 32, 32), 10, depth=16).parameters()) == 33_646_666


def test_small_images_keep_a_pixel_and_width_scales_the_channels():
    model = VGG(LIF, (1, 28, 28), 10, depth=11, width=0.25, hidden=(64,))
    net = model.network((1, 28, 28))
    pools = net.with_role(Role.POOL)
    assert [p.shape[-1] for p in pools] == [14, 7, 3, 1]  # the fifth pool would leave no pixel
    assert [m.out_channels for m in model.modules() if isinstance(m, torch.nn.Conv2d)] == [16, 32, 64, 64, 128,
                                                                                          128, 128, 128]
    assert model((torch.rand(2, 3, 1, 28, 28) < 0.5).float()).shape == (2, 3, 10)


def test_bad_values_name_their_key():
    with pytest.raises(ConfigError, match="model.depth"):
        VGG(LIF, (3, 32, 32), 10, depth=12)
    with pytest.raises(ConfigError, match="model.pool"):
        VGG(LIF, (3, 32, 32), 10, pool="min")
