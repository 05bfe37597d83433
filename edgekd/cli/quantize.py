"""`edgekd quantize`: INT8 (ONNX Runtime or OpenVINO/NNCF) or FP16 of any ONNX model, compared with FP32."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer


def register(app: typer.Typer) -> None:
    @app.command("quantize")
    def quantize_cmd(
        model: Annotated[Path, typer.Argument(help="the FP32 .onnx model (any model, not only edgekd's)")],
        out: Annotated[Path, typer.Option("--out", "-o", help="output artifact: .onnx (onnxruntime) or .xml "
                                          "(openvino IR, .bin beside it)")],
        runtime: Annotated[str, typer.Option("--runtime", help="onnxruntime | openvino")] = "onnxruntime",
        precision: Annotated[str, typer.Option("--precision", help="int8 (static) | int8-dynamic (ORT, for "
                                               "linear-heavy models) | fp16 (GPU runtimes)")] = "int8",
        method: Annotated[str, typer.Option("--method", help="ORT calibration: minmax | entropy | percentile")]
        = "minmax",
        calib: Annotated[Path | None, typer.Option("--calib", help="folder of images or .npy/.npz inputs; "
                                                   "without it, RANDOM data (accuracy unknown)")] = None,
        calib_count: Annotated[int, typer.Option("--calib-count", help="at most this many calibration "
                                                 "files/batches")] = 32,
        calib_layout: Annotated[str, typer.Option("--calib-layout", help="nchw | nhwc")] = "nchw",
        calib_size: Annotated[str | None, typer.Option("--calib-size", help="resize images to HxW, e.g. "
                                                       "640x640 (needed when H/W are dynamic)")] = None,
        mean: Annotated[list[float] | None, typer.Option("--mean", help="per-channel mean after scaling "
                                                         "pixels to [0,1] (repeat per channel)")] = None,
        std: Annotated[list[float] | None, typer.Option("--std", help="per-channel std (repeat per "
                                                        "channel)")] = None,
        grayscale: Annotated[bool, typer.Option("--grayscale", help="images as 1 channel (default RGB)")] = False,
        input_: Annotated[list[str] | None, typer.Option("--input", help="NAME=1x3x48x192: fixes dynamic dims "
                                                         "for random calibration; NAME=16000 or NAME=1,2,3: "
                                                         "a value fed in every input (repeatable)")] = None,
        feed: Annotated[list[str] | None, typer.Option("--feed", help="NAME=FILE.npy: that input's array in "
                                                       "every calibration/evaluation input (repeatable)")] = None,
        exclude: Annotated[list[str] | None, typer.Option("--exclude", help="node name kept in FP32 "
                                                          "(repeatable)")] = None,
        min_sqnr: Annotated[float | None, typer.Option("--min-sqnr", help="accuracy-aware fallback: keep the most "
                                                       "sensitive layers in FP32 until every output's SQNR vs "
                                                       "FP32 is at least this many dB")] = None,
        eval_dir: Annotated[Path | None, typer.Option("--eval", help="folder of separate evaluation inputs "
                                                      "(default: hold out half of --calib)")] = None,
        op_types: Annotated[str | None, typer.Option("--op-types", help="ORT static: quantize only these op "
                                                     "types, e.g. Conv,MatMul (default: all)")] = None,
        per_tensor: Annotated[bool, typer.Option("--per-tensor", help="ORT static: per-tensor weight scales "
                                                 "(default per-channel)")] = False,
        activation: Annotated[str, typer.Option("--activation", help="ORT static activations: uint8 (U8S8) | "
                                                "int8 (S8S8)")] = "uint8",
        metric: Annotated[str, typer.Option("--metric", help="held-out judgement per output: auto | argmax | "
                                            "iou | sequence | sqnr")] = "auto",
        threads: Annotated[int, typer.Option("--threads", help="threads for the FP32-vs-quantized "
                                             "comparison")] = 1,
    ) -> None:
        """Quantize MODEL for a runtime, then compare its outputs with FP32 (SQNR per output; IoU
        of thresholded maps for probability maps).

        Exit codes: 0 written, 2 bad input or environment."""
        from edgekd.cli import _checks as c
        from edgekd.cli._common import console, err_console
        from edgekd.feeds import parse_input_args
        from edgekd.quantize.external import parse_hw, quantize_external

        ops = _check_values(runtime, precision, method, calib_layout, activation, metric, op_types, calib_count,
                            threads, min_sqnr, mean, std)
        c.in_file("MODEL", model, what="model file")
        c.in_dir("--eval", eval_dir, what="folder of evaluation inputs")
        c.out_file("--out", out, inputs=[model, calib, eval_dir])
        if out.suffix == ".xml":
            c.out_file("--out (its weights)", out.with_suffix(".bin"), inputs=[model, calib])
        given = parse_input_args(input_ or [], feed or [])
        size = parse_hw(calib_size)
        if calib is None and precision == "int8":
            err_console.print("WARNING: no --calib given: calibrating on RANDOM data. Activation ranges will not "
                              "match real inputs and the accuracy of the quantized model is UNKNOWN.",
                              style="bold yellow", highlight=False)
        rep = quantize_external(model, out, runtime=runtime, precision=precision, method=method, calib=calib,
                                calib_count=calib_count, calib_size=size, layout=calib_layout,
                                mean=mean or [0.0], std=std or [1.0], grayscale=grayscale, input_args=given,
                                exclude_nodes=exclude or [], threads=threads,
                                min_sqnr_db=min_sqnr, eval_dir=eval_dir, op_types=ops, per_channel=not per_tensor,
                                activation=activation, metric=metric)
        _print_report(rep)
        console.print(f"next: edgekd profile {rep.result.path}", highlight=False)


def _check_values(runtime: str, precision: str, method: str, calib_layout: str, activation: str, metric: str,
                  op_types: str | None, calib_count: int, threads: int, min_sqnr: float | None,
                  mean: list[float] | None, std: list[float] | None) -> list[str] | None:
    """Every flag's value checked before any work; returns the --op-types list (None: every op type)."""
    from edgekd.cli import _checks as c
    from edgekd.errors import ConfigError
    from edgekd.quantize.external import PRECISIONS, RUNTIMES

    c.one_of("--runtime", runtime, RUNTIMES)
    c.one_of("--precision", precision, PRECISIONS)
    c.one_of("--method", method, ("minmax", "entropy", "percentile"))
    c.one_of("--calib-layout", calib_layout, ("nchw", "nhwc"))
    c.one_of("--activation", activation, ("uint8", "int8"))
    from edgekd.quantize.heldout import METRICS

    c.one_of("--metric", metric, METRICS)
    ops = [o.strip() for o in op_types.split(",") if o.strip()] if op_types is not None else None
    if ops is not None and not ops:
        raise ConfigError("--op-types '': give op types separated by commas", hint="e.g. --op-types Conv,MatMul")
    c.at_least("--calib-count", calib_count, 1, example="32")
    c.at_least("--threads", threads, 1, example="1")
    c.finite("--min-sqnr", min_sqnr, example="30")
    for flag, values in (("--mean", mean or []), ("--std", std or [])):
        for v in values:
            c.finite(flag, v, example="0.5")
    if any(v == 0 for v in std or []):
        raise ConfigError("--std 0: must be non-zero (inputs are divided by it)", hint="e.g. --std 0.25")
    return ops


def _print_report(rep: Any) -> None:
    """The written artifact, what was quantized, and the comparison with FP32 on held-out inputs."""
    from edgekd.cli._common import console, err_console
    from edgekd.quantize.compare import format_agreement

    for note in rep.warnings:
        err_console.print(f"WARNING: {note}", style="bold yellow", highlight=False)
    r = rep.result
    console.print(f"wrote {r.path} ({r.runtime} {r.precision}, {r.method}, {r.seconds:.1f} s, "
                  f"sha256 {r.sha256[:12]})", highlight=False)
    if r.precision.startswith("int8"):
        console.print(f"quantized nodes: {len(r.nodes_quantized)}; compute nodes left in FP32: "
                      f"{len(r.compute_nodes_fp32)}; calibration batches: {r.calib_batches}", highlight=False)
    console.print(f"outputs vs FP32 (ONNX Runtime), on {rep.compared_on}:", highlight=False)
    for line in format_agreement(rep.agreement):
        console.print(f"  {line}", highlight=False)
    for j in rep.judgements:
        score = f"SQNR {j.score:.1f} dB" if j.metric == "sqnr" else f"{j.metric} agreement {j.score:.3f}"
        console.print(f"  held out, {j.name}: {score} vs FP32 ({'within' if j.ok else 'OUTSIDE'} the budget)",
                      highlight=False)
    if rep.random_calibration:
        console.print("accuracy: UNKNOWN (random calibration): measure the metric on real data before "
                      "shipping", highlight=False)
