"""The Pareto front of (latency, accuracy) points."""

from __future__ import annotations

import pytest

from edgekd.pipeline.optimize.plot import pareto_front


@pytest.mark.parametrize(("points", "front"), [
    ([(1.0, 0.9), (2.0, 0.95), (3.0, 0.94)], [True, True, False]),   # slower AND less accurate: dominated
    ([(1.0, 0.9), (1.0, 0.9)], [True, True]),                         # ties dominate neither
    ([(1.0, 0.9), (1.0, 0.8)], [True, False]),                        # same speed, less accurate
    ([(2.0, 1.0), (1.0, 1.0)], [False, True]),
])
def test_pareto_front(points: list[tuple[float, float]], front: list[bool]) -> None:
    assert pareto_front(points) == front
