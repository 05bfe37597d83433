from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from support.profile_helpers import FakeSession, make_cnn

from edgekd.errors import ConfigError, ProfileError
from edgekd.profile.protocol import InterleavedRun, MeasureConfig, ProfileTarget, profile_artifacts
from edgekd.profile.report import SCHEMA, ProfileReport
from edgekd.runtime.base import SessionOptions

FAST = MeasureConfig(warmup_s=0.0, warmup_iters=3, sessions=4, iterations=20, min_duration_s=0.0)


def _fake_target(label: str, log: list[str] | None = None, work: int = 100) -> ProfileTarget:
    sess = FakeSession(work, label)
    if log is not None:
        orig = sess.run

        def run(feeds):  # type: ignore[no-untyped-def]
            log.append(label)
            return orig(feeds)

        sess.run = run  # type: ignore[method-assign]
    return ProfileTarget(None, "fake", SessionOptions(threads=1), {"x": np.zeros((1, 4), np.float32)},
                         label=label, session_factory=lambda: sess)


def test_interleaving_alternates_the_order_each_round() -> None:
    log: list[str] = []
    cfg = MeasureConfig(warmup_s=0.0, warmup_iters=0, sessions=4, iterations=2, min_duration_s=0.0)
    profile_artifacts([_fake_target("A", log), _fake_target("B", log)], cfg, progress=False)
    # Load: first inference A, B; then sessions: AA BB | BB AA | AA BB | BB AA
    timed = "".join(log[2:])
    assert timed == "AABB" "BBAA" "AABB" "BBAA"


def test_fresh_sessions_reload_every_target_each_round_in_that_rounds_order() -> None:
    """The regression gate's mode: a new session instance per round, created in the round's (ABBA) order, so
    a persistent per-instance speed offset cannot pose as a difference between the models."""
    loads: list[str] = []

    def target(label: str) -> ProfileTarget:
        def factory() -> FakeSession:
            loads.append(label)
            return FakeSession(100, label)

        return ProfileTarget(None, "fake", SessionOptions(threads=1), {"x": np.zeros((1, 4), np.float32)},
                             label=label, session_factory=factory)

    cfg = MeasureConfig(warmup_s=0.0, warmup_iters=0, sessions=4, iterations=2, min_duration_s=0.0)
    with InterleavedRun([target("A"), target("B")], cfg, progress=False, fresh_sessions=True) as run:
        first = [st.session for st in run.states]
        run.run_rounds(4)
    assert "".join(loads) == "AB" "BA" "AB" "BA"  # initial load, then before rounds 2, 3, 4
    assert all(st.session is not f for st, f in zip(run.states, first, strict=True))
    assert [len(r.session_medians_ms) for r in run.reports()] == [4, 4]
    loads.clear()
    with InterleavedRun([target("A"), target("B")], cfg, progress=False) as run:
        run.run_rounds(4)
    assert "".join(loads) == "AB"  # the default keeps one session per target


def test_not_interleaved_runs_all_sessions_of_a_target_together() -> None:
    log: list[str] = []
    cfg = MeasureConfig(warmup_s=0.0, warmup_iters=0, sessions=3, iterations=1, min_duration_s=0.0)
    profile_artifacts([_fake_target("A", log), _fake_target("B", log)], cfg, interleave=False, progress=False)
    assert "".join(log[2:]) == "AAABBB"


def test_warmup_by_time_and_count_and_min_duration() -> None:
    cfg = MeasureConfig(warmup_s=0.05, warmup_iters=5, sessions=2, iterations=10, min_duration_s=0.2)
    [rep] = profile_artifacts([_fake_target("A")], cfg, progress=False)
    st = rep.data["settings"]
    assert st["warmup_iters_run"] >= 5 and st["warmup_ms_run"] >= 50.0
    assert rep.samples is not None and rep.samples.shape == (2, st["iterations_per_session"])
    assert rep.samples.sum() >= 0.2 * 1000 * 0.5  # raised iterations cover ~min_duration (estimate from warm-up)
    assert st["iterations_per_session"] > 10


def test_report_fields_follow_the_contract() -> None:
    [rep] = profile_artifacts([_fake_target("A")], FAST, progress=False)
    d = rep.to_json()
    assert d["schema"] == SCHEMA
    for k in ("valid", "invalid_reasons", "device", "runtime", "results", "artifact", "settings", "transfers"):
        assert k in d
    lat = d["results"]["latency_ms"]
    assert set(lat) == {"p50", "p90", "p95", "p99", "mean", "std", "min", "max", "p90_ucb99"}
    assert lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p95"] <= lat["p99"] <= lat["max"]
    assert lat["p90_ucb99"] >= lat["p90"]
    assert len(d["results"]["session_medians_ms"]) == 4
    assert d["results"]["load_ms"] >= 0 and d["results"]["first_inference_ms"] > 0
    assert d["results"]["peak_rss_mb"] > 10
    assert d["device"]["cpu"]["logical_cores"] >= 1
    assert d["runtime"]["name"] == "fake"
    assert d["sensors"]["absent"] is not None
    json.dumps(d)  # serialisable


def test_too_few_samples_is_invalid() -> None:
    cfg = MeasureConfig(warmup_s=0.0, warmup_iters=0, sessions=2, iterations=5, min_duration_s=0.0)
    [rep] = profile_artifacts([_fake_target("A")], cfg, progress=False)
    assert not rep.valid
    assert any("too few samples" in r for r in rep.invalid_reasons)
    assert rep.latency_ms["p90_ucb99"] is None


def test_an_emulated_run_is_never_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    """Latency measured under qemu-user is the emulator's, not the board's (issue 23): INVALID, saying why."""
    import edgekd.profile.fingerprint as fingerprint
    from edgekd.profile.emulation import Emulation

    [honest] = profile_artifacts([_fake_target("A")], FAST, progress=False)
    assert honest.valid  # the control: the same run, not emulated
    monkeypatch.setattr(fingerprint, "detect_emulation",
                        lambda: Emulation(True, "qemu-user", ("uname -m is aarch64 but the CPU is x86",)))
    [rep] = profile_artifacts([_fake_target("A")], FAST, progress=False)
    assert rep.data["device"]["emulation"]["emulated"] is True
    assert not rep.valid and any("emulated (qemu-user)" in r for r in rep.invalid_reasons)


def test_sequential_rounds_add_sessions() -> None:
    with InterleavedRun([_fake_target("A"), _fake_target("B")], FAST, progress=False) as run:
        run.run_rounds(2)
        run.run_rounds(3)
    reps = run.reports()
    assert [len(r.session_medians_ms) for r in reps] == [5, 5]


def test_bad_settings_are_reported_together() -> None:
    with pytest.raises(ConfigError) as ei:
        MeasureConfig(sessions=0, iterations=-1)
    assert "sessions=0" in str(ei.value) and "iterations=-1" in str(ei.value)


def test_feeds_that_do_not_fit_raise_before_timing() -> None:
    t = _fake_target("A")
    t.feeds = {"x": np.zeros((1, 5), np.float32)}
    with pytest.raises(ProfileError, match="dim 1 is 5"):
        profile_artifacts([t], FAST, progress=False)


def test_onnx_through_the_runtime_and_save_load_roundtrip(tmp_path: Path) -> None:
    model = make_cnn(tmp_path / "m.onnx")
    feeds = {"x": np.random.default_rng(0).random((1, 3, 16, 16), dtype=np.float32)}
    [rep] = profile_artifacts([ProfileTarget(model, "onnxruntime", SessionOptions(threads=1), feeds)], FAST,
                              progress=False)
    assert rep.data["artifact"]["sha256"] and rep.data["artifact"]["size_mb"] > 0
    assert rep.data["runtime"]["name"] == "onnxruntime"
    out = rep.save(tmp_path / "r" / "report.json", markdown=True)
    assert (tmp_path / "r" / "report.samples.npy").is_file() and (tmp_path / "r" / "report.md").is_file()
    back = ProfileReport.load(out)
    assert back.samples is not None and np.array_equal(back.samples, rep.samples)
    assert back.latency_ms == rep.latency_ms
    # A tampered samples file is detected.
    np.save(tmp_path / "r" / "report.samples.npy", back.samples * 2)
    with pytest.raises(ProfileError, match="SHA-256"):
        ProfileReport.load(out)


def test_from_module_profiles_torch_eager() -> None:
    import torch

    from edgekd.iospec import IOSpec, TensorSpec

    spec = IOSpec((TensorSpec("x", ("batch", 4)),), (TensorSpec("y", ("batch", 2)),))
    feeds = spec.dummy_inputs({"batch": 1})
    t = ProfileTarget.from_module(torch.nn.Linear(4, 2), spec, SessionOptions(threads=1), feeds)
    [rep] = profile_artifacts([t], FAST, progress=False)
    assert rep.data["runtime"]["name"] == "torch" and rep.p50 > 0
