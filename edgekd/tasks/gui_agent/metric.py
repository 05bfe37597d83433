"""Click accuracy as in ScreenSpot (Cheng et al., SeeClick, arXiv:2401.10935): a prediction is
correct when the predicted click point lies inside the target element's box; reported over
all samples and separately for text and icon targets.

With actions: correct = (predicted action == true action) and (the action is BACK, which has
no point, or the point (x-bin centre, y-bin centre) lies in the box, edges included).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgekd.tasks.gui_agent import tokens as T
from edgekd.tasks.gui_agent.render import ICON, NONE, TEXT


def click_correct(pred: np.ndarray, truth: np.ndarray, boxes: np.ndarray, image_size: float,
                  n_bins: int) -> np.ndarray:
    """Per-sample bool: ``pred``/``truth`` [N, 3] token ids, ``boxes`` [N, 4] (x0, y0, x1, y1) px."""
    pred, truth, boxes = np.asarray(pred), np.asarray(truth), np.asarray(boxes, dtype=np.float64)
    px, py = T.bins_to_point(pred[:, 1], pred[:, 2], image_size, n_bins)
    inside = (px >= boxes[:, 0]) & (px <= boxes[:, 2]) & (py >= boxes[:, 1]) & (py <= boxes[:, 3])
    action_ok = pred[:, 0] == truth[:, 0]
    return action_ok & ((truth[:, 0] == T.BACK) | inside)


def summarize(correct: np.ndarray, target_type: np.ndarray, pred: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    """Accuracy overall, on text / icon targets, on BACK, and the action accuracy."""

    def acc(mask: np.ndarray) -> float | None:
        return float(correct[mask].mean()) if mask.any() else None

    return {"click_accuracy": float(correct.mean()) if len(correct) else 0.0,
            "text_accuracy": acc(target_type == TEXT), "icon_accuracy": acc(target_type == ICON),
            "back_accuracy": acc(target_type == NONE),
            "action_accuracy": float((pred[:, 0] == truth[:, 0]).mean()) if len(pred) else 0.0,
            "n": int(len(correct)), "n_text": int((target_type == TEXT).sum()),
            "n_icon": int((target_type == ICON).sum())}
