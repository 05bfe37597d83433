"""The distillation engine: training loop, teachers, feature taps, teacher cache, checkpoints,
torchrun scale-out and quantization-aware distillation.

Public API::

    from edgekd.distill import distill, fit, FitResult, EnsembleTeacher, HintonKDConfig

Every loss config class registered in ``edgekd.distill.losses`` (HintonKDConfig, FitNetConfig,
CWDConfig, ...) can be imported from here by its class name.
"""

from __future__ import annotations

from typing import Any

from edgekd.distill.api import distill, load_student, train_config
from edgekd.distill.cache import IndexedDataset, TeacherCache
from edgekd.distill.hooks import FeatureTaps, module_paths
from edgekd.distill.loop import FitResult, fit
from edgekd.distill.teachers import CallableTeacher, EnsembleTeacher, ModuleTeacher, as_teacher
from edgekd.distill.terms import LossTerm, StepContext, TapProbe
from edgekd.quantize.fake_quant import export_qdq_onnx, freeze_qat, prepare_qat


def __getattr__(name: str) -> Any:
    # Loss configs are found by class name in the registry, so a new loss file needs no edit here.
    if name.endswith("Config"):
        from edgekd.distill.losses import LOSSES

        for cls in LOSSES.config_classes():
            if cls.__name__ == name:
                return cls
        from edgekd.errors import suggest

        near = suggest(name, [c.__name__ for c in LOSSES.config_classes()])
        raise AttributeError(f"edgekd.distill has no loss config {name!r}"
                             + (f"; did you mean {near!r}?" if near else ""))
    raise AttributeError(f"module 'edgekd.distill' has no attribute {name!r}")


__all__ = [
    "CallableTeacher", "EnsembleTeacher", "FeatureTaps", "FitResult", "IndexedDataset", "LossTerm",
    "ModuleTeacher", "StepContext", "TapProbe", "TeacherCache", "as_teacher", "distill", "export_qdq_onnx",
    "fit", "freeze_qat", "load_student", "module_paths", "prepare_qat", "train_config",
]
