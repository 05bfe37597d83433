"""`edgekd profile --mode throughput` as users call it: the sweep lands in the JSON report (checked against the
ProfileDocument model) and the markdown, settings recorded; bad values exit 2 naming the flag."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.profile_helpers import make_cnn

from edgekd.cli import main
from edgekd.profile.document import ProfileDocument

FAST = ["--sessions", "2", "--iterations", "10", "--warmup-s", "0.02", "--warmup-iters", "2", "--min-duration-s",
        "0", "--no-progress", "--duration-s", "0.1"]


def _invoke(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """The command as a user runs it (edgekd.cli.main maps errors to exit codes); rc and stdout+stderr."""
    rc = main(args)
    cap = capsys.readouterr()
    return rc, cap.out + cap.err


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_cnn(tmp_path_factory.mktemp("tp") / "m.onnx")


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_throughput_mode_writes_the_sweep(model: Path, tmp_path: Path, runtime: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    if runtime == "openvino":
        pytest.importorskip("openvino", reason="the openvino extra is not installed")
    out = tmp_path / "r.json"
    res = _invoke(["profile", str(model), "--runtime", runtime, "--mode", "throughput", "--batch", "1", "--batch",
                   "2", "--streams", "1", "--streams", "2", "--threads", "1", "--out", str(out), *FAST], capsys)
    assert res[0] == 0, res[1]
    d = json.loads(out.read_text())
    ProfileDocument.model_validate(d)
    tp = d["throughput"]
    assert d["results"]["latency_ms"]["p50"] > 0  # the latency figures are kept beside the sweep
    assert [(p["batch"], p["streams"]) for p in tp["points"]] == [(1, 1), (1, 2), (2, 1), (2, 2)]
    assert all(p["items_per_s"] > 0 and p["threads_per_stream"] == 1 for p in tp["points"])
    assert tp["config"]["batches"] == [1, 2] and tp["config"]["streams"] == [1, 2]
    assert tp["config"]["duration_s"] == pytest.approx(0.1)
    assert tp["runtime_settings"]["name"] == runtime and "precision" in json.dumps(tp["runtime_settings"]).lower()
    assert tp["best"]["items_per_s"] == max(p["items_per_s"] for p in tp["points"])
    md = out.with_suffix(".md").read_text()
    assert "## Throughput" in md and "| 2 | 2 | 1 |" in md and "best" in md
    assert "<- best" in res[1] and "items/s" in res[1]


def test_latency_mode_has_no_throughput_section(model: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.json"
    fast = FAST[:-2]  # --duration-s belongs to throughput mode
    assert _invoke(["profile", str(model), "--out", str(out), *fast], capsys)[0] == 0
    assert "throughput" not in json.loads(out.read_text())


@pytest.mark.parametrize("args, words", [
    (["--mode", "foo"], ["--mode", "'foo'", "latency, throughput"]),
    (["--mode", "throughput", "--batch", "0"], ["--batch 0", ">= 1", "e.g. --batch 4"]),
    (["--mode", "throughput", "--streams", "-1"], ["--streams -1", ">= 1", "e.g. --streams 2"]),
    (["--mode", "throughput", "--duration-s", "0"], ["--duration-s 0", "> 0", "e.g. --duration-s 2"]),
    (["--batch", "2"], ["--batch", "--mode throughput"]),
    (["--duration-s", "2"], ["--duration-s applies to --mode throughput only"]),
    (["--mode", "throughput", "--runtime", "torch"], ["--mode throughput", "'torch'", "onnxruntime"]),
    (["--mode", "throughput", "--host", "pi@board"], ["--mode throughput with --host"]),
])
def test_bad_throughput_flags_exit_2(model: Path, tmp_path: Path, args: list[str], words: list[str],
                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.json"
    rc, text = _invoke(["profile", str(model), "--out", str(out), "--no-progress", *args], capsys)
    assert rc == 2, text
    for w in words:
        assert w in text, (w, text)
    assert not out.exists()
