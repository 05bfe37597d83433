"""Parameter and MAC counts: hand-computed on tiny models."""

from __future__ import annotations

import torch
from torch import nn

from edgekd.tasks.model_stats import macs, param_count


def test_macs_of_convolutions_and_linears_by_hand() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1, groups=4),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    # 8x8 output: 64*4*(3*3*3) + 64*4*(1*3*3) + 2*4
    assert macs(net, torch.zeros(1, 3, 8, 8)) == 64 * 4 * 27 + 64 * 4 * 9 + 8
    assert param_count(net) == (3 * 4 * 9 + 4) + (4 * 9 + 4) + (4 * 2 + 2)


def test_macs_restores_the_mode_and_leaves_no_hooks() -> None:
    net = nn.Sequential(nn.Conv1d(2, 2, 3), nn.BatchNorm1d(2)).train()
    assert macs(net, torch.zeros(1, 2, 5)) == 3 * 2 * 2 * 3
    assert net.training and not net[0]._forward_hooks  # mode restored, nothing left attached


def test_macs_count_batched_matmuls_that_module_hooks_miss() -> None:
    class Attn(nn.Module):
        def forward(self, q: torch.Tensor) -> torch.Tensor:
            return torch.softmax(q @ q.transpose(-1, -2), dim=-1) @ q

    # [1, 4, 8] @ [1, 8, 4] -> 4*4*8 MACs, then [1, 4, 4] @ [1, 4, 8] -> 4*8*4 MACs
    assert macs(Attn(), torch.zeros(1, 4, 8)) == 4 * 4 * 8 + 4 * 8 * 4


def test_param_count_selects_by_name_and_is_zero_for_non_modules() -> None:
    net = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    assert param_count(net, include=lambda n: n.startswith("1.")) == 2 + 1
    assert param_count(lambda x: x) == 0
