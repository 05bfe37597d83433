"""Scale-out with torch.distributed: the same ``fit`` runs under ``torchrun --nproc_per_node N``.

Detection is by the variables torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK). The backend is
NCCL when the student is on CUDA and gloo otherwise. ``cfg.batch_size`` is per process, so
N processes see N * batch_size samples per step; with torch's DistributedSampler rank r takes
every N-th index of the same seeded permutation, which is why N processes at batch B step
through the same samples as one process at batch N * B.

Only rank 0 writes (checkpoints, logs, progress, the teacher cache); others wait at barriers.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.distributed as dist

from edgekd.errors import ConfigError


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name}={raw!r} is not an integer",
                          hint="launch with torchrun, which sets RANK/WORLD_SIZE/LOCAL_RANK") from None


def setup(device: torch.device) -> DistInfo:
    """Read the torchrun environment and join the process group (once). Single process: a no-op."""
    info = DistInfo(_env_int("RANK", 0), _env_int("WORLD_SIZE", 1), _env_int("LOCAL_RANK", 0))
    if info.enabled and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    return info


def device_for(device: torch.device, info: DistInfo) -> torch.device:
    """One GPU per process under torchrun (LOCAL_RANK); CPU stays CPU."""
    if info.enabled and device.type == "cuda":
        torch.cuda.set_device(info.local_rank)
        return torch.device("cuda", info.local_rank)
    return device


def barrier(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.barrier()


def broadcast_float(value: float | None, info: DistInfo, device: torch.device) -> float | None:
    """Rank 0's value on every rank (NaN stands for None)."""
    if not info.enabled:
        return value
    t = torch.tensor([float("nan") if value is None else float(value)], dtype=torch.float64, device=device)
    dist.broadcast(t, src=0)
    v = float(t.item())
    return None if v != v else v


def all_reduce_sum(values: list[float], info: DistInfo, device: torch.device) -> list[float]:
    if not info.enabled:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return [float(x) for x in t.tolist()]


def average_gradients(params: Iterable[torch.nn.Parameter], info: DistInfo) -> None:
    """Average gradients of parameters outside the DDP-wrapped student (loss-term projectors)."""
    if not info.enabled:
        return
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= info.world_size


def broadcast_params(params: Iterable[torch.Tensor], info: DistInfo) -> None:
    """Start every rank from rank 0's values (DDP does this for the student only)."""
    if not info.enabled:
        return
    with torch.no_grad():
        for p in params:
            dist.broadcast(p.data, src=0)
