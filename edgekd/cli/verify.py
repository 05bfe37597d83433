"""`edgekd verify RUN`: does a run folder tell the truth (edgekd.pipeline.runfolder.verify_run_folder)?"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command("verify")
    def verify(
        run: Annotated[Path, typer.Argument(help="a run folder (the --out of distill-and-export or distill)")],
    ) -> None:
        """Check a run folder: no run in progress or interrupted (RUN_IN_PROGRESS), and every file its
        manifest.json names exists with the recorded size and SHA-256 (a folder without a manifest
        claims nothing and is valid).

        Exit codes: 0 valid, 2 not a folder, 4 INVALID."""
        from edgekd.errors import EXIT_INVALID
        from edgekd.pipeline.runfolder import verify_run_folder

        v = verify_run_folder(run)
        print(_printable(v.summary()))
        for p in v.problems:
            print(f"  - {_printable(p)}")
        for n in v.notes:
            print(f"  note: {_printable(n)}")
        if not v.valid:
            raise typer.Exit(EXIT_INVALID)


def _printable(text: str) -> str:
    # file names come from the folder and its manifest: no control characters (line breaks, escapes) reach
    # the terminal or a CI log, where a line could otherwise pose as a workflow command
    return re.sub(r"[\x00-\x1f\x7f]", "?", text)
