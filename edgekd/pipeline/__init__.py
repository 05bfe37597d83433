"""The end-to-end pipeline behind ``edgekd distill-and-export``."""

from edgekd.pipeline.run import PipelineResult, run_pipeline

__all__ = ["PipelineResult", "run_pipeline"]
