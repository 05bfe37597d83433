"""``edgekd optimize``: build every candidate artifact, judge it on held-out data, time them interleaved, pick."""

from edgekd.pipeline.optimize.report import CandidateEntry, OptimizeReport
from edgekd.pipeline.optimize.search import OptimizeRequest, optimize

__all__ = ["CandidateEntry", "OptimizeReport", "OptimizeRequest", "optimize"]
