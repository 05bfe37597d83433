"""The segmentation recipe domain: an offline mini-city street-scene generator with shifted
test domains (and Cityscapes / VOC / ADE20K readers), a DeepLabV3-style teacher distilled into
a MobileNetV2-style student (CWD, ACAM-KD, pixel KD, LAD, GKD two-stage), dataset-level mIoU."""

from edgekd.tasks import TASKS
from edgekd.tasks.segmentation.config import LADConfig, SegmentationTaskConfig, SegModelConfig
from edgekd.tasks.segmentation.task import SegmentationTask

TASKS.register(SegmentationTaskConfig)(lambda cfg, seed: SegmentationTask(cfg, seed))

__all__ = ["LADConfig", "SegModelConfig", "SegmentationTask", "SegmentationTaskConfig"]
