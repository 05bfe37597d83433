"""The arms of benchmarks/methods.py: per recipe, what each row trains with, and what its paper claims.

An arm's ``losses`` replace the recipe's ``distill.losses`` (``None``: the recipe's own), validated by the
recipe schema; ``task_loss_weight`` replaces ``distill.task_loss_weight`` (``None``: the recipe's).
``data_overrides`` change what the teacher and the training data are (LAD's label-hinted teacher); the
student is always scored on the recipe's own task. Loss settings are each loss's paper defaults unless
the arm's ``note`` says why not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

ArmKind = Literal["teacher", "alone", "kd", "dagger"]


@dataclass(frozen=True)
class Arm:
    """One row of the method table."""

    kind: ArmKind
    losses: tuple[Mapping[str, Any], ...] | None = ()
    task_loss_weight: float | None = None
    data_overrides: tuple[str, ...] = ()
    note: str = ""
    paper: str = ""  # the citation of the method
    claim: str = "not stated"  # the gain the paper claims over its baseline ("not stated" where unsure)
    baseline: bool = False  # the standard baseline of the recipe (Hinton KD, output regression, BC)


_TEACHER = Arm("teacher", note="the teacher itself (reference; nothing trained)")
_ALONE = Arm("alone", note="the student on the labels only (the pipeline's student_alone, scratch init)")
_HINTON_PAPER = "Hinton, Vinyals & Dean 2015, arXiv:1503.02531"
_HINTON_CLAIM = ("MNIST: a small net trained on soft targets makes 74 test errors vs 146 on the labels alone "
                 "(Sec. 3)")

_GUI: dict[str, Arm] = {
    "teacher": _TEACHER,
    "alone": _ALONE,
    "hinton": Arm("kd", ({"kind": "hinton_kd"},), 1.0, baseline=True, paper=_HINTON_PAPER, claim=_HINTON_CLAIM,
                  note="token-level KL at T=4, plus the label CE"),
    "bild": Arm("kd", ({"kind": "bild"},), 1.0, paper="Li et al., BiLD, COLING 2025, arXiv:2406.13555",
                claim="with only the top-8 logits, beats supervised fine-tuning, vanilla KL and five other "
                      "distillation methods on 13 NLP datasets, two LLM families (abstract; no single figure)",
                note="top-8, both leads, T=3 (official), plus the label CE"),
    "dbild": Arm("kd", ({"kind": "dbild"},), 1.0, paper="Sun et al., Switch-KD, CVPR Findings 2026, "
                 "arXiv:2604.14629", note="Kneedle k, reverse KL (Switch-KD's rule), plus the label CE"),
    "topkld": Arm("kd", ({"kind": "topk_kld"},), 1.0, paper="TopKLD (text not checked)",
                  note="top-8 and tail re-balanced (gamma 0.5), plus the label CE"),
    "ppl_ce": Arm("kd", ({"kind": "ppl_ce", "target_key": "target", "granularity": "token", "alpha": 0.5,
                          "ppl_from": "teacher", "max_weight": 4.0},), 0.0,
                  paper="LAMO's perplexity-weighted CE (text not checked)",
                  note="replaces the label CE (the recipe's setting: token weights, alpha 0.5, teacher PPL)"),
    "visual_switch": Arm("kd", ({"kind": "visual_switch", "student": "vision", "teacher": "vision",
                                 "reference_weight": 0.5, "weight": 0.5, "max_samples": 8},), 1.0,
                         paper="Sun et al., Switch-KD, arXiv:2604.14629",
                         note="the recipe's setting (8 switched screens per batch), plus the label CE"),
    "recipe": Arm("kd", None, note="the recipe's own combination (ppl_ce + dbild variant + token_kd + visual "
                  "switch + cosine_embed)"),
}

_SEG: dict[str, Arm] = {
    "teacher": _TEACHER,
    "alone": _ALONE,
    "hinton": Arm("kd", ({"kind": "hinton_kd", "temperature": 1.0, "mask_key": "valid"},), baseline=True,
                  paper=_HINTON_PAPER, claim="not stated for segmentation",
                  note="pixel-wise KL at T=1 over valid pixels, plus the label CE"),
    "cwd": Arm("kd", ({"kind": "cwd", "student": "classifier", "teacher": "classifier", "temperature": 4.0,
                       "weight": 3.0},), paper="Shu et al., CWD, ICCV 2021, arXiv:2011.13256",
               claim="+5.81 mIoU for a PSPNet-R18 student on Cityscapes (ICCV abstract)",
               note="logit maps, tau 4, weight 3 (the paper's logit setting)"),
    "acam": Arm("kd", ({"kind": "acam", "student": "classifier", "teacher": "classifier", "distance": "cwd",
                        "temperature": 4.0, "mask_floor": 0.5, "mask_objective": "adversarial", "weight": 3.0},),
                paper="after Lan & Tian, ACAM-KD, ICCV 2025, arXiv:2503.06307",
                claim="+3.09 mIoU over the baseline for a DeepLabV3-MobileNetV2 student on Cityscapes (abstract)",
                note="masks over the logit maps weighting CWD (edgekd's reading; see losses/acam.py)"),
    "lad": Arm("kd", ({"kind": "lad"},), data_overrides=("task.lad.enabled=true",),
               paper="Qiu et al., LAD, ECCV 2024, arXiv:2407.13254",
               claim="not stated (the abstract gives no figure)",
               note="label-hinted teacher, CWD tau 4 weight 3 (official)"),
    "mgd": Arm("kd", ({"kind": "mgd", "student": "aspp", "teacher": "aspp"},),
               paper="Yang et al., MGD, ECCV 2022, arXiv:2205.01529",
               claim="DeepLabV3-R18 student on Cityscapes 73.20 -> 76.02 mIoU (+2.82; abstract)",
               note="dense variant on the ASPP features (random spatial mask, generation block)"),
}

_DMAE = {"kind": "mae_feature", "student": ["stages.2", "stages.3"], "teacher": ["stages.2", "stages.3"],
         "patch_size": 8, "image_channels": 1}
_REGRESSION = {"kind": "regression", "loss": "l1", "weight": 0.5}
_GAZE: dict[str, Arm] = {
    "teacher": _TEACHER,
    "alone": Arm("alone", note="the student on the labels only, scratch init (the pipeline's student_alone); the "
                 "distilled arms start from the teacher's stem and stage 1 (DFT Gaze), so their gain includes it"),
    "regression": Arm("kd", (_REGRESSION,), baseline=True, paper="output distillation (standard baseline)",
                      note="L1 to the teacher's (yaw, pitch), weight 0.5 (the recipe's), plus the label loss"),
    "dmae": Arm("kd", (_DMAE,), paper="Bai et al., DMAE, CVPR 2023, arXiv:2208.12256",
                claim="ViT-B from an MAE-pretrained ViT-L: 84.0% ImageNet top-1, +1.2 over distilling a fine-tuned "
                      "ViT-L (abstract)",
                note="as the paper: same masked input for both, normalised features, L1, summed taps, mask 0.75"),
    "both": Arm("kd", (_REGRESSION, _DMAE), paper="GazeGen's DFT Gaze, arXiv:2411.04335",
                note="output regression + DMAE as the paper"),
    "recipe": Arm("kd", None, note="the recipe's own: regression + its pre-issue-22 DMAE variant"),
}

_DRONE: dict[str, Arm] = {
    "teacher": Arm("teacher", note="the analytic IBVS controller"),
    "alone": Arm("alone", note="the student on the labelled fraction (task.label_fraction) alone"),
    "bc": Arm("kd", None, baseline=True, paper="NSER-IBVS (behaviour cloning of the analytic teacher)",
              note="the recipe's KD: regression to the teacher's command on every frame (behaviour cloning)"),
    "dagger": Arm("dagger", None, paper="Ross, Gordon & Bagnell 2011, DAgger, AISTATS",
                  claim="outperforms previous approaches (behaviour cloning among them) on two imitation-learning "
                        "problems and a sequence-labelling benchmark (abstract; no single figure)",
                  note="bc + DAgger rounds (2 x 20 flights, 3 epochs each; time includes bc)"),
}

ARMS: dict[str, dict[str, Arm]] = {"gui_agent": _GUI, "segmentation": _SEG, "gaze": _GAZE, "drone": _DRONE}
