from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgekd.errors import ProfileError
from edgekd.profile.report import ProfileReport, render_markdown


def _doc() -> dict:
    lat = {"p50": 1.0, "p90": 1.2, "p95": 1.3, "p99": 1.5, "mean": 1.05, "std": 0.1, "min": 0.9, "max": 2.0,
           "p90_ucb99": 1.25}
    return {"schema": "edgekd.profile/1", "valid": True, "invalid_reasons": [], "device": {"arch": "x86_64"},
            "runtime": {"name": "onnxruntime"},
            "results": {"latency_ms": lat, "session_medians_ms": [1.0, 1.01], "load_ms": 3.0,
                        "first_inference_ms": 2.0, "peak_rss_mb": 100.0}}


def test_valid_document_roundtrips() -> None:
    rep = ProfileReport.from_json(_doc())
    assert rep.p50 == 1.0 and rep.valid
    assert ProfileReport.from_json(rep.to_json()).to_json() == rep.to_json()


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.update(schema="edgekd.profile/2"), "not supported"),
    (lambda d: d.update(schema="something"), "expected 'edgekd.profile/1'"),
    (lambda d: d.pop("device"), "missing key"),
    (lambda d: d["results"]["latency_ms"].pop("p90_ucb99"), "p90_ucb99"),
    (lambda d: d["results"]["latency_ms"].update(p50="fast"), "latency_ms.p50"),
    (lambda d: d.update(valid="yes"), "'valid'"),
    (lambda d: d["results"].pop("peak_rss_mb"), "peak_rss_mb"),
])
def test_bad_documents_are_named(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    d = _doc()
    mutate(d)
    with pytest.raises(ProfileError, match=message):
        ProfileReport.from_json(d)


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="no such profile report"):
        ProfileReport.from_json(tmp_path / "nope.json")
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(ProfileError, match="not a JSON file"):
        ProfileReport.from_json(tmp_path / "x.json")


def test_save_writes_samples_with_sha_and_plots(tmp_path: Path) -> None:
    rep = ProfileReport.from_json(_doc())
    rep.samples = np.random.default_rng(0).gamma(9, 0.1, size=(3, 50))
    rep.data["layers"] = {"source": "test", "coverage_pct": 95.0,
                          "nodes": [{"node": "conv", "op": "Conv", "ms": 0.5, "pct": 50.0}]}
    p = rep.save(tmp_path / "out.json", markdown=True, plots=True)
    d = json.loads(p.read_text())
    assert d["raw_samples"]["path"] == "out.samples.npy" and len(d["raw_samples"]["sha256"]) == 64
    assert d["raw_samples"]["shape"] == [3, 50]
    for name in d["plots"].values():
        assert (tmp_path / name).stat().st_size > 1000
    md = (tmp_path / "out.md").read_text()
    assert "| p50 |" in md and "conv" in md and "VALID" in md


def test_markdown_shows_invalid_reasons() -> None:
    d = _doc()
    d["valid"] = False
    d["invalid_reasons"] = ["CPU clock drifted by 20%"]
    assert "INVALID**: CPU clock drifted by 20%" in render_markdown(d)


# ---- strict values: a document that claims the schema but carries unusable figures is INVALID (exit 4)
def _set(path: str, value: object):  # type: ignore[no-untyped-def]
    keys = path.split(".")

    def change(d: dict) -> None:
        for k in keys[:-1]:
            d = d[int(k)] if isinstance(d, list) else d[k]
        if isinstance(d, list):
            d[int(keys[-1])] = value
        else:
            d[keys[-1]] = value
    return change


STRICT = [
    ("results.latency_ms.p90_ucb99", True, "is True (bool), expected a number"),
    ("results.latency_ms.p50", False, "is False (bool)"),
    ("results.latency_ms.p90", "1.2", "is '1.2' (str)"),
    ("results.latency_ms.p99", None, "is null"),
    ("results.latency_ms.p90_ucb99", float("nan"), "is nan, expected a finite number"),
    ("results.latency_ms.mean", float("inf"), "is inf"),
    ("results.latency_ms.min", -0.1, "is -0.1, expected a number >= 0"),
    ("results.session_medians_ms.1", True, "session_medians_ms[1] is True (bool)"),
    ("results.session_medians_ms.0", float("-inf"), "session_medians_ms[0] is -inf"),
    ("results.session_medians_ms", [], "session_medians_ms is list of length 0"),
    ("results.session_medians_ms", "1.0", "session_medians_ms is str"),
    ("results.peak_rss_mb", True, "results.peak_rss_mb is True (bool)"),
    ("results.peak_rss_mb", -1, "results.peak_rss_mb is -1"),
    ("results.load_ms", float("nan"), "results.load_ms is nan"),
    ("invalid_reasons", [1], "invalid_reasons is not a list of strings"),
    ("valid", 1, "'valid' is 1"),
    ("artifact", {"size_mb": True}, "artifact.size_mb is True (bool)"),
    ("artifact", {"sha256": "xyz"}, "artifact.sha256 is 'xyz'"),
    ("raw_samples", {"path": "/etc/passwd"}, "raw_samples.path is '/etc/passwd'"),
    ("raw_samples", {"path": "../up.npy"}, "raw_samples.path"),
    ("raw_samples", {"shape": [3, True]}, "raw_samples.shape"),
]


@pytest.mark.parametrize("path,value,message", STRICT, ids=[f"{p}={v!r}" for p, v, _ in STRICT])
def test_unusable_figures_are_invalid_and_named(path: str, value: object, message: str) -> None:
    from edgekd.errors import EXIT_INVALID
    from edgekd.profile.report import ReportInvalid

    d = _doc()
    ProfileReport.from_json(d)  # the control: the untouched document is accepted
    _set(path, value)(d)
    with pytest.raises(ReportInvalid) as info:
        ProfileReport.from_json(d)
    assert message in info.value.message and info.value.exit_code == EXIT_INVALID


def test_wrong_schema_stays_bad_input() -> None:
    from edgekd.errors import EXIT_BAD_INPUT

    with pytest.raises(ProfileError) as info:
        ProfileReport.from_json({"schema": "something/9"})
    assert info.value.exit_code == EXIT_BAD_INPUT


def _saved(tmp_path: Path, samples: np.ndarray) -> Path:
    from edgekd.profile.stats import summarize

    d = _doc()
    s = summarize(samples)
    d["results"].update(latency_ms=s.latency_dict(), session_medians_ms=s.session_medians_ms, n_samples=s.n)
    return ProfileReport(d, samples).save(tmp_path / "r.json")


def test_verify_summary_replaces_stored_figures_with_recomputed(tmp_path: Path) -> None:
    samples = np.random.default_rng(1).gamma(9, 0.1, size=(4, 30))
    p = _saved(tmp_path, samples)
    rep = ProfileReport.load(p)
    rep.verify_summary()
    assert rep.latency_ms["p90_ucb99"] == pytest.approx(float(np.sort(samples.ravel())[115]), rel=1e-12)
    assert rep.session_medians_ms == pytest.approx(list(np.median(samples, axis=1)), rel=1e-12)


@pytest.mark.parametrize("key,value,message", [
    ("p90_ucb99", 0.001, "results.latency_ms.p90_ucb99 is 0.001 but the raw samples give"),
    ("p50", 123.0, "results.latency_ms.p50 is 123.0"),
    ("std", 0.0, "results.latency_ms.std is 0.0"),
])
def test_verify_summary_names_the_edited_field(tmp_path: Path, key: str, value: float, message: str) -> None:
    from edgekd.profile.report import ReportInvalid

    p = _saved(tmp_path, np.random.default_rng(2).gamma(9, 0.1, size=(4, 30)))
    ProfileReport.load(p).verify_summary()  # the control
    d = json.loads(p.read_text())
    d["results"]["latency_ms"][key] = value
    p.write_text(json.dumps(d))
    with pytest.raises(ReportInvalid, match=message):
        ProfileReport.load(p).verify_summary()


def test_verify_summary_needs_samples_and_a_matching_sha(tmp_path: Path) -> None:
    from edgekd.profile.report import ReportInvalid

    with pytest.raises(ReportInvalid, match="no raw samples"):
        ProfileReport.from_json(_doc()).verify_summary()
    p = _saved(tmp_path, np.random.default_rng(3).gamma(9, 0.1, size=(4, 30)))
    np.save(tmp_path / "r.samples.npy", np.ones((4, 30)))
    with pytest.raises(ReportInvalid, match="does not match"):
        ProfileReport.load(p)
