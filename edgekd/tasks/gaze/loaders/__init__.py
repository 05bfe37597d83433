"""Real-dataset loaders for the gaze recipe; each returns :class:`edgekd.tasks.gaze.synth.GazeArrays`
(images [N,1,H,W] uint8, gaze [N,2] edgekd yaw/pitch degrees, wearer ids), usable with
:class:`edgekd.tasks.gaze.task.GazeDataset`. Conventions: :mod:`.convention`."""

from edgekd.tasks.gaze.loaders.aea import load_aea
from edgekd.tasks.gaze.loaders.ethxgaze import load_ethxgaze
from edgekd.tasks.gaze.loaders.mpiigaze import load_mpiigaze
from edgekd.tasks.gaze.loaders.openeds import load_openeds2020

__all__ = ["load_aea", "load_ethxgaze", "load_mpiigaze", "load_openeds2020"]
