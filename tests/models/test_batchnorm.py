import copy

import pytest
import torch
from torch import nn

from snnexp.models.batchnorm import fold_batchnorm, fold_batchnorm_params


def _trained_bn(bn: nn.modules.batchnorm._BatchNorm, seed: int) -> nn.modules.batchnorm._BatchNorm:
    g = torch.Generator().manual_seed(seed)
    n = bn.num_features
    bn.running_mean.copy_(torch.randn(n, generator=g))
    bn.running_var.copy_(torch.rand(n, generator=g) + 0.2)
    if bn.affine:
        bn.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
        bn.bias.data.copy_(torch.randn(n, generator=g))
    return bn.eval()


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("layer, bn, shape", [
    (lambda: nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d, (4, 2, 5, 5)),
    (lambda: nn.Linear(6, 3, bias=False), nn.BatchNorm1d, (4, 6)),
])
def test_folded_params_equal_layer_then_batchnorm(layer, bn, shape, affine):
    torch.manual_seed(0)
    lin, norm = layer(), _trained_bn(bn(3, affine=affine), seed=1)
    x = torch.randn(shape)
    w, b = fold_batchnorm_params(lin.weight, lin.bias, norm)
    folded = copy.deepcopy(lin)
    folded.weight.data.copy_(w)
    folded.bias = nn.Parameter(b)
    with torch.no_grad():
        assert torch.allclose(folded(x), norm(lin(x)), atol=1e-5)
    w64, b64 = fold_batchnorm_params(lin.weight.double(), None if lin.bias is None else lin.bias.double(), norm)
    assert w64.dtype == b64.dtype == torch.float64 and torch.allclose(w64.float(), w, atol=1e-6)


def test_one_fold_serves_the_conversion_and_the_loihi_export():
    from snnexp.deploy.loihi import convert
    from snnexp.learners import conversion

    assert conversion.fold_batchnorm is fold_batchnorm
    assert convert.fold_batchnorm_params is fold_batchnorm_params
    assert not hasattr(convert, "_fold_batch_norm")


def _block_net() -> nn.Sequential:
    """conv-BN-ReLU, then a residual block with BN in its body and in its projection shortcut."""
    from snnexp.network import Residual

    torch.manual_seed(0)
    block = Residual([nn.Conv2d(2, 3, 3, padding=1, bias=False), _trained_bn(nn.BatchNorm2d(3), 2), nn.ReLU(),
                      nn.Conv2d(3, 3, 3, padding=1), _trained_bn(nn.BatchNorm2d(3), 3)],
                     [nn.Conv2d(2, 3, 1, bias=False), _trained_bn(nn.BatchNorm2d(3), 4)], "add", step_mode="s")
    return nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), _trained_bn(nn.BatchNorm2d(2), 1), nn.ReLU(), block,
                         nn.ReLU()).eval()


def test_batchnorms_inside_residual_blocks_fold_into_the_synapse_before_them():
    net = _block_net()
    folded = fold_batchnorm(net)
    assert [type(m).__name__ for m in folded] == ["Conv2d", "ReLU", "Residual", "ReLU"]
    assert [type(m).__name__ for m in folded[2].body] == ["Conv2d", "ReLU", "Conv2d"]
    assert [type(m).__name__ for m in folded[2].shortcut] == ["Conv2d"]
    assert folded[2].shortcut[0].bias is not None and net[3].shortcut[0].bias is None  # the input is left alone
    x = torch.rand(4, 1, 5, 5)
    with torch.no_grad():
        assert torch.allclose(folded(x), net(x), atol=1e-5)


def test_a_batchnorm_whose_synapse_feeds_another_layer_too_is_refused():
    from snnexp.network import Residual

    net = nn.Sequential(nn.Conv2d(1, 2, 1), Residual([nn.BatchNorm2d(2)], [], "add", step_mode="s"))
    with pytest.raises(ValueError, match=r"cannot fold BatchNorm2d.* at 1\.body\.0: it must follow a Conv2d or Linear"):
        fold_batchnorm(net)
