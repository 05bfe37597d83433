"""The gaze Task: synthetic near-eye data, ConvNeXt-V2-style teacher and student, angular error.

Splits: ``train`` (``train_wearers`` wearers), ``val`` and ``test`` (held-out wearers, disjoint
from train and from each other), and ``test_wearer_<k>`` (the k-th test wearer alone). With
``balance_clusters: K`` the train split is balanced over K k-means clusters of gaze directions
(the generalised phase of DFT Gaze). Items: ``image`` [1, H, W] float32 in [0, 1], ``gaze``
[2] float32 (visual-axis yaw, pitch in degrees; see :mod:`edgekd.tasks.gaze.metric`), ``wearer``
(int64 global wearer id).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from edgekd.errors import ConfigError, UnknownNameError
from edgekd.iospec import IOSpec, TensorSpec
from edgekd.tasks.base import EvalResult, MetricSpec, PredictFn, TaskBase, check_student_init, iterate_numpy
from edgekd.tasks.gaze import models, synth
from edgekd.tasks.gaze.config import GazeTaskConfig
from edgekd.tasks.gaze.metric import angular_error_deg
from edgekd.tasks.memo import Memo

METRIC = MetricSpec("angular_error_deg", lower_is_better=True, unit="deg")
LOSS_SCALE_DEG = 10.0  # the supervised loss sees gaze / 10 deg, so its values are O(0.1..1)

_SPLITS: Memo[synth.GazeArrays] = Memo(max_items=16)


class GazeDataset(Dataset):  # type: ignore[type-arg]
    """An in-memory split; items are dicts of tensors (see the module docstring)."""

    def __init__(self, arrays: synth.GazeArrays, labelled: np.ndarray | None = None) -> None:
        self.arrays = arrays
        self._images = torch.from_numpy(arrays.images)
        self._gaze = torch.from_numpy(arrays.gaze)
        self._wearer = torch.from_numpy(arrays.wearer)
        n = len(arrays)
        self._labelled = torch.ones(n) if labelled is None else torch.from_numpy(labelled.astype(np.float32))

    def __len__(self) -> int:
        return len(self.arrays)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"image": self._images[i].float() / 255.0, "gaze": self._gaze[i], "wearer": self._wearer[i],
                "labelled": self._labelled[i]}


def kmeans(points: np.ndarray, k: int, seed: int, iters: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means with k-means++ seeding (Arthur & Vassilvitskii 2007). Returns (centres, labels)."""
    rng = np.random.default_rng(seed)
    x = np.asarray(points, dtype=np.float64)
    centres = [x[rng.integers(len(x))]]
    for _ in range(1, k):
        d2 = np.min(((x[:, None, :] - np.asarray(centres)[None]) ** 2).sum(-1), axis=1)
        centres.append(x[rng.choice(len(x), p=d2 / d2.sum()) if d2.sum() > 0 else rng.integers(len(x))])
    c = np.asarray(centres)
    labels = np.zeros(len(x), dtype=np.int64)
    for _ in range(iters):
        labels = ((x[:, None, :] - c[None]) ** 2).sum(-1).argmin(1)
        new = np.stack([x[labels == j].mean(0) if np.any(labels == j) else c[j] for j in range(k)])
        if np.allclose(new, c):
            break
        c = new
    return c, labels


def balanced_gaze(cfg: GazeTaskConfig, n: int, k: int, seed: int) -> np.ndarray:
    """n visual-axis gaze samples balanced over k k-means clusters of gaze directions: draw a
    pool of 4n from the natural distribution, cluster it, take n/k from each cluster."""
    rng = np.random.default_rng([seed, 15_485_863])
    pool = synth.sample_gaze(rng, 4 * n, cfg)
    _, labels = kmeans(pool, k, seed)
    per = [n // k + (1 if j < n % k else 0) for j in range(k)]
    picks = []
    for j, m in enumerate(per):
        members = np.flatnonzero(labels == j)
        picks.append(rng.choice(members, size=m, replace=len(members) < m))
    out = pool[np.concatenate(picks)]
    return out[rng.permutation(n)]


def split_arrays(cfg: GazeTaskConfig, split: str, seed: int) -> synth.GazeArrays:
    """Generated (and memoised in memory) arrays of a base split: train, val or test."""
    key = (cfg.model_dump_json(exclude={"model", "mae", "loss"}), split, seed)
    return _SPLITS.get(key, lambda: _generate_split(cfg, split, seed))


def _generate_split(cfg: GazeTaskConfig, split: str, seed: int) -> synth.GazeArrays:
    if cfg.source != "synth":  # a real dataset at task.root
        from edgekd.tasks.gaze.loaders.real import real_split

        return real_split(cfg, split, seed)
    if split == "train" and cfg.balance_clusters > 0:
        wearers = synth.split_wearers(cfg, "train")
        ids = wearers[np.arange(cfg.train_size) % len(wearers)]
        gaze = balanced_gaze(cfg, cfg.train_size, cfg.balance_clusters, seed)
        return synth.generate(cfg, ids, seed, synth.STREAM["train"], gaze_deg=gaze)
    return synth.generate_split(cfg, split, seed)


def subset(arrays: synth.GazeArrays, mask: np.ndarray) -> synth.GazeArrays:
    return synth.GazeArrays(arrays.images[mask], arrays.gaze[mask], arrays.optical[mask], arrays.wearer[mask])


class GazeTask(TaskBase):
    """The gaze domain behind :class:`edgekd.tasks.base.Task`."""

    metric = METRIC

    def __init__(self, config: GazeTaskConfig, seed: int = 0) -> None:
        self.config = config
        self.seed = seed
        self._teacher: models.GazeNet | None = None

    # ---- data
    def io_spec(self) -> IOSpec:
        c = self.config
        return IOSpec(inputs=(TensorSpec("image", ("batch", 1, c.height, c.width), "float32", 0.0, 1.0),),
                      outputs=(TensorSpec("gaze", ("batch", 2), "float32"),))

    def splits(self) -> list[str]:
        return ["train", "val", "test", *[f"test_wearer_{k}" for k in range(self.config.test_wearers)]]

    def arrays(self, split: str) -> synth.GazeArrays:
        if split in ("train", "val", "test"):
            return split_arrays(self.config, split, self.seed)
        if split.startswith("test_wearer_"):
            k_str = split.removeprefix("test_wearer_")
            if k_str.isdigit() and int(k_str) < self.config.test_wearers:
                test = split_arrays(self.config, "test", self.seed)
                if self.config.source != "synth":  # real wearers: the k-th id of the test split
                    ids = np.unique(test.wearer)
                    return subset(test, test.wearer == ids[min(int(k_str), len(ids) - 1)])
                return subset(test, test.wearer == synth.WEARER_BASE["test"] + int(k_str))
        raise UnknownNameError("gaze split", split, self.splits(),
                               hint="use train, val, test or test_wearer_<k> with k < task.test_wearers")

    def dataset(self, split: str) -> GazeDataset:
        arrays = self.arrays(split)
        if split != "train" or self.config.label_fraction >= 1.0:
            return GazeDataset(arrays)
        # A fixed, seeded subset carries labels (as a hand-labelled share of a recording would).
        n = len(arrays)
        rng = np.random.default_rng([self.seed, 7_919])
        labelled = np.zeros(n, dtype=np.float32)
        labelled[rng.permutation(n)[: max(1, int(round(self.config.label_fraction * n)))]] = 1.0
        return GazeDataset(arrays, labelled)

    # ---- models
    def build_teacher(self) -> models.GazeNet:
        """An untrained teacher; the task remembers it, so build_student can copy its first stage."""
        torch.manual_seed(self.seed)
        self._teacher = models.build_teacher(self.config.model)
        return self._teacher

    def pretrain_teacher(self, teacher: nn.Module, *, progress: bool = False) -> dict[str, Any]:
        """With ``task.mae.enabled``: FCMAE-style masked-autoencoder pre-training of the teacher's
        backbone on unlabelled synthetic wearers (see :mod:`edgekd.tasks.gaze.mae`), before its
        supervised training. The pipeline calls this only when it trains the teacher (not on a
        cache hit). Returns what was done, for the report."""
        if not self.config.mae.enabled:
            return {"mae": False}
        if not isinstance(teacher, models.GazeNet):
            raise ConfigError(f"task.mae.enabled=true needs the gaze teacher network, got {type(teacher).__name__}",
                              hint="set task.mae.enabled: false for a custom teacher")
        from edgekd.tasks.gaze import mae

        images = mae.unlabelled_images(self.config, self.config.mae, self.seed)
        res = mae.pretrain_mae(teacher, images, self.config.mae, seed=self.seed, progress=progress)
        info: dict[str, Any] = {"mae": True, "images": res.images, "epochs": len(res.history),
                                "masked_pixel_mse": res.history, "seconds": round(res.seconds, 2),
                                "finetune": self.config.mae.finetune}
        if self.config.mae.finetune == "adapters":
            info["trainable_params"] = models.train_only_adapters_and_head(teacher)
        return info

    def build_student(self, init: str = "teacher") -> models.GazeNet:
        """The student. ``init='teacher'`` (default) copies the stem and stage 1 from the teacher
        this task built last (in its current, i.e. trained, state), as DFT Gaze does; with no
        teacher built yet, or ``init='scratch'``, all weights are fresh."""
        check_student_init(init)
        torch.manual_seed(self.seed + 1)
        return models.build_student(self.config.model, self._teacher if init == "teacher" else None)

    # ---- loss and metric
    def task_loss(self, outputs: Sequence[torch.Tensor], batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        pred = outputs[0].float() / LOSS_SCALE_DEG
        target = batch["gaze"].to(pred.device, pred.dtype) / LOSS_SCALE_DEG
        if self.config.loss == "l1":
            per = F.l1_loss(pred, target, reduction="none")
        else:
            per = F.smooth_l1_loss(pred, target, beta=0.1, reduction="none")  # quadratic below 1 deg
        w = batch.get("labelled")
        if w is None:
            return per.mean()
        # Unlabelled frames contribute nothing; the mean is over labelled ones (a batch without any gives 0).
        w = w.to(per.device, per.dtype).reshape(-1, 1)
        return (per * w).sum() / (w.sum() * per.shape[1]).clamp_min(1.0)

    def predict_split(self, predict: PredictFn, split: str, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray,
                                                                                             np.ndarray]:
        """(predicted gaze [N,2] deg, true gaze [N,2] deg, wearer ids [N])."""
        ds = self.dataset(split)
        preds, trues, wearers = [], [], []
        for feeds, batch in iterate_numpy(ds, self.io_spec().input_names, batch_size):
            out = np.asarray(predict(feeds)[0], dtype=np.float64)
            if out.ndim != 2 or out.shape[1] != 2:
                raise ConfigError(f"gaze model output has shape {tuple(out.shape)}; expected [batch, 2] "
                                  "(yaw, pitch in degrees)")
            preds.append(out)
            trues.append(batch["gaze"].numpy().astype(np.float64))
            wearers.append(batch["wearer"].numpy())
        return np.concatenate(preds), np.concatenate(trues), np.concatenate(wearers)

    def evaluate(self, predict: PredictFn, split: str = "test", batch_size: int = 64) -> EvalResult:
        pred, true, wearer = self.predict_split(predict, split, batch_size)
        err = angular_error_deg(pred, true)
        per_wearer = {str(int(w)): float(err[wearer == w].mean()) for w in np.unique(wearer)}
        bias = {str(int(w)): [float(v) for v in (pred[wearer == w] - true[wearer == w]).mean(0)]
                for w in np.unique(wearer)}
        extras: dict[str, Any] = {
            "median_deg": float(np.median(err)), "p90_deg": float(np.percentile(err, 90)),
            "yaw_mae_deg": float(np.abs(pred[:, 0] - true[:, 0]).mean()),
            "pitch_mae_deg": float(np.abs(pred[:, 1] - true[:, 1]).mean()),
            "per_wearer_deg": per_wearer, "per_wearer_bias_deg": bias, "n": int(len(err)),
        }
        return EvalResult(metric=float(err.mean()), extras=extras)


def param_counts(teacher: nn.Module, student: nn.Module) -> dict[str, int]:
    """Exact parameter counts with and without adapters (printed by the benchmark and tests)."""
    return {"teacher": models.param_count(teacher), "teacher_no_adapters": models.param_count(teacher, adapters=False),
            "student": models.param_count(student), "student_no_adapters": models.param_count(student, adapters=False)}
