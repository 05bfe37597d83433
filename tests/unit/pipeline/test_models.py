"""report.json / manifest.json models: the checked-in JSON Schemas are current, and the models accept
what the pipeline writes and reject what it must not."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from edgekd.pipeline.models import Manifest, RunReport, schema_texts

SCHEMAS = Path(__file__).resolve().parents[3] / "docs" / "schemas"


@pytest.mark.parametrize("name", sorted(schema_texts()))
def test_checked_in_schema_is_current(name: str) -> None:
    path = SCHEMAS / name
    assert path.is_file(), f"{path} missing: run `python -c 'from edgekd.pipeline.models import write_schemas; " \
                           "write_schemas(Path(\"docs/schemas\"))'`"
    assert path.read_text(encoding="utf-8") == schema_texts()[name], (
        f"{path} is stale: regenerate it with edgekd.pipeline.models.write_schemas")


def _report() -> dict:
    return {"schema": "edgekd.report/1", "recipe": "gaze", "recipe_hash": "ab", "preset": "smoke", "seed": 0,
            "device": "host-cpu", "inputs": {"image": [1, 1, 64, 96]},
            "metric": {"name": "angular_error_deg", "lower_is_better": True, "unit": "deg"},
            "variants": {"student_kd": {"metric": 5.0, "extras": {}, "params": 10}},
            "summary": {"distillation_gain": 1.5, "int8_within_tolerance": True}, "parity": {}, "exports": {},
            "profiles": {}, "teacher": {"source": "cache"}, "training": {"student_kd": []}, "warnings": []}


def test_report_round_trips_with_the_key_spelled_schema() -> None:
    doc = RunReport.model_validate(_report()).model_dump(mode="json", by_alias=True, exclude_unset=True)
    assert doc == _report()
    assert doc["summary"]["int8_within_tolerance"] is True  # a bool stays a bool in the union


def test_report_rejects_unknown_keys_and_wrong_schema() -> None:
    with pytest.raises(ValidationError):
        RunReport.model_validate({**_report(), "surprise": 1})
    with pytest.raises(ValidationError):
        RunReport.model_validate({**_report(), "schema": "edgekd.report/2"})


def test_manifest_requires_artifact_hashes() -> None:
    base = {"schema": "edgekd.manifest/1", "created": "t", "recipe": "gaze", "recipe_hash": "ab",
            "recipe_config": {}, "device": "host-cpu", "command": "edgekd", "versions": {}, "host": {},
            "steps": [], "artifacts": [{"path": "student.onnx", "sha256": "00", "bytes": 3}]}
    assert Manifest.model_validate(base).artifacts[0].path == "student.onnx"
    with pytest.raises(ValidationError):
        Manifest.model_validate({**base, "artifacts": [{"path": "student.onnx"}]})


def test_a_measured_profile_document_matches_its_model(tmp_path: Path) -> None:
    import json

    import torch

    from edgekd.iospec import IOSpec, TensorSpec
    from edgekd.profile.document import ProfileDocument
    from edgekd.profile.protocol import MeasureConfig, ProfileTarget, profile_artifacts
    from edgekd.runtime import SessionOptions

    spec = IOSpec(inputs=[TensorSpec("x", ("batch", 4))], outputs=[TensorSpec("y", ("batch", 2))])
    model = torch.nn.Linear(4, 2).eval()
    opts = SessionOptions(threads=1)
    target = ProfileTarget.from_module(model, spec, opts, spec.dummy_inputs({"batch": 1}, seed=0), label="lin")
    cfg = MeasureConfig(warmup_s=0.0, warmup_iters=1, sessions=1, iterations=50, min_duration_s=0.0)
    (rep,) = profile_artifacts([target], cfg, progress=False)
    rep.save(tmp_path / "p.json")
    doc = ProfileDocument.model_validate(json.loads((tmp_path / "p.json").read_text()))
    assert doc.runtime.name == "torch" and doc.results.latency_ms.p90_ucb99 is not None
    assert doc.raw_samples is not None and doc.raw_samples.shape == [1, 50]
    with pytest.raises(ValidationError):
        ProfileDocument.model_validate({**json.loads((tmp_path / "p.json").read_text()), "schema": "other/1"})
