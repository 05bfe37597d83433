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

        Exit codes: 0 built (and parity passed), 2 bad input, missing TensorRT/GPU, or parity failure."""
        from edgekd.cli._common import console
        from edgekd.export.tensorrt import build_engine

        res = build_engine(plan, check=parity)
        console.print(f"wrote {res.engine} ({res.precision}, TensorRT {res.tensorrt_version} on {res.device}, "
                      f"{res.seconds:.1f} s); timing cache {res.timing_cache}", highlight=False)
        if res.parity:
            outs = "; ".join(f"{o['name']}: max abs {o['max_abs_diff']:.2g}" for o in res.parity["outputs"])
            console.print(f"parity vs onnxruntime: passed ({outs})", highlight=False)
        console.print(f"next: edgekd profile {res.engine} --runtime tensorrt", highlight=False)
