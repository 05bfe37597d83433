"""The reliability battery (issue 20): hundreds of distinct bad inputs over every command, as a hostile or
clumsy user would type them. Each row asserts the exit code (2 bad input/environment, 4 where an invalid
measurement is the point), a message naming the problem, no traceback, and that nothing was written or
changed (a snapshot of the working folder, file hashes included, before and after).

Most rows call ``edgekd.cli.main`` in-process (fast); a few run ``python -m edgekd`` to prove the process
exit code. ``test_zz_battery_counts`` prints the totals: inputs tried, clean exit 2, tracebacks, wrong results.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from edgekd.cli import main

# --- the working folder every row runs in (built once; no row may change it) -----------------------------------


def _cnn(path: Path, *, batch: object = "batch", h: object = 16) -> Path:
    """x[batch,3,H,16] -> Conv3x3 -> Relu -> GlobalAveragePool -> Flatten -> Gemm -> y[batch,2]."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(0, 0.1, (4, 3, 3, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(np.zeros(4, np.float32), "b"),
             numpy_helper.from_array(rng.normal(0, 0.1, (2, 4)).astype(np.float32), "fw"),
             numpy_helper.from_array(np.zeros(2, np.float32), "fb")]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]), helper.make_node("GlobalAveragePool", ["r"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"]), helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], transB=1)]
    g = helper.make_graph(nodes, "cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, h, 16])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 2])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, str(path))
    return path


def _plan(w: Path, name: str, **changes: object) -> None:
    plan = {"schema": "edgekd.trt-plan/2", "onnx": "m.onnx", "onnx_sha256": "0" * 64, "engine": "m.engine",
            "precision": "fp16", "profiles": [], "workspace_mb": 1024, "timing_cache": "timing.cache"}
    plan.update(changes)
    (w / "plans" / name).write_text(json.dumps(plan))


def _build_world(w: Path) -> None:
    m = _cnn(w / "m.onnx")
    _cnn(w / "fixed.onnx", batch=1)
    _cnn(w / "dynh.onnx", h="h")
    raw = m.read_bytes()
    (w / "rand.onnx").write_bytes(np.random.default_rng(1).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    (w / "empty.onnx").write_bytes(b"")
    (w / "text.onnx").write_text("this is not a model\n")
    (w / "trunc.onnx").write_bytes(raw[: len(raw) // 3])
    (w / "m.onnx.bak").write_bytes(raw)
    (w / "text.xml").write_text("just text\n")
    (w / "afile").write_text("a plain file\n")
    (w / "adir").mkdir()
    (w / "wdir.bin").mkdir()  # where an OpenVINO IR's weights would go
    (w / "out").mkdir()
    cal = {"calobj": np.array([{"a": 1}, None], dtype=object), "calwrong": np.zeros((1, 5, 7, 7), np.float32),
           "calstr": np.array(["a", "b"]), "calnan": np.full((1, 3, 16, 16), np.nan, np.float32),
           "calrank": np.zeros((3, 16), np.float32), "calint": np.zeros((1, 3, 9, 16), np.int64)}
    for name, arr in cal.items():
        (w / name).mkdir()
        np.save(w / name / "a.npy", arr)
    (w / "calempty").mkdir()
    (w / "calzip").mkdir()
    (w / "calzip" / "a.npz").write_bytes(b"PK not a zip")
    (w / "calnpy").mkdir()
    (w / "calnpy" / "a.npy").write_bytes(b"\x93NUMPY garbage")
    (w / "calimg").mkdir()
    (w / "calimg" / "a.png").write_bytes(b"not a png")
    # known_hosts files OpenSSH writes and paramiko cannot read itself
    key = "AAAAC3NzaC1lZDI1NTE5AAAAICGv0aEoctRsxRjnmkgHb/Bcg+P/ZUWRgXIxLpD5OKO8"
    (w / "kh_rev").write_text(f"@revoked 127.0.0.1 ssh-ed25519 {key}\n")
    (w / "kh_ca").write_text(f"@cert-authority *.example ssh-ed25519 {key}\n")
    (w / "kh_junk").write_text("garbage line\n|1|bad|hash ssh-rsa AAAA\n")
    (w / "kh_empty").write_text("")
    (w / "id_key").write_text("not a key\n")
    # TensorRT build plans with bad names and fields
    (w / "plans").mkdir()
    for field in ("onnx", "engine", "timing_cache"):
        _plan(w, f"up_{field}.json", **{field: "../x.bin"})
        _plan(w, f"abs_{field}.json", **{field: "/etc/passwd"})
    for field in ("parity_feeds",):
        _plan(w, f"up_{field}.json", **{field: "../../x"})
        _plan(w, f"sub_{field}.json", **{field: "a/b"})
    _plan(w, "empty_onnx.json", onnx="")
    _plan(w, "dotdot_engine.json", engine="..")
    _plan(w, "int_onnx.json", onnx=5)
    _plan(w, "int4.json", precision="int4")
    _plan(w, "ws0.json", workspace_mb=0)
    _plan(w, "wsstr.json", workspace_mb="big")
    _plan(w, "unknown.json", colour="red")
    _plan(w, "schema.json", schema="other/1")
    _plan(w, "noonnx.json")
    (w / "plans" / "notjson.json").write_text("{not json")
    (w / "plans" / "list.json").write_text("[1, 2]")
    (w / "plans" / "partial.json").write_text(json.dumps({"schema": "edgekd.trt-plan/2", "onnx": "m.onnx"}))
    # a finished run (what `edgekd export` reads): weights whose sha256 the manifest records
    run = w / "run"
    run.mkdir()
    (run / "student_kd.safetensors").write_bytes(b"weights")
    (run / "student_alone.safetensors").write_bytes(b"other weights")
    (run / "manifest.json").write_text(json.dumps({"schema": "edgekd.manifest/1", "recipe_config": {}, "artifacts": [
        {"path": "student_kd.safetensors", "sha256": hashlib.sha256(b"original weights").hexdigest()}]}))
    (run / "student.onnx").write_bytes(raw)
    (w / "norun").mkdir()
    (w / "norun" / "student_kd.safetensors").write_bytes(b"weights")
    (w / "badrun").mkdir()
    (w / "badrun" / "manifest.json").write_text("{broken")
    # profile reports for `calibrate`
    (w / "notreport.json").write_text('{"a": 1}')
    (w / "badjson.json").write_text("{oops")
    # personalize: images and labels
    (w / "imgs").mkdir()
    (w / "imgs" / "0.png").write_bytes(b"not really a png")
    (w / "labels.csv").write_text("file,yaw_deg,pitch_deg\n0.png,1,2\n")
    (w / "badlabels.csv").write_text("image,yaw,pitch\n0.png,1,2\n")
    (w / "ckpt.safetensors").write_bytes(b"x" * 32)
    (w / "recipe_bad.yaml").write_text("name: [unclosed\n")


def _snapshot(root: Path) -> dict[str, tuple[int, str]]:
    """Every path under ``root`` with its kind/size and content hash: any write, delete or temp file shows."""
    snap: dict[str, tuple[int, str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            snap[os.path.relpath(os.path.join(dirpath, d), root) + "/"] = (-1, "")
        for f in filenames:
            p = os.path.join(dirpath, f)
            with open(p, "rb") as fh:
                snap[os.path.relpath(p, root)] = (os.path.getsize(p), hashlib.sha256(fh.read()).hexdigest())
    return snap


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    w = tmp_path_factory.mktemp("battery")
    _build_world(w)
    return w


@pytest.fixture(scope="session")
def world_snapshot(world: Path) -> dict[str, tuple[int, str]]:
    return _snapshot(world)


# --- the rows: (id, argv with {w} for the working folder, exit code, text the message must contain) ------------

FAST = "--sessions 2 --iterations 5 --warmup-s 0 --warmup-iters 0 --min-duration-s 0 --no-progress --threads 1"
COMMANDS = ["profile", "quantize", "export", "estimate", "calibrate", "doctor", "build-engine", "personalize",
            "distill", "distill-and-export", "recipes", "devices", "gate"]


def _rows() -> Iterator[tuple[str, str, int, str]]:
    # usage errors: every command, an unknown option, a missing value, a stray argument
    for c in COMMANDS:
        yield f"{c}-unknown-option", f"{c} --bogus-flag", 2, "no such option"
    for c, a in (("recipes", "extra"), ("devices", "extra"), ("doctor", "extra")):
        yield f"{c}-extra-argument", f"{c} {a}", 2, "unexpected extra argument"
    yield from [
        ("top-unknown-command", "nosuchcmd", 2, "no such command"),
        ("top-typo-command", "profil m.onnx", 2, "did you mean 'profile'"),
        ("top-unknown-option", "--bogus", 2, "no such option"),
        ("top-empty-command", "''", 2, "no such command"),
        ("profile-no-argument", "profile", 2, "missing argument"),
        ("quantize-no-argument", "quantize", 2, "missing argument"),
        ("quantize-no-out", "quantize m.onnx", 2, "missing option '--out'"),
        ("export-no-format", "export m.onnx --out o.onnx", 2, "missing option '--format'"),
        ("export-no-out", "export m.onnx --format onnx", 2, "missing option '--out'"),
        ("estimate-no-argument", "estimate", 2, "missing argument"),
        ("calibrate-no-out", "calibrate notreport.json", 2, "missing option '--out'"),
        ("calibrate-no-reports", "calibrate --out c.json", 2, "missing argument"),
        ("build-engine-no-argument", "build-engine", 2, "missing argument"),
        ("personalize-no-images", "personalize ckpt.safetensors --labels labels.csv --out p", 2, "--images"),
        ("personalize-no-labels", "personalize ckpt.safetensors --images imgs --out p", 2, "--labels"),
        ("personalize-no-out", "personalize ckpt.safetensors --images imgs --labels labels.csv", 2, "--out"),
        ("distill-no-recipe", "distill", 2, "missing argument"),
        ("gate-no-argument", "gate", 2, "missing argument"),
        ("gate-typo-option", "gate r.json --thresold 0.1", 2, "--thresold"),
        ("profile-out-without-value", "profile m.onnx --out", 2, "requires an argument"),
        ("quantize-out-without-value", "quantize m.onnx --out", 2, "requires an argument"),
        ("export-format-without-value", "export m.onnx --out o.onnx --format", 2, "requires an argument"),
        ("doctor-json-without-value", "doctor --json", 2, "requires an argument"),
    ]
    # numbers that do not parse
    for c, flag in (("profile m.onnx", "--sessions"), ("profile m.onnx", "--iterations"),
                    ("profile m.onnx", "--threads"), ("profile m.onnx", "--warmup-iters"),
                    ("quantize m.onnx --out q.onnx", "--calib-count"), ("quantize m.onnx --out q.onnx", "--threads"),
                    ("export m.onnx --format onnx --out o.onnx", "--opset"),
                    ("export m.onnx --format tensorrt --out t", "--max-batch"),
                    ("export m.onnx --format tensorrt --out t", "--workspace-mb"),
                    ("personalize ckpt.safetensors --images imgs --labels labels.csv --out p", "--steps"),
                    ("personalize ckpt.safetensors --images imgs --labels labels.csv --out p", "--seed")):
        for bad in ("abc", "1.5"):
            yield f"{c.split()[0]}{flag}-not-int-{bad}", f"{c} {flag} {bad}", 2, f"invalid value for '{flag}'"
    for c, flag in (("profile m.onnx", "--warmup-s"), ("profile m.onnx", "--min-duration-s"),
                    ("quantize m.onnx --out q.onnx", "--min-sqnr"), ("quantize m.onnx --out q.onnx", "--mean"),
                    ("export m.onnx --format onnx --out o.onnx", "--atol"),
                    ("export m.onnx --format onnx --out o.onnx", "--rtol"),
                    ("personalize ckpt.safetensors --images imgs --labels labels.csv --out p", "--lr")):
        yield f"{c.split()[0]}{flag}-not-float", f"{c} {flag} fast", 2, f"invalid value for '{flag}'"
    # non-finite and out-of-range numbers: exit 2 naming the flag
    for flag, v, needle in (("--warmup-s", "nan", "a finite number"), ("--warmup-s", "inf", "a finite number"),
                            ("--warmup-s", "-inf", "a finite number"), ("--warmup-s", "-1", ">= 0"),
                            ("--min-duration-s", "nan", "a finite number"), ("--min-duration-s", "inf", "a finite number"),
                            ("--min-duration-s", "-0.5", ">= 0"), ("--sessions", "0", ">= 1"),
                            ("--sessions", "-3", ">= 1"), ("--iterations", "0", ">= 1"),
                            ("--iterations", "-1", ">= 1"), ("--warmup-iters", "-1", ">= 0"),
                            ("--threads", "0", ">= 1"), ("--threads", "-2", ">= 1")):
        yield f"profile{flag}={v}", f"profile m.onnx {flag} {v} --no-progress", 2, f"{flag} {v}: must be {needle}"
    for flag, v in (("--min-sqnr", "nan"), ("--min-sqnr", "inf"), ("--min-sqnr", "-inf"), ("--mean", "nan"),
                    ("--mean", "inf"), ("--std", "nan"), ("--std", "-inf"), ("--std", "0"), ("--threads", "0"),
                    ("--threads", "-1"), ("--calib-count", "0"), ("--calib-count", "-5")):
        yield f"quantize{flag}={v}", f"quantize m.onnx --out q.onnx {flag} {v}", 2, flag
    for flag, v in (("--atol", "nan"), ("--atol", "inf"), ("--atol", "-1"), ("--rtol", "nan"), ("--rtol", "-0.1"),
                    ("--max-batch", "0"), ("--max-batch", "-4"), ("--workspace-mb", "0"), ("--calib-count", "0")):
        yield f"export{flag}={v}", f"export m.onnx --format tensorrt --out t {flag} {v}", 2, flag
    for flag, v in (("--opset", "0"), ("--opset", "3"), ("--exporter", "onnxscript")):
        yield f"export-run{flag}={v}", f"export run --format onnx --out o.onnx {flag} {v}", 2, flag
    for flag, v, needle in (("--lr", "0", "--lr"), ("--lr", "-1", "--lr"), ("--lr", "nan", "--lr"),
                            ("--lr", "inf", "--lr"), ("--seed", "-1", "--seed"), ("--seed", "1" + "0" * 30, "--seed"),
                            ("--steps", "0", "--steps"), ("--opset", "3", "--opset"),
                            ("--exporter", "tflite", "--exporter")):
        yield (f"personalize{flag}={v[:8]}", f"personalize ckpt.safetensors --images imgs --labels labels.csv "
               f"--out p {flag} {v}", 2, needle)
    # choices never silently ignored
    for c, flag, v in (("profile m.onnx", "--precision", "int4"), ("profile m.onnx", "--precision", "FP32"),
                       ("profile m.onnx", "--precision", "''"), ("profile m.onnx", "--runtime", "onnxruntim"),
                       ("profile m.onnx", "--runtime", "tflite"),
                       ("quantize m.onnx --out q.onnx", "--precision", "int4"),
                       ("quantize m.onnx --out q.onnx", "--precision", "int16"),
                       ("quantize m.onnx --out q.onnx", "--precision", "bf16"),
                       ("quantize m.onnx --out q.onnx", "--runtime", "tflite"),
                       ("quantize m.onnx --out q.onnx", "--method", "kl"),
                       ("quantize m.onnx --out q.onnx", "--calib-layout", "chw"),
                       ("export m.onnx --out o.onnx", "--format", "tflite"),
                       ("export m.onnx --out o.onnx", "--format", "ONNX"),
                       ("export m.onnx --format tensorrt --out t", "--precision", "int4"),
                       ("export m.onnx --format tensorrt --out t", "--precision", "bf16"),
                       ("export m.onnx --format onnx --out o.onnx", "--precision", "fp16"),
                       ("export m.onnx --format onnx --out o.onnx", "--precision", "int8"),
                       ("export m.onnx --format onnx --out o.onnx", "--opset", "17"),
                       ("export m.onnx --format onnx --out o.onnx", "--exporter", "dynamo")):
        yield f"{c.split()[0]}{flag}={v}-{c.split()[-1]}", f"{c} {flag} {v}", 2, flag
    # model files that are missing or not models
    for c in ("profile {m}", "quantize {m} --out q.onnx", "export {m} --format onnx --out o.onnx",
              "estimate {m} --device host-cpu"):
        cmd = c.split()[0]
        yield f"{cmd}-missing-model", c.format(m="nope.onnx"), 2, "nope.onnx"
        yield f"{cmd}-folder-as-model", c.format(m="adir"), 2, "adir"
        for bad, needle in (("rand.onnx", "not an onnx model"), ("empty.onnx", "onnx"), ("text.onnx", "onnx"),
                            ("trunc.onnx", "not an onnx model")):
            yield f"{cmd}-{bad}", c.format(m=bad), 2, needle
    yield from [
        ("profile-not-an-ir", "profile text.xml", 2, "openvino"),
        ("profile-unknown-suffix", "profile m.onnx.bak", 2, "cannot tell the runtime"),
        ("profile-engine-without-tensorrt", "profile afile --runtime tensorrt", 2, "tensorrt"),
        ("personalize-missing-checkpoint", "personalize nope.safetensors --images imgs --labels labels.csv "
         "--out p", 2, "nope.safetensors"),
        ("personalize-garbage-checkpoint", "personalize ckpt.safetensors --images imgs --labels labels.csv "
         "--out p", 2, "ckpt.safetensors"),
        ("personalize-missing-labels", "personalize ckpt.safetensors --images imgs --labels nope.csv --out p", 2,
         "--labels"),
        ("personalize-labels-folder", "personalize ckpt.safetensors --images imgs --labels adir --out p", 2,
         "--labels"),
        ("personalize-images-file", "personalize ckpt.safetensors --images afile --labels labels.csv --out p", 2,
         "--images"),
        ("personalize-images-missing", "personalize ckpt.safetensors --images nodir --labels labels.csv --out p",
         2, "--images"),
        ("personalize-bad-header", "personalize ckpt.safetensors --images imgs --labels badlabels.csv --out p", 2,
         "header"),
    ]
    # input shapes
    for c in ("profile m.onnx", "estimate m.onnx --device host-cpu", "quantize m.onnx --out q.onnx"):
        cmd = c.split()[0]
        for shape, needle in (("x=1x3x8x16", "16"), ("x=1x3x16", "rank"), ("z=1x3x16x16", "'z'"),
                              ("x:1x3x16x16", "name="), ("x=1xAx16x16", "integer"), ("x=", "x="),
                              ("x=1x3x16x16x1", "rank"), ("x=1x4x16x16", "3")):
            yield f"{cmd}-input-{shape}", f"{c} --input {shape}", 2, needle
    yield from [
        ("profile-dynamic-height-without-input", "profile dynh.onnx", 2, "--input x=1x3x1x16"),
        ("estimate-dynamic-height-without-input", "estimate dynh.onnx --device host-cpu", 2, "'h'"),
        ("profile-fixed-batch-2", "profile fixed.onnx --input x=2x3x16x16", 2, "dim 0 must be 1"),
        ("profile-input-given-twice", "profile m.onnx --input x=1x3x16x16 --input x=2x3x16x16", 2, "given twice"),
    ]
    # calibration data
    for folder, needle in (("calobj", "not a readable numeric array"), ("calwrong", "dim 1 must be 3"),
                           ("calstr", "not a number type"), ("calnan", "nan or inf"), ("calrank", "rank"),
                           ("calint", "dim 2 must be 16"), ("calempty", "no images"), ("calzip", "calzip"),
                           ("calnpy", "not a readable numeric array"), ("afile", "not a folder"),
                           ("nodir", "nodir"), ("calimg", "calimg")):
        yield f"quantize-calib-{folder}", f"quantize m.onnx --out q.onnx --calib {folder}", 2, needle
    for size in ("0x0", "axb", "640", "-1x5"):
        yield f"quantize-calib-size-{size}", f"quantize m.onnx --out q.onnx --calib calempty --calib-size {size}", 2, \
            "--calib-size"
    yield "quantize-mean-per-channel-count", "quantize m.onnx --out q.onnx --calib calimg --mean 1 --mean 2", 2, \
        "--mean"
    # output paths: a file where a folder goes, unwritable, /proc, the input itself, a run folder
    writers = [("profile", "profile m.onnx {o}", "--out", "r.json"),
               ("quantize", "quantize m.onnx {o}", "--out", "q.onnx"),
               ("estimate", "estimate m.onnx --device host-cpu --input x=1x3x16x16 {o}", "--out", "e.json"),
               ("export-onnx", "export m.onnx --format onnx {o}", "--out", "o.onnx"),
               ("export-trt", "export m.onnx --format tensorrt {o}", "--out", "t"),
               ("doctor", "doctor {o}", "--json", "d.json"),
               ("calibrate", "calibrate notreport.json {o}", "--out", "c.json"),
               ("personalize", "personalize ckpt.safetensors --images imgs --labels labels.csv {o}", "--out", "p"),
               ("distill", "distill gaze --preset smoke {o}", "--out", "dd"),
               ("distill-and-export", "distill-and-export gaze --preset smoke {o}", "--out", "de")]
    for name, c, flag, leaf in writers:
        yield f"{name}-out-under-a-file", c.format(o=f"{flag} afile/{leaf}"), 2, "afile"
        yield f"{name}-out-in-proc", c.format(o=f"{flag} /proc/edgekd/{leaf}"), 2, "/proc"
        yield f"{name}-out-in-proc-root", c.format(o=f"{flag} /proc/{leaf}"), 2, "/proc"
        yield f"{name}-out-in-sys", c.format(o=f"{flag} /sys/{leaf}"), 2, "/sys"
    for name, c, flag, _leaf in writers[:3] + [writers[5], writers[6]]:  # export takes a folder too
        yield f"{name}-out-is-a-folder", c.format(o=f"{flag} adir"), 2, "folder"
    for name, c, flag, _leaf in writers[7:]:
        yield f"{name}-out-is-a-file", c.format(o=f"{flag} afile"), 2, "existing file"
    yield from [
        ("quantize-out-is-input", "quantize m.onnx --out m.onnx", 2, "is the input"),
        ("quantize-out-is-input-dotted", "quantize m.onnx --out ./m.onnx", 2, "is the input"),
        ("quantize-out-is-input-absolute", "quantize m.onnx --out {w}/m.onnx", 2, "is the input"),
        ("quantize-out-is-input-via-dotdot", "quantize m.onnx --out adir/../m.onnx", 2, "is the input"),
        ("quantize-out-is-calib", "quantize m.onnx --out calobj/a.npy --calib calobj", 2, "calobj"),
        ("quantize-xml-bin-is-a-folder", "quantize m.onnx --out wdir.xml --runtime openvino", 2, "wdir.bin"),
        ("profile-out-is-input", "profile m.onnx --out m.onnx", 2, "is the input"),
        ("estimate-out-is-input", "estimate m.onnx --device host-cpu --out m.onnx", 2, "is the input"),
        ("calibrate-out-is-report", "calibrate notreport.json --out notreport.json", 2, "is the input"),
        ("export-onnx-out-is-source", "export m.onnx --format onnx --out m.onnx", 2, "is the input"),
        ("export-onnx-folder-holds-source", "export m.onnx --format onnx --out .", 2, "is the input"),
        ("export-trt-folder-holds-source", "export m.onnx --format tensorrt --out .", 2, "is the input"),
        ("export-run-into-itself", "export run --format onnx --out run", 2, "run folder"),
        ("export-run-into-its-onnx", "export run --format onnx --out run/student.onnx", 2, "run folder"),
        ("export-run-into-its-file", "export run --format onnx --out run/new.onnx", 2, "run folder"),
        ("export-run-openvino-into-itself", "export run --format openvino --out run", 2, "run folder"),
        ("export-run-trt-into-itself", "export run --format tensorrt --out run", 2, "run folder"),
        ("export-run-onnx-into-run", "export run/student.onnx --format openvino --out run", 2, "run folder"),
        ("quantize-into-run-folder", "quantize run/student.onnx --out run/student.int8.onnx", 2, "run folder"),
        ("profile-into-run-folder", "profile m.onnx --out run/m.profile.json", 2, "run folder"),
        ("estimate-into-run-folder", "estimate m.onnx --device host-cpu --out run/e.json", 2, "run folder"),
        ("personalize-into-run-folder", "personalize run --images imgs --labels labels.csv --out run/p", 2,
         "run folder"),
        # a run's weights and manifest
        ("export-weights-changed", "export run --format onnx --out o.onnx", 2, "differs from the run's manifest"),
        ("export-weights-not-in-manifest", "export run --format onnx --out o.onnx --weights "
         "student_alone.safetensors", 2, "does not record"),
        ("export-weights-missing", "export run --format onnx --out o.onnx --weights nope.safetensors", 2,
         "nope.safetensors"),
        ("export-weights-with-onnx-source", "export m.onnx --format onnx --out o.onnx --weights a.safetensors", 2,
         "--weights"),
        ("export-folder-without-manifest", "export norun --format onnx --out o.onnx", 2, "manifest.json"),
        ("export-broken-manifest", "export badrun --format onnx --out o.onnx", 2, "manifest.json"),
        ("export-missing-source", "export nope --format onnx --out o.onnx", 2, "does not exist"),
        ("export-trt-bad-profile", "export m.onnx --format tensorrt --out t --profile x=1x3", 2, "--profile"),
        ("export-trt-profile-syntax", "export m.onnx --format tensorrt --out t --profile x", 2, "--profile"),
    ]
    # remote profiling
    yield from [
        ("profile-missing-identity", "profile m.onnx --host a@127.0.0.1:1 --identity nokey --known-hosts kh_rev", 2,
         "no such file"),
        ("profile-identity-folder", "profile m.onnx --host a@127.0.0.1:1 --identity adir --known-hosts kh_rev", 2,
         "--identity"),
        ("profile-missing-known-hosts", "profile m.onnx --host a@127.0.0.1:1 --known-hosts nope_hosts", 2,
         "host keys must be verified"),
        ("profile-known-hosts-revoked", "profile m.onnx --host a@127.0.0.1:1 --known-hosts kh_rev", 2, "unreachable"),
        ("profile-known-hosts-cert-authority", "profile m.onnx --host a@127.0.0.1:1 --known-hosts kh_ca", 2,
         "unreachable"),
        ("profile-known-hosts-garbage", "profile m.onnx --host a@127.0.0.1:1 --known-hosts kh_junk", 2,
         "unreachable"),
        ("profile-known-hosts-empty", "profile m.onnx --host a@127.0.0.1:1 --known-hosts kh_empty", 2,
         "unreachable"),
        ("profile-host-syntax", "profile m.onnx --host 'a b' --known-hosts kh_empty", 2, "expected user@host"),
        ("profile-host-port-range", "profile m.onnx --host a@h:99999 --known-hosts kh_empty", 2, "out of range"),
        ("profile-host-twice", "profile m.onnx --host a@h --host a@h --known-hosts kh_empty", 2, "twice"),
    ]
    # TensorRT build plans from elsewhere
    for p in sorted(["up_onnx", "abs_onnx", "up_engine", "abs_engine", "up_timing_cache", "abs_timing_cache",
                     "up_parity_feeds", "sub_parity_feeds", "empty_onnx", "dotdot_engine", "int_onnx"]):
        yield f"build-engine-{p}", f"build-engine plans/{p}.json", 2, "plain file name"
    yield from [
        ("build-engine-int4", "build-engine plans/int4.json", 2, "int4"),
        ("build-engine-workspace-0", "build-engine plans/ws0.json", 2, "workspace_mb"),
        ("build-engine-workspace-str", "build-engine plans/wsstr.json", 2, "workspace_mb"),
        ("build-engine-unknown-field", "build-engine plans/unknown.json", 2, "colour"),
        ("build-engine-other-schema", "build-engine plans/schema.json", 2, "schema"),
        ("build-engine-not-json", "build-engine plans/notjson.json", 2, "json"),
        ("build-engine-a-list", "build-engine plans/list.json", 2, "schema"),
        ("build-engine-partial", "build-engine plans/partial.json", 2, "incomplete"),
        ("build-engine-missing-plan", "build-engine plans/nope.json", 2, "does not exist"),
        ("build-engine-folder", "build-engine plans", 2, "plans"),
        ("build-engine-onnx-as-plan", "build-engine m.onnx", 2, "m.onnx"),
    ]
    # estimate / calibrate / doctor
    yield from [
        ("estimate-no-device", "estimate m.onnx --input x=1x3x16x16", 2, "neither --device nor --calibration"),
        ("estimate-unknown-device", "estimate m.onnx --device nosuch", 2, "unknown device"),
        ("estimate-missing-calibration", "estimate m.onnx --calibration nope.json", 2, "nope.json"),
        ("estimate-calibration-not-json", "estimate m.onnx --calibration badjson.json", 2, "badjson.json"),
        ("estimate-calibration-wrong-schema", "estimate m.onnx --calibration notreport.json", 2, "notreport.json"),
        ("calibrate-missing-report", "calibrate nope.json --out c.json", 2, "nope.json"),
        ("calibrate-not-a-report", "calibrate notreport.json --out c.json", 2, "not a valid"),
        ("calibrate-bad-json", "calibrate badjson.json --out c.json", 2, "badjson.json"),
        ("calibrate-unknown-device", "calibrate notreport.json --out c.json --device nosuch", 2, "unknown device"),
        ("doctor-unknown-device", "doctor --device nosuch", 2, "unknown device"),
        ("doctor-device-typo", "doctor --device host-cp", 2, "did you mean 'host-cpu'"),
    ]
    # distill / distill-and-export: recipe, preset, overrides, device
    for c in ("distill", "distill-and-export"):
        yield from [
            (f"{c}-unknown-recipe", f"{c} nosuchrecipe", 2, "unknown recipe"),
            (f"{c}-recipe-typo", f"{c} gaz", 2, "did you mean 'gaze'"),
            (f"{c}-missing-yaml", f"{c} nope.yaml", 2, "nope"),
            (f"{c}-broken-yaml", f"{c} recipe_bad.yaml", 2, "recipe_bad.yaml"),
            (f"{c}-unknown-preset", f"{c} gaze --preset nosuch", 2, "unknown preset"),
            (f"{c}-set-unknown-field", f"{c} gaze --set nosuch.field=1", 2, "nosuch"),
            (f"{c}-set-not-int", f"{c} gaze --set train.epochs=abc", 2, "train.epochs"),
            (f"{c}-set-syntax", f"{c} gaze --set train.epochs", 2, "train.epochs"),
        ]
    yield from [
        ("distill-device-tpu", "distill gaze --preset smoke --device tpu", 2, "--device 'tpu'"),
        ("distill-device-mps", "distill gaze --preset smoke --device mps", 2, "--device 'mps'"),
        ("distill-and-export-unknown-device", "distill-and-export gaze --device nosuch", 2, "unknown device"),
        ("gate-missing-candidate", "gate nope.json --device host-cpu", 2, "nope.json"),
    ]


def _cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


ROWS = list(_rows())
if not _cuda():
    ROWS.append(("distill-device-cuda-absent", "distill gaze --preset smoke --device cuda", 2, "cuda"))
RESULTS: dict[str, str] = {}  # row id -> "exit2" | "traceback" | "wrong" | "ok" (other expected code)


def test_rows_are_distinct_and_many() -> None:
    ids = [r[0] for r in ROWS]
    argvs = [r[1] for r in ROWS]
    assert len(set(ids)) == len(ids), sorted({i for i in ids if ids.count(i) > 1})
    assert len(set(argvs)) == len(argvs), sorted({a for a in argvs if argvs.count(a) > 1})
    assert len(ROWS) >= 200, len(ROWS)
    assert {a.split()[0] for a in argvs} >= set(COMMANDS)


@pytest.mark.parametrize("argv, code, needle", [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_bad_input(world: Path, world_snapshot: dict[str, tuple[int, str]], monkeypatch: pytest.MonkeyPatch,
                   capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest, argv: str, code: int,
                   needle: str) -> None:
    monkeypatch.chdir(world)
    args = shlex.split(argv.replace("{w}", str(world)))
    rid = request.node.callspec.id
    rc = main(args)
    cap = capsys.readouterr()
    text = cap.out + cap.err
    if "Traceback" in text:
        RESULTS[rid] = "traceback"
    elif rc != code or needle.lower() not in text.lower() or _snapshot(world) != world_snapshot:
        RESULTS[rid] = "wrong"
    else:
        RESULTS[rid] = "exit2" if rc == 2 else "ok"
    assert "Traceback" not in text, text
    assert rc == code, text
    assert needle.lower() in text.lower(), text
    assert _snapshot(world) == world_snapshot, "the command wrote or changed files"


# --- an invalid measurement is exit 4 (the report is written: it records why the run is invalid) -------------

def test_invalid_measurement_exits_4(world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     world_snapshot: dict[str, tuple[int, str]]) -> None:
    out = tmp_path / "r.json"
    rc = main(["profile", str(world / "m.onnx"), "--out", str(out), "--fail-invalid", *FAST.split()])
    text = capsys.readouterr()
    assert rc == 4, text
    assert "too few samples" in text.err + text.out and "Traceback" not in text.err
    assert json.loads(out.read_text())["valid"] is False
    assert _snapshot(world) == world_snapshot
    RESULTS["profile-fail-invalid-too-few-samples"] = "ok"


# --- the same through a real process: the exit code the shell sees --------------------------------------------

SUBPROCESS = [("nosuchcmd", 2, "no such command"), ("profile", 2, "missing argument"),
              ("gate r.json --thresold 0.1", 2, "no such option"), ("-h", 0, "usage"), ("--version", 0, "edgekd "),
              ("quantize m.onnx --out m.onnx", 2, "is the input"), ("profile m.onnx --warmup-s inf", 2, "--warmup-s")]


@pytest.mark.parametrize("argv, code, needle", SUBPROCESS, ids=[s[0] for s in SUBPROCESS])
def test_process_exit_code(world: Path, world_snapshot: dict[str, tuple[int, str]], argv: str, code: int,
                           needle: str) -> None:
    import edgekd

    env = {**os.environ, "PYTHONPATH": str(Path(edgekd.__file__).parents[1]), "COLUMNS": "100"}
    env.pop("EDGEKD_DEBUG", None)
    res = subprocess.run([sys.executable, "-m", "edgekd", *shlex.split(argv)], cwd=world, env=env,
                         capture_output=True, text=True, timeout=120)
    text = res.stdout + res.stderr
    assert res.returncode == code, text
    assert "Traceback" not in text and needle.lower() in text.lower(), text
    if code == 2:
        assert len(res.stderr.strip().splitlines()) <= 3, res.stderr  # the cause, the fix; no wall of text
    assert _snapshot(world) == world_snapshot


def test_zz_battery_counts() -> None:
    """The totals for the issue's closing note (run the whole file: `pytest tests/unit/cli/test_bad_inputs.py`)."""
    missing = [r[0] for r in ROWS if r[0] not in RESULTS]
    if missing:
        pytest.skip(f"{len(missing)} battery row(s) did not run in this session (-k or -x): no totals")
    vals = list(RESULTS.values())
    counts = {"inputs tried": len(vals), "clean exit 2": vals.count("exit2"),
              "other expected code (4)": vals.count("ok"), "tracebacks": vals.count("traceback"),
              "wrong results": vals.count("wrong")}
    print("\nbattery: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    assert counts["tracebacks"] == 0 and counts["wrong results"] == 0, counts
