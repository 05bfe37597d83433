"""Helpers shared by the loss modules (not a loss: the leading underscore keeps it out of
the registry's auto-discovery).

Conventions every loss follows:
- a term returns the UNWEIGHTED scalar; the loop applies ``cfg.weight`` and warm-up;
- teacher tensors are detached here, so no loss can push gradients into a teacher;
- "positions" are everything but the class axis (batch, pixels, tokens); per-position
  values are averaged over positions, with an optional 0/1 mask selecting which count.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from edgekd.distill.hooks import tap_error
from edgekd.distill.terms import LossTerm, StepContext, TapProbe
from edgekd.errors import ConfigError, TrainingError, UnknownNameError


# ---------------------------------------------------------------------------- lookups
def check_output_index(kind: str, index: int, probe: TapProbe, *, teacher: bool = True,
                       student: bool = True) -> None:
    """Fail at build time (not at step 1000) when ``output`` points past the model's outputs."""
    sides = [("student", probe.student_out_shapes)] if student else []
    if teacher:
        sides.append(("teacher", probe.teacher_out_shapes))
    for side, shapes in sides:
        if index >= len(shapes):
            raise ConfigError(
                f"loss {kind!r}: output={index} but the {side} returns {len(shapes)} output(s) "
                f"(shapes {[tuple(s) for s in shapes]}).",
                hint=f"set output to an index in 0..{max(len(shapes) - 1, 0)}",
            )


def probe_shape(probe: TapProbe, side: str, path: str) -> torch.Size:
    """Shape of a tapped feature on the probe batch; an unknown path lists the nearest ones."""
    shapes = probe.student_shapes if side == "student" else probe.teacher_shapes
    try:
        return torch.Size(shapes[path])
    except KeyError:
        raise tap_error(side, path, list(shapes)) from None


def student_output(ctx: StepContext, index: int, kind: str) -> torch.Tensor:
    if index >= len(ctx.student_out):
        raise TrainingError(f"loss {kind!r}: output={index} but the student returned "
                            f"{len(ctx.student_out)} output(s)", hint="fix the loss's output index")
    return ctx.student_out[index]


def teacher_output(ctx: StepContext, index: int, kind: str) -> torch.Tensor:
    if ctx.teacher_out is None:
        raise ConfigError(f"loss {kind!r} needs a teacher, but this run has none.",
                          hint="remove the loss from distill.losses or configure a teacher")
    if index >= len(ctx.teacher_out):
        raise TrainingError(f"loss {kind!r}: output={index} but the teacher returned "
                            f"{len(ctx.teacher_out)} output(s)", hint="fix the loss's output index")
    return ctx.teacher_out[index].detach()


def feature(feats: Mapping[str, torch.Tensor], side: str, path: str, kind: str) -> torch.Tensor:
    try:
        t = feats[path]
    except KeyError:
        raise TrainingError(
            f"loss {kind!r}: the {side} feature {path!r} was not captured in this step "
            f"(captured: {sorted(feats) or 'none'}).",
            hint="the loop must hook every path in the term's student_taps/teacher_taps") from None
    return t.detach() if side == "teacher" else t


def batch_tensor(ctx: StepContext, key: str, kind: str, field: str) -> torch.Tensor:
    if key not in ctx.batch:
        raise UnknownNameError(f"batch key (loss {kind!r}, field {field!r})", key, list(ctx.batch),
                               hint=f"set {field} to a key the task's dataset yields")
    return ctx.batch[key]


# ---------------------------------------------------------------------------- logits
def resolve_class_dim(ndim: int, class_dim: int | None) -> int:
    """Default class axis: last for sequences [B, L, V] (ndim 3), axis 1 otherwise
    ([B, C] classification, [B, C, H, W] dense prediction)."""
    if ndim < 2:
        raise ValueError(f"logits need at least 2 dims [B, C], got {ndim}")
    if class_dim is None:
        return ndim - 1 if ndim == 3 else 1
    return class_dim % ndim


def flatten_positions(x: torch.Tensor, class_dim: int | None) -> tuple[torch.Tensor, torch.Size]:
    """[..., C, ...] -> ([N, C], shape of the positions) with the class axis last. Half-precision
    logits (autocast) are upcast to float32: softmax/log-softmax over a vocabulary in bf16
    loses the small probabilities that distillation is about."""
    if x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    d = resolve_class_dim(x.ndim, class_dim)
    moved = x.movedim(d, -1)
    return moved.reshape(-1, moved.shape[-1]), moved.shape[:-1]


def check_same_shape(s: torch.Tensor, t: torch.Tensor, kind: str, what: str = "logits") -> None:
    if s.shape != t.shape:
        raise TrainingError(f"loss {kind!r}: student {what} {tuple(s.shape)} and teacher {what} "
                            f"{tuple(t.shape)} differ.",
                            hint="use a student with the teacher's output shape, or a feature loss")


def masked_mean(values: torch.Tensor, mask: torch.Tensor | None, positions: torch.Size | None = None) -> torch.Tensor:
    """Mean of per-position ``values`` [N]; with a mask (shape = positions, nonzero = counted)
    the mean over counted positions only. An all-zero mask gives 0 (not NaN)."""
    if mask is None:
        return values.mean()
    m = mask.to(values.dtype)
    if positions is not None and tuple(m.shape) != tuple(positions):
        raise TrainingError(f"mask shape {tuple(m.shape)} does not match the positions {tuple(positions)} "
                            f"of the logits", hint="the mask must cover every position except the class axis")
    m = m.reshape(-1)
    return (values * m).sum() / m.sum().clamp_min(1e-12)


def kl_rows(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """KL(p || q) per row from log-probabilities [N, C] -> [N]."""
    return (log_p.exp() * (log_p - log_q)).sum(-1)


# ---------------------------------------------------------------------------- projectors
class Projector(nn.Module):
    """Maps a student feature to the teacher's shape (batch axis ignored).

    4-D [B, Cs, H, W] -> 1x1 conv to Ct channels, then bilinear resize to the teacher's
    H x W if the grids differ; 2-D [B, Ds] and 3-D [B, L, Ds] -> linear on the last axis.
    Owned by its loss term: trained with the student, dropped at export.
    """

    def __init__(self, s_shape: Sequence[int], t_shape: Sequence[int]) -> None:
        super().__init__()
        s, t = tuple(s_shape), tuple(t_shape)
        self.rank = len(s)
        self.out_hw: tuple[int, int] | None = None
        if self.rank == 4:
            self.proj: nn.Module = nn.Conv2d(s[1], t[1], kernel_size=1)
            if s[2:] != t[2:]:
                self.out_hw = (t[2], t[3])
        elif self.rank in (2, 3):
            if self.rank == 3 and s[1] != t[1]:
                raise ConfigError(f"token features of different lengths cannot be aligned: student "
                                  f"{s}, teacher {t}.", hint="tap layers with the same number of tokens")
            self.proj = nn.Linear(s[-1], t[-1])
        else:
            raise ConfigError(f"no automatic projector for {len(s)}-D features {s}",
                              hint="tap 2-D [B,D], 3-D [B,L,D] or 4-D [B,C,H,W] features")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.proj(x)
        if self.out_hw is not None:
            y = F.interpolate(y, size=self.out_hw, mode="bilinear", align_corners=False)
        return y


def make_projector(s_shape: Sequence[int], t_shape: Sequence[int], *, kind: str,
                   always: bool = False) -> nn.Module:
    """Identity when the shapes match (unless ``always``), else a trainable :class:`Projector`."""
    s, t = tuple(s_shape), tuple(t_shape)
    if len(s) != len(t):
        raise ConfigError(f"loss {kind!r}: student feature {s} and teacher feature {t} have different "
                          f"ranks; no automatic projector exists.",
                          hint="tap layers whose outputs have the same layout ([B,C,H,W], [B,L,D] or [B,D])")
    if s[1:] == t[1:] and not always:
        return nn.Identity()
    return Projector(s, t)


class LogitsPairTerm(LossTerm):
    """What every logit-matching loss does before its formula: take the student's and the teacher's
    output number ``cfg.output``, insist they have the same shape, and read the optional position mask
    ``cfg.mask_key`` from the batch. ``formula(student, teacher, mask)`` is the loss itself."""

    def __init__(self, cfg: Any, formula: Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]
                 ) -> None:
        super().__init__(cfg.kind)
        self.cfg = cfg
        self.formula = formula

    def forward(self, ctx: StepContext) -> torch.Tensor:
        c = self.cfg
        s, t = student_output(ctx, c.output, c.kind), teacher_output(ctx, c.output, c.kind)
        check_same_shape(s, t, c.kind)
        key = getattr(c, "mask_key", None)
        mask = batch_tensor(ctx, key, c.kind, "mask_key") if key else None
        return self.formula(s, t, mask)


class ProjectedFeatureTerm(LossTerm):
    """What every one-tap feature loss does before its formula: read the student's tap ``cfg.student`` and
    the teacher's ``cfg.teacher``, map the student's through the learned projector onto the teacher's
    shape, and insist the shapes then agree. Subclasses call :meth:`pair` and apply their formula."""

    def __init__(self, cfg: Any, projector: nn.Module) -> None:
        super().__init__(cfg.kind)
        self.cfg = cfg
        self.projector = projector
        self.student_taps = (cfg.student,)
        self.teacher_taps = (cfg.teacher,)

    def pair(self, ctx: StepContext, what: str = "feature (after projector)") -> tuple[torch.Tensor, torch.Tensor]:
        c = self.cfg
        s = self.projector(feature(ctx.student_feats, "student", c.student, c.kind))
        t = feature(ctx.teacher_feats, "teacher", c.teacher, c.kind)
        check_same_shape(s, t, c.kind, what)
        return s, t
