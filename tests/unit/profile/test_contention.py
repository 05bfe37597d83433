"""CPU contention: runnable threads of the whole machine (/proc/stat procs_running) against this process's
CPUs, sampled during the run; a run that shares its CPUs with busy processes is flagged ``contended``."""

from __future__ import annotations

import numpy as np
import pytest
from support.profile_helpers import FakeSession

from edgekd.profile import sensors
from edgekd.profile.protocol import MeasureConfig, ProfileTarget, profile_artifacts
from edgekd.profile.report import render_markdown
from edgekd.runtime.base import SessionOptions


def test_summary_counts_threads_besides_the_sampler() -> None:
    quiet = sensors.contention_summary([2, 3, 2], cpus=2)  # the sampler + the timed thread (+1 now and then)
    assert quiet["runnable_threads_mean"] == pytest.approx(4 / 3) and not quiet["contended"]
    assert quiet["oversubscribed_share"] == 0.0 and quiet["runnable_threads_max"] == 2
    edge = sensors.contention_summary([3, 3], cpus=2)  # exactly as many runnable threads as CPUs: fine
    assert not edge["contended"]
    busy = sensors.contention_summary([14, 4, 9], cpus=2)
    assert busy["contended"] and busy["oversubscribed_share"] == pytest.approx(1.0)
    assert busy["runnable_threads_mean"] == pytest.approx((13 + 3 + 8) / 3)


def test_procs_running_is_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    stat = "cpu  1 2 3 4\nintr 5\nprocs_running 7\nprocs_blocked 0\n"
    monkeypatch.setattr(sensors, "_read", lambda path: stat if path == "/proc/stat" else None)
    assert sensors.procs_running() == 7
    monkeypatch.setattr(sensors, "_read", lambda path: None)
    assert sensors.procs_running() is None


@pytest.mark.parametrize("running, contended", [(1, False), (4 * sensors.usable_cpus() + 2, True)])
def test_report_flags_a_contended_run_without_invalidating_it(monkeypatch: pytest.MonkeyPatch, running: int,
                                                              contended: bool) -> None:
    monkeypatch.setattr(sensors, "procs_running", lambda: running)
    sess = FakeSession(200, "m")
    target = ProfileTarget(None, "fake", SessionOptions(threads=1), {"x": np.zeros((1, 4), np.float32)}, label="m",
                           session_factory=lambda: sess)
    cfg = MeasureConfig(warmup_s=0.0, warmup_iters=2, sessions=2, iterations=30, min_duration_s=0.0)
    [rep] = profile_artifacts([target], cfg, progress=False)
    cont = rep.data["sensors"]["cpu_contention"]
    assert rep.data["results"]["contended"] is contended and cont["contended"] is contended
    assert cont["cpus"] == sensors.usable_cpus() and rep.data["sensors"]["present"]["proc_stat"] is True
    assert not any("contend" in r.lower() or "runnable" in r for r in rep.invalid_reasons)
    assert ("Contended CPU" in render_markdown(rep)) is contended
