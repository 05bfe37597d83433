"""`edgekd build-engine PLAN.json`: build a TensorRT engine on the GPU host and check its parity there."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command("build-engine")
    def build_engine_cmd(
        plan: Annotated[Path, typer.Argument(help="the .plan.json written by `edgekd export --format tensorrt`")],
        parity: Annotated[bool, typer.Option("--parity/--no-parity", help="check the engine against ONNX Runtime "
                                             "on the plan's inputs")] = True,
    ) -> None:
        """Build the engine described by PLAN (needs tensorrt and an NVIDIA GPU).

        Exit codes: 0 built (and FP32/FP16 parity passed; INT8 parity is measured, not judged), 2 bad input,
        missing TensorRT/GPU, or FP32/FP16 parity failure."""
        from edgekd.cli._common import console
        from edgekd.export.tensorrt import build_engine

        res = build_engine(plan, check=parity)
        console.print(f"wrote {res.engine} ({res.precision}, TensorRT {res.tensorrt_version} on {res.device}, "
                      f"{res.seconds:.1f} s); timing cache {res.timing_cache}", highlight=False)
        if res.parity:
            outs = "; ".join(f"{o['name']}: max abs {o['max_abs_diff']:.2g}"
                             + (f", argmax agreement {o['agreement']:.4f}" if o.get("agreement") is not None else "")
                             for o in res.parity["outputs"])
            if res.parity.get("judged", True):
                console.print(f"parity vs onnxruntime: passed ({outs})", highlight=False)
            else:  # INT8: TensorRT's kernels round differently; the model is judged by its metric
                verdict = "within" if res.parity["passed"] else "outside"
                console.print(f"parity vs onnxruntime (INT8, measured, not judged): {verdict} the "
                              f"{res.parity['compare']} tolerance ({outs})", highlight=False)
        console.print(f"next: edgekd profile {res.engine} --runtime tensorrt", highlight=False)
