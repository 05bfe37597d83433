"""Ready task losses for a task of your own: ``loss(prediction, target) -> scalar`` in torch.

The generic tasks pick one by name (``loss="cross_entropy"``); a task of your own can call them in
its ``task_loss``. Each is the mean over items (and pixels), so its scale does not grow with the
batch.

- cross_entropy: -log softmax(z)_y, over dim 1 ([N, K] or [N, K, H, W]); label ``ignore_index``
  (255) skipped, optional label smoothing (Szegedy et al. 2016)
- l1, mse, smooth_l1 (Huber with beta: quadratic below beta, linear above; Girshick 2015)
- bce: binary cross-entropy on logits, for one-channel maps or multi-label scores
- dice: 1 - (2 sum(p t) + 1) / (sum p + sum t + 1) with p = sigmoid(z) (Milletari et al. 2016);
  bce_dice = bce + dice, the usual pair for thin foreground such as text maps
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

IGNORE_INDEX = 255
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def cross_entropy(logits: torch.Tensor, target: torch.Tensor, *, label_smoothing: float = 0.0,
                  ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Class scores [N, K] or [N, K, H, W] against labels [N] or [N, H, W]."""
    return F.cross_entropy(logits.float(), target.to(logits.device).long(), ignore_index=ignore_index,
                           label_smoothing=label_smoothing)


def l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.l1_loss(pred.float(), target.to(pred.device, torch.float32).reshape(pred.shape))


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(pred.float(), target.to(pred.device, torch.float32).reshape(pred.shape))


def smooth_l1(pred: torch.Tensor, target: torch.Tensor, *, beta: float = 1.0) -> torch.Tensor:
    return F.smooth_l1_loss(pred.float(), target.to(pred.device, torch.float32).reshape(pred.shape), beta=beta)


def bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy on logits; ``target`` in [0, 1] with the logits' number of elements."""
    return F.binary_cross_entropy_with_logits(logits.float(), target.to(logits.device, torch.float32)
                                              .reshape(logits.shape))


def dice(logits: torch.Tensor, target: torch.Tensor, *, smooth: float = 1.0) -> torch.Tensor:
    """Soft Dice loss of sigmoid(logits) against a binary target, pooled over the batch."""
    p = torch.sigmoid(logits.float()).reshape(-1)
    t = target.to(logits.device, torch.float32).reshape(-1)
    return 1.0 - (2.0 * (p * t).sum() + smooth) / (p.sum() + t.sum() + smooth)


def bce_dice(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return bce(logits, target) + dice(logits, target)


LOSSES: dict[str, LossFn] = {"cross_entropy": cross_entropy, "l1": l1, "mse": mse, "smooth_l1": smooth_l1,
                             "bce": bce, "dice": dice, "bce_dice": bce_dice}


def ready_loss(name: str) -> LossFn:
    """A ready loss by name (see :data:`LOSSES`)."""
    if name not in LOSSES:
        from edgekd.errors import UnknownNameError

        raise UnknownNameError("task loss", name, LOSSES, hint="or pass a function loss(prediction, target)")
    return LOSSES[name]


__all__ = ["IGNORE_INDEX", "LOSSES", "LossFn", "bce", "bce_dice", "cross_entropy", "dice", "l1", "mse",
           "ready_loss", "smooth_l1"]
