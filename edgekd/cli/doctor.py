"""`edgekd doctor`: is this board ready for trustworthy measurements?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command("doctor")
    def doctor(
        device: Annotated[str | None, typer.Option("--device", "-d", help="device profile the board should "
                                                   "match (see `edgekd devices`)")] = None,
        json_out: Annotated[Path | None, typer.Option("--json", help="also write the findings as JSON "
                                                          "(- for stdout)")] = None,
    ) -> None:
        """Check runtimes (versions, providers), CPU governor, Jetson power mode and clocks, Raspberry Pi
        throttling and temperature, NVML, free memory, and whether the board matches --device.

        Exit codes: 0 ready, 2 something failed (each finding says the command that fixes it), a machine busy
        with other work (more runnable threads than CPUs) included."""
        from rich.table import Table

        from edgekd.cli._common import console
        from edgekd.errors import EdgekdError
        from edgekd.profile.doctor import FAIL, OK, WARN, findings_json, run_doctor

        if json_out is not None and str(json_out) != "-":
            from edgekd.cli._checks import out_file

            out_file("--json", json_out)
        ready, findings = run_doctor(device)
        table = Table(title=f"edgekd doctor{' --device ' + device if device else ''}")
        for col in ("check", "status", "detail", "fix"):
            table.add_column(col, overflow="fold")
        style = {OK: "green", WARN: "yellow", FAIL: "bold red"}
        for f in findings:
            s = style.get(f.status)
            table.add_row(f.check, f"[{s}]{f.status}[/]" if s else f.status, f.detail, f.fix)
        console.print(table)
        if json_out is not None and str(json_out) == "-":
            import json

            print(json.dumps(findings_json(ready, findings), indent=2))
        elif json_out is not None:
            from edgekd.fileio import write_json

            write_json(json_out, findings_json(ready, findings))
        if not ready:
            # An EdgekdError (exit 2), not typer.Exit: edgekd.cli.main maps errors to exit codes.
            failed = [f"{f.check}: {f.detail}" for f in findings if f.status == FAIL]
            raise EdgekdError(f"not ready: {len(failed)} check(s) failed: " + "; ".join(failed),
                              hint="run the command in each 'fail' row's fix column")
        console.print("ready", highlight=False)
