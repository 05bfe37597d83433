"""`edgekd recipes` and `edgekd devices`: what ships, in a table."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("devices")
    def devices() -> None:
        """List device profiles: runtimes and precisions, threads, budgets."""
        from rich.table import Table

        from edgekd.cli._common import console
        from edgekd.config.device import list_devices, load_device

        table = Table(title="devices")
        for col in ("name", "family", "threads", "runtimes (precisions)", "budgets for"):
            table.add_column(col)
        for name in list_devices():
            d = load_device(name)
            rts = "; ".join(f"{r.name} ({', '.join(r.precisions)})" for r in d.runtimes)
            table.add_row(d.name, d.family, str(d.default_threads or "all"), rts, ", ".join(sorted(d.budgets)))
        console.print(table)

    @app.command("recipes")
    def recipes() -> None:
        """List shipped recipes with their task, metric and presets."""
        from rich.table import Table

        from edgekd.cli._common import console
        from edgekd.config.loading import read_yaml
        from edgekd.paths import recipes_dir

        table = Table(title="recipes")
        for col in ("name", "task", "presets", "description"):
            table.add_column(col)
        for path in sorted(recipes_dir().glob("*.yaml")):
            raw = read_yaml(path)
            task = raw.get("task", {}).get("kind", "?") if isinstance(raw.get("task"), dict) else "?"
            table.add_row(path.stem, str(task), ", ".join(raw.get("presets", {}) or {}), str(raw.get("description", "")))
        console.print(table)
