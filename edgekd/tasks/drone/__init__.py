"""The drone recipe domain (NSER-IBVS: "Efficient Self-Supervised Neuro-Analytic Visual Servoing
for Real-time Quadrotor Control"): a simulated downward camera over a marked target, an
analytic IBVS teacher, a 1.7M-parameter ConvNet student, closed-loop success rate."""

from edgekd.tasks import TASKS
from edgekd.tasks.drone.config import (
    ClosedLoopConfig,
    DroneTaskConfig,
    DynamicsConfig,
    LearnedSegmenterConfig,
    SceneConfig,
    TeacherIBVSConfig,
)
from edgekd.tasks.drone.task import DroneTask

TASKS.register(DroneTaskConfig)(lambda cfg, seed: DroneTask(cfg, seed))

__all__ = ["ClosedLoopConfig", "DroneTask", "DroneTaskConfig", "DynamicsConfig", "LearnedSegmenterConfig",
           "SceneConfig", "TeacherIBVSConfig"]
