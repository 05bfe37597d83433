"""The drone Task: simulated teacher-flown data, the analytic IBVS teacher, the NSER-IBVS
student, and closed-loop success rate as the metric.

Splits: ``train`` (teacher-flown trajectories over the train scenes, photometric augmentation,
labels on a ``label_fraction`` subset only: see :mod:`edgekd.tasks.drone.config` for how that
makes the pipeline's three arms meaningful), ``val`` and ``test`` (teacher-flown frames over
their own scenes, every frame labelled, no augmentation; used for calibration and parity
feeds). ``evaluate(predict, split)`` flies the split's start poses in closed loop; on 'val' the
metric carries a small final-error tie-breaker for checkpoint selection (see ``evaluate``).

Items: ``image`` [3, H, W] float32 in [0, 1]; ``command`` [3] float32 (the teacher's normalised
v_x, v_y, w_z for that frame, perturbed by ``label_noise`` on train); ``labelled`` float32 (1 if
the frame's label may be used by ``task_loss``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from edgekd.errors import UnknownNameError
from edgekd.iospec import IOSpec, TensorSpec
from edgekd.tasks.base import EvalResult, MetricSpec, PredictFn, TaskBase, check_student_init
from edgekd.tasks.drone import closed_loop, record, sim
from edgekd.tasks.drone.augment import augment
from edgekd.tasks.drone.config import DroneTaskConfig
from edgekd.tasks.drone.models import StudentNet
from edgekd.tasks.drone.teacher import IBVSTeacher
from edgekd.tasks.memo import Memo

METRIC = MetricSpec("success_rate", lower_is_better=False, unit="fraction", beside=("final_error_px",))
SPLITS = ("train", "val", "test")

_BANKS: Memo[sim.SceneBank] = Memo(max_items=12)
_FRAMES: Memo[record.FrameSet] = Memo(max_items=12)


class DroneFrames(Dataset):  # type: ignore[type-arg]
    """Recorded frames in memory (uint8); augmentation, if on, is drawn per access."""

    def __init__(self, frames: record.FrameSet, labels: np.ndarray, labelled: np.ndarray,
                 salt_pepper: float | None) -> None:
        self.frames = frames
        self._images = torch.from_numpy(frames.images)
        self._labels = torch.from_numpy(labels.astype(np.float32))
        self._labelled = torch.from_numpy(labelled.astype(np.float32))
        self.salt_pepper = salt_pepper  # None = no augmentation

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        img = self._images[i].float() / 255.0
        if self.salt_pepper is not None:
            img = augment(img, self.salt_pepper)
        return {"image": img, "command": self._labels[i], "labelled": self._labelled[i]}


class DroneTask(TaskBase):
    """The drone domain behind :class:`edgekd.tasks.base.Task`."""

    metric = METRIC

    def __init__(self, config: DroneTaskConfig, seed: int = 0) -> None:
        self.config = config
        self.seed = seed

    def _key(self, split: str) -> tuple[str, int, str]:
        c = self.config
        sig = c.model_dump_json(include={"image_size", "scene", "dynamics", "ibvs", "closed_loop",
                                         "train_episodes", "val_frames", "episode_steps", "exploration"})
        return sig, self.seed, split

    def _check(self, split: str) -> None:
        if split not in SPLITS:
            raise UnknownNameError("drone split", split, SPLITS, hint="use train, val or test")

    # ---- simulation
    def bank(self, split: str) -> sim.SceneBank:
        """The split's scenes (distinct random streams, so no scene is shared between splits)."""
        self._check(split)
        return _BANKS.get(self._key(split),
                          lambda: sim.make_bank(self.config.scene, self.seed, closed_loop.STREAM[split]))

    def frames(self, split: str) -> record.FrameSet:
        """Teacher-flown frames of a split (memoised in memory)."""
        self._check(split)
        return _FRAMES.get(self._key(split), lambda: self._fly(split))

    def _fly(self, split: str) -> record.FrameSet:
        c = self.config
        bank = self.bank(split)
        rng = np.random.default_rng([self.seed, closed_loop.STREAM[split], 104_729])
        if split == "train":
            episodes, steps = c.train_episodes, c.episode_steps
        else:
            steps = min(c.episode_steps, 20)
            episodes = math.ceil(c.val_frames / steps)
        starts, ids = record.training_starts(c, bank, episodes, rng)
        fs = record.collect(c, bank, starts, ids, IBVSTeacher(c), steps=steps, rng=rng, exploration=c.exploration)
        if split != "train":
            keep = rng.permutation(len(fs))[: c.val_frames]
            fs = record.FrameSet(fs.images[keep], fs.commands[keep], fs.episode[keep], fs.step[keep])
        return fs

    # ---- data
    def io_spec(self) -> IOSpec:
        n = self.config.image_size
        return IOSpec(inputs=(TensorSpec("image", ("batch", 3, n, n), "float32", 0.0, 1.0),),
                      outputs=(TensorSpec("command", ("batch", 3), "float32", -1.0, 1.0),))

    def dataset(self, split: str) -> Dataset:  # type: ignore[type-arg]
        c = self.config
        if c.source == "flight_logs":  # recorded flights at task.root
            from edgekd.tasks.drone.datasets import flight_split

            self._check(split)
            return flight_split(c, split)
        fs = self.frames(split)
        if split != "train":
            return DroneFrames(fs, fs.commands, np.ones(len(fs)), None)
        rng = np.random.default_rng([self.seed, 7_727])
        labelled = np.zeros(len(fs))
        labelled[rng.permutation(len(fs))[: max(1, int(round(c.label_fraction * len(fs))))]] = 1.0
        labels = fs.commands + (rng.normal(0, c.label_noise, fs.commands.shape) if c.label_noise > 0 else 0.0)
        return DroneFrames(fs, np.clip(labels, -1, 1), labelled, c.salt_pepper if c.augment else None)

    # ---- models
    def build_teacher(self) -> IBVSTeacher:
        """The analytic controller (a callable, not a network). With ``ibvs.segmenter: learned``
        its U-Net segmenter is trained (once per process) or loaded on the first build."""
        return IBVSTeacher(self.config)

    def build_student(self, width_mult: float | None = None, *, init: str = "teacher") -> StudentNet:
        """A fresh student (``width_mult`` overrides the config's, for width sweeps). It copies nothing
        from the analytic teacher, so ``init`` changes nothing."""
        check_student_init(init)
        torch.manual_seed(self.seed + 1)
        return StudentNet(self.config.width_mult if width_mult is None else width_mult, self.config.activation,
                          self.config.downsample)

    # ---- loss and metric
    def task_loss(self, outputs: Sequence[torch.Tensor], batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Regression to the dataset's labels on labelled frames only (mean over them)."""
        pred = outputs[0].float()
        target = batch["command"].to(pred.device, pred.dtype)
        mask = batch["labelled"].to(pred.device, pred.dtype)[:, None]
        if self.config.loss == "l1":
            per = (pred - target).abs()
        elif self.config.loss == "l2":
            per = (pred - target).pow(2)
        else:
            per = F.huber_loss(pred, target, reduction="none", delta=0.1)
        # A batch with no labelled frame contributes zero (with a graph, so backward still works).
        return (per * mask).sum() / (mask.sum() * pred.shape[1]).clamp_min(1.0)

    def evaluate(self, predict: PredictFn, split: str = "test", batch_size: int = 64) -> EvalResult:
        """Closed-loop flights of the split's start poses; metric = success rate."""
        if split not in ("val", "test"):
            raise UnknownNameError("drone evaluation split", split, ("val", "test"),
                                   hint="closed-loop evaluation flies the val or test start poses")
        summary, _ = closed_loop.evaluate_controller(self.config, self.bank(split), predict, split, self.seed,
                                                     batch_size=batch_size)
        metric = summary["success_rate"]
        if split == "val":
            # 'val' selects checkpoints: once several epochs reach the same success rate, prefer the
            # one that ends closer to the goal (0.001 per pixel of mean final corner error). The
            # pure success rate stays in extras; 'test' reports it unmodified.
            metric -= 1e-3 * min(summary["final_error_px"], 100.0)
            summary["selection_score"] = metric
        return EvalResult(metric=float(metric), extras=summary)
