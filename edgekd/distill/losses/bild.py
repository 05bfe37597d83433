"""BiLD: Bi-directional Logits Difference loss.

Li, Zhou & Song, "BiLD: Bi-directional Logits Difference Loss for Large Language Model
Distillation", COLING 2025 (arXiv:2406.13555).

Teacher-led (t-LD): take the indices of the teacher's top-k logits (sorted descending);
form the k(k-1)/2 pairwise differences d_ij = z_i - z_j (i < j) of the teacher's logits
and of the student's logits at the same indices; L_t = KL(softmax(d^t / T) || softmax(d^s / T)).
Student-led (s-LD): the same with the student's top-k indices (teacher still the target).
BiLD = L_t + L_s, averaged over positions (tokens). Only the top-k logits are used, which
filters the long-tail noise; differences carry the internal ranking. Defaults top_k = 8 and
T = 3 are the official code's (the defaults of its bild_loss).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from edgekd.config.recipe import LossConfigBase
from edgekd.distill.losses import LOSSES
from edgekd.distill.losses._common import (
    LogitsPairTerm,
    check_output_index,
    flatten_positions,
    kl_rows,
    masked_mean,
    resolve_class_dim,
)
from edgekd.distill.terms import LossTerm, TapProbe
from edgekd.errors import ConfigError

Led = Literal["both", "teacher", "student"]
_MASKED = -1e30  # logit of a pair excluded from the softmax: exp underflows to exactly 0


class BiLDConfig(LossConfigBase):
    kind: Literal["bild"] = "bild"
    top_k: int = Field(8, ge=2, description="number of top logits whose pairwise differences are matched")
    led: Led = Field("both", description="teacher-led, student-led, or both (= BiLD)")
    temperature: float = Field(3.0, gt=0, description="softmax temperature on the logit differences (official: 3)")
    output: int = Field(0, ge=0, description="index into the student's and teacher's outputs")
    class_dim: int | None = Field(None, description="class axis; null = 1, or last for [B,L,V] sequences")
    mask_key: str | None = Field(None, description="batch key of a 0/1 mask over positions (e.g. padding)")


def led_difference_kl(s: torch.Tensor, t: torch.Tensor, idx: torch.Tensor, temperature: float,
                      k_rows: torch.Tensor | None = None, *, reverse: bool = False) -> torch.Tensor:
    """Per-row KL(softmax(d^t/T) || softmax(d^s/T)) over the pairs i < j of the K gathered
    logits ``idx`` [N, K] (sorted by the leader, descending); ``reverse`` gives
    KL(softmax(d^s/T) || softmax(d^t/T)) instead (DBiLD). ``k_rows`` [N] restricts row n to its
    first k_rows[n] indices (pairs with j >= k excluded), for DBiLD."""
    K = idx.shape[1]
    sk, tk = s.gather(1, idx), t.gather(1, idx)
    i, j = torch.triu_indices(K, K, offset=1, device=s.device)
    ds, dt = (sk[:, i] - sk[:, j]) / temperature, (tk[:, i] - tk[:, j]) / temperature
    if k_rows is not None:
        keep = j.unsqueeze(0) < k_rows.unsqueeze(1)
        ds, dt = ds.masked_fill(~keep, _MASKED), dt.masked_fill(~keep, _MASKED)
    lt, ls = F.log_softmax(dt, -1), F.log_softmax(ds, -1)
    return kl_rows(ls, lt) if reverse else kl_rows(lt, ls)


def bild_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, top_k: int = 8, *, led: str = "both",
              temperature: float = 3.0, class_dim: int | None = None,
              mask: torch.Tensor | None = None) -> torch.Tensor:
    """BiLD (module docstring): mean over positions of L_t + L_s (or one of them)."""
    s, positions = flatten_positions(student_logits, class_dim)
    t, _ = flatten_positions(teacher_logits.detach().to(student_logits.dtype), class_dim)
    k = min(top_k, s.shape[1])
    total = torch.zeros(s.shape[0], dtype=s.dtype, device=s.device)
    if led in ("both", "teacher"):
        total = total + led_difference_kl(s, t, t.topk(k, dim=1).indices, temperature)
    if led in ("both", "student"):
        total = total + led_difference_kl(s, t, s.detach().topk(k, dim=1).indices, temperature)
    if led not in ("both", "teacher", "student"):
        raise ValueError(f"led must be both, teacher or student, got {led!r}")
    return masked_mean(total, mask, positions)



@LOSSES.register(BiLDConfig)
def build_bild(cfg: BiLDConfig, probe: TapProbe) -> LossTerm:
    check_output_index(cfg.kind, cfg.output, probe)
    check_classes(cfg.kind, cfg.top_k, "top_k", probe.student_out_shapes[cfg.output], cfg.class_dim)
    return LogitsPairTerm(cfg, lambda s, t, mask: bild_loss(s, t, cfg.top_k, led=cfg.led, temperature=cfg.temperature, class_dim=cfg.class_dim, mask=mask))


def check_classes(kind: str, k: int, field: str, shape: torch.Size, class_dim: int | None) -> None:
    n = shape[resolve_class_dim(len(shape), class_dim)]
    if k > n:
        raise ConfigError(f"loss {kind!r}: {field}={k} but the logits have only {n} classes (shape {tuple(shape)}).",
                          hint=f"set {field} to at most {n}")
