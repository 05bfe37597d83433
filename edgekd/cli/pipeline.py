"""`edgekd distill-and-export`: the main command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgekd.cli._common import SetOption


def register(app: typer.Typer) -> None:
    @app.command("distill-and-export")
    def distill_and_export(
        recipe: Annotated[str, typer.Argument(help="recipe name (see `edgekd recipes`) or path to a YAML file")] = "gaze",
        device: Annotated[str, typer.Option("--device", "-d", help="device profile (see `edgekd devices`)")] = "host-cpu",
        out: Annotated[Path | None, typer.Option("--out", "-o", help="output folder [default: runs/RECIPE]")] = None,
        preset: Annotated[str | None, typer.Option("--preset", help="recipe preset, e.g. quick or full")] = None,
        set_: SetOption = None,
        no_progress: Annotated[bool, typer.Option("--no-progress", help="plain log lines instead of bars")] = False,
    ) -> None:
        """Distill the recipe's teacher into its student, quantize, export to ONNX, check parity,
        score every variant, profile on this machine, and write report.json, report.md and manifest.json.

        Exit codes: 0 success, 1 the device's budget failed, 2 bad input or environment, 3 the budget
        was inconclusive (e.g. latency measured on contended CPUs)."""
        import sys

        from edgekd.cli._common import console
        from edgekd.config import load_device
        from edgekd.errors import EXIT_GATE_FAILED, EXIT_INCONCLUSIVE
        from edgekd.tasks.recipe import load_recipe

        # Validate everything before anything heavy happens.
        r = load_recipe(recipe, overrides=set_ or [], preset=preset)
        d = load_device(device)
        out_dir = out or Path("runs") / r.name
        from edgekd.cli._checks import out_dir as check_out_dir

        check_out_dir("--out", out_dir, run_folders=False)  # a re-run replaces a run folder: allowed
        from edgekd.pipeline import run_pipeline

        show = not no_progress and sys.stdout.isatty()
        res = run_pipeline(r, d, out_dir, progress=show, say=lambda s: console.print(s, highlight=False, markup=False))
        from edgekd.pipeline.report import render_markdown

        console.print(render_markdown(res.report), highlight=False, markup=False)
        console.print(f"wrote {out_dir}/report.json, report.md, manifest.json")
        from edgekd.pipeline.artifacts import ArtifactSet

        hint = ArtifactSet.of(r, out_dir).next_commands(d.name, r.name, res.report.get("inputs") or {},
                                                   optimize=res.report.get("optimize"))
        if hint:
            console.print(f"next: {hint}")
        if res.verdict == "INCONCLUSIVE":
            console.print(f"budget for {d.name!r} INCONCLUSIVE (see report.md)")
            raise typer.Exit(EXIT_INCONCLUSIVE)
        if res.budget_passed is None and res.verdict:
            console.print(f"budget for {d.name!r} not judged: {res.verdict} (see report.md)")
        if res.budget_passed is False:
            console.print(f"budget for {d.name!r} FAILED (see report.md)")
            raise typer.Exit(EXIT_GATE_FAILED)
