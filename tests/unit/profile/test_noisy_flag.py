"""The A/A noise flag end to end: a run whose session medians vary more than ``MeasureConfig.noisy_cv``
is flagged ``results.noisy`` in the report (and in its markdown); a steady one is not."""

from __future__ import annotations

import numpy as np
from support.profile_helpers import FakeSession

from edgekd.profile.protocol import InterleavedRun, MeasureConfig, ProfileTarget
from edgekd.profile.report import render_markdown
from edgekd.runtime.base import SessionOptions


def _target(sess: FakeSession) -> ProfileTarget:
    return ProfileTarget(None, "fake", SessionOptions(threads=1), {"x": np.zeros((1, 4), np.float32)},
                         label=sess.name, session_factory=lambda: sess)


def test_a_run_whose_sessions_drift_is_flagged_noisy() -> None:
    cfg = MeasureConfig(warmup_s=0.0, warmup_iters=2, sessions=4, iterations=30, min_duration_s=0.0, noisy_cv=0.05)
    sess = FakeSession(2_000, "drifting")
    with InterleavedRun([_target(sess)], cfg, progress=False) as run:
        for work in (2_000, 400_000, 2_000, 400_000):  # the "machine" slows down every other session
            sess.a = np.ones((work,), np.float32)
            run.run_rounds(1)
        [rep] = run.reports()
    res = rep.data["results"]
    assert res["session_cv"] > 0.5 and res["noisy"] is True and res["noisy_threshold"] == 0.05
    assert "Noisy run" in render_markdown(rep)


def test_the_flag_follows_the_threshold() -> None:
    sess = FakeSession(20_000, "steady")
    for threshold in (0.0, 100.0):  # every real run has CV > 0; none reaches 10000%
        cfg = MeasureConfig(warmup_s=0.0, warmup_iters=2, sessions=3, iterations=30, min_duration_s=0.0,
                            noisy_cv=threshold)
        with InterleavedRun([_target(sess)], cfg, progress=False) as run:
            run.run_rounds(3)
            [rep] = run.reports()
        res = rep.data["results"]
        assert res["noisy"] is (threshold == 0.0) and res["noisy_threshold"] == threshold
        assert res["noisy"] == (res["session_cv"] > threshold)
