"""The segmentation task's configuration (``task: {kind: segmentation, ...}`` in a recipe).

Defaults describe a scaled-down DeepLabV3 -> MobileNetV2 distillation set-up (as in CWD and
ACAM-KD on Cityscapes) on the offline "mini-city" street-scene generator: 64x128 renders,
8 classes, ignore index 255 on anti-aliased borders, and shifted test domains (fog, night,
rain) for the out-of-domain robustness that GKD is about.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from edgekd.config.recipe import Strict, TaskConfigBase

Shift = Literal["fog", "night", "rain"]


class SegModelConfig(Strict):
    """Widths of the DeepLabV3-style teacher and the MobileNetV2-style student."""

    teacher_widths: tuple[int, int, int, int] = Field(
        (32, 64, 128, 160), description="channels of the teacher's residual stages (strides 2, 4, 8, 8 dilated)")
    teacher_aspp: int = Field(128, ge=8, description="channels of each teacher ASPP branch")
    teacher_rates: tuple[int, ...] = Field((1, 2, 4, 6), description="teacher ASPP dilation rates at stride 8 "
                                           "(DeepLabV3 uses 6/12/18 on 65x65 maps; these fit 8x16 maps)")
    student_width: float = Field(1.0, gt=0, le=2, description="student channel multiplier (MobileNetV2 alpha)")
    student_aspp: int = Field(48, ge=8, description="channels of the student's light ASPP (1x1 + pooling)")


class LADConfig(Strict):
    """Label Assisted Distillation (Qiu et al., ECCV 2024, arXiv:2407.13254): a teacher that also
    sees a noised label channel, trained dual-path with a consistency loss."""

    enabled: bool = Field(False, description="train the teacher label-assisted (image + noisy label channel)")
    label_noise: float = Field(0.3, ge=0, le=1, description="share of hint pixels replaced by a random class, "
                               "so the teacher cannot just copy the hint")
    dual_path: bool = Field(True, description="train the teacher on both paths (hint and zero channel) each step")
    consistency: float = Field(1.0, ge=0, description="weight of the dual-path consistency loss "
                               "(mean squared distance between the two paths' class probabilities)")


class SegmentationTaskConfig(TaskConfigBase):
    kind: Literal["segmentation"] = "segmentation"
    source: Literal["synth", "cityscapes", "voc", "ade20k"] = Field(
        "synth", description="synth = the offline mini-city generator; the others read a real dataset at root")
    root: Path | None = Field(None, description="dataset folder for cityscapes/voc/ade20k (the official layout)")
    height: int = Field(64, ge=16, le=1024, description="input height (multiple of 8: output stride 8)")
    width: int = Field(128, ge=16, le=2048, description="input width (multiple of 8)")
    train_size: int = Field(800, ge=2, description="synth: training images; real data: at most this many")
    val_size: int = Field(96, ge=1, description="validation images (checkpoint selection)")
    test_size: int = Field(192, ge=1, description="test images (the reported metric and the shifted domains)")
    dynamic_size: bool = Field(False, description="declare height and width dynamic in the io spec, so the "
                               "exported model takes any multiple of 8 (the fixed size is still the default)")
    shifts: list[Shift] = Field(default_factory=lambda: list[Shift](["fog", "night", "rain"]),
                                description="shifted test domains built from the test images")
    shift_severity: float = Field(1.0, gt=0, le=2, description="strength of the shifts (1 = moderate)")
    hflip: bool = Field(True, description="random horizontal flip of training images")
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="cross-entropy label smoothing")
    model: SegModelConfig = Field(default_factory=SegModelConfig)
    lad: LADConfig = Field(default_factory=LADConfig)

    @model_validator(mode="after")
    def _check(self) -> SegmentationTaskConfig:
        problems = []
        for name in ("height", "width"):
            v = getattr(self, name)
            if v % 8:
                problems.append(f"task.{name}={v}: must be a multiple of 8 (the models' output stride); "
                                f"use {max(8, round(v / 8) * 8)}")
        if self.source != "synth" and self.root is None:
            problems.append(f"task.source={self.source!r} needs task.root (the dataset folder); "
                            "set task.root or use source: synth")
        if len(set(self.shifts)) != len(self.shifts):
            problems.append(f"task.shifts={self.shifts}: each shift at most once")
        if problems:
            raise ValueError("; ".join(problems))
        return self
