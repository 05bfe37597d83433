"""The recipe's ``optimize:`` section: run the ``edgekd optimize`` search on the run's FP32 student.

Off by default, so existing runs and published figures do not change. When on, ``distill-and-export``
builds every candidate artifact the run's device allows from ``student.onnx`` (calibrated on training
inputs), judges each on the task's validation split, times them interleaved and picks the fastest within
the accuracy budget (``edgekd/pipeline/optimize_stage.py``).

The candidate names are a closed vocabulary, checked here when the recipe is validated, so a typo is
reported with every other recipe problem before anything trains. The quantize layer builds them
(``edgekd/quantize/candidates.py``); a test keeps the two lists equal.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: Every candidate the optimize search knows (``ov-default`` is OpenVINO at its own default CPU precision;
#: the report spells it ``ov-default(bf16)`` or ``ov-default(f32)``).
CANDIDATE_NAMES: tuple[str, ...] = (
    "ort-fp32", "ov-fp32", "ov-default", "ov-fp16", "ort-fp16",
    *(f"ort-int8-{act}-{gran}-{ops}" for gran in ("pc", "pt") for act in ("U8S8", "S8S8")
      for ops in ("all", "conv-matmul")),
    "ort-int8-dynamic", "ov-int8-nncf", "ov-int8-nncf-ac", "trt-fp16",
)

OptimizeMetric = Literal["auto", "argmax", "iou", "sequence", "sqnr"]


def candidate_key(name: str) -> str:
    """A candidate's name as the recipe spells it: ``ov-default(bf16)`` -> ``ov-default``."""
    return name.split("(", 1)[0]


class OptimizeConfig(BaseModel):
    """``optimize:`` of a recipe (see the module docstring and docs/optimize.md)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    enabled: bool = Field(False, description="run the optimize search after the export stage")
    max_drop: float = Field(0.01, ge=0, lt=1, description="largest allowed drop of held-out agreement with "
                                                         "FP32 (argmax/iou/sequence; 0.01 = 1%)")
    min_sqnr_db: float = Field(20.0, ge=0, le=100, description="smallest allowed SQNR (dB) of outputs judged "
                                                              "by SQNR")
    candidates: list[str] | None = Field(None, description="candidate names to consider (null = every one the "
                                                           "device allows); ort-fp32 is always kept as the "
                                                           "reference")
    metric: OptimizeMetric | None = Field(None, description="null = the task's own metric where the search has "
                                                            "a counterpart, else auto (the metric that fits "
                                                            "each output)")
    calib_samples: int = Field(32, ge=1, le=100_000, description="training inputs (batch 1) to calibrate on")
    eval_samples: int = Field(32, ge=1, le=100_000, description="validation inputs (batch 1) to judge on")
    accuracy_control: bool = Field(True, description="also try NNCF INT8 with accuracy control")

    @field_validator("candidates")
    @classmethod
    def _known_candidates(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return value
        from edgekd.errors import suggest

        problems = []
        for name in value:
            if name not in CANDIDATE_NAMES:
                near = suggest(name, CANDIDATE_NAMES)
                problems.append(f"{name!r} is not a candidate" + (f" (did you mean {near!r}?)" if near else ""))
        if problems:
            raise ValueError("; ".join(problems) + f"; the candidates are: {', '.join(CANDIDATE_NAMES)}")
        if not value:
            raise ValueError("an empty list leaves only the ort-fp32 reference; give at least one name, or null "
                             "for every candidate")
        return value
