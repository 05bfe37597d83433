"""The gaze task's configuration (``task: {kind: gaze, ...}`` in a recipe).

Defaults describe the DFT Gaze set-up of GazeGen (arXiv:2411.04335): 64x96 grayscale
near-eye images, a ConvNeXt-V2-Atto-style teacher (depths 2,2,6,2; dims 40,80,160,320)
and a student whose first stage is the teacher's and whose later stages keep a quarter
of the channels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from edgekd.config.recipe import Strict, TaskConfigBase


class GazeModelConfig(Strict):
    """Backbone knobs shared by teacher and student (widths differ, see dims)."""

    depths: tuple[int, int, int, int] = (2, 2, 6, 2)
    teacher_dims: tuple[int, int, int, int] = (40, 80, 160, 320)
    # Stage 1 equals the teacher's (its weights are copied); later stages keep a quarter.
    student_dims: tuple[int, int, int, int] = (40, 20, 40, 80)
    kernel_size: int = Field(7, ge=1, description="depthwise kernel; ConvNeXt uses 7 (odd sizes only)")
    stem_stride: int = Field(4, ge=1, description="stem patchify stride: 4 gives stages of 16x24..2x3 at 64x96")
    adapters: bool = Field(True, description="bottleneck adapters (d -> d/4 -> d, zero-init) in every block")
    adapter_reduction: int = Field(4, ge=1)

    @model_validator(mode="after")
    def _odd_kernel(self) -> GazeModelConfig:
        if self.kernel_size % 2 == 0:
            raise ValueError(f"model.kernel_size={self.kernel_size}: must be odd (3, 5, 7) so padding keeps size")
        if self.student_dims[0] != self.teacher_dims[0]:
            raise ValueError(f"model.student_dims[0]={self.student_dims[0]} must equal teacher_dims[0]="
                             f"{self.teacher_dims[0]}: the student's first stage is copied from the teacher")
        return self


class GazeMAEConfig(Strict):
    """Masked-autoencoder pre-training of the teacher on unlabelled synthetic eyes (FCMAE-like)."""

    enabled: bool = Field(False, description="pre-train the teacher's backbone as an MAE before supervised training")
    images: int = Field(4000, ge=8, description="unlabelled images generated for pre-training")
    wearers: int = Field(40, ge=1, description="distinct unlabelled wearers (disjoint from every labelled split)")
    epochs: int = Field(3, ge=1)
    batch_size: int = Field(64, ge=2)
    lr: float = Field(1.5e-3, gt=0)
    mask_ratio: float = Field(0.6, gt=0, lt=1)
    patch_size: int = Field(8, ge=1, description="side of the masked square patches, in pixels")
    decoder_dim: int = Field(64, ge=4, description="channels of the light decoder")
    finetune: Literal["full", "adapters"] = Field(
        "full", description="what the supervised (generalised) phase trains after pre-training: 'full' = every "
        "weight; 'adapters' = the pre-trained backbone frozen, only the bottleneck adapters and the head train "
        "(DFT Gaze's parameter-efficient setting)")


class GazeTaskConfig(TaskConfigBase):
    kind: Literal["gaze"] = "gaze"
    source: Literal["synth", "mpiigaze", "ethxgaze", "openeds2020", "aria"] = Field(
        "synth", description="synth = the offline near-eye generator; the others read a real dataset at root "
        "(edgekd.tasks.gaze.loaders.real: wearer-disjoint splits, images resized to height x width)")
    root: Path | None = Field(None, description="dataset folder for a real source (its layout is checked at load)")
    height: int = Field(64, ge=16)
    width: int = Field(96, ge=16)
    train_size: int = Field(6000, ge=8, description="training images (spread evenly over the train wearers)")
    val_size: int = Field(600, ge=8)
    test_size: int = Field(1200, ge=8)
    train_wearers: int = Field(40, ge=1, description="distinct synthetic wearers in the training split")
    val_wearers: int = Field(6, ge=1, description="held-out wearers for validation (disjoint from train)")
    test_wearers: int = Field(10, ge=1, description="held-out wearers for test (disjoint from train and val)")
    yaw_range_deg: float = Field(25.0, gt=0, le=45, description="visual-axis yaw drawn within +-this")
    pitch_range_deg: float = Field(20.0, gt=0, le=40, description="visual-axis pitch drawn within +-this")
    kappa_h_mean_deg: float = Field(5.0, description="angle kappa, horizontal: visual minus optical yaw")
    kappa_h_std_deg: float = Field(2.5, ge=0, description="spread of kappa_h over wearers")
    kappa_v_mean_deg: float = Field(1.5, description="angle kappa, vertical")
    kappa_v_std_deg: float = Field(1.5, ge=0)
    noise: float = Field(1.0, ge=0, description="scale of sensor noise, blur and lighting variation (0 = clean)")
    loss: Literal["l1", "smooth_l1"] = Field("smooth_l1", description="supervised loss on gaze / 10 deg")
    label_fraction: float = Field(
        1.0, gt=0, le=1, description="share of training images that carry a gaze label (the rest are unlabelled "
        "frames from the same wearers: the teacher and the baseline learn from the labelled share only, the "
        "distilled student also from the teacher's outputs on every frame)")
    balance_clusters: int = Field(
        0, ge=0, description="k-means clusters of gaze directions the train split is balanced over "
        "(GazeGen uses 15 in the generalised phase); 0 = natural distribution")
    model: GazeModelConfig = Field(default_factory=GazeModelConfig)
    mae: GazeMAEConfig = Field(default_factory=GazeMAEConfig)

    @model_validator(mode="after")
    def _real_data_root(self) -> GazeTaskConfig:
        from edgekd.tasks.gaze.loaders.real import layout_problem

        problem = layout_problem(self.source, self.root)
        if problem is not None:
            raise ValueError(problem)
        if self.source == "synth" and self.root is not None:
            raise ValueError(f"task.root={str(self.root)!r} is set but task.source is 'synth', which reads no "
                             "folder; set task.source (mpiigaze, ethxgaze, openeds2020, aria) or remove task.root")
        return self
