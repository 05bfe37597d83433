"""`edgekd personalize`: adapt a gaze student to one wearer from ~5 labelled images (DFT Gaze)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command("personalize")
    def personalize_cmd(
        checkpoint: Annotated[Path, typer.Argument(help="a gaze run folder (manifest.json + student weights) or a "
                                                   "gaze student's .safetensors")],
        images: Annotated[Path, typer.Option("--images", help="folder of the wearer's eye images (PNG/JPEG; "
                                             "about 5)")],
        labels: Annotated[Path, typer.Option("--labels", help="CSV with header file,yaw_deg,pitch_deg (visual "
                                             "axis, degrees, edgekd convention)")],
        out: Annotated[Path, typer.Option("--out", "-o", help="output folder: personalized.safetensors, "
                                          "personalized.onnx, personalize.json")],
        steps: Annotated[int, typer.Option("--steps", min=1, help="optimiser steps")] = 200,
        lr: Annotated[float, typer.Option("--lr", min=0.0, help="learning rate of the last-stage adapters")] = 3e-3,
        seed: Annotated[int, typer.Option("--seed")] = 0,
        no_onnx: Annotated[bool, typer.Option("--no-onnx", help="write only the weights")] = False,
        exporter: Annotated[str, typer.Option("--exporter", help="ONNX exporter: auto | dynamo | torchscript")]
        = "auto",
        opset: Annotated[int, typer.Option("--opset", help="ONNX opset")] = 17,
    ) -> None:
        """Train only the last-stage adapters of CHECKPOINT on the wearer's images; write the adapted
        weights and ONNX. Exit codes: 0 written, 2 bad input."""
        from edgekd.cli import _checks as c
        from edgekd.cli._common import console
        from edgekd.errors import ConfigError
        from edgekd.tasks.gaze.personalize import PersonalizeConfig, personalize_folder

        c.finite("--lr", lr, above=0, example="3e-3")
        if not 0 <= seed < 2**32:
            raise ConfigError(f"--seed {seed}: must be in 0..{2**32 - 1}", hint="e.g. --seed 0")
        c.one_of("--exporter", exporter, ("auto", "dynamo", "torchscript"))
        c.at_least("--opset", opset, 7, example="17")
        c.in_file("--labels", labels, what="CSV file")
        if not images.is_dir():
            raise ConfigError(f"--images {str(images)!r}: not a folder", hint="give the folder of the wearer's images")
        c.out_dir("--out", out, inputs=[checkpoint, images, labels])
        res = personalize_folder(checkpoint, images, labels, out,
                                 cfg=PersonalizeConfig(steps=steps, lr=lr, seed=seed), export=not no_onnx,
                                 exporter=exporter, opset=opset)
        for note in res["notes"]:
            console.print(f"note: {note}", highlight=False)
        console.print(f"personalised on {len(res['images'])} image(s), {res['trained_parameters']} adapter "
                      f"parameters trained: support error {res['support_error_before_deg']:.2f} -> "
                      f"{res['support_error_after_deg']:.2f} deg", highlight=False)
        for name in res["artifacts"]:
            console.print(f"wrote {out / name}", highlight=False)
        if not no_onnx:
            console.print(f"next: edgekd profile {out / 'personalized.onnx'}", highlight=False)
