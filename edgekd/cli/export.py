"""`edgekd export`: an edgekd run's student or any ONNX model -> ONNX / OpenVINO IR / TensorRT build plan."""

from __future__ import annotations

from pathlib import Path
from shlex import quote
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
                                                         "(parity inputs; TensorRT profile min=opt=max); "
                                                         "NAME=16000 or NAME=1,2,3: a parity input's value "
                                                         "(ONNX SOURCE)")] = None,
        feed: Annotated[list[str] | None, typer.Option("--feed", help="NAME=FILE.npy: a parity input's array "
                                                       "(ONNX SOURCE; repeatable)")] = None,
        profile: Annotated[list[str] | None, typer.Option("--profile", help="TensorRT profile NAME=MIN:OPT:MAX, "
                                                          "e.g. x=1x3x32x32:1x3x640x640:1x3x1280x1280")] = None,
        precision: Annotated[str | None, typer.Option("--precision", help="TensorRT only: fp32 | fp16 | int8 "
                                                      "[default: fp16]")] = None,
        max_batch: Annotated[int, typer.Option("--max-batch", help="TensorRT profile max for a dynamic batch")] = 8,
        workspace_mb: Annotated[int, typer.Option("--workspace-mb", help="TensorRT builder workspace")] = 1024,
        calib: Annotated[Path | None, typer.Option("--calib", help="TensorRT INT8 from an FP32 ONNX: folder of "
                                                   ".npy/.npz inputs; edgekd quantizes the model to symmetric "
                                                   "INT8 Q/DQ on them (a Q/DQ model needs none)")] = None,
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

        Exit codes: 0 written and checked, 2 bad input or environment (or a parity failure, or a run's weights
        whose sha256 is not the manifest's). Never writes into a run folder or over SOURCE."""
        from edgekd.cli._common import console
        from edgekd.export.dispatch import parse_profiles
        from edgekd.feeds import parse_input_args
        from edgekd.pipeline.export_source import export_source

        _check_flags(source, format_, out, precision=precision, opset=opset, exporter=exporter, atol=atol,
                     rtol=rtol, max_batch=max_batch, workspace_mb=workspace_mb, calib_count=calib_count,
                     weights=weights, calib=calib)
        given = parse_input_args(input_ or [], feed or [])
        shapes = given.shape_candidates()
        ranges = parse_profiles(profile or [])
        res = export_source(source, format_, out, opset=opset, exporter=exporter, simplify=simplify,
                            dynamic_batch=not static_batch, input_shapes=shapes, profiles=ranges,
                            precision=precision or "fp16",
                            max_batch=max_batch, workspace_mb=workspace_mb, calib=calib, calib_count=calib_count,
                            atol=atol, rtol=rtol, weights=weights, input_args=given)
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
            console.print(f"next: copy {quote(str(plan.parent))} to the GPU host and run `edgekd build-engine "
                          f"{quote(str(plan))}`", highlight=False, markup=False)
        else:
            flags = "".join(f" --input {quote(i)}" for i in input_ or []) + "".join(f" --feed {quote(i)}"
                                                                              for i in feed or [])
            console.print(f"next: edgekd profile {quote(str(res.artifacts[0]))}{flags}", highlight=False,
                          markup=False)


def _check_flags(source: Path, fmt: str, out: Path, *, precision: str | None, opset: int | None,
                 exporter: str | None, atol: float | None, rtol: float | None, max_batch: int, workspace_mb: int,
                 calib_count: int, weights: str | None, calib: Path | None) -> None:
    """Every flag checked before a model is loaded: each error names the flag; nothing is silently ignored."""
    from edgekd.cli import _checks as c
    from edgekd.errors import ConfigError
    from edgekd.export.dispatch import FORMATS

    c.one_of("--format", fmt, FORMATS)
    c.one_of("--precision", precision, ("fp32", "fp16", "int8"))
    if precision is not None and fmt != "tensorrt":
        raise ConfigError(f"--precision {precision} applies to --format tensorrt only; --format {fmt} keeps the "
                          "model's precision", hint="drop --precision, or make an INT8/FP16 model with "
                          "`edgekd quantize MODEL --precision int8|fp16 --out FILE` and export that")
    c.one_of("--exporter", exporter, ("auto", "dynamo", "torchscript"))
    c.at_least("--opset", opset, 7, example="17")
    c.finite("--atol", atol, minimum=0, example="1e-4")
    c.finite("--rtol", rtol, minimum=0, example="1e-3")
    c.at_least("--max-batch", max_batch, 1, example="8")
    c.at_least("--workspace-mb", workspace_mb, 1, example="1024")
    c.at_least("--calib-count", calib_count, 1, example="32")
    if not source.exists():
        raise ConfigError(f"SOURCE {str(source)!r} does not exist",
                          hint="pass an .onnx file or the output folder of an edgekd run")
    if source.is_file():
        for flag, v in (("--opset", opset), ("--exporter", exporter)):
            if v is not None:
                raise ConfigError(f"{flag} {v} applies to run folders (the model is exported from torch); SOURCE "
                                  f"{str(source)!r} is already ONNX", hint=f"drop {flag}")
    _check_out(source, fmt, out, calib)
    if source.is_dir():
        check_run_weights(source, weights)


def _check_out(source: Path, fmt: str, out: Path, calib: Path | None) -> None:
    """Where the files go: not onto SOURCE, not into a run folder, writable."""
    from edgekd.cli import _checks as c

    suffix = {"onnx": ".onnx", "openvino": ".xml"}.get(fmt)
    if suffix is not None and out.suffix == suffix:
        c.out_file("--out", out, inputs=[source, calib])
        if fmt == "openvino":
            c.out_file("--out (its weights)", out.with_suffix(".bin"), inputs=[source, calib])
        return
    c.out_dir("--out", out, inputs=[source, calib])
    if source.is_file():  # an ONNX file written into a folder keeps its name (TensorRT: a copy beside the plan)
        c.out_file("--out", out / (source.name if fmt != "openvino" else source.stem + ".xml"), inputs=[source])


def check_run_weights(run: Path, weights: str | None) -> None:
    """The weights to export are the ones the run's manifest records (sha256), or export refuses: an edited or
    swapped weights file would otherwise be exported under the run's name."""
    import json

    from edgekd.errors import ConfigError
    from edgekd.fileio import sha256_file
    from edgekd.tasks.run_student import RUN_WEIGHTS

    manifest = run / "manifest.json"
    try:
        arts = json.loads(manifest.read_text(encoding="utf-8")).get("artifacts") or []
    except (OSError, ValueError, AttributeError):
        return  # not a run folder, or a broken manifest: the loader says so with its fix
    if weights is not None and not (run / weights).is_file():
        raise ConfigError(f"--weights {weights!r}: no such file in {str(run)!r}",
                          hint="pass a weights file the run wrote, e.g. --weights " + RUN_WEIGHTS[0])
    name = weights or next((w for w in RUN_WEIGHTS if (run / w).is_file()), None)
    if name is None:
        return  # the loader says which weights it looked for
    if not arts:
        from edgekd.cli._common import err_console

        # A manifest without an artifact list (hand-made, or an edgekd before 0.1): nothing to check against.
        err_console.print(f"note: {manifest} records no artifacts: the weights {name} are not verified",
                          highlight=False, markup=False)
        return
    recorded = {a.get("path"): a.get("sha256") for a in arts if isinstance(a, dict)}
    if name not in recorded:
        raise ConfigError(f"{run / name}: the run's manifest does not record this file, so it cannot be checked",
                          hint="export a weights file the run wrote (see manifest.json 'artifacts'), or re-run")
    actual = sha256_file(run / name)
    if actual != recorded[name]:
        raise ConfigError(f"{run / name}: sha256 {actual[:12]}... differs from the run's manifest "
                          f"({str(recorded[name])[:12]}...): the weights changed after the run",
                          hint="restore the run's weights, or re-run `edgekd distill-and-export` to make a new run")
