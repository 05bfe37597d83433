"""The NSER-IBVS student: exact parameter counts, output contract."""

from __future__ import annotations

import torch

from edgekd.tasks.drone.models import StudentNet, macs, param_count


def test_parameter_counts_are_the_papers_1_7m_and_half_width() -> None:
    full, half = StudentNet(1.0), StudentNet(0.5)
    print(f"student params: {param_count(full):,} (half-width {param_count(half):,})")
    assert param_count(full) == 1_714_835
    assert param_count(half) == 429_771
    assert macs(full, 96) > 3 * macs(half, 96)


def test_output_is_a_bounded_command_per_image() -> None:
    net = StudentNet(0.5).eval()
    for size in (48, 96):
        out = net(torch.rand(3, 3, size, size))
        assert out.shape == (3, 3)
        assert bool((out.abs() < 1).all())


def test_activation_is_selectable_and_keeps_the_parameter_count() -> None:
    relu, gelu = StudentNet(0.5, "relu"), StudentNet(0.5, "gelu")
    assert param_count(relu) == param_count(gelu) == 429_771
    kinds = {type(m).__name__ for m in relu.modules()}, {type(m).__name__ for m in gelu.modules()}
    assert "ReLU" in kinds[0] and "GELU" not in kinds[0]
    assert "GELU" in kinds[1] and "ReLU" not in kinds[1]


def test_unknown_activation_names_the_field_and_the_choices() -> None:
    import pytest

    from edgekd.errors import ConfigError

    with pytest.raises(ConfigError, match=r"task.activation='swish'.*relu, gelu"):
        StudentNet(0.5, "swish")


def test_strided_and_pooled_downsampling_give_the_same_output_size_and_parameters() -> None:
    strided, pooled = StudentNet(1.0, downsample="strided"), StudentNet(1.0, downsample="pool")
    assert param_count(strided) == param_count(pooled) == 1_714_835
    assert macs(strided, 96) < 0.7 * macs(pooled, 96)
    x = torch.rand(2, 3, 96, 96)
    feats_s, feats_p = strided.features(x), pooled.features(x)
    assert feats_s.shape == feats_p.shape
