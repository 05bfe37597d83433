"""The method table of benchmarks/methods.py: read the units' JSONs, summarise each arm over seeds (mean and
sample std per split, gain over the student alone and over the baseline with how many seeds agree, training
time), write a markdown table per recipe, a plot per recipe (docs/img/methods_<recipe>.png) and the
``## Methods`` section of docs/results.md between its markers."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import mean_std
from _methods_arms import ARMS

BEGIN, END = "<!-- methods:begin -->", "<!-- methods:end -->"
# Figures reported beside the metric (from the test split's extras), per recipe.
EXTRAS = {"drone": ("final_error_px",)}


@dataclass
class Paired:
    """An arm against a reference arm on the test split, over the seeds both have."""

    gain: float  # mean improvement (positive = better, whatever the metric's direction)
    agree: int  # seeds where the arm is better
    n: int

    def text(self, scale: float, digits: int) -> str:
        return f"{scale * self.gain:+.{digits}f} ({self.agree}/{self.n})"


def load_units(out: Path, recipe: str, seeds: Sequence[int]) -> dict[str, dict[int, dict[str, Any]]]:
    """{arm: {seed: unit JSON}} of the finished units, arms in the order ARMS lists them."""
    runs: dict[str, dict[int, dict[str, Any]]] = {}
    for arm in ARMS.get(recipe, {}):
        found = {s: json.loads(p.read_text()) for s in seeds if (p := out / recipe / arm / f"seed{s}.json").is_file()}
        if found:
            runs[arm] = found
    return runs


def paired(runs: dict[int, dict[str, Any]], ref: dict[int, dict[str, Any]], lower_is_better: bool) -> Paired | None:
    """Improvement of ``runs`` over ``ref`` on 'test', seed by seed (None when no seed has both)."""
    seeds = sorted(set(runs) & set(ref))
    if not seeds:
        return None
    sign = -1.0 if lower_is_better else 1.0
    d = [sign * (runs[s]["metric"]["test"] - ref[s]["metric"]["test"]) for s in seeds]
    return Paired(sum(d) / len(d), sum(x > 0 for x in d), len(d))


def summarise(runs: dict[str, dict[int, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per arm: mean and sample std per split (and extra), pairings with alone and the baseline, seconds."""
    first = next(iter(next(iter(runs.values())).values()))
    recipe, low = first["recipe"], bool(first["lower_is_better"])
    base = next((a for a in runs if ARMS[recipe][a].baseline), None)
    out: dict[str, dict[str, Any]] = {}
    for arm, by_seed in runs.items():
        vals = list(by_seed.values())
        splits = {k: mean_std([v["metric"][k] for v in vals]) for k in vals[0]["metric"]
                  if all(k in v["metric"] for v in vals)}
        extras = {k: mean_std([v["extras"][k] for v in vals]) for k in EXTRAS.get(recipe, ())
                  if all(k in v.get("extras", {}) for v in vals)}
        trained = arm not in ("teacher", "alone")
        out[arm] = {"seeds": sorted(by_seed), "splits": splits, "extras": extras,
                    **_seconds(vals), "params": vals[0]["params"]["model"],
                    "vs_alone": paired(by_seed, runs["alone"], low) if trained and "alone" in runs else None,
                    "vs_baseline": paired(by_seed, runs[base], low) if trained and base and arm != base else None}
    return out


def _seconds(vals: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean training seconds: CPU seconds when every seed recorded them (immune to load and pauses), else
    the wall clock, flagged (``cpu: False``) because it may include time the unit sat paused."""
    cpu = all("train_cpu_seconds" in v for v in vals)
    key = "train_cpu_seconds" if cpu else "train_seconds"
    return {"seconds": mean_std([v[key] for v in vals]), "cpu": cpu}


def _fmt(ms: tuple[float, float], scale: float, digits: int, n: int = 2) -> str:
    """``mean ± sample std``; a single seed has no spread, so only its value is shown."""
    if n < 2:
        return f"{scale * ms[0]:.{digits}f}"
    return f"{scale * ms[0]:.{digits}f} ± {scale * ms[1]:.{digits}f}"


def _scale(first: dict[str, Any]) -> tuple[float, int, str]:
    """Fractions are shown in percent (points for gains); other units as they are."""
    if first.get("unit") == "fraction":
        return 100.0, 1, " (%)"
    unit = first.get("unit", "")
    return 1.0, 2, f" ({unit})" if unit and not first["metric_name"].endswith(unit) else ""


def recipe_table(recipe: str, runs: dict[str, dict[int, dict[str, Any]]]) -> str:
    """One recipe's markdown: the table, then a sentence per method that does not reproduce its claim."""
    from _common import print_table

    summ = summarise(runs)
    first = next(iter(next(iter(runs.values())).values()))
    scale, digits, unit = _scale(first)
    splits = list(next(iter(summ.values()))["splits"])
    extras = list(EXTRAS.get(recipe, ()))
    base = next((a for a in runs if ARMS[recipe][a].baseline), "-")
    head = ["arm", "seeds", *splits, *extras, "gain vs alone (seeds agree)", f"vs {base}", "train s", "params", "paper",
            "paper's claim"]
    rows = []
    for arm, s in summ.items():
        a = ARMS[recipe][arm]
        n = len(s["seeds"])
        rows.append([f"`{arm}`", str(n), *[_fmt(s["splits"][k], scale, digits, n) for k in splits],
                     *[_fmt(s["extras"][k], 1.0, 2, n) if k in s["extras"] else "-" for k in extras],
                     s["vs_alone"].text(scale, digits) if s["vs_alone"] else "-",
                     s["vs_baseline"].text(scale, digits) if s["vs_baseline"] else "-",
                     f"{s['seconds'][0]:.0f}{'' if s['cpu'] else ' †'}", f"{s['params']:,}" if s["params"] else "-", a.paper or "-",
                     a.claim if a.paper else "-"])
    direction = "lower is better" if first["lower_is_better"] else "higher is better"
    seeds = sorted({k for r in runs.values() for k in r})
    title = (f"### {recipe}: {first['metric_name']}{unit} ({direction}), preset `{first['preset']}`, "
             f"seeds {seeds}, mean ± sample std")
    print(f"\n{title}")
    table = print_table(head, rows)
    notes = [f"- `{arm}`: {ARMS[recipe][arm].note}" for arm in summ if ARMS[recipe][arm].note]
    return "\n".join([title, "", table, "", *_verdicts(recipe, summ, scale, digits), "", "Arms:", *notes, ""])


def _verdicts(recipe: str, summ: dict[str, dict[str, Any]], scale: float, digits: int) -> list[str]:
    """A plain sentence per trained arm that does not beat the student alone on every seed."""
    lines = []
    for arm, s in summ.items():
        p = s["vs_alone"]
        if p is None or (p.gain > 0 and p.agree == p.n):
            continue
        claim = ARMS[recipe][arm].claim
        what = "its paper claims a gain" if claim != "not stated" else "its paper's claim is not stated here"
        lines.append(f"- `{arm}` does not reproduce a gain over the student alone at this scale: "
                     f"{scale * p.gain:+.{digits}f} on test, better in {p.agree} of {p.n} seeds ({what}).")
    return lines


def plot(recipe: str, runs: dict[str, dict[int, dict[str, Any]]], path: Path) -> Path:
    """Grouped bars: one group per split, one bar per arm, ± sample std over seeds (headless Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from edgekd.fileio import atomic_path

    summ = summarise(runs)
    first = next(iter(next(iter(runs.values())).values()))
    scale, _, unit = _scale(first)
    arms, splits = list(summ), list(next(iter(summ.values()))["splits"])
    width = 0.8 / len(arms)
    fig, ax = plt.subplots(figsize=(2.0 + 1.6 * len(splits) + 0.2 * len(arms), 3.6))
    for i, a in enumerate(arms):
        x = np.arange(len(splits)) + (i - (len(arms) - 1) / 2) * width
        ax.bar(x, [scale * summ[a]["splits"][k][0] for k in splits], width,
               yerr=[scale * summ[a]["splits"][k][1] for k in splits], capsize=2, label=a)
    ax.set_xticks(np.arange(len(splits)), splits)
    ax.set_ylabel(f"{first['metric_name']}{unit}")
    ax.set_title(f"{recipe}: mean ± sample std over seeds", fontsize=10)
    ax.legend(fontsize=7, ncol=min(len(arms), 4))
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def splice(doc: str, body: str) -> str:
    """``doc`` with the text between the methods markers replaced by ``body`` (a ``## Methods`` section with
    the markers is appended when the markers are absent)."""
    block = f"{BEGIN}\n{body.strip()}\n{END}"
    if BEGIN in doc and END in doc:
        head, rest = doc.split(BEGIN, 1)
        return head + block + rest.split(END, 1)[1]
    return doc.rstrip() + f"\n\n## Methods\n\n{block}\n"


def write_report(out: Path, recipes: Sequence[str], seeds: Sequence[int], docs: Path) -> int:
    """Tables and plots of every recipe with finished units; the markdown into docs/results.md. Returns 0,
    or 2 when no unit is finished."""
    from edgekd.fileio import write_text

    parts = []
    for recipe in recipes:
        runs = load_units(out, recipe, seeds)
        if not runs:
            continue
        png = plot(recipe, runs, docs / "img" / f"methods_{recipe}.png")
        parts.append(recipe_table(recipe, runs) + f"\n![{recipe} methods](img/{png.name})\n")
    if not parts:
        print(f"no finished units in {out} for {', '.join(recipes)} seeds {list(seeds)}")
        return 2
    intro = ("Produced by `python benchmarks/methods.py --out OUT --aggregate` from one JSON per (recipe, arm, "
             "seed). Gains are on the test split, in the metric's units (points for fractions), positive = "
             "better; `k/n` = seeds where the arm beats the reference. `train s`: mean training CPU seconds per "
             "seed (1 torch thread); † marks wall-clock seconds of units run before CPU time was recorded, "
             "which can include time a unit sat paused while a latency benchmark ran. Claims are the papers' own, on their benchmarks and scales.")
    body = intro + "\n\n" + "\n".join(parts)
    results = docs / "results.md"
    write_text(results, splice(results.read_text() if results.is_file() else "# Results\n", body))
    print(f"\nwrote {results} (section Methods) and {docs / 'img'}/methods_*.png")
    return 0
