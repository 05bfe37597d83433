"""BatchNorm folding for QAT fine-tuning: same function, BN gone, paths kept."""

from __future__ import annotations

import torch
from torch import nn

from edgekd.distill.fold_bn import fold_batchnorm


def _net() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU()),
        nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=True), nn.BatchNorm2d(8), nn.ReLU()),
        nn.BatchNorm2d(8),  # not after a conv in its Sequential: left alone
    )
    # non-trivial running statistics and affine parameters
    net.train()
    for _ in range(5):
        net(torch.randn(4, 3, 10, 10) * 3 + 1)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            nn.init.uniform_(m.weight, 0.5, 2.0)
            nn.init.uniform_(m.bias, -1.0, 1.0)
    return net.eval()


def test_folded_model_computes_the_same_function() -> None:
    net = _net().double()
    x = torch.randn(2, 3, 10, 10, dtype=torch.float64)
    ref = net(x)
    folded, left = fold_batchnorm(net)
    assert (folded, left) == (2, 1)
    torch.testing.assert_close(net(x), ref, atol=1e-10, rtol=1e-10)


def test_conv_keeps_its_path_and_gains_a_bias() -> None:
    net = _net()
    fold_batchnorm(net)
    conv = net.get_submodule("0.0")
    assert isinstance(conv, nn.Conv2d) and conv.bias is not None
    assert isinstance(net.get_submodule("0.1"), nn.Identity)
    assert "0.0.bias" in dict(net.named_parameters())


def test_wrong_module_types_and_stat_less_batchnorm_are_refused() -> None:
    import pytest

    from edgekd.distill.fold_bn import fold_conv_bn_

    with pytest.raises(TypeError, match="Conv and a BatchNorm"):
        fold_conv_bn_(nn.Linear(2, 2), nn.BatchNorm2d(2))
    with pytest.raises(ValueError, match="track_running_stats=False"):
        fold_conv_bn_(nn.Conv2d(2, 2, 1), nn.BatchNorm2d(2, track_running_stats=False))
    # inside a model such a pair is left alone (counted as not folded)
    net = nn.Sequential(nn.Conv2d(2, 2, 1), nn.BatchNorm2d(2, track_running_stats=False))
    assert fold_batchnorm(net) == (0, 1)
