"""The optimize search inside ``distill-and-export`` (recipe ``optimize.enabled``): which metric judges, how
report.md and the ``next:`` hint show the pick, and a smoke run whose folder verifies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from edgekd.pipeline.artifacts import ArtifactSet
from edgekd.pipeline.models import OptimizeSection
from edgekd.pipeline.optimize_stage import optimize_metric
from edgekd.pipeline.report import _optimize
from edgekd.tasks.recipe import load_recipe


@pytest.mark.parametrize(("requested", "task_metric", "metric", "says"), [
    (None, "accuracy", "argmax", "counterpart 'argmax'"),
    (None, "click_accuracy", "sequence", "counterpart 'sequence'"),
    (None, "angular_error_deg", "sqnr", "counterpart 'sqnr'"),
    (None, "miou", "auto", "no counterpart"),
    (None, "success_rate", "auto", "no counterpart"),
    ("iou", "miou", "iou", "set in the recipe"),
])
def test_the_task_metric_is_used_where_the_search_has_it(requested: str | None, task_metric: str, metric: str,
                                                         says: str) -> None:
    got, sentence = optimize_metric(requested, task_metric)
    assert got == metric and says in sentence


def _section() -> dict[str, Any]:
    cands = [{"name": "ort-fp32", "runtime": "onnxruntime", "precision": "fp32", "artifact": "student.onnx",
              "accuracy": 1.0, "latency_p50_ms": 2.0, "status": "too slow", "why": "within budget but 2.00x"},
             {"name": "ov-int8-nncf", "runtime": "openvino", "precision": "int8",
              "artifact": "optimize/candidates/ov-int8-nncf.xml", "accuracy": 0.995, "latency_p50_ms": 1.0,
              "status": "picked", "why": "fastest within the accuracy budget"},
             {"name": "ort-int8-S8S8-pt-all", "runtime": "onnxruntime", "precision": "int8", "accuracy": 0.9,
              "latency_p50_ms": 1.5, "status": "outside the budget", "why": "agreement | too low"},
             {"name": "trt-fp16", "runtime": "tensorrt", "precision": "fp16", "status": "skipped",
              "why": "TensorRT needs an NVIDIA GPU; none here"}]
    return OptimizeSection.model_validate({
        "enabled": True, "picked": "ov-int8-nncf", "picked_artifact": "optimize/candidates/ov-int8-nncf.xml",
        "picked_runtime": "openvino", "metric": {"logits": "argmax"}, "metric_source": "the task's metric",
        "data": "held out", "budget": {"max_drop": 0.01}, "threads": 1, "timed_on": "this machine",
        "table": "optimize/optimize.md", "plot": "optimize/optimize.png", "candidates": cands,
    }).model_dump(mode="json", exclude_unset=True)


def test_report_md_names_the_pick_and_why_each_loser_lost() -> None:
    md = "\n".join(_optimize({"optimize": _section()}))
    assert "**Picked: ov-int8-nncf** (`optimize/candidates/ov-int8-nncf.xml`, openvino)" in md
    rows = [r for r in md.splitlines() if r.startswith("| ") and "candidate" not in r]
    assert [r.split(" | ")[0][2:] for r in rows] == ["ov-int8-nncf", "ort-int8-S8S8-pt-all", "ort-fp32",
                                                     "trt-fp16"]  # fastest first, unmeasured last
    assert "agreement \\| too low" in md and "TensorRT needs an NVIDIA GPU" in md
    assert _optimize({}) == []


def test_next_hint_profiles_the_pick_first(tmp_path: Path) -> None:
    arts = ArtifactSet.of(load_recipe("segmentation", preset="smoke"), tmp_path)
    hint = arts.next_commands("host-cpu", "segmentation", {"image": [1, 3, 32, 64]}, optimize=_section()) or ""
    assert hint.startswith(f"optimize picked ov-int8-nncf: edgekd profile "
                           f"{tmp_path / 'optimize/candidates/ov-int8-nncf.xml'} --runtime openvino --device "
                           "host-cpu --input image=1x3x32x64   |   ")
    assert "optimize" not in (arts.next_commands("host-cpu", "segmentation", {"image": [1, 3, 32, 64]}) or "")
    bf16 = {**_section(), "picked": "ov-default(bf16)", "picked_artifact": "student.onnx", "picked_precision": "bf16"}
    hint = arts.next_commands("host-cpu", "segmentation", {"image": [1, 3, 32, 64]}, optimize=bf16) or ""
    assert hint.startswith(f"optimize picked ov-default(bf16): edgekd profile {tmp_path / 'student.onnx'} "
                           "--runtime openvino --precision bf16 --device host-cpu")


@pytest.mark.parametrize(("overrides", "says"), [
    (("distill.qat=true",), "will be skipped"),
    (("optimize.candidates=[trt-fp16, ort-int8-U8S8-pc-all]",), "['trt-fp16']"),
    ((), None),
])
def test_capability_check_says_what_of_the_search_will_be_skipped(overrides: tuple[str, ...],
                                                                  says: str | None) -> None:
    from edgekd.config import load_device
    from edgekd.pipeline.capability import check_capabilities

    r = load_recipe("segmentation", preset="smoke", overrides=["optimize.enabled=true", *overrides])
    found = [w for w in check_capabilities(r, load_device("host-cpu")) if w.startswith("optimize")]
    assert (found[0] if found else None) is None if says is None else says in found[0]


# ~20 s on a free core (training included), longer on a shared machine
@pytest.mark.slow
def test_smoke_run_with_two_candidates_verifies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from edgekd.cli import main
    from edgekd.pipeline.runfolder import verify_run_folder

    out = tmp_path / "run"
    code = main(["distill-and-export", "segmentation", "--preset", "smoke", "--out", str(out), "--no-progress",
                 "--set", "teacher.cache=false", "--set", "optimize.enabled=true",
                 "--set", "optimize.candidates=[ort-int8-U8S8-pc-all]"])
    assert code in (0, 1, 3), "a completed run (the smoke budget may fail)"
    printed = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    opt = report["optimize"]
    assert [c["name"] for c in opt["candidates"]] == ["ort-fp32", "ort-int8-U8S8-pc-all"]
    assert opt["picked"] in ("ort-fp32", "ort-int8-U8S8-pc-all")
    losers = [c for c in opt["candidates"] if c["name"] != opt["picked"]]
    assert all(c["status"] != "picked" and c["why"] for c in losers)
    assert "validation split" in opt["data"] and "no counterpart" in opt["metric_source"]
    assert f"next: optimize picked {opt['picked']}:" in " ".join(printed.split())
    assert f"**Picked: {opt['picked']}**" in (out / "report.md").read_text()
    listed = {a["path"] for a in json.loads((out / "manifest.json").read_text())["artifacts"]}
    on_disk = {str(p.relative_to(out)) for p in (out / "optimize").rglob("*") if p.is_file()}
    assert on_disk >= {"optimize/optimize.json", "optimize/optimize.md", "optimize/optimize.png",
                       "optimize/candidates/ort-int8-U8S8-pc-all.onnx"}
    assert on_disk <= listed, "every file of the search is in the manifest"
    verdict = verify_run_folder(out)
    assert verdict.valid and verdict.state == "complete", verdict.problems
    assert main(["verify", str(out)]) == 0  # `edgekd verify RUN`, as users call it
