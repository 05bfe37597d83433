"""Shared test settings: deterministic, single-threaded torch (2 cores are shared)."""

import os

os.environ.setdefault("EDGEKD_CACHE", os.path.join(os.path.dirname(__file__), "..", ".pytest_cache", "edgekd"))

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
