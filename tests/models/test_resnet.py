"""model=resnet: BasicBlocks on Residual blocks; shapes, width, parameters, both step modes."""
from __future__ import annotations

import pytest
import torch

from snnexp.errors import ConfigError
from snnexp.models.resnet import ResNet
from snnexp.models.sew_resnet import SEWResNet
from snnexp.network import Residual, Role
from snnexp.neurons import LIF
from snnexp.neurons.base import set_step_mode


def test_blocks_and_stages_with_a_projection_where_the_shape_changes():
    model = ResNet(LIF, (1, 28, 28), 10, depth=None, blocks=(2, 1), channels=(8, 16))
    blocks = [m for m in model.net if isinstance(m, Residual)]
    assert len(blocks) == 3
    assert [len(b.shortcut) for b in blocks] == [0, 0, 2]  # identity, identity, strided 1x1 conv + BN
    net = model.network((1, 28, 28))
    assert net[net.output].shape == (10,) and net["net.7"].shape == (16, 14, 14)
    assert len(net.with_role(Role.JOIN)) == 3


def test_width_scales_every_stage_and_the_parameter_count():
    """conv3x3 weights: stem 1*8*9; stage 1: 2 convs 8*8*9 + 2 BN (2*8); stage 2: 8*16*9 + 16*16*9 + 1x1 8*16 ..."""
    full, quarter = (ResNet(LIF, (1, 28, 28), 10, depth=None, blocks=(1, 1), channels=(32, 64), width=w)
                     for w in (1.0, 0.25))
    convs = [m.out_channels for m in quarter.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs == [8, 8, 8, 16, 16, 16]
    count = lambda m: sum(p.numel() for p in m.parameters() if p.requires_grad)  # noqa: E731
    c = 8
    expected = (1 * c * 9 + 2 * c) + 2 * (c * c * 9 + 2 * c) + (c * 2 * c * 9 + 2 * 2 * c) + (2 * c * 2 * c * 9 + 4 * c) \
        + (c * 2 * c + 4 * c) + (2 * c * 10 + 10)
    assert count(quarter) == expected and count(full) > 10 * count(quarter)


def test_both_step_modes_agree_in_evaluation():
    torch.manual_seed(0)
    model = ResNet(LIF, (1, 12, 12), 4, depth=None, blocks=(1, 1), channels=(4, 8)).eval()
    x = (torch.rand(5, 2, 1, 12, 12) < 0.5).float() * 4
    out_m = model(x)
    set_step_mode(model.net, "s")
    model.step_mode = "s"
    torch.testing.assert_close(model(x), out_m)
    assert out_m.abs().sum() > 0


def test_bad_values_name_their_key():
    with pytest.raises(ConfigError, match="model.blocks"):
        ResNet(LIF, (1, 8, 8), 10, depth=None, blocks=(1, 1, 1), channels=(4, 8))
    with pytest.raises(ConfigError, match="model.depth=50 is invalid: choose one of"):
        ResNet(LIF, (1, 8, 8), 10, depth=50)
    with pytest.raises(ConfigError, match="model.width"):
        ResNet(LIF, (1, 8, 8), 10, width=0)
    with pytest.raises(ConfigError, match="a residual network needs images"):
        ResNet(LIF, (64,), 10)


def parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_parameter_counts_equal_the_reference_networks():
    """ResNet-19 as the TET authors build it (brain-intelligence-lab/temporal_efficient_training,
    models/resnet_models.py: a 64-channel 3x3 stem, stages of 3/3/2 BasicBlocks with 128/256/512
    channels, FC 512-256-10; BatchNorm is plain BN): 12,630,858 parameters. ResNet-18 and 34 on
    224x224 ImageNet with 1,000 classes have torchvision's resnet18 / resnet34 counts, 11,689,512 and
    21,797,672; SEW-ResNet-18 (SpikingJelly's sew_resnet18, spiking neurons have no parameters) too."""
    assert parameters(ResNet(LIF, (3, 32, 32), 10, depth=19)) == 12_630_858
    assert parameters(ResNet(LIF, (3, 224, 224), 1000, depth=18)) == 11_689_512
    assert parameters(ResNet(LIF, (3, 224, 224), 1000, depth=34)) == 21_797_672
    assert parameters(SEWResNet(LIF, (3, 224, 224), 1000, depth=18)) == 11_689_512


@pytest.mark.parametrize("connect", ["add", "and", "iand"])
def test_sew_blocks_join_spikes_after_their_neurons(connect):
    torch.manual_seed(0)
    model = SEWResNet(LIF, (2, 16, 16), 5, depth=None, blocks=(1, 1), channels=(4, 8), connect=connect).eval()
    joins = model.network((2, 16, 16)).with_role(Role.JOIN)
    assert [j.module.connect for j in joins] == [connect, connect]
    out = model((torch.rand(3, 2, 2, 16, 16) < 0.5).float())
    assert out.shape == (3, 2, 5)


def test_fang_2021_dvs_form_pools_after_every_block_down_to_one_pixel():
    """c32k3s1-BN-PLIF-{SEW block-MPk2s2}*7-FC11 (Fang et al. 2021, DVS Gesture): a small stem at 128 px,
    no strided block, a 2x2 max-pool after each of the 7 blocks (128 -> 1), identity shortcuts."""
    model = SEWResNet(LIF, (2, 128, 128), 11, depth=None, blocks=[1] * 7, channels=[32] * 7, downsample="maxpool",
                      stem="small", channels_last=False)
    net = model.network((2, 128, 128))
    convs = [n for n in net if isinstance(n.module, torch.nn.Conv2d)]
    assert all(n.module.stride == (1, 1) and n.module.kernel_size == (3, 3) for n in convs)
    assert len(convs) == 1 + 7 * 2  # the stem and two per block: no shortcut convolution
    pools = [n for n in net if isinstance(n.module, torch.nn.MaxPool2d)]
    assert [n.shape[-1] for n in pools] == [64, 32, 16, 8, 4, 2, 1]
    assert [model.block_of(n.name) for n in pools] == [f"stage{i}.block1" for i in range(1, 8)]
    assert model(torch.rand(2, 1, 2, 128, 128)).shape == (2, 1, 11)
    with pytest.raises(ConfigError, match="model.downsample"):
        ResNet(LIF, (1, 28, 28), 10, depth=18, downsample="avg")
    with pytest.raises(ConfigError, match="model.stem"):
        ResNet(LIF, (1, 28, 28), 10, depth=18, stem="huge")
