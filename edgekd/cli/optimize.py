"""`edgekd optimize`: every artifact the device supports, judged on held-out data, timed interleaved; the pick."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command("optimize")
    def optimize_cmd(
        model: Annotated[Path, typer.Argument(help="the FP32 .onnx model")],
        device: Annotated[str, typer.Option("--device", "-d", help="device profile (devices/*.yaml name or "
                                            "path): which runtimes and precisions to try")] = "host-cpu",
        calib: Annotated[Path | None, typer.Option("--calib", help="folder of .npy/.npz inputs (or images); "
                                                   "without --eval, split into calibration and held-out "
                                                   "parts automatically")] = None,
        eval_: Annotated[Path | None, typer.Option("--eval", help="folder of held-out inputs for judging")] = None,
        metric: Annotated[str, typer.Option("--metric", help="auto | argmax | iou | sequence | sqnr")] = "auto",
        max_drop: Annotated[float, typer.Option("--max-drop", help="largest allowed drop of agreement with FP32 "
                                                "(argmax/iou/sequence; 0.01 = 1%)")] = 0.01,
        min_sqnr: Annotated[float, typer.Option("--min-sqnr", help="smallest allowed SQNR (dB) for outputs "
                                                "judged by SQNR")] = 20.0,
        out: Annotated[Path, typer.Option("--out", "-o", help="output folder")] = Path("optimize-out"),
        input_: Annotated[list[str] | None, typer.Option("--input", help="NAME=1x3x48x192: fixes dynamic dims "
                                                         "(random data, OpenVINO static compile); NAME=16000 "
                                                         "or NAME=1,2,3: a value fed in every input")] = None,
        feed: Annotated[list[str] | None, typer.Option("--feed", help="NAME=FILE.npy: that input's array in "
                                                       "every input (repeatable)")] = None,
        threads: Annotated[int, typer.Option("--threads", help="threads for every candidate")] = 1,
        calib_count: Annotated[int, typer.Option("--calib-count", help="at most this many inputs per "
                                                 "folder")] = 32,
        sessions: Annotated[int, typer.Option("--sessions", help="interleaved timing rounds")] = 6,
        iterations: Annotated[int, typer.Option("--iterations", help="timed runs per session (raised to "
                                                "last 1 s in total)")] = 50,
        candidates: Annotated[list[str] | None, typer.Option("--candidate", help="only candidates whose name "
                                                             "starts with this (repeatable; ORT FP32 is always "
                                                             "kept as the reference)")] = None,
    ) -> None:
        """Build every candidate artifact (FP32, bf16/FP16 where the hardware has them, ORT static and dynamic
        INT8 variants, OpenVINO/NNCF INT8 with and without accuracy control), judge each against FP32 on
        held-out inputs, time them interleaved on this machine and pick the fastest within the budget.

        Writes OUT/optimize.json, OUT/optimize.md, OUT/optimize.png. Exit codes: 0 picked; 1 no candidate met
        the budget; 2 bad input or environment."""
        from edgekd.cli._common import console, err_console
        from edgekd.feeds import parse_input_args
        from edgekd.pipeline.optimize import OptimizeRequest, optimize
        from edgekd.profile.protocol import MeasureConfig

        req = OptimizeRequest(model=model, out_dir=out, device=device, calib_dir=calib, eval_dir=eval_,
                              metric=metric, max_drop=max_drop, min_sqnr_db=min_sqnr,
                              input_args=parse_input_args(input_ or [], feed or []), threads=threads,
                              calib_count=calib_count, measure=MeasureConfig(sessions=sessions, iterations=iterations),
                              only=candidates or None)
        rep = optimize(req)
        console.print(f"data: {rep.data}", highlight=False)
        for note in rep.notes:
            (err_console if note.startswith("WARNING") else console).print(note, highlight=False)
        for c in rep.candidates:
            lat = f"{c.latency_p50_ms:.3f} ms" if c.latency_p50_ms is not None else "-"
            acc = f"{c.accuracy:.4f}" if c.accuracy is not None else "-"
            console.print(f"  {c.name:32s} {acc:>8s} {lat:>12s}  {c.status}: {c.why}", highlight=False)
        console.print(f"wrote {out / 'optimize.json'}, {out / 'optimize.md'}, {out / 'optimize.png'}",
                      highlight=False)
        if rep.picked is None:
            err_console.print("FAIL: no candidate met the accuracy budget", highlight=False)
            raise typer.Exit(1)
        console.print(f"picked: {rep.picked}", highlight=False)
