"""`edgekd recipes` and `edgekd devices`: what ships, in a table."""

from __future__ import annotations

import sys
from pathlib import Path

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
    def recipes(methods: bool = typer.Option(False, "--methods", help="per recipe, the distillation losses "
                                             "(methods) it trains with, every loss kind available, and where "
                                             "they are compared")) -> None:
        """List shipped recipes with their task, metric and presets; a file that cannot be read is
        listed with its error instead of stopping the listing."""
        from rich.table import Table
        from rich.text import Text

        from edgekd.cli._common import console
        from edgekd.paths import recipes_dir

        table = Table(title="recipes: distillation methods" if methods else "recipes")
        cols = ("name", "task", "trains with (distill.losses)") if methods else ("name", "task", "presets",
                                                                                "description")
        for col in cols:
            table.add_column(col)
        rows = [_recipe_row(path) for path in sorted(recipes_dir().glob("*.yaml"))]
        for row in rows:
            cells = (row[0], row[1], row[4] if row[1] != "(unreadable)" else row[3]) if methods else row[:4]
            table.add_row(*(Text(cell) for cell in cells))  # Text: a '[' in an error is not rich markup
        console.print(table)
        if methods:
            from edgekd.distill.losses import LOSSES

            print(f"loss kinds available to any recipe (--set distill.losses=...): {', '.join(LOSSES.kinds())}")
        print(METHODS_POINTER)
        bad = [row[0] for row in rows if row[1] == "(unreadable)"]
        if bad:
            print(f"warning: {len(bad)} recipe file(s) could not be read: {', '.join(bad)}; "
                  "their error is in the description column", file=sys.stderr)


METHODS_POINTER = ("which loss to choose, with its paper: docs/methods.md; measured per recipe against the "
                   "student alone and the baseline: docs/results.md#methods (benchmarks/methods.py)")


def _recipe_row(path: Path) -> tuple[str, str, str, str, str]:
    """(name, task kind, presets, description, loss kinds) of one recipe file, read raw (not validated),
    or its one-line error in place of the description."""
    from edgekd.config.loading import read_yaml
    from edgekd.errors import ConfigError

    try:
        raw = read_yaml(path)
    except ConfigError as exc:
        message = exc.message.replace(f"{path}: ", "", 1)
        return path.stem, "(unreadable)", "", f"error: {' '.join(message.split())}", ""
    task = raw.get("task")
    kind = str(task.get("kind", "?")) if isinstance(task, dict) else "?"
    presets = raw.get("presets")
    names = ", ".join(str(k) for k in presets) if isinstance(presets, dict) else ""
    return path.stem, kind, names, str(raw.get("description", "")), _loss_kinds(raw)


def _loss_kinds(raw: dict[str, object]) -> str:
    """The ``kind`` of each entry of the raw recipe's ``distill.losses`` ("-" when it has none)."""
    distill = raw.get("distill")
    losses = distill.get("losses") if isinstance(distill, dict) else None
    kinds = [str(x.get("kind", "?")) for x in losses if isinstance(x, dict)] if isinstance(losses, list) else []
    return ", ".join(kinds) or "-"
