"""Metrics as JSON lines (``out_dir/metrics.jsonl``), TensorBoard when installed, and a rich
progress bar that stays quiet when not on a terminal, when progress=False, or off rank 0.

The metrics log is the one file appended to rather than replaced: a line per log event,
flushed. A crash can leave at most a torn last line; on resume the log is rewritten
atomically keeping only the records up to the checkpoint's step, so a resumed run's log
reads like an uninterrupted one.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from edgekd.fileio import write_text


class MetricsLog:
    def __init__(self, out_dir: Path | None, enabled: bool, resume_step: int | None = None) -> None:
        self.path = out_dir / "metrics.jsonl" if (out_dir is not None and enabled) else None
        self._fh: Any = None
        self._tb: Any = None
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is not None and self.path.exists():
            keep = []
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue  # the torn last line of a killed run
                if int(rec.get("step", 0)) <= resume_step:
                    keep.append(line)
            write_text(self.path, "".join(f"{x}\n" for x in keep))
        elif self.path.exists():
            write_text(self.path, "")
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the run
        try:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(self.path.parent / "tensorboard"))
        except Exception:  # tensorboard is optional; the JSON log is the record
            self._tb = None

    def write(self, record: dict[str, Any]) -> None:
        if self._fh is None:
            return
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}
        self._fh.write(json.dumps(clean) + "\n")
        self._fh.flush()
        if self._tb is not None:
            step = int(record.get("step", 0))
            for k, v in record.items():
                if isinstance(v, (int, float)) and k not in ("step", "epoch"):
                    self._tb.add_scalar(f"{record.get('kind', 'train')}/{k}", v, step)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None


class Progress:
    """A rich progress bar over the steps of one run; no-op when disabled."""

    def __init__(self, enabled: bool, desc: str, total: int, completed: int = 0) -> None:
        self._bar: Any = None
        if not (enabled and sys.stdout.isatty()):
            return
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
        from rich.progress import Progress as RichProgress

        self._bar = RichProgress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[info]}"), TimeRemainingColumn(), transient=False)
        self._bar.start()
        self._task = self._bar.add_task(desc, total=total, completed=completed, info="")

    def update(self, info: str) -> None:
        if self._bar is not None:
            self._bar.update(self._task, advance=1, info=info)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
