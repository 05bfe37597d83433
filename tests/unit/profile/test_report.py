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
