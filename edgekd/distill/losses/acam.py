"""ACAM-style feature distillation: adaptive, cooperative attention masks over channels and space.

After Lan & Tian, "ACAM-KD: Adaptive and Cooperative Attention Masking for Knowledge
Distillation", ICCV 2025 (arXiv:2503.06307), which reports DeepLabV3-MobileNetV2 students on
Cityscapes going from 73.12 to 76.21 mIoU. Two parts, as in the paper (teacher queries, student
keys/values; sigmoid masks from the fused feature; mask-normalised losses; a diversity loss).
Where this differs: the paper sums a channel-masked and a spatial-masked loss with M masks
each; here each of the M spatial masks is combined with one shared channel mask into a single
weighted loss, and the layer sizes are ours:

1. Student-teacher cross-attention feature fusion (STCA-FF). With the student feature
   projected to the teacher's shape, S = phi(F_S), and the teacher feature T, both [B, C, H, W]
   flattened to N = H*W tokens:
       Q = W_q T,  K = W_k S,  V = W_v S,   A = softmax(Q K^T / sqrt(d)),
       F = T + W_o (A V)
   so the fused feature says where the teacher's content is (and is not yet) found in the
   student's.
2. Adaptive spatial-channel masking (ASCM) from the fused feature: a channel mask
   m_c = sigmoid(MLP(GAP(F))) in [0,1]^C and M spatial masks m_s^k = sigmoid(conv1x1(F)_k) in
   [0,1]^{HxW}, k = 1..M. The distillation loss is the mask-weighted mean squared error,
       L_kd = 1/M sum_k  sum_{c,i} w_{k,c,i} (S_{c,i} - T_{c,i})^2 / (sum_{c,i} w_{k,c,i} * sigma_T^2),
       w_{k,c,i} = m_c[c] * m_s^k[i],
   normalised by the mask mass (so masks cannot shrink the loss to zero by switching off)
   and by the teacher feature's variance sigma_T^2 (scale-free across layers), plus a
   diversity term that keeps the M spatial masks on different regions:
       L_div = 2 / (M (M - 1)) sum_{k<l} cos(m_s^k, m_s^l).
   Total: L = L_kd + lambda_div * L_div. The mask generator reads the student feature
   detached, so the student is trained only through the masked error term, and the masks
   move as the student learns (the "adaptive, cooperative" part). With the mask-mass
   normalisation, masks that *descend* L_kd drift to the pixels the student already matches
   (dL/dw_i = (d_i - L) / sum w); ``mask_objective: adversarial`` reverses the masks'
   gradient of L_kd so they ascend it and keep pointing at what the student has not learned
   yet, while the diversity term (descended) keeps the M masks on different regions. On the
   mini-city quick preset the adversarial option measured worse (seed 0: 37.2 / 41.2 mIoU on
   the ASPP / logit taps vs 38.9 / 44.3 cooperative), so cooperative is the default.

``distance: cwd`` keeps the masks but replaces the squared error by CWD's per-channel spatial
KL (``masked_cwd_loss``). Measured on the quick preset, seed 0, logit tap (`python
benchmarks/segmentation_kd.py --seeds 0 --arms alone cwd acam:classifier:cooperative:1:cwd ...`):
alone 45.6, CWD 52.1, masked CWD 34.3 (cooperative, weight 1), 38.4 (adversarial), 24.2
(cooperative, weight 3): the learned masks concentrate the (mass-normalised) loss on few pixels
and channels, and the student pays for it. ``mask_floor`` f bounds that: the weights become
f + (1 - f) m, so masks re-weight pixels and channels (by at most 1/f) instead of selecting a few.
With f = 0.5, masked CWD on the logit maps (tau 4, weight 3, width-1.75 student) beats the student
alone in every seed, adversarial more than cooperative (seeds 0/1/2: 54.2/55.1/54.6 and
53.5/54.3/54.0 vs alone 51.8/49.6/50.7 mIoU); masked MSE on features stayed at or below the student
alone at this scale whatever the tap (ASPP, student ASPP -> teacher head, stride-4 hint).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from edgekd.config.recipe import LossConfigBase
from edgekd.distill.losses import LOSSES
from edgekd.distill.losses._common import check_same_shape, feature, make_projector, probe_shape
from edgekd.distill.terms import LossTerm, StepContext, TapProbe
from edgekd.errors import ConfigError


class ACAMConfig(LossConfigBase):
    kind: Literal["acam"] = "acam"
    student: str = Field(..., description="student module path of a [B,C,H,W] feature")
    teacher: str = Field(..., description="teacher module path of a [B,C,H,W] feature")
    masks: int = Field(4, ge=1, le=32, description="number M of spatial masks")
    attn_dim: int = Field(32, ge=4, description="query/key width d of the cross-attention")
    diversity: float = Field(0.5, ge=0, description="lambda_div, weight of the mask diversity term")
    distance: Literal["mse", "cwd"] = Field(
        "mse", description="mse: the paper's masked, variance-normalised squared error on features; cwd: the "
        "masks weight a channel-wise spatial-softmax KL (as CWD) instead, for logit maps")
    temperature: float = Field(4.0, gt=0, description="tau of the spatial softmax (distance: cwd)")
    mask_floor: float = Field(
        0.0, ge=0.0, lt=1.0, description="masks live in [mask_floor, 1] instead of [0, 1]: with a floor they "
        "re-weight the distillation loss (at most 1/floor between pixels or channels) instead of selecting a few")
    mask_objective: Literal["cooperative", "adversarial"] = Field(
        "cooperative", description="cooperative: the masks descend L_kd with the student (as in the paper); "
        "adversarial: they ascend it (gradient reversal), moving to where the student still differs")


def masked_feature_loss(student: torch.Tensor, teacher: torch.Tensor, channel_mask: torch.Tensor,
                        spatial_masks: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """L_kd above. student/teacher [B,C,H,W]; channel_mask [B,C]; spatial_masks [B,M,H,W]."""
    diff = (student - teacher.detach()).pow(2)  # [B,C,H,W]
    channel_mask, spatial_masks = channel_mask.to(diff.dtype), spatial_masks.to(diff.dtype)
    var = teacher.detach().var(dim=(0, 2, 3), unbiased=False).mean().clamp_min(eps)
    # sum_{c,i} m_c[c] m_s^k[i] diff[c,i] without building [B,M,C,H,W]
    weighted = torch.einsum("bc,bkhw,bchw->bk", channel_mask, spatial_masks, diff)
    mass = channel_mask.sum(1, keepdim=True) * spatial_masks.flatten(2).sum(-1)  # [B,M]
    return (weighted.sum(0) / (mass.sum(0) * var + eps)).mean()


def masked_cwd_loss(student: torch.Tensor, teacher: torch.Tensor, channel_mask: torch.Tensor,
                    spatial_masks: torch.Tensor, temperature: float = 4.0, eps: float = 1e-6) -> torch.Tensor:
    """Mask-weighted channel-wise distillation (``distance: cwd``).

    Per sample b and channel c, p = softmax over the H*W positions of T/tau (teacher) and of S/tau
    (student), as in CWD (Shu et al., ICCV 2021); the pointwise KL terms
    ``kl_{b,c,i} = p^T_{b,c,i} (log p^T_{b,c,i} - log p^S_{b,c,i})`` are weighted by
    ``w_{k,b,c,i} = m_c[b,c] * m_s^k[b,i]`` and normalised by the mean weight per map:
        L = tau^2 / M * sum_k  sum_{b,c,i} w kl / (sum_{b,c,i} w / (H W)),
    so all-ones masks give exactly CWD's ``tau^2 / (B C) * sum kl``.
    """
    b, c, h, w = teacher.shape
    log_pt = F.log_softmax(teacher.detach().reshape(b, c, -1) / temperature, dim=-1)
    log_ps = F.log_softmax(student.reshape(b, c, -1) / temperature, dim=-1)
    kl = (log_pt.exp() * (log_pt - log_ps)).reshape(b, c, h, w)
    channel_mask, spatial_masks = channel_mask.to(kl.dtype), spatial_masks.to(kl.dtype)
    weighted = torch.einsum("bc,bkhw,bchw->k", channel_mask, spatial_masks, kl)
    mass = torch.einsum("bc,bkhw->k", channel_mask, spatial_masks) / (h * w)
    return temperature ** 2 * (weighted / (mass + eps)).mean()


def mask_diversity(spatial_masks: torch.Tensor) -> torch.Tensor:
    """L_div above: mean pairwise cosine similarity of the M spatial masks ([B,M,H,W]); 0 for M = 1."""
    m = spatial_masks.shape[1]
    if m < 2:
        return spatial_masks.new_zeros(())
    flat = F.normalize(spatial_masks.flatten(2), dim=-1)  # [B,M,N]
    cos = flat @ flat.transpose(1, 2)  # [B,M,M]
    off = cos.sum((1, 2)) - cos.diagonal(dim1=1, dim2=2).sum(-1)
    return (off / (m * (m - 1))).mean()


class _ReverseGrad(torch.autograd.Function):
    """Identity forward, negated gradient backward (Ganin & Lempitsky 2015): lets the masks maximise
    the loss that the student minimises, in one backward pass."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return -grad


class CrossAttentionMasks(nn.Module):
    """STCA-FF + ASCM: (S, T) -> (channel mask [B,C], spatial masks [B,M,H,W])."""

    def __init__(self, channels: int, masks: int, attn_dim: int) -> None:
        super().__init__()
        self.q = nn.Conv2d(channels, attn_dim, 1)
        self.k = nn.Conv2d(channels, attn_dim, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.o = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.o.weight)  # start from F = T: the fusion is learned as a residual
        if self.o.bias is not None:
            nn.init.zeros_(self.o.bias)
        hidden = max(8, channels // 4)
        self.channel = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels))
        self.spatial = nn.Conv2d(channels, masks, 1)
        self.scale = 1.0 / math.sqrt(attn_dim)

    def forward(self, s: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, c, h, w = t.shape
        q = self.q(t).flatten(2).transpose(1, 2)  # [B,N,d]
        k = self.k(s).flatten(2)  # [B,d,N]
        v = self.v(s).flatten(2).transpose(1, 2)  # [B,N,C]
        attn = torch.softmax(q @ k * self.scale, dim=-1)
        fused = t + self.o((attn @ v).transpose(1, 2).reshape(b, c, h, w))
        m_c = torch.sigmoid(self.channel(fused.mean((2, 3))))
        m_s = torch.sigmoid(self.spatial(fused))
        return m_c, m_s, fused


class ACAMTerm(LossTerm):
    def __init__(self, cfg: ACAMConfig, projector: nn.Module, channels: int) -> None:
        super().__init__(cfg.kind)
        self.cfg = cfg
        self.projector = projector
        self.masker = CrossAttentionMasks(channels, cfg.masks, cfg.attn_dim)
        self.student_taps = (cfg.student,)
        self.teacher_taps = (cfg.teacher,)

    def forward(self, ctx: StepContext) -> torch.Tensor:
        s = self.projector(feature(ctx.student_feats, "student", self.cfg.student, self.cfg.kind))
        t = feature(ctx.teacher_feats, "teacher", self.cfg.teacher, self.cfg.kind).to(s.dtype)
        check_same_shape(s, t, self.cfg.kind, "feature (after projector)")
        m_c, m_s, _ = self.masker(s.detach(), t)
        if self.cfg.mask_floor > 0:
            # the mask-mass normalisation lets unbounded masks put the whole loss on a few pixels (measured:
            # masked CWD 34.3 vs CWD 52.1 mIoU); a floor keeps every pixel and channel in the loss
            f = self.cfg.mask_floor
            m_c, m_s = f + (1 - f) * m_c, f + (1 - f) * m_s
        w_c, w_s = (m_c, m_s) if self.cfg.mask_objective == "cooperative" else \
            (_ReverseGrad.apply(m_c), _ReverseGrad.apply(m_s))
        if self.cfg.distance == "cwd":
            kd = masked_cwd_loss(s, t, w_c, w_s, self.cfg.temperature)
        else:
            kd = masked_feature_loss(s, t, w_c, w_s)
        return kd + self.cfg.diversity * mask_diversity(m_s)


@LOSSES.register(ACAMConfig)
def build_acam(cfg: ACAMConfig, probe: TapProbe) -> LossTerm:
    s, t = probe_shape(probe, "student", cfg.student), probe_shape(probe, "teacher", cfg.teacher)
    if len(s) != 4 or len(t) != 4:
        raise ConfigError(f"loss 'acam' needs 4-D [B,C,H,W] features; student {cfg.student!r} is {tuple(s)}, "
                          f"teacher {cfg.teacher!r} is {tuple(t)}.",
                          hint="tap convolutional feature maps (e.g. the ASPP outputs)")
    return ACAMTerm(cfg, make_projector(s, t, kind=cfg.kind), int(t[1]))
