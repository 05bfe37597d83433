"""`edgekd export`: an edgekd run's student or any ONNX model -> ONNX / OpenVINO IR / TensorRT build plan."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command("export")
    def export_cmd(
        source: Annotated[Path, typer.Argument(help="an edgekd run folder (manifest.json + student_kd.safetensors) "
                                               "or an .onnx model")],
        format_: Annotated[str, typer.Option("--format", "-f", help="onnx | openvino | tensorrt")],
        out: Annotated[Path, typer.Option("--out", "-o", help="onnx: NAME.onnx or a folder; openvino: NAME.xml or "
                                          "a folder; tensorrt: a folder (ONNX + build plan)")],
        opset: Annotated[int | None, typer.Option("--opset", help="ONNX opset (run folders; default: the "
                                                  "recipe's)")] = None,
        exporter: Annotated[str | None, typer.Option("--exporter", help="auto | dynamo | torchscript (run "
                                                     "folders; default: the recipe's)")] = None,
        simplify: Annotated[bool, typer.Option("--simplify/--no-simplify", help="onnxslim the exported graph")]
        = True,
        static_batch: Annotated[bool, typer.Option("--static-batch", help="fix the batch dimension to 1")] = False,
        input_: Annotated[list[str] | None, typer.Option("--input", help="NAME=1x3x48x320: shape for dynamic dims "
                                                         "(parity inputs; TensorRT profile min=opt=max)")] = None,
        profile: Annotated[list[str] | None, typer.Option("--profile", help="TensorRT profile NAME=MIN:OPT:MAX, "
                                                          "e.g. x=1x3x32x32:1x3x640x640:1x3x1280x1280")] = None,
        precision: Annotated[str, typer.Option("--precision", help="TensorRT: fp32 | fp16 | int8")] = "fp16",
        max_batch: Annotated[int, typer.Option("--max-batch", help="TensorRT profile max for a dynamic batch")] = 8,
        workspace_mb: Annotated[int, typer.Option("--workspace-mb", help="TensorRT builder workspace")] = 1024,
        calib: Annotated[Path | None, typer.Option("--calib", help="TensorRT INT8 (ONNX source): folder of "
                                                   ".npy/.npz inputs at the profile's opt shape")] = None,
        calib_count: Annotated[int, typer.Option("--calib-count", help="at most this many calibration "
                                                 "batches")] = 32,
        atol: Annotated[float | None, typer.Option("--atol", help="parity tolerance (default: the recipe's, or "
                                                   "1e-4)")] = None,
        rtol: Annotated[float | None, typer.Option("--rtol", help="parity tolerance (default: the recipe's, or "
                                                   "1e-3)")] = None,
        weights: Annotated[str | None, typer.Option("--weights", help="run folders: the weights file to export "
                                                    "(default student_kd.safetensors; a QAT fine-tune run also has "
                                                    "student_qat.safetensors)")] = None,
    ) -> None:
        """Export SOURCE to --format and check the artifact's outputs against the source.

        Exit codes: 0 written and checked, 2 bad input or environment (or a parity failure)."""
        from edgekd.cli._common import console
        from edgekd.export.dispatch import parse_profiles
        from edgekd.iospec import parse_input_shapes
        from edgekd.pipeline.export_source import export_source

        shapes = parse_input_shapes(input_ or [])
        ranges = parse_profiles(profile or [])
        res = export_source(source, format_, out, opset=opset, exporter=exporter, simplify=simplify,
                            dynamic_batch=not static_batch, input_shapes=shapes, profiles=ranges, precision=precision,
                            max_batch=max_batch, workspace_mb=workspace_mb, calib=calib, calib_count=calib_count,
                            atol=atol, rtol=rtol, weights=weights)
        for note in res.notes:
            console.print(f"note: {note}", highlight=False)
        for a in res.artifacts:
            console.print(f"wrote {a}", highlight=False)
        if res.parity:
            outs = "; ".join(f"{o['name']}: max abs {o['max_abs_diff']:.2g}" for o in res.parity["outputs"])
            verdict = "passed" if res.parity.get("passed", True) else "measured"
            console.print(f"parity vs {'torch' if res.source_kind == 'run' else 'the original ONNX (onnxruntime)'}: "
                          f"{verdict} ({outs})", highlight=False)
        if res.format == "tensorrt":
            plan = res.artifacts[-1]
            console.print(f"next: copy {plan.parent} to the GPU host and run `edgekd build-engine {plan}`",
                          highlight=False)
        else:
            console.print(f"next: edgekd profile {res.artifacts[0]}", highlight=False)
