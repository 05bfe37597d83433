"""Building blocks for a task of your own (``task: {kind: custom}``): ready metrics and task losses,
in-memory datasets, and generic tasks for the common shapes (classification, regression, dense
prediction) that need only models, datasets and a metric. ``edgekd init DIR`` writes an example."""

from edgekd.tasks.blocks.data import ArrayDataset, DatasetSource, Splits
from edgekd.tasks.blocks.generic import ClassificationTask, DenseTask, ModelFactory, RegressionTask
from edgekd.tasks.blocks.losses import LOSSES, ready_loss
from edgekd.tasks.blocks.metrics import METRIC_NAMES, Metric, ready_metric

__all__ = ["LOSSES", "METRIC_NAMES", "ArrayDataset", "ClassificationTask", "DatasetSource", "DenseTask", "Metric",
           "ModelFactory", "RegressionTask", "Splits", "ready_loss", "ready_metric"]
