"""What every stage of a run shares: the recipe, the task and its io spec (read once), the run's
:class:`~edgekd.pipeline.artifacts.ArtifactSet`, the calibration items and test feeds (read once, when
first needed), and the recorder of stage timings and provenance steps."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekd.config.device import DeviceConfig
from edgekd.config.recipe import RecipeBase
from edgekd.fileio import kill_point
from edgekd.iospec import IOSpec
from edgekd.pipeline.artifacts import ArtifactSet


@dataclass
class Recorder:
    """Stage timings and the provenance list written to the manifest."""

    say: Callable[[str], None]
    timings: dict[str, float] = field(default_factory=dict)
    steps: list[dict[str, Any]] = field(default_factory=list)

    @contextmanager
    def stage(self, name: str, **info: Any) -> Iterator[dict[str, Any]]:
        self.say(f"[{name}] ...")
        kill_point(f"stage:{name}")  # test-only fault injection (EDGEKD_TEST_KILL_AT), a no-op otherwise
        t0 = time.perf_counter()
        record: dict[str, Any] = {"step": name, **info}
        yield record
        dt = time.perf_counter() - t0
        self.timings[name] = round(dt, 2)
        record["seconds"] = round(dt, 2)
        self.steps.append(record)
        self.say(f"[{name}] done in {dt:.1f}s")


@dataclass
class RunContext:
    recipe: RecipeBase
    device: DeviceConfig
    out_dir: Path
    task: Any
    spec: IOSpec
    artifacts: ArtifactSet
    rec: Recorder
    progress: bool = True
    _calib: list[dict[str, np.ndarray]] | None = field(default=None, repr=False)
    _feeds: list[dict[str, np.ndarray]] | None = field(default=None, repr=False)

    @property
    def say(self) -> Callable[[str], None]:
        return self.rec.say

    @property
    def teacher_cache(self) -> Path | None:
        """Where the teacher's outputs on the training set are cached (``distill.teacher_cache``)."""
        return self.out_dir / "train" / "teacher_cache" if self.recipe.distill.teacher_cache else None

    def calibration(self) -> list[dict[str, np.ndarray]]:
        """The first ``quantize.calibration.samples`` training items (batch 1), read once."""
        if self._calib is None:
            from edgekd.tasks.base import calibration_items

            self._calib = calibration_items(self.task, self.recipe.quantize.calibration.samples)
        return self._calib

    def test_feeds(self) -> list[dict[str, np.ndarray]]:
        """Batches of test-split inputs (at least ``export.parity.samples`` items) for parity checks, read once."""
        if self._feeds is None:
            from edgekd.runtime.predict import iterate_numpy

            feeds: list[dict[str, np.ndarray]] = []
            n = self.recipe.export.parity.samples
            for batch, _ in iterate_numpy(self.task.dataset("test"), self.spec.input_names, batch_size=8):
                feeds.append(batch)
                if sum(len(next(iter(f.values()))) for f in feeds) >= n:
                    break
            self._feeds = feeds
        return self._feeds
