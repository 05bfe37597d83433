"""`edgekd estimate` / `edgekd calibrate`: per-operator work on hand-built graphs (golden values), the
roofline formula, calibration recovering known parameters, calibration files, CLI exit codes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from support.profile_helpers import make_cnn

from edgekd.cli import main
from edgekd.errors import ConfigError, ProfileError
from edgekd.profile.calibrate import Sample, calibrate_samples, load_calibration, save_calibration
from edgekd.profile.estimate import GraphWork, Machine, OpWork, analyze_onnx, estimate, predict_ms

FAST = ["--sessions", "3", "--iterations", "20", "--warmup-s", "0", "--warmup-iters", "2", "--min-duration-s", "0",
        "--no-progress", "--threads", "1", "--no-markdown"]


def test_conv_net_work_golden(tmp_path: Path) -> None:
    m = make_cnn(tmp_path / "m.onnx", channels=8, hw=(16, 16), depth=2)
    w = analyze_onnx(m, {"x": (1, 3, 16, 16)})
    assert [o.op for o in w.ops] == ["Conv", "Conv", "GlobalAveragePool", "Gemm"]
    c0, c1, gap, fc = w.ops
    # Conv FLOPs = 2 * numel(out) * Cin/g * kh * kw; the Relu is fused (1 op per element added).
    assert c0.flops == pytest.approx(2 * 8 * 256 * 3 * 9 + 8 * 256)
    assert c1.flops == pytest.approx(2 * 8 * 256 * 8 * 9 + 8 * 256)
    assert c0.fused == ["/block0/act/Relu"]
    # bytes: input + weight + bias + output, fp32; the fused Relu adds no traffic.
    assert c0.bytes == pytest.approx(4 * (3 * 256 + 8 * 27 + 8 + 8 * 256))
    assert gap.flops == pytest.approx(8 * 256) and fc.flops == pytest.approx(2 * 2 * 8)
    assert w.folded == 1  # the Flatten is a view
    assert {o.precision for o in w.ops} == {"fp32"} and w.unknown_shapes == 0
    # Batch 4 scales the activations' work.
    w4 = analyze_onnx(m, {"x": (4, 3, 16, 16)})
    assert w4.ops[1].flops == pytest.approx(4 * c1.flops)


def test_roofline_formula() -> None:
    ops = [OpWork("a", "Conv", "fp32", 2e9, 1e6), OpWork("b", "Add", "fp32", 1e3, 4e9),
           OpWork("c", "Conv", "int8", 8e9, 1e6)]
    work = GraphWork(ops, {}, 0, 0)
    m = Machine({"fp32": 100.0, "int8": 400.0}, 20.0, 5.0)
    # a: compute 20 ms; b: memory 200 ms; c: compute 20 ms; 3 kernels * 5 us
    assert predict_ms(work, m) == pytest.approx(20 + 200 + 20 + 0.015)
    no_int8 = Machine({"fp32": 100.0}, None, 0.0)  # int8 falls back to fp32; no bandwidth: memory is free
    assert predict_ms(work, no_int8) == pytest.approx(20 + 1e-5 + 80)


def _qdq_model(path: Path) -> Path:
    """x -> Q -> DQ -> Conv(DQ(int8 W)) -> Q -> DQ -> y; also a Shape->Gather->Reshape chain to fold."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.integers(-5, 5, (16, 8, 3, 3)).astype(np.int8), "wq"),
             numpy_helper.from_array(np.array(0.02, np.float32), "ws"),
             numpy_helper.from_array(np.array(0, np.int8), "wz"),
             numpy_helper.from_array(np.array(0.05, np.float32), "s"),
             numpy_helper.from_array(np.array(128, np.uint8), "z"),
             numpy_helper.from_array(np.array([0], np.int64), "idx0")]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="q_in"),
        helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"], name="dq_in"),
        helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["wd"], name="dq_w"),
        helper.make_node("Conv", ["xd", "wd"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("QuantizeLinear", ["c", "s", "z"], ["cq"], name="q_out"),
        helper.make_node("DequantizeLinear", ["cq", "s", "z"], ["cd"], name="dq_out"),
        helper.make_node("Shape", ["cd"], ["shp"], name="shape"),
        helper.make_node("Gather", ["shp", "idx0"], ["n"], name="gather"),
        helper.make_node("Concat", ["n", "minus1"], ["newshape"], name="concat", axis=0),
        helper.make_node("Reshape", ["cd", "newshape"], ["y"], name="reshape"),
    ]
    inits.append(numpy_helper.from_array(np.array([-1], np.int64), "minus1"))
    g = helper.make_graph(nodes, "qdq", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 10, 10])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, str(path))
    return path


def test_qdq_conv_is_one_int8_kernel_and_shape_chains_fold(tmp_path: Path) -> None:
    w = analyze_onnx(_qdq_model(tmp_path / "q.onnx"))
    ops = {o.node: o for o in w.ops}
    # q_in stays (a float->int8 kernel at the graph input); dq_in, dq_w absorbed; q_out fused into the conv;
    # dq_out stays: its consumers (Shape, Reshape) are folded/views, but its output leaves the graph in float.
    assert "conv" in ops and ops["conv"].precision == "int8" and ops["conv"].fused == ["q_out"]
    assert ops["conv"].flops == pytest.approx(2 * 16 * 100 * 8 * 9 + 16 * 100)  # + the fused Q, 1 op each
    # int8 input (800 B) + int8 weight (1152 B) + the int8 output after the fused Q (1600 B)
    assert ops["conv"].bytes == pytest.approx(800 + 16 * 8 * 9 + 1600)
    assert not {"shape", "gather", "concat", "reshape", "dq_w", "dq_in"} & set(ops)
    assert set(ops) == {"q_in", "conv", "dq_out"}


def test_dynamic_dims_need_a_shape(tmp_path: Path) -> None:
    m = make_cnn(tmp_path / "m.onnx")
    with pytest.raises(ProfileError, match=r"input 'x' has dynamic dims \['batch'\].*--input x=1x3x16x16"):
        analyze_onnx(m)
    with pytest.raises(ProfileError, match="rank 3"):
        analyze_onnx(m, {"x": (1, 3, 16)})
    with pytest.raises(ProfileError, match="dim 2 must be 16"):
        analyze_onnx(m, {"x": (1, 3, 8, 16)})
    with pytest.raises(ConfigError, match="no input 'z'"):
        analyze_onnx(m, {"z": (1,)})


def test_estimate_is_an_interval(tmp_path: Path) -> None:
    m = make_cnn(tmp_path / "m.onnx", dynamic_batch=False)
    e = estimate(m, Machine({"fp32": 100.0}, 10.0, 2.0, band=(0.8, 1.5)))
    assert e.low_ms == pytest.approx(0.8 * e.point_ms) and e.high_ms == pytest.approx(1.5 * e.point_ms)
    assert e.point_ms > 4 * 2.0 / 1000  # at least the overhead of 4 kernels
    d = e.to_json()
    assert d["schema"] == "edgekd.estimate/1" and d["work"]["kernels"] == 4 and d["top_kernels"]


def _synthetic_samples(truth: Machine, n: int, seed: int = 0) -> list[Sample]:
    rng = np.random.default_rng(seed)
    out = []
    for j in range(n):
        ops = []
        for i in range(int(rng.integers(3, 40))):
            prec = "int8" if (j % 2 == 0 and i % 2 == 0) else "fp32"
            ops.append(OpWork(f"n{i}", "Conv", prec, float(10 ** rng.uniform(3, 8.5)), float(10 ** rng.uniform(2, 7))))
        w = GraphWork(ops, {}, 0, 0)
        out.append(Sample(f"m{j}", w, predict_ms(w, truth)))
    return out


def test_calibration_recovers_known_parameters() -> None:
    truth = Machine({"fp32": 80.0, "int8": 300.0}, 12.0, 3.0)
    samples = _synthetic_samples(truth, 12)
    prior = Machine({"fp32": 190.0, "int8": 840.0}, 20.0, 4.0)
    cal = calibrate_samples(samples, prior, device="host-cpu")
    m = cal.machine
    assert m.peak_gflops["fp32"] == pytest.approx(80.0, rel=0.05)
    assert m.peak_gflops["int8"] == pytest.approx(300.0, rel=0.05)
    assert m.bandwidth_gbs == pytest.approx(12.0, rel=0.05)
    assert m.op_overhead_us == pytest.approx(3.0, rel=0.1)
    assert cal.rms_log_error < 0.02
    lo, hi = m.band
    assert lo <= 1.0 <= hi and hi / lo < 1.3  # exact data: a narrow leave-one-out band
    # Held-out prediction on fresh graphs of the same machine.
    for s in _synthetic_samples(truth, 4, seed=7):
        assert predict_ms(s.work, m) == pytest.approx(s.measured_ms, rel=0.05)


def test_few_reports_keep_the_datasheet_band() -> None:
    from edgekd.profile.estimate import DATASHEET_BAND

    truth = Machine({"fp32": 80.0}, 12.0, 3.0)
    cal = calibrate_samples(_synthetic_samples(truth, 2), Machine({"fp32": 100.0}, 20.0, 5.0))
    assert cal.machine.band == DATASHEET_BAND and all(p["loo_predicted_ms"] is None for p in cal.points)
    with pytest.raises(ConfigError, match="no reports"):
        calibrate_samples([], Machine({"fp32": 100.0}, 20.0, 5.0))


def test_calibration_file_roundtrip_and_bad_files(tmp_path: Path) -> None:
    truth = Machine({"fp32": 80.0}, 12.0, 3.0)
    cal = calibrate_samples(_synthetic_samples(truth, 4), Machine({"fp32": 100.0}, 20.0, 5.0), device="host-cpu")
    p = save_calibration(cal, tmp_path / "c.json")
    m, doc = load_calibration(p)
    assert doc["schema"] == "edgekd.calibration/1" and doc["device"] == "host-cpu"
    assert m.peak_gflops["fp32"] == pytest.approx(cal.machine.peak_gflops["fp32"])
    assert m.band == pytest.approx(cal.machine.band) and m.source == str(p)
    assert [x.name for x in tmp_path.iterdir()] == ["c.json"]  # atomic: no temp files left
    bad = tmp_path / "bad.json"
    for text, msg in (("{", "not a JSON"), ('{"schema": "x"}', "expected 'edgekd.calibration/1'"),
                      ('{"schema": "edgekd.calibration/1"}', "malformed")):
        bad.write_text(text)
        with pytest.raises(ConfigError, match=msg):
            load_calibration(bad)
    doc["band"] = [1.2, 2.0]
    bad.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match="band"):
        load_calibration(bad)


# ---- CLI ------------------------------------------------------------------------------------------
def test_cli_estimate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = make_cnn(tmp_path / "m.onnx")
    out = tmp_path / "e" / "est.json"
    assert main(["estimate", str(m), "--device", "host-cpu", "--input", "x=2x3x16x16", "--out", str(out)]) == 0
    d = json.loads(out.read_text())
    lat = d["latency_ms"]
    assert lat["low"] < lat["estimate"] < lat["high"] and d["device"] == "host-cpu"
    assert d["machine"]["source"] == "datasheet" and d["work"]["inputs"] == {"x": [2, 3, 16, 16]}
    assert "interval" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["{missing}", "--device", "host-cpu"], "no such file"),
    (["{notmodel}", "--device", "host-cpu"], "not an ONNX model"),
    (["{model}", "--device", "host-cpu"], "--input x=1x3x16x16"),
    (["{model}", "--device", "host-cpu", "--input", "x=1x3x8x16"], "dim 2 must be 16"),
    (["{model}", "--device", "hots-cpu", "--input", "x=1x3x16x16"], "Did you mean 'host-cpu'"),
    (["{model}", "--input", "x=1x3x16x16"], "neither --device nor --calibration"),
    (["{model}", "--calibration", "{missing}", "--input", "x=1x3x16x16"], "no such file"),
])
def test_cli_estimate_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                                message: str) -> None:
    model = make_cnn(tmp_path / "m.onnx")
    notmodel = tmp_path / "bad.onnx"
    notmodel.write_bytes(b"not protobuf \x00\x01" * 8)
    subst = {"{missing}": str(tmp_path / "nope.onnx"), "{notmodel}": str(notmodel), "{model}": str(model)}
    out = tmp_path / "est.json"
    assert main(["estimate", *[subst.get(a, a) for a in args], "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.onnx", "m.onnx"]  # nothing written


@pytest.fixture
def three_reports(tmp_path: Path) -> list[Path]:
    reps = []
    for i, (c, hw) in enumerate([(4, (16, 16)), (8, (24, 24)), (16, (16, 16))]):
        m = make_cnn(tmp_path / f"m{i}.onnx", channels=c, hw=hw, dynamic_batch=False, seed=i)
        r = tmp_path / f"r{i}.json"
        assert main(["profile", str(m), "--out", str(r), *FAST]) == 0
        reps.append(r)
    return reps


def test_cli_calibrate_then_estimate(tmp_path: Path, three_reports: list[Path],
                                     capsys: pytest.CaptureFixture[str]) -> None:
    cal = tmp_path / "cal" / "host.json"
    rc = main(["calibrate", *map(str, three_reports), "--out", str(cal), "--device", "host-cpu", "--allow-invalid"])
    assert rc == 0
    doc = json.loads(cal.read_text())
    assert doc["schema"] == "edgekd.calibration/1" and doc["fit"]["n_reports"] == 3
    assert doc["runtime"]["name"] == "onnxruntime" and doc["runtime"]["threads"] == 1
    assert all(p["loo_predicted_ms"] is not None for p in doc["fit"]["points"])
    lo, hi = doc["band"]
    assert lo <= 1.0 <= hi and all(math.isfinite(v) for v in doc["characteristics"]["peak_gflops"].values())
    assert "calibrated on 3 report(s)" in capsys.readouterr().out
    est = tmp_path / "est.json"
    assert main(["estimate", str(tmp_path / "m1.onnx"), "--calibration", str(cal), "--device", "host-cpu",
                 "--out", str(est)]) == 0
    d = json.loads(est.read_text())
    assert d["machine"]["source"] == str(cal) and d["latency_ms"]["low"] <= d["latency_ms"]["high"]
    # A calibration fitted for one device is refused for another.
    assert main(["estimate", str(tmp_path / "m1.onnx"), "--calibration", str(cal), "--device", "raspberry-pi-5"]) == 2
    assert "fitted for device 'host-cpu'" in capsys.readouterr().err


def test_cli_calibrate_bad_input(tmp_path: Path, three_reports: list[Path],
                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cal.json"
    args = ["--out", str(out), "--allow-invalid"]
    # a missing report; a file that is not a report
    assert main(["calibrate", str(tmp_path / "nope.json"), *args]) == 2
    assert "no such profile report" in capsys.readouterr().err
    (tmp_path / "x.json").write_text('{"a": 1}')
    assert main(["calibrate", str(tmp_path / "x.json"), *args]) == 2
    assert "not a valid edgekd.profile/1 report" in capsys.readouterr().err
    # an artifact changed after profiling
    make_cnn(tmp_path / "m1.onnx", channels=9, hw=(24, 24), dynamic_batch=False)
    assert main(["calibrate", *map(str, three_reports), *args]) == 2
    assert "different SHA-256" in capsys.readouterr().err
    # an artifact that moved away
    (tmp_path / "m1.onnx").unlink()
    assert main(["calibrate", *map(str, three_reports), *args]) == 2
    err = capsys.readouterr().err
    assert "was not found" in err and "--artifact-dir" in err
    # an invalid run, without --allow-invalid
    d = json.loads(three_reports[0].read_text())
    d["valid"], d["invalid_reasons"] = False, ["CPU clock drifted 25%"]
    three_reports[0].write_text(json.dumps(d))
    assert main(["calibrate", str(three_reports[0]), "--out", str(out)]) == 2
    assert "CPU clock drifted 25%" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob(".cal.json*"))


def test_data_dependent_shapes_are_counted_and_noted(tmp_path: Path) -> None:
    """NonZero's output length depends on the data: its consumers' work is unknown, and the estimate says so."""
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
             helper.make_node("NonZero", ["r"], ["nz"], name="nonzero"),
             helper.make_node("Transpose", ["nz"], ["y"], name="transpose")]
    g = helper.make_graph(nodes, "nz", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.INT64, None)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, str(tmp_path / "nz.onnx"))
    e = estimate(tmp_path / "nz.onnx", Machine({"fp32": 100.0}, 10.0, 1.0))
    assert [o.node for o in e.work.ops] == ["relu", "nonzero", "transpose"]
    assert e.work.unknown_shapes >= 1 and not next(o for o in e.work.ops if o.node == "transpose").shape_known
    assert any("could not resolve" in n for n in e.notes)


@pytest.mark.parametrize("batch", [1, 3])
def test_onnx_macs_hand_count(tmp_path: Path, batch: int) -> None:
    """The one ONNX MAC count (benchmarks quote it): conv 3->8 3x3 @16x16, conv 8->16 3x3 s2 @8x8,
    conv 16->16 3x3 @8x8, 1x1 16->1 @8x8, fc 16->4, checked against a hand count."""
    import torch
    from torch import nn

    from edgekd.profile.estimate import onnx_macs

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU(),
                                      nn.Conv2d(16, 16, 3, padding=1))
            self.side = nn.Conv2d(16, 1, 1)
            self.fc = nn.Linear(16, 4)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            f = self.body(x)
            return self.side(f), self.fc(f.mean((2, 3)))

    path = tmp_path / "net.onnx"
    torch.onnx.export(Net().eval(), (torch.zeros(1, 3, 16, 16),), str(path), input_names=["x"], dynamo=False,
                      dynamic_axes={"x": {0: "batch"}})
    per_image = 16 * 16 * 8 * 3 * 9 + 8 * 8 * 16 * 8 * 9 + 8 * 8 * 16 * 16 * 9 + 8 * 8 * 16 + 16 * 4
    assert onnx_macs(path, {"x": (batch, 3, 16, 16)}) == batch * per_image
