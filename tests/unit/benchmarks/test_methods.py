"""benchmarks/methods.py: one tiny unit end to end, and the aggregation on hand-written unit JSONs."""

from __future__ import annotations

import importlib
import json
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def methods():  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        yield importlib.import_module("methods")
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


@pytest.fixture(scope="module")
def table(methods):  # type: ignore[no-untyped-def]
    return importlib.import_module("_methods_table")


def _unit(out: Path, recipe: str, arm: str, seed: int, test: float, **extra: float) -> None:
    lower = recipe == "gaze"
    p = out / recipe / arm / f"seed{seed}.json"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps({
        "recipe": recipe, "arm": arm, "seed": seed, "preset": "quick",
        "metric_name": "angular_error_deg" if lower else "success_rate", "lower_is_better": lower,
        "unit": "deg" if lower else "fraction", "metric": {"test": test}, "extras": extra,
        "train_seconds": 10.0 + seed, "params": {"model": 1000, "teacher": None}}))


def test_one_tiny_unit_runs_writes_its_json_and_is_skipped_on_rerun(methods, tmp_path, monkeypatch, capsys):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("EDGEKD_CACHE", str(tmp_path / "cache"))
    argv = ["--recipes", "segmentation", "--arms", "cwd", "--seeds", "3", "--out", str(tmp_path / "out"), "--tiny"]
    assert methods.main(argv) == 0
    res = json.loads((tmp_path / "out" / "segmentation" / "cwd" / "seed3.json").read_text())
    assert res["seed"] == 3 and res["preset"] == "smoke" and res["losses"] == ["cwd"]
    assert set(res["metric"]) == {"test", "test_fog", "test_night", "test_rain"}
    assert all(0.0 <= v <= 1.0 for v in res["metric"].values())
    assert res["train_seconds"] > 0 and 0 < res["train_cpu_seconds"] and res["params"]["model"] > 0 and res["teacher_source"] == "trained"
    assert [p.name for p in (tmp_path / "out" / "segmentation" / "cwd").iterdir()] == ["seed3.json"]  # no work dir
    assert methods.plan(["segmentation"], ["cwd"], [3], tmp_path / "out") == []
    methods.main(argv)
    assert "0 unit(s) to run" in capsys.readouterr().out


def test_tiny_lad_and_dagger_units_take_their_own_paths(methods, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """LAD trains on the hinted task with its own teacher but is scored on the plain one; DAgger adds rounds."""
    monkeypatch.setenv("EDGEKD_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out"
    st = methods.Settings(out=out, preset="smoke", dagger={"iterations": 1, "episodes": 2, "epochs": 1})
    lad = methods.run_unit(methods.Unit("segmentation", "lad", 0), st)
    assert lad["losses"] == ["lad"] and set(lad["metric"]) == {"test", "test_fog", "test_night", "test_rain"}
    dag = methods.run_unit(methods.Unit("drone", "dagger", 0), st)
    assert dag["teacher_source"] == "analytic" and dag["params"]["teacher"] is None
    assert {"final_error_px", "success_rate"} <= set(dag["extras"]) and dag["metric_name"] == "success_rate"
    assert (out / "drone" / "dagger" / "seed0.json").is_file()


def test_unknown_arm_is_a_usage_error(methods, capsys):  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as e:
        methods.main(["--recipes", "gaze", "--arms", "cwd", "--out", "x"])
    assert e.value.code == 2
    assert "the arms of gaze are" in capsys.readouterr().err


def test_every_arm_is_a_valid_recipe(methods) -> None:
    """Every arm's losses validate against its recipe (a typo in an arm fails here, not after hours)."""
    st = methods.Settings(out=Path("unused"), preset="smoke")
    for recipe, arms in methods.ARMS.items():
        for name, arm in arms.items():
            r = methods._arm_recipe(methods.Unit(recipe, name, 0), arm, st)
            if arm.losses is not None:
                assert [lc.kind for lc in r.distill.losses] == [x["kind"] for x in arm.losses]
        assert sum(a.baseline for a in arms.values()) == 1, recipe


def test_aggregation_gain_agree_count_and_sample_std(table, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    for s, (alone, reg, dmae) in enumerate([(6.0, 5.0, 5.5), (6.2, 5.4, 6.4), (5.8, 5.0, 5.0)]):
        _unit(out, "gaze", "alone", s, alone)
        _unit(out, "gaze", "regression", s, reg)
        _unit(out, "gaze", "dmae", s, dmae)
    summ = table.summarise(table.load_units(out, "gaze", [0, 1, 2]))
    m, sd = summ["dmae"]["splits"]["test"]
    ref = (5.5 + 6.4 + 5.0) / 3
    assert m == pytest.approx(ref)
    assert sd == pytest.approx(math.sqrt(sum((x - ref) ** 2 for x in (5.5, 6.4, 5.0)) / 2))  # n - 1, not n
    # lower is better: gain = alone - arm, per seed 0.5, -0.2, 0.8
    assert summ["dmae"]["vs_alone"].gain == pytest.approx(1.1 / 3) and summ["dmae"]["vs_alone"].agree == 2
    assert summ["dmae"]["vs_baseline"].gain == pytest.approx(-1.5 / 3) and summ["dmae"]["vs_baseline"].agree == 0  # a tie is not a win
    assert summ["regression"]["vs_alone"].agree == 3 and summ["regression"]["vs_baseline"] is None
    assert summ["alone"]["vs_alone"] is None and summ["dmae"]["seconds"][0] == pytest.approx(11.0)
    assert summ["dmae"]["cpu"] is False  # wall clock only: flagged
    md = table.recipe_table("gaze", table.load_units(out, "gaze", [0, 1, 2]))
    assert "| `dmae`" in md and "+0.37 (2/3)" in md and "-0.50 (0/3)" in md
    assert "`dmae` does not reproduce a gain over the student alone" in md
    assert "`regression` does not reproduce" not in md


def test_training_seconds_are_cpu_seconds_when_every_seed_has_them(table, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    for s in (0, 1):
        _unit(out, "gaze", "alone", s, 6.0)
        _unit(out, "gaze", "dmae", s, 5.0)
        p = out / "gaze" / "dmae" / f"seed{s}.json"
        p.write_text(json.dumps(json.loads(p.read_text()) | {"train_seconds": 900.0, "train_cpu_seconds": 5.0 + s}))
    summ = table.summarise(table.load_units(out, "gaze", [0, 1]))
    assert summ["dmae"]["cpu"] is True and summ["dmae"]["seconds"][0] == pytest.approx(5.5)
    assert summ["alone"]["cpu"] is False
    md = table.recipe_table("gaze", table.load_units(out, "gaze", [0, 1]))
    rows = {ln.split("|")[1].strip(): [c.strip() for c in ln.split("|")] for ln in md.splitlines()
            if ln.startswith("| `")}
    assert "6" in rows["`dmae`"] and "10 †" in rows["`alone`"], md


def test_report_writes_plot_and_replaces_the_methods_section(table, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out, docs = tmp_path / "out", tmp_path / "docs"
    docs.mkdir()
    (docs / "results.md").write_text("# Results\n\n## Drone\n\nkept\n")
    for s in (0, 1):
        _unit(out, "drone", "alone", s, 0.5, final_error_px=3.0 + s)
        _unit(out, "drone", "bc", s, 0.75, final_error_px=1.0)
    assert table.write_report(out, ["drone", "gaze"], [0, 1], docs) == 0
    text = (docs / "results.md").read_text()
    assert text.count(table.BEGIN) == 1 and "## Drone\n\nkept" in text and "+25.0 (2/2)" in text
    assert "3.50 ± 0.71" in text  # final error beside success, sample std
    assert (docs / "img" / "methods_drone.png").stat().st_size > 1000
    _unit(out, "drone", "bc", 0, 0.25, final_error_px=1.0)
    table.write_report(out, ["drone"], [0, 1], docs)
    text = (docs / "results.md").read_text()
    assert text.count(table.BEGIN) == 1 and text.count("## Methods") == 1 and "+0.0 (1/2)" in text
    assert table.write_report(tmp_path / "empty", ["drone"], [0], docs) == 2
