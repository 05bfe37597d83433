"""Teacher and student of the GUI-agent task: (screenshot, instruction) -> logits of [action, x-bin, y-bin].

Both follow the VLM layout that visual-switch distillation needs (Sun et al., Switch-KD,
arXiv:2604.14629): a text-independent vision encoder (module path ``vision``, output
[B, C, H/8, W/8]), an instruction encoder (``text``, output [B, D]) and a fusion "language
pathway" (``fusion``) that reads both and produces the answer tokens.
``forward_from_visual(v, image, tokens)`` runs the fusion and heads on given visual features:
the teacher is called that way with the student's projected features (the switch).

Grounding head: the fused features give a score map s over the stride-8 grid, resampled to
n_bins x n_bins; the coordinate tokens' logits are its log-marginals,
x_logits[j] = logsumexp_i s[i, j] and y_logits[i] = logsumexp_j s[i, j], so the coordinate
distributions are those of a spatial softmax and they distil like any token's logits.

Output [B, 3, V] with V = max(4, n_bins): position 0 holds the 4 action logits followed by a
filler (the smallest action logit minus 10, i.e. probability < e^-10 relative to any action),
positions 1 and 2 the bins. The head and the instruction encoder are written with ops that ONNX
Runtime's static INT8 quantizer keeps in FP32 (see the comments in TextEncoder.forward and
GuiNet.forward_from_visual): quantizing them cost 7 points of click accuracy.

- Teacher (4.22M parameters with the default widths, 1.09 GFLOPs at 128 px): full 3x3
  convolutions (stride 2, 4, 8), text-FiLM residual blocks at stride 8 and a stride-16 context
  branch; its instruction encoder reads FROZEN word vectors (a lexicon that knows synonyms, as a
  pretrained language encoder would: synthetic, or all-MiniLM-L6-v2 word embeddings) through a
  trainable MLP and attention pooling.
- Student (0.57M, 0.05 GFLOPs): narrower convolutions (depthwise-separable optional), FiLM
  blocks, a stride-16 context branch, and a tiny trainable word embedding (it has never seen
  the synonyms unless a teacher shows them).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgekd.tasks.gui_agent import tokens as T
from edgekd.tasks.gui_agent.config import GuiModelConfig
from edgekd.tasks.model_stats import param_count as param_count

FILLER_MARGIN = 10.0


def conv_bn(cin: int, cout: int, stride: int = 1, separable: bool = False) -> nn.Sequential:
    """3x3 conv (or depthwise 3x3 + pointwise 1x1) + BN + ReLU."""
    if separable:
        return nn.Sequential(nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False), nn.BatchNorm2d(cin),
                             nn.ReLU(inplace=True), nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout),
                             nn.ReLU(inplace=True))
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class VisionEncoder(nn.Module):
    """Image [B, 3, S, S] in [0, 1] -> features [B, C3, S/8, S/8]."""

    def __init__(self, widths: tuple[int, int, int], separable: bool, extra: bool) -> None:
        super().__init__()
        c1, c2, c3 = widths
        layers: list[nn.Module] = [conv_bn(3, c1, 2)]  # the stem is a full conv in both (3 input channels)
        for cin, cout in ((c1, c2), (c2, c3)):
            layers.append(conv_bn(cin, cout, 2, separable))
        if extra:  # one more block at stride 8: a wider receptive field for reading words
            layers.append(conv_bn(c3, c3, 1, separable))
        self.body = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.body(image - 0.5)  # centre the pixels: BN follows, but the stem has no bias


class TextEncoder(nn.Module):
    """Token ids [B, L] -> instruction embedding [B, D]: word vectors -> MLP -> masked attention pooling.

    ``lexicon`` (a [V, Dl] array) makes the word vectors a frozen buffer (teacher); without it
    they are a trainable embedding of width ``embed_dim`` (student)."""

    def __init__(self, vocab: int, dim: int, *, embed_dim: int = 48, lexicon: np.ndarray | None = None) -> None:
        super().__init__()
        if lexicon is not None:
            self.register_buffer("lexicon", torch.as_tensor(lexicon, dtype=torch.float32))
            self.embed: nn.Embedding | None = None
            din = int(lexicon.shape[1])
        else:
            self.embed = nn.Embedding(vocab, embed_dim, padding_idx=T.PAD)
            din = embed_dim
        self.register_buffer("vocab_ids", torch.arange(vocab), persistent=False)
        self.mlp = nn.Sequential(nn.Linear(din, dim), nn.ReLU(inplace=True), nn.Linear(dim, dim))
        self.score = nn.Linear(dim, 1)
        self.out = nn.Sequential(nn.ReLU(), nn.Linear(dim, dim))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        # Written so that ONNX Runtime's static INT8 quantizer leaves the lookup and the attention
        # in FP32 (Equal/Einsum/Exp/Div are not quantized; Gather, Where and Softmax are): a
        # quantized Where/Softmax input spans the -1e4 padding mask, whose range leaves no
        # resolution for the real scores (measured: -7 points of click accuracy).
        table = self.embed.weight if self.embed is not None else self.get_buffer("lexicon")
        onehot = (tokens.unsqueeze(-1) == self.vocab_ids).to(table.dtype)  # type: ignore[attr-defined]  # [B, L, V]
        w = torch.einsum("blv,vd->bld", onehot, table)
        h = self.mlp(w)  # [B, L, D]
        pad = (tokens == T.PAD).to(h.dtype)
        z = self.score(h).squeeze(-1) - pad * 1e4  # attention logits over the real words
        e = torch.exp(z - z.max(dim=1, keepdim=True).values)
        att = e / e.sum(dim=1, keepdim=True)
        return self.out(torch.einsum("bl,bld->bd", att, h))


class FiLMBlock(nn.Module):
    """x + relu(FiLM(BN(conv(x)), q)): FiLM (Perez et al. 2018, arXiv:1709.07871) scales and shifts
    every channel by functions of the instruction: h * (1 + gamma(q)) + beta(q)."""

    def __init__(self, ch: int, text_dim: int, separable: bool) -> None:
        super().__init__()
        if separable:
            self.conv: nn.Module = nn.Sequential(nn.Conv2d(ch, ch, 3, 1, 1, groups=ch, bias=False),
                                                 nn.Conv2d(ch, ch, 1, bias=False))
        else:
            self.conv = nn.Conv2d(ch, ch, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(ch)
        self.film = nn.Linear(text_dim, 2 * ch)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)

    def forward(self, x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.film(q).unsqueeze(-1).unsqueeze(-1).chunk(2, dim=1)
        return x + F.relu(self.bn(self.conv(x)) * (1 + gamma) + beta)


class Fusion(nn.Module):
    """Visual features + instruction embedding -> fused map [B, C, S/8, S/8] (the 'language pathway')."""

    def __init__(self, vis_ch: int, ch: int, text_dim: int, blocks: int, separable: bool, ctx_ch: int) -> None:
        super().__init__()
        self.inp = nn.Sequential(nn.Conv2d(vis_ch, ch, 1, bias=False), nn.BatchNorm2d(ch), nn.ReLU(inplace=True))
        self.blocks = nn.ModuleList(FiLMBlock(ch, text_dim, separable) for _ in range(blocks))
        # stride-16 context: which region of the screen (bar, list, nav) the instruction is about
        self.ctx_down = conv_bn(ch, ctx_ch, 2, separable)
        self.ctx_film = FiLMBlock(ctx_ch, text_dim, separable)
        self.ctx_up = nn.Conv2d(ctx_ch, ch, 1)

    def forward(self, v: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        x = self.inp(v)
        half = len(self.blocks) // 2
        for blk in self.blocks[:half]:
            x = blk(x, q)
        c = self.ctx_film(self.ctx_down(x), q)
        x = x + F.interpolate(self.ctx_up(c), scale_factor=2.0, mode="nearest")
        for blk in self.blocks[half:]:
            x = blk(x, q)
        return x


class GuiNet(nn.Module):
    """(image [B,3,S,S] float, tokens [B,L] int64) -> logits [B, 3, V] (module docstring)."""

    def __init__(self, *, vision: VisionEncoder, text: TextEncoder, fusion: Fusion, fusion_ch: int, text_dim: int,
                 grid: int, n_bins: int) -> None:
        super().__init__()
        self.vision = vision
        self.text = text
        self.fusion = fusion
        self.score = nn.Conv2d(fusion_ch, 1, 1)
        self.action = nn.Sequential(nn.Linear(text_dim + fusion_ch, text_dim), nn.ReLU(inplace=True),
                                    nn.Linear(text_dim, len(T.ACTIONS)))
        self.grid = grid
        self.n_bins = n_bins
        self.vocab = V = T.vocab_size(n_bins)
        # Constant (non-persistent) buffers: not weights, so checkpoints stay independent of them.
        self.register_buffer("resample", resample_matrix(grid, n_bins), persistent=False)
        pa = torch.zeros(3, len(T.ACTIONS), V)
        pa[0, range(len(T.ACTIONS)), range(len(T.ACTIONS))] = 1.0
        px, py, pf = torch.zeros(3, n_bins, V), torch.zeros(3, n_bins, V), torch.zeros(3, V)
        px[1, range(n_bins), range(n_bins)] = -1.0
        py[2, range(n_bins), range(n_bins)] = -1.0
        pf[0, len(T.ACTIONS):] = -1.0
        self.register_buffer("place_action", pa, persistent=False)
        self.register_buffer("place_x_neg", px, persistent=False)
        self.register_buffer("place_y_neg", py, persistent=False)
        self.register_buffer("place_fill_neg", pf, persistent=False)

    def forward(self, image: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return self.forward_from_visual(self.vision(image), image, tokens)

    def forward_from_visual(self, v: torch.Tensor, image: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """The fusion pathway and heads on visual features ``v`` (the visual-switch entry point).

        Everything after the fused map is written with Einsum, Sub and ReduceLogSumExp, which
        ONNX Runtime's static quantizer leaves in FP32: a Conv/Resize/Concat there would be
        re-quantized with the range of all logits, and neighbouring coordinate bins (whose
        logits differ by less than one INT8 step) would tie under arg-max."""
        q = self.text(tokens)
        x = self.fusion(v, q)
        w = self.score.weight.reshape(-1)
        s = torch.einsum("bchw,c->bhw", x, w) - (-self.score.bias)  # type: ignore[operator]  # the 1x1 score conv, [B, g, g]
        # bilinear resampling to n_bins (align_corners=False) as two constant matrices
        s = torch.einsum("Hh,bhw,Ww->bHW", self.resample, s, self.resample)
        x_logits = torch.logsumexp(s, dim=1)  # [B, nb] marginal over rows
        y_logits = torch.logsumexp(s, dim=2)
        a = self.action(torch.cat([q, x.mean((2, 3))], dim=1))  # [B, 4]
        fill = a.min(dim=1).values - FILLER_MARGIN
        # out[b, p, v]: actions and filler at p = 0, x at p = 1, y at p = 2 (placement by constants;
        # subtraction of negated placements, because Add would be quantized)
        return (torch.einsum("ba,pav->bpv", a, self.place_action) - torch.einsum("bj,pjv->bpv", x_logits,
                                                                                 self.place_x_neg)
                - torch.einsum("bi,piv->bpv", y_logits, self.place_y_neg)
                - torch.einsum("b,pv->bpv", fill, self.place_fill_neg))


def resample_matrix(grid: int, n_bins: int) -> torch.Tensor:
    """[n_bins, grid] matrix R with R @ s = 1-D linear resampling of s (align_corners=False, edges
    clamped; average pooling when n_bins < grid), so R s R^T is F.interpolate(bilinear) / avg_pool2d."""
    eye = torch.eye(grid).unsqueeze(1)  # [grid, 1, grid]: each basis vector as a 1-D signal
    if n_bins >= grid:
        cols = F.interpolate(eye, size=n_bins, mode="linear", align_corners=False)
    else:
        cols = F.avg_pool1d(eye, grid // n_bins)
    return cols[:, 0, :].T.contiguous()


def synthetic_lexicon(dim: int = 64, noise: float = 0.15, seed: int = 20240611) -> np.ndarray:
    """Frozen word vectors [V, dim] in which synonyms (tokens.synonym_clusters) share a direction up to
    relative noise ``noise``: a stand-in for a pretrained encoder's knowledge, fixed (not a recipe seed)."""
    rng = np.random.default_rng(seed)
    vecs = rng.standard_normal((len(T.WORDS), dim)) / math.sqrt(dim)
    for cluster in T.synonym_clusters():
        base = rng.standard_normal(dim) / math.sqrt(dim)
        for w in cluster:
            vecs[T.WORD_ID[w]] = base + noise * rng.standard_normal(dim) / math.sqrt(dim)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    vecs[T.PAD] = 0.0
    return vecs.astype(np.float32)


def build_teacher(cfg: GuiModelConfig, image_size: int, n_bins: int, lexicon: np.ndarray) -> GuiNet:
    vis = VisionEncoder(cfg.teacher_vision, separable=False, extra=True)
    text = TextEncoder(len(T.WORDS), cfg.teacher_text_dim, lexicon=lexicon)
    fusion = Fusion(cfg.teacher_vision[2], cfg.teacher_fusion, cfg.teacher_text_dim, cfg.teacher_blocks,
                    separable=False, ctx_ch=cfg.teacher_context)
    return GuiNet(vision=vis, text=text, fusion=fusion, fusion_ch=cfg.teacher_fusion, text_dim=cfg.teacher_text_dim,
                  grid=image_size // 8, n_bins=n_bins)


def build_student(cfg: GuiModelConfig, image_size: int, n_bins: int) -> GuiNet:
    vis = VisionEncoder(cfg.student_vision, separable=cfg.student_separable, extra=False)
    text = TextEncoder(len(T.WORDS), cfg.student_text_dim, embed_dim=cfg.student_embed_dim)
    fusion = Fusion(cfg.student_vision[2], cfg.student_fusion, cfg.student_text_dim, cfg.student_blocks,
                    separable=cfg.student_separable, ctx_ch=cfg.student_context)
    return GuiNet(vision=vis, text=text, fusion=fusion, fusion_ch=cfg.student_fusion, text_dim=cfg.student_text_dim,
                  grid=image_size // 8, n_bins=n_bins)
