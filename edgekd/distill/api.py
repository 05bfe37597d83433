"""The Python API: distill a teacher into a student in a few lines.

    from edgekd.distill import distill, HintonKDConfig

    result = distill(teacher, student, losses=[HintonKDConfig(temperature=4.0)],
                     train_set=train_set, input_names=["image"], task_loss=cross_entropy,
                     epochs=10, lr=2e-3)
    result.student  # best weights, eval mode

Everything :func:`edgekd.distill.loop.fit` accepts is available; training settings can be
given as keyword arguments (the fields of TrainConfig, validated the same way as a recipe)
or as a ``train=TrainConfig(...)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from edgekd.config.recipe import LossConfigBase, TrainConfig
from edgekd.distill.loop import FitResult, fit
from edgekd.errors import ConfigError


def train_config(train: TrainConfig | None = None, **settings: Any) -> TrainConfig:
    """A TrainConfig from a base config and keyword overrides; unknown or invalid fields are a
    ConfigError naming each field, the value given and what is allowed."""
    base = (train or TrainConfig.model_validate({})).model_dump()
    try:
        return TrainConfig(**{**base, **settings})
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}={e.get('input')!r}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("invalid training settings", problems,
                          hint=f"TrainConfig fields are: {', '.join(TrainConfig.model_fields)}") from None


def distill(teacher: nn.Module | Callable[..., Any] | None, student: nn.Module, *,
            losses: Sequence[LossConfigBase] = (),
            train_set: Dataset | DataLoader,  # type: ignore[type-arg]
            input_names: Sequence[str],
            task_loss: Callable[[Sequence[Tensor], Mapping[str, Tensor]], Tensor] | None = None,
            task_loss_weight: float = 1.0,
            val_fn: Callable[[nn.Module], float] | None = None, lower_is_better: bool = True,
            train: TrainConfig | None = None, out_dir: str | Path | None = None, resume: bool = False,
            seed: int = 0, progress: bool = True, teacher_cache: str | Path | None = None,
            qat: bool = False, **settings: Any) -> FitResult:
    """Distil ``teacher`` (a torch module, an analytic callable, an EnsembleTeacher, or None for
    a plain supervised run) into ``student`` with the loss terms ``losses``.

    ``train_set`` is a map-style dataset of dicts (model inputs by name plus targets) or a
    DataLoader over one (its dataset and batch size are used; the engine does its own
    seeded, resumable shuffling). ``settings`` are TrainConfig fields (epochs=, lr=, ...).
    """
    if isinstance(train_set, DataLoader):
        if "batch_size" not in settings and train_set.batch_size is not None:
            settings["batch_size"] = train_set.batch_size
        if "num_workers" not in settings:
            settings["num_workers"] = train_set.num_workers
        dataset = train_set.dataset
    else:
        dataset = train_set
    cfg = train_config(train, **settings)
    return fit(student, train_set=dataset, input_names=input_names, cfg=cfg, task_loss=task_loss,
               task_loss_weight=task_loss_weight, teacher=teacher, losses=losses, val_fn=val_fn,
               lower_is_better=lower_is_better, out_dir=Path(out_dir) if out_dir is not None else None,
               resume=resume, seed=seed, progress=progress, desc="distill",
               teacher_cache=Path(teacher_cache) if teacher_cache is not None else None, qat=qat)


def load_student(student: nn.Module, path: str | Path) -> nn.Module:
    """Load the student weights saved by a run (``best.safetensors`` or ``last.safetensors``).

    For a QAT run, call :func:`edgekd.quantize.fake_quant.prepare_qat` on the fresh student first.
    """
    from edgekd.distill.checkpoint import load_weights

    load_weights(Path(path), student)
    return student.eval()
