"""`gate --recipe-report` is bound to the profiled model: the pipeline report must name the profiled
artifact's SHA-256 as the variant whose budget applies, and be of the recipe asked about."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _gate_reports import edit

from edgekd.cli import main
from edgekd.fileio import sha256_file

OTHER_SHA = "f" * 64


def _pipeline(tmp_path: Path, *, recipe: Any = "gaze", int8: str, fp32: str = OTHER_SHA, metric: Any = 5.0,
              nbytes: Any = 40_000) -> Path:
    """A report.json as `edgekd distill-and-export` writes it (the keys the gate reads)."""
    doc = {"schema": "edgekd.report/1", "recipe": recipe, "device": "host-cpu",
           "metric": {"name": "angular_error_deg", "lower_is_better": True, "unit": "deg"},
           "variants": {"onnx_int8": {"metric": metric, "sha256": int8, "bytes": nbytes, "precision": "int8"},
                        "onnx_fp32": {"metric": 4.9, "sha256": fp32, "bytes": 160_000, "precision": "fp32"}}}
    if recipe is None:
        doc.pop("recipe")
    p = tmp_path / "report.json"
    p.write_text(json.dumps(doc))
    return p


def _first_err_line(capsys: pytest.CaptureFixture) -> str:
    return next(ln for ln in capsys.readouterr().err.splitlines() if ln.strip())


@pytest.fixture
def size(models: dict[str, Path]) -> int:
    return models["a"].stat().st_size  # the file the `report` fixture profiled


@pytest.fixture
def sha(report: Path) -> str:
    s = json.loads(report.read_text())["artifact"]["sha256"]
    assert isinstance(s, str) and len(s) == 64
    return s


def test_bound_report_passes_and_its_metric_is_judged(report: Path, sha: str, size: int, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    rr = _pipeline(tmp_path, int8=sha, nbytes=size)
    assert main(["gate", str(report), "--device", "host-cpu", "--recipe-report", str(rr)]) == 0
    out = capsys.readouterr().out
    assert "angular_error_deg of onnx_int8 = 5" in out
    assert f"artifact size {size / 1e6:.3g} MB" in out  # measured on the profiled file, still there
    rr = _pipeline(tmp_path, int8=sha, metric=9.0, nbytes=size)  # above gaze's 8.0 ceiling on host-cpu
    assert main(["gate", str(report), "--device", "host-cpu", "--recipe-report", str(rr)]) == 1


def test_bound_report_bytes_must_be_the_profiled_files(report: Path, sha: str, size: int, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture) -> None:
    rr = _pipeline(tmp_path, int8=sha, nbytes=size + 1)
    assert main(["gate", str(report), "--device", "host-cpu", "--recipe-report", str(rr), "--allow-invalid"]) == 4
    assert f"variants.onnx_int8.bytes is {size + 1} but the profiled file a.onnx has {size} bytes" in \
        _first_err_line(capsys)


@pytest.mark.parametrize("nbytes,expected", [(40_000, 0), (6_000_000, 1)])  # gaze on host-cpu: 5 MB
def test_bound_report_bytes_judged_when_the_file_is_gone(nbytes: int, expected: int, report: Path, sha: str,
                                                         tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from shutil import copyfile

    cand = tmp_path / "cand.json"
    copyfile(report, cand)
    copyfile(report.parent / "a.profile.samples.npy", tmp_path / "a.profile.samples.npy")
    edit(cand, lambda d: d["artifact"].__setitem__("path", str(tmp_path / "gone.onnx")))
    rr = _pipeline(tmp_path, int8=sha, nbytes=nbytes)
    assert main(["gate", str(cand), "--device", "host-cpu", "--recipe-report", str(rr)]) == expected
    assert f"artifact size {nbytes / 1e6:.3g} MB" in capsys.readouterr().out  # the pipeline's bytes / 1e6


# (case, pipeline report arguments (sha = the profiled artifact's), extra flags, reason in the first line)
UNBOUND = [
    ("another_run", {"int8": OTHER_SHA}, [], "the report comes from another run"),
    ("segmentation_report_for_gaze_profile", {"recipe": "segmentation", "int8": OTHER_SHA}, [],
     "the report comes from another run"),
    ("recipe_flag_disagrees", {"recipe": "segmentation", "int8": "SHA"}, ["--recipe", "gaze"],
     "--recipe 'gaze' but the report is of recipe 'segmentation'"),
    ("profiled_fp32_judged_as_int8", {"int8": OTHER_SHA, "fp32": "SHA"}, [],
     "the profiled artifact is its variant 'onnx_fp32', but the 'gaze' budget applies to 'onnx_int8'"),
    ("no_recipe_name", {"recipe": None, "int8": "SHA"}, ["--recipe", "gaze"], "its 'recipe' is None"),
    ("recipe_not_a_string", {"recipe": ["gaze"], "int8": "SHA"}, ["--recipe", "gaze"], "its 'recipe' is ['gaze']"),
]


@pytest.mark.parametrize("case,kw,flags,reason", UNBOUND, ids=[c[0] for c in UNBOUND])
def test_unbound_recipe_report_is_invalid(case: str, kw: dict, flags: list[str], reason: str, report: Path,
                                          sha: str, size: int, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rr = _pipeline(tmp_path, **{k: (sha if v == "SHA" else v) for k, v in kw.items()}, nbytes=size)
    assert main(["gate", str(report), "--device", "host-cpu", *flags, "--recipe-report", str(rr),
                 "--allow-invalid"]) == 4  # a mismatch is not a measurement problem: never allowed
    line = _first_err_line(capsys)
    assert "--recipe-report is not bound to the profiled model" in line and reason in line, line


def test_profile_without_artifact_sha_cannot_be_bound(report: Path, sha: str, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    from shutil import copyfile

    cand = tmp_path / "cand.json"
    copyfile(report, cand)
    copyfile(report.parent / "a.profile.samples.npy", tmp_path / "a.profile.samples.npy")
    edit(cand, lambda d: d["artifact"].__setitem__("sha256", None))
    rr = _pipeline(tmp_path, int8=sha, nbytes=None)
    assert main(["gate", str(cand), "--device", "host-cpu", "--recipe", "gaze"]) == 0  # no report: not bound
    assert main(["gate", str(cand), "--device", "host-cpu", "--recipe-report", str(rr)]) == 4
    assert "names no artifact SHA-256" in _first_err_line(capsys)


@pytest.mark.parametrize("metric", [True, float("nan"), "5.0"])
def test_bound_report_with_bad_metric_is_invalid(metric: Any, report: Path, sha: str, size: int, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    rr = _pipeline(tmp_path, int8=sha, metric=metric, nbytes=size)
    assert main(["gate", str(report), "--device", "host-cpu", "--recipe-report", str(rr), "--allow-invalid"]) == 4
    assert "variants.onnx_int8.metric" in _first_err_line(capsys)


def test_model_file_candidate_is_bound_by_its_own_sha(models: dict[str, Path], tmp_path: Path) -> None:
    rr = _pipeline(tmp_path, int8=sha256_file(models["a"]), nbytes=models["a"].stat().st_size)
    flags = ["--device", "host-cpu", "--recipe-report", str(rr), "--iterations", "10", "--sessions-max", "6",
             "--threads", "1", "--allow-invalid"]
    assert main(["gate", str(models["a"]), *flags]) == 0
    assert main(["gate", str(models["slow"]), *flags]) == 4  # another model than the report's
