"""The gaze recipe domain (DFT Gaze of GazeGen, arXiv:2411.04335): synthetic near-eye images
with per-wearer kappa, ConvNeXt-V2-style teacher and student with adapters, angular error."""

from edgekd.tasks import TASKS
from edgekd.tasks.gaze.config import GazeMAEConfig, GazeModelConfig, GazeTaskConfig
from edgekd.tasks.gaze.task import GazeTask

TASKS.register(GazeTaskConfig)(lambda cfg, seed: GazeTask(cfg, seed))

__all__ = ["GazeMAEConfig", "GazeModelConfig", "GazeTask", "GazeTaskConfig"]
