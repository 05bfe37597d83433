"""An MPA-style parity stage: fine-tune the student, on unlabelled screens pseudo-labelled by the
teacher, only where the teacher is (judged) right and the student disagrees.

After MPA (label-free "model parity alignment": find where the large model is right and the
small one is wrong, and fine-tune the small one there). OUR VERSION (we did not have the MPA
paper's text; check before quoting): with no labels, "the teacher is right" is judged by its
confidence and "the student is wrong" by disagreement with the teacher's answer:

    c_i   = prod_t max_v p_T(v | x_i)_t   over the answer positions t (action, and the two
            coordinates unless the teacher answers BACK)
    S     = { i : c_i >= tau  and  ( a_S != a_T  or  |x_S - x_T| > d  or  |y_S - y_T| > d ) }

and the student is fine-tuned with cross-entropy on the teacher's arg-max tokens of S (plus an
equal number of labelled screens replayed, so the correction does not erase what it knew).
Held-back truth, when the caller has it, measures how often the filter picked a right teacher
answer (``filter_precision``); no training step reads it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from edgekd.config.recipe import TrainConfig
from edgekd.errors import ConfigError
from edgekd.tasks.gui_agent import tokens as T
from edgekd.tasks.gui_agent.metric import click_correct


@dataclass
class ParityResult:
    student: nn.Module
    n_unlabelled: int
    n_selected: int
    filter_precision: float | None  # share of selected screens where the teacher's answer is truly correct
    seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)


class _ListDataset(Dataset):  # type: ignore[type-arg]
    def __init__(self, items: list[dict[str, torch.Tensor]]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return self.items[i]


@torch.no_grad()
def _answers(model: nn.Module, ds: Dataset, names: Sequence[str], batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(arg-max tokens [N, 3], confidence [N]) of a model over a dataset."""
    model.eval()
    toks, conf = [], []
    for batch in DataLoader(ds, batch_size=batch_size, shuffle=False):
        z = model(*[batch[n] for n in names]).float()
        a = z[:, 0, : len(T.ACTIONS)].softmax(-1)
        px, py = z[:, 1].softmax(-1), z[:, 2].softmax(-1)
        t = torch.stack([a.argmax(-1), px.argmax(-1), py.argmax(-1)], 1)
        c = a.max(-1).values
        coord = px.max(-1).values * py.max(-1).values
        c = torch.where(t[:, 0] == T.BACK, c, c * coord)
        toks.append(t.numpy())
        conf.append(c.numpy())
    return np.concatenate(toks), np.concatenate(conf)


def select_disparity(teacher_tokens: np.ndarray, teacher_conf: np.ndarray, student_tokens: np.ndarray, *,
                     threshold: float, bin_tolerance: int) -> np.ndarray:
    """Boolean mask S of the module docstring."""
    if not 0 < threshold <= 1:
        raise ConfigError(f"parity threshold={threshold}: allowed is 0 < threshold <= 1",
                          hint="use e.g. 0.5 (teacher answers with at least that joint confidence)")
    act_diff = student_tokens[:, 0] != teacher_tokens[:, 0]
    far = (np.abs(student_tokens[:, 1:] - teacher_tokens[:, 1:]) > bin_tolerance).any(1)
    far &= teacher_tokens[:, 0] != T.BACK
    return (teacher_conf >= threshold) & (act_diff | far)


def parity_align(student: nn.Module, teacher: nn.Module, unlabelled: Dataset, *, input_names: Sequence[str],
                 task_loss: Any, replay: Dataset | None = None, threshold: float = 0.5, bin_tolerance: int = 1,
                 epochs: int = 2, lr: float = 5e-4, batch_size: int = 32, seed: int = 0,
                 truth: Mapping[str, np.ndarray] | None = None, image_size: int = 128, n_bins: int = 32,
                 progress: bool = False) -> ParityResult:
    """Fine-tune ``student`` on the teacher-labelled disparity screens of ``unlabelled`` (module docstring).

    ``truth`` (optional, analysis only): ``{"truth": [N,3], "box": [N,4]}`` of ``unlabelled``."""
    from edgekd.distill.loop import fit

    t0 = time.perf_counter()
    names = list(input_names)
    t_tok, t_conf = _answers(teacher, unlabelled, names, 64)
    s_tok, _ = _answers(student, unlabelled, names, 64)
    sel = select_disparity(t_tok, t_conf, s_tok, threshold=threshold, bin_tolerance=bin_tolerance)
    precision = None
    if truth is not None and sel.any():
        ok = click_correct(t_tok, truth["truth"], truth["box"], image_size, n_bins)
        precision = float(ok[sel].mean())
    idx = np.flatnonzero(sel)
    if len(idx) == 0:
        return ParityResult(student.eval(), len(t_tok), 0, precision, time.perf_counter() - t0)
    items: list[dict[str, torch.Tensor]] = []
    for i in idx:
        it = dict(unlabelled[int(i)])
        tgt = torch.as_tensor(t_tok[i], dtype=torch.long).clone()
        if int(tgt[0]) == T.BACK:
            tgt[1:] = T.IGNORE
        it["target"] = tgt
        items.append(it)
    if replay is not None and len(replay):  # type: ignore[arg-type]
        rng = np.random.default_rng(seed)
        for j in rng.choice(len(replay), size=min(len(idx), len(replay)), replace=False):  # type: ignore[arg-type]
            it = dict(replay[int(j)])
            if bool((it["target"] != T.IGNORE).any()):
                items.append(it)
    keep = ("image", "tokens", "target")
    ds = _ListDataset([{k: it[k] for k in keep} for it in items])
    cfg = TrainConfig.model_validate({"epochs": epochs, "batch_size": min(batch_size, len(ds)), "lr": lr,
                                      "weight_decay": 0.0, "schedule": "cosine", "warmup_steps": 0})
    res = fit(student, train_set=ds, input_names=names, cfg=cfg, task_loss=task_loss, seed=seed, progress=progress,
              desc="parity")
    return ParityResult(res.student, len(t_tok), int(len(idx)), precision, time.perf_counter() - t0, res.history)
