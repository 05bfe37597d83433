"""The GUI-agent Task: rendered app screens + instruction -> [action, x-bin, y-bin], click accuracy.

Splits (all rendered offline from the recipe seed):
- ``train``: ``train_size`` screens. A share ``unlabelled_fraction`` carries NO label
  (``target`` = IGNORE) and a paraphrased instruction: the unlabelled transfer screens that
  only a teacher can label (KD losses, the MPA parity stage). The supervised loss, and so the
  student-alone baseline and the teacher's own training, see only the labelled screens with
  canonical instructions.
- ``val``, ``test``: canonical instructions, normal layouts (in-distribution).
- ``test_paraphrase``: held-out synonyms and templates ("preferences" for "settings").
- ``test_clutter``: denser layouts with distractors and a textured background.
- ``unlabelled``: the unlabelled part of ``train``.
- ``screenspot`` / ``screenspot_pro``: real data when ``screenspot_dir`` / ``screenspot_pro_dir`` are set.

Inputs: ``image`` [B, 3, S, S] float32 and ``tokens`` [B, L] int64; output ``logits`` [B, 3, V].
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from edgekd.errors import ConfigError, UnknownNameError
from edgekd.iospec import IOSpec, TensorSpec
from edgekd.tasks.base import EvalResult, MetricSpec, PredictFn, TaskBase, check_student_init, iterate_numpy
from edgekd.tasks.gui_agent import data, models
from edgekd.tasks.gui_agent import tokens as T
from edgekd.tasks.gui_agent.config import GuiAgentTaskConfig
from edgekd.tasks.gui_agent.metric import click_correct, summarize
from edgekd.tasks.memo import Memo

METRIC = MetricSpec("click_accuracy", lower_is_better=False, unit="fraction")
STREAM = {"train": 1, "val": 2, "test": 3, "test_paraphrase": 4, "test_clutter": 5}
EXTRA_SPLITS = ("test_paraphrase", "test_clutter")

_SPLITS: Memo[data.GuiArrays] = Memo(max_items=12)


def split_arrays(cfg: GuiAgentTaskConfig, split: str, seed: int) -> data.GuiArrays:
    """Rendered (and memoised) arrays of a synthetic split."""
    key = (cfg.model_dump_json(exclude={"model", "label_smoothing", "lexicon", "lexicon_noise"}), split, seed)
    return _SPLITS.get(key, lambda: _render_split(cfg, split, seed))


def _render_split(cfg: GuiAgentTaskConfig, split: str, seed: int) -> data.GuiArrays:
    n = {"train": cfg.train_size, "val": cfg.val_size}.get(split, cfg.test_size)
    para = labelled = None
    if split == "train":
        rng = np.random.default_rng([seed, 99])
        unl = np.zeros(n, dtype=bool)
        unl[rng.permutation(n)[: int(round(cfg.unlabelled_fraction * n))]] = True
        para, labelled = unl, ~unl
    elif split == "test_paraphrase":
        para = np.ones(n, dtype=bool)
    clutter = split == "test_clutter"
    return data.generate(n, seed, STREAM[split], image_size=cfg.image_size, render_size=cfg.render_size,
                           n_bins=cfg.n_bins, max_tokens=cfg.max_tokens, cluttered=clutter, paraphrase_mask=para,
                           labelled_mask=labelled,
                           n_elements=cfg.clutter_elements if clutter else cfg.normal_elements,
                           back_fraction=cfg.back_fraction)


def lexicon_for(cfg: GuiAgentTaskConfig) -> np.ndarray:
    if cfg.lexicon == "minilm":
        from edgekd.tasks.gui_agent.minilm import word_vectors

        return word_vectors(T.WORDS)
    return models.synthetic_lexicon(noise=cfg.lexicon_noise)


class GuiAgentTask(TaskBase):
    """The GUI-agent domain behind :class:`edgekd.tasks.base.Task`."""

    metric = METRIC

    def __init__(self, config: GuiAgentTaskConfig, seed: int = 0) -> None:
        self.config = config
        self.seed = seed

    # ---- data
    def io_spec(self) -> IOSpec:
        c = self.config
        return IOSpec(inputs=(TensorSpec("image", ("batch", 3, c.image_size, c.image_size), "float32", 0.0, 1.0),
                              TensorSpec("tokens", ("batch", c.max_tokens), "int64", 2, len(T.WORDS) - 1)),
                      outputs=(TensorSpec("logits", ("batch", 3, T.vocab_size(c.n_bins)), "float32"),))

    def splits(self) -> list[str]:
        out = ["train", "val", "test", *EXTRA_SPLITS, "unlabelled"]
        if self.config.screenspot_dir:
            out.append("screenspot")
        if self.config.screenspot_pro_dir:
            out.append("screenspot_pro")
        return out

    def arrays(self, split: str) -> data.GuiArrays:
        c = self.config
        if split in STREAM:
            return split_arrays(c, split, self.seed)
        if split == "unlabelled":
            tr = split_arrays(c, "train", self.seed)
            return tr.subset(~tr.labelled)
        if split == "screenspot" and c.screenspot_dir:
            from edgekd.tasks.gui_agent.loaders import load_screenspot

            return load_screenspot(Path(c.screenspot_dir), image_size=c.image_size, n_bins=c.n_bins,
                                   max_tokens=c.max_tokens)
        if split == "screenspot_pro" and c.screenspot_pro_dir:
            from edgekd.tasks.gui_agent.loaders import load_screenspot_pro

            return load_screenspot_pro(Path(c.screenspot_pro_dir), image_size=c.image_size, n_bins=c.n_bins,
                                       max_tokens=c.max_tokens)
        raise UnknownNameError("gui_agent split", split, self.splits(),
                               hint="use one of the listed splits (screenspot needs task.screenspot_dir)")

    def dataset(self, split: str) -> data.GuiDataset:
        return data.GuiDataset(self.arrays(split))

    # ---- models
    def build_teacher(self) -> models.GuiNet:
        torch.manual_seed(self.seed)
        c = self.config
        return models.build_teacher(c.model, c.image_size, c.n_bins, lexicon_for(c))

    def build_student(self, *, init: str = "teacher") -> models.GuiNet:
        """A fresh student; it copies nothing from the teacher, so ``init`` changes nothing."""
        check_student_init(init)
        torch.manual_seed(self.seed + 1)
        c = self.config
        return models.build_student(c.model, c.image_size, c.n_bins)

    # ---- loss and metric
    def task_loss(self, outputs: Sequence[torch.Tensor], batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Label-smoothed CE of the action (over the 4 actions) and of both coordinate tokens (over
        the bins); unlabelled screens and BACK's coordinates (IGNORE) are left out. Mean over the
        labelled tokens of the batch; 0 (with a gradient path) when the batch has none."""
        z = outputs[0].float()
        y = batch["target"].to(z.device).long()
        ls = self.config.label_smoothing
        act = F.cross_entropy(z[:, 0, : len(T.ACTIONS)], y[:, 0], ignore_index=T.IGNORE, label_smoothing=ls,
                              reduction="sum")
        nb = self.config.n_bins
        xy = F.cross_entropy(z[:, 1:, :nb].reshape(-1, nb), y[:, 1:].reshape(-1), ignore_index=T.IGNORE,
                             label_smoothing=ls, reduction="sum")
        n = (y != T.IGNORE).sum().clamp_min(1)
        return (act + xy) / n + 0.0 * z.sum()

    def predict_split(self, predict: PredictFn, split: str, batch_size: int = 64) -> tuple[np.ndarray, data.GuiArrays]:
        """(predicted tokens [N, 3], the split's arrays)."""
        arrays = self.arrays(split)
        ds = data.GuiDataset(arrays)
        preds = []
        for feeds, _ in iterate_numpy(ds, self.io_spec().input_names, batch_size):
            preds.append(T.decode_logits(np.asarray(predict(feeds)[0])))
        pred = np.concatenate(preds) if preds else np.zeros((0, 3), dtype=np.int64)
        return pred, arrays

    def evaluate(self, predict: PredictFn, split: str = "test", batch_size: int = 64) -> EvalResult:
        pred, arrays = self.predict_split(predict, split, batch_size)
        correct = click_correct(pred, arrays.truth, arrays.boxes, self.config.image_size, self.config.n_bins)
        extras: dict[str, Any] = summarize(correct, arrays.target_type, pred, arrays.truth)
        if not len(correct):
            raise ConfigError(f"gui_agent split {split!r} is empty", hint="check the split sizes in task")
        return EvalResult(metric=extras.pop("click_accuracy"), extras=extras)

    def eval_splits(self) -> list[str]:
        return [s for s in self.splits() if s in EXTRA_SPLITS or s.startswith("screenspot")]
