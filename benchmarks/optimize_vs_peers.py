"""`edgekd optimize`'s pick vs the default paths a user would take, on public ONNX models from packages.

Models: the PP-OCR detector, recogniser and direction classifier shipped in rapidocr-onnxruntime, and two
ImageNet CNNs shipped in the onnx package's backend test data (light_squeezenet, light_inception_v1).
Inputs: rendered text images (PP-OCR) or smooth random images (the CNNs), split into calibration and
held-out evaluation parts; accuracy is agreement with ONNX Runtime FP32 on the held-out part, with the
metric edgekd optimize picked for the output (argmax / IoU / decoded sequence / SQNR).

Peers (each at 1 thread):
  ort-fp32            onnxruntime.InferenceSession, defaults
  ov-compile-default  openvino Core().compile_model(model, "CPU") as read (dynamic dims kept), default
                      inference precision (bf16 on AVX-512 BF16/AMX CPUs, f32 elsewhere)
  ort-quantize-static onnxruntime.quantization.quantize_static with its defaults (QDQ, S8S8, per tensor, MinMax)
  nncf-quantize       nncf.quantize(ov model, dataset) with its defaults, compiled with the default precision
The pick and the peers are timed together, interleaved (edgekd.profile.protocol), twice (two runs).
Reported: latency ratio to ORT FP32 and held-out accuracy; whether the pick is at least as fast as the
fastest peer that meets the same accuracy budget.

Run (quiet machine):  python benchmarks/optimize_vs_peers.py --out bench-out/optimize_vs_peers
Smoke:                python benchmarks/optimize_vs_peers.py --models cls --n-calib 4 --n-eval 2 \
                          --sessions 2 --iterations 5 --candidate ort-int8-U8S8-pc-conv --candidate ov-fp32
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from edgekd.pipeline.optimize import OptimizeRequest, optimize
from edgekd.profile.protocol import MeasureConfig
from edgekd.runtime import SessionOptions

MEAN, STD = np.array([0.485, 0.456, 0.406], np.float32), np.array([0.229, 0.224, 0.225], np.float32)
WORDS = ["invoice", "TOTAL 42.50", "edge device", "Quantize me", "2026-11-24", "hello world", "OpenVINO",
         "latency 3.1 ms", "PP-OCR", "student", "QDQ U8S8", "batch=1"]


def _pkg_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    return Path(spec.submodule_search_locations[0]) if spec and spec.submodule_search_locations else None


def model_table(det_hw: tuple[int, int]) -> dict[str, dict[str, Any]]:
    """name -> {path, shape, kind}; models whose package is missing are left out (said when run)."""
    out: dict[str, dict[str, Any]] = {}
    rapid = _pkg_dir("rapidocr_onnxruntime")
    if rapid is not None:
        for key, pat, shape, kind in (("det", "*det*.onnx", (1, 3, *det_hw), "page"),
                                      ("rec", "*rec*.onnx", (1, 3, 48, 320), "line"),
                                      ("cls", "*cls*.onnx", (1, 3, 48, 192), "line")):
            found = sorted(glob.glob(str(rapid / "models" / pat)))
            if found:
                out[key] = {"path": Path(found[0]), "shape": shape, "kind": kind}
    onnx_dir = _pkg_dir("onnx")
    if onnx_dir is not None:
        for key in ("squeezenet", "inception_v1"):
            p = onnx_dir / "backend" / "test" / "data" / "light" / f"light_{key}.onnx"
            if p.is_file():
                out[key] = {"path": p, "shape": (1, 3, 224, 224), "kind": "photo"}
    return out


def _text_image(h: int, w: int, rng: np.random.Generator, one_line: bool) -> np.ndarray:
    from PIL import Image, ImageDraw, ImageFont

    bg = int(rng.integers(200, 256))
    im = Image.new("RGB", (w, h), (bg, bg, bg))
    draw = ImageDraw.Draw(im)
    y = int(rng.integers(2, 8)) if one_line else int(rng.integers(5, 20))
    while True:
        size = int(rng.integers(int(h * 0.5), int(h * 0.7))) if one_line else int(rng.integers(16, 30))
        draw.text((int(rng.integers(2, 30)), y), " ".join(rng.choice(WORDS, size=2)),
                  fill=tuple(int(v) for v in rng.integers(0, 80, 3)), font=ImageFont.load_default(size=size))
        y += int(rng.integers(30, 55))
        if one_line or y >= h - 30:
            break
    arr = np.asarray(im, np.float32) + rng.normal(0, 4, (h, w, 3)).astype(np.float32)
    return np.clip(arr, 0, 255) / 255.0


def make_inputs(kind: str, shape: tuple[int, ...], n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    _, _, h, w = shape
    out = []
    for _ in range(n):
        if kind == "photo":  # smooth random "photos": low-frequency colour fields plus grain
            small = rng.uniform(0, 1, (3, 8, 8)).astype(np.float32)
            img = np.kron(small, np.ones((1, h // 8 + 1, w // 8 + 1), np.float32))[:, :h, :w]
            img = (img + rng.normal(0, 0.05, img.shape)).transpose(1, 2, 0)
            x = (img - MEAN) / STD
        else:
            img = _text_image(h, w, rng, one_line=kind == "line")
            x = (img - MEAN) / STD if kind == "page" else (img - 0.5) / 0.5
        out.append(np.ascontiguousarray(x.transpose(2, 0, 1)[None]).astype(np.float32))
    return out


def _save(folder: Path, arrays: list[np.ndarray]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, a in enumerate(arrays):
        np.save(folder / f"{i:03d}.npy", a)
    return folder


def build_peers(model: Path, name: str, calib: list[dict[str, np.ndarray]], work: Path,
                ov_default: str) -> dict[str, tuple[Path, str, SessionOptions]]:
    """The default paths, built with each library's own defaults."""
    import nncf
    import openvino as ov
    from onnxruntime.quantization import CalibrationDataReader, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(calib)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.it, None)

    peers: dict[str, tuple[Path, str, SessionOptions]] = {
        "ort-fp32": (model, "onnxruntime", SessionOptions(threads=1)),
        "ov-compile-default": (model, "openvino", SessionOptions(threads=1, precision=ov_default)),
    }
    qs = work / f"{name}-quantize_static.onnx"
    try:
        quantize_static(str(model), str(qs), Reader())
        peers["ort-quantize-static"] = (qs, "onnxruntime", SessionOptions(threads=1))
    except Exception as exc:
        print(f"  {name}: plain quantize_static failed: {type(exc).__name__}: {str(exc)[:200]}")
    nq = work / f"{name}-nncf.xml"
    try:
        q = nncf.quantize(ov.Core().read_model(str(model)), nncf.Dataset(calib))
        ov.save_model(q, str(nq))
        peers["nncf-quantize"] = (nq, "openvino", SessionOptions(threads=1, precision=ov_default))
    except Exception as exc:
        print(f"  {name}: plain nncf.quantize failed: {type(exc).__name__}: {str(exc)[:200]}")
    return peers


def held_out_accuracy(path: Path, runtime: str, opts: SessionOptions, eval_feeds: list[dict[str, np.ndarray]],
                      ref: list[list[np.ndarray]], metric: str) -> float:
    from edgekd.quantize.heldout import score_output
    from edgekd.runtime import get_runtime
    from edgekd.runtime.predict import session_predict

    predict = session_predict(get_runtime(runtime).load(path, opts))
    outs = [list(predict(f)) for f in eval_feeds]
    return score_output(metric, [r[0] for r in ref], [o[0] for o in outs])  # type: ignore[arg-type]


def run_model(name: str, info: dict[str, Any], args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from edgekd.quantize.candidates import openvino_host_support
    from edgekd.quantize.heldout import within_budget
    from edgekd.runtime.predict import onnx_predict

    calib = make_inputs(info["kind"], info["shape"], args.n_calib, seed=1)
    evals = make_inputs(info["kind"], info["shape"], args.n_eval, seed=2)
    model = info["path"]
    rep = optimize(OptimizeRequest(model, work / name / "optimize", calib_dir=_save(work / name / "calib", calib),
                                   eval_dir=_save(work / name / "eval", evals), max_drop=args.max_drop,
                                   measure=MeasureConfig(sessions=args.sessions, iterations=args.iterations),
                                   only=args.candidate or None, calib_count=max(args.n_calib, args.n_eval)))
    metric = next(iter(rep.metrics.values()))
    host = openvino_host_support()
    ov_default = "bf16" if host and host.default_precision == "bf16" else "fp32"
    inp = next(iter(_input_names(model)))
    cal_feeds, ev_feeds = [{inp: a} for a in calib], [{inp: a} for a in evals]
    targets = build_peers(model, name, cal_feeds, work / name, ov_default)
    pick = next((c for c in rep.candidates if c.status == "picked"), None)
    if pick is not None and pick.artifact:
        from edgekd.pipeline.optimize.search import session_options
        from edgekd.quantize.candidates import CandidateSpec

        spec = CandidateSpec(pick.name, pick.runtime, pick.precision, "copy",
                             runtime_precision=str(pick.runtime_settings.get("precision", "fp32")))
        targets[f"pick:{pick.name}"] = (Path(pick.artifact), pick.runtime,
                                        session_options(spec, 1, {k: v.shape for k, v in ev_feeds[0].items()}))
    ref_fn = onnx_predict(model, threads=1)
    ref = [list(ref_fn(f)) for f in ev_feeds]
    acc = {k: held_out_accuracy(p, rt, o, ev_feeds, ref, metric) for k, (p, rt, o) in targets.items()}
    ok = {k: within_budget(metric, a, max_drop=args.max_drop, min_sqnr_db=20.0) for k, a in acc.items()}  # type: ignore[arg-type]
    runs, verdicts, judged = [], [], []
    for r in range(2):
        p50, medians = _timed_run(targets, model, ev_feeds[0], args)
        runs.append({k: v / p50["ort-fp32"] for k, v in p50.items()} | {"_ort_fp32_p50_ms": p50["ort-fp32"]})
        print(f"  {name} run {r + 1}: " + ", ".join(f"{k} {v:.2f}x" for k, v in runs[-1].items() if k[0] != "_"))
        strict, verdict = _verdict(runs[-1], medians, [k for k in targets if ok[k]])
        verdicts.append(strict)
        judged.append(verdict)
        print(f"  {name} run {r + 1}: pick vs fastest peer within budget: {verdict}")
    return {"model": str(model), "input_shape": list(info["shape"]), "metric": metric, "picked": rep.picked,
            "accuracy": acc, "within_budget": ok, "ratio_to_ort_fp32": runs, "pick_at_least_as_fast": verdicts,
            "pick_vs_fastest_peer": judged,
            "optimize_json": str(work / name / "optimize" / "optimize.json")}


#: an A/A control timed in every run beside the others: ORT FP32 a second time, so each run shows its own noise
AGAIN = "ort-fp32 (again)"


def _timed_run(targets: dict[str, tuple[Path, str, SessionOptions]], model: Path, feed: dict[str, np.ndarray],
               args: argparse.Namespace) -> tuple[dict[str, float], dict[str, list[float]]]:
    """One interleaved timing of every target plus the A/A control: p50 and session medians per label."""
    from edgekd.profile.protocol import ProfileTarget, profile_artifacts

    items = [*targets.items(), (AGAIN, (model, "onnxruntime", SessionOptions(threads=1)))]
    reps = profile_artifacts([ProfileTarget(p, rt, o, feed, label=k) for k, (p, rt, o) in items],
                             MeasureConfig(sessions=args.sessions, iterations=args.iterations), interleave=True,
                             progress=False)
    p50 = {x.data["label"]: float(x.data["results"]["latency_ms"]["p50"]) for x in reps}
    medians = {x.data["label"]: [float(v) for v in x.data["results"]["session_medians_ms"]] for x in reps}
    return p50, medians


def _verdict(ratios: dict[str, float], medians: dict[str, list[float]], in_budget: list[str]) -> tuple[bool, str]:
    """(strict, judged): strict is the point estimate (pick p50 <= fastest in-budget peer p50); judged is
    edgekd's own regression rule on the session medians of that one interleaved run (alpha 0.01, 3%), with
    the run's A/A ratio beside it so a difference can be read against the noise of the same run."""
    from edgekd.gate.regression import RegressionConfig, evaluate

    pick = next((k for k in ratios if k.startswith("pick:")), None)
    peers = [k for k in in_budget if not k.startswith("pick:") and k in ratios]
    if pick is None:
        return False, "no pick"
    if not peers:
        return True, "no peer within the accuracy budget"
    best = min(peers, key=lambda k: ratios[k])
    res = evaluate(medians[pick], medians[best], RegressionConfig(sessions_min=3, sessions_max=max(3, len(medians[pick]))))
    strict = ratios[pick] <= ratios[best]
    said = {"PASS": "not slower (equivalent or faster)", "FAIL": "SLOWER",
            "INCONCLUSIVE": "not shown either way at this n"}[res.verdict]
    return strict, (f"{said}: {pick} / {best} = {res.ratio:.3f} (interval {res.ci_low:.3f}-{res.ci_high:.3f}, "
                    f"p {res.p_value:.3g}); A/A in this run {ratios[AGAIN]:.3f}; gate {res.verdict}")


def _input_names(model: Path) -> list[str]:
    from edgekd.quantize.calibration import model_inputs

    return [i.name for i in model_inputs(model)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["det", "rec", "cls", "squeezenet", "inception_v1"])
    ap.add_argument("--det-size", default="640x640", help="HxW of the detector's input")
    ap.add_argument("--n-calib", type=int, default=32)
    ap.add_argument("--n-eval", type=int, default=32)
    ap.add_argument("--max-drop", type=float, default=0.01)
    ap.add_argument("--sessions", type=int, default=8)
    ap.add_argument("--iterations", type=int, default=50)
    ap.add_argument("--candidate", action="append", default=[], help="restrict edgekd optimize's candidates")
    ap.add_argument("--out", type=Path, help="folder for artifacts and results.json [default: a temp dir]")
    args = ap.parse_args()
    h, w = (int(v) for v in args.det_size.lower().split("x"))
    table = model_table((h, w))
    work = args.out or Path(tempfile.mkdtemp(prefix="edgekd-peers-"))
    work.mkdir(parents=True, exist_ok=True)
    results = {}
    for name in args.models:
        if name not in table:
            print(f"{name}: not installed here (skipped)")
            continue
        print(f"{name}: {table[name]['path']}")
        results[name] = run_model(name, table[name], args, work)
    (work / "results.json").write_text(json.dumps(results, indent=1, default=str))
    print("\n| model | metric | path | held-out accuracy | x ORT FP32 (run 1) | x ORT FP32 (run 2) |")
    print("|---|---|---|---|---|---|")
    for name, r in results.items():
        for k, a in r["accuracy"].items():
            print(f"| {name} | {r['metric']} | {k}{'' if r['within_budget'][k] else ' (outside budget)'} | "
                  f"{a:.4f} | {r['ratio_to_ort_fp32'][0][k]:.2f} | {r['ratio_to_ort_fp32'][1][k]:.2f} |")
        print(f"| {name} | | pick at least as fast as the fastest peer within budget (point estimate) | "
              f"{r['pick_at_least_as_fast']} | | |")
        for i, v in enumerate(r["pick_vs_fastest_peer"]):
            print(f"| {name} | | run {i + 1}: {v} | | | |")
    print(f"\nresults in {work / 'results.json'}")


if __name__ == "__main__":
    main()
