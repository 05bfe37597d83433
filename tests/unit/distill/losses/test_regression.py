import numpy as np
import pytest
import torch

from edgekd.distill.losses import LOSSES
from edgekd.distill.losses.regression import RegressionConfig, regression_loss
from edgekd.errors import ConfigError


def _ref(s: np.ndarray, t: np.ndarray, loss: str, delta: float) -> float:
    out = []
    for a, b in zip(s.ravel(), t.ravel(), strict=True):
        d = a - b
        if loss == "l1":
            out.append(abs(d))
        elif loss == "l2":
            out.append(d * d)
        else:
            out.append(0.5 * d * d if abs(d) <= delta else delta * (abs(d) - 0.5 * delta))
    return float(np.mean(out))


@pytest.mark.parametrize("loss", ["l1", "l2", "huber"])
@pytest.mark.parametrize("delta", [0.3, 1.0])
def test_matches_reference(loss: str, delta: float, gen: torch.Generator) -> None:
    s = torch.randn(6, 3, generator=gen, dtype=torch.float64) * 2
    t = torch.randn(6, 3, generator=gen, dtype=torch.float64)
    got = regression_loss(s, t, loss=loss, delta=delta)
    assert got.item() == pytest.approx(_ref(s.numpy(), t.numpy(), loss, delta), abs=1e-10)


@pytest.mark.parametrize("loss", ["l2", "huber"])
def test_gradcheck(loss: str, gen: torch.Generator) -> None:
    s = torch.randn(4, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    t = torch.randn(4, 2, generator=gen, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: regression_loss(x, t, loss=loss, delta=0.5), (s,))


def test_teacher_gets_no_gradient(gen: torch.Generator) -> None:
    s = torch.randn(3, 2, generator=gen, requires_grad=True)
    t = torch.randn(3, 2, generator=gen, requires_grad=True)
    regression_loss(s, t).backward()
    assert t.grad is None and s.grad is not None


def test_term_from_factory(make_ctx, make_probe, gen: torch.Generator) -> None:
    s0, s1 = torch.randn(4, 5, generator=gen), torch.randn(4, 2, generator=gen)
    t1 = torch.randn(4, 2, generator=gen)
    cfg = RegressionConfig(loss="huber", delta=0.5, output=1)
    term = LOSSES.get(cfg)(cfg, make_probe([s0, s1], [torch.randn(4, 5), t1]))
    got = term(make_ctx([s0, s1], [torch.zeros(4, 5), t1]))
    assert got.item() == pytest.approx(_ref(s1.numpy(), t1.numpy(), "huber", 0.5), rel=1e-6)


def test_factory_rejects_bad_index_and_shapes(make_probe) -> None:
    with pytest.raises(ConfigError, match="output=2"):
        LOSSES.get(RegressionConfig)(RegressionConfig(output=2), make_probe([torch.zeros(2, 3)], [torch.zeros(2, 3)]))
    with pytest.raises(ConfigError, match="shape"):
        LOSSES.get(RegressionConfig)(RegressionConfig(), make_probe([torch.zeros(2, 3)], [torch.zeros(2, 4)]))


def test_config_bounds() -> None:
    with pytest.raises(ValueError):
        RegressionConfig(delta=0)
    with pytest.raises(ValueError):
        RegressionConfig(loss="l3")
