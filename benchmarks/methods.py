"""The method table (issue 22): per recipe, the methods of that recipe's seed papers against the student
alone and the standard baseline (Hinton KD; output regression for gaze; behaviour cloning for the drone),
on the ``quick`` preset, over seeds.

Each (recipe, arm, seed) is one unit of work, written to ``OUT/<recipe>/<arm>/seed<k>.json`` as soon as
it finishes (atomic write): a rerun skips finished units, and units can run in parallel processes
(``--jobs N``, one torch thread each; or several invocations with disjoint ``--arms`` / ``--seeds``).
Teachers come from the pipeline's teacher cache, with the same key as
``edgekd distill-and-export RECIPE --preset quick --set seed=k``; LAD's label-hinted teacher has its own key
(``--set task.lad.enabled=true``), so the first ``segmentation/lad`` unit of a seed trains and caches it.
A unit's JSON: the metric on 'test' and every split the recipe reports, the test split's scalar extras (the
drone's final error), training seconds (1 torch thread), parameters, the losses and the teacher's source.

    python benchmarks/methods.py --recipes segmentation gaze --seeds 0 1 2 --out runs/methods --jobs 2
    python benchmarks/methods.py --recipes gui_agent --arms alone hinton --seeds 1 --out runs/methods
    python benchmarks/methods.py --out runs/methods --aggregate   # tables + plots -> docs/results.md
    python benchmarks/methods.py --recipes drone --arms alone --seeds 0 --out /tmp/m --tiny  # smoke sizes

Arms per recipe (``--list`` prints them with their losses): ``teacher`` (the teacher itself, nothing
trained), ``alone`` (the student on the labels only, as the pipeline's ``student_alone``), the baseline,
and the seed papers' methods, each with its loss's paper defaults unless the arm's note says otherwise.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _methods_arms import ARMS, Arm

__all__ = ["ARMS", "Arm", "Unit", "main", "run_unit", "unit_path"]


@dataclass(frozen=True)
class Unit:
    """One unit of work: one arm of one recipe with one seed."""

    recipe: str
    arm: str
    seed: int


@dataclass
class Settings:
    """What every unit of one invocation shares."""

    out: Path
    preset: str = "quick"
    sets: list[str] = field(default_factory=list)
    dagger: dict[str, int] = field(default_factory=lambda: {"iterations": 2, "episodes": 20, "epochs": 3})


def unit_path(out: Path, unit: Unit) -> Path:
    return out / unit.recipe / unit.arm / f"seed{unit.seed}.json"


def _recipe(unit: Unit, st: Settings, extra: Sequence[str] = ()) -> Any:
    from edgekd.tasks.recipe import load_recipe

    return load_recipe(unit.recipe, [*st.sets, f"seed={unit.seed}", *extra], preset=st.preset)


def _arm_recipe(unit: Unit, arm: Arm, st: Settings) -> Any:
    """The recipe the arm trains with: its losses and task-loss weight replace the recipe's distill terms
    (validated by the recipe schema, so a typo in an arm fails like one in a recipe)."""
    extra = list(arm.data_overrides)
    if arm.losses is not None:  # JSON is YAML: the same --set path a user would take
        extra.append("distill.losses=" + json.dumps([dict(x) for x in arm.losses]))
    if arm.task_loss_weight is not None:
        extra.append(f"distill.task_loss_weight={arm.task_loss_weight}")
    return _recipe(unit, st, extra)


def _scalars(d: dict[str, Any]) -> dict[str, float]:
    """The scalar figures of a task's extras (per-class or per-episode detail is left out)."""
    return {k: float(v) for k, v in d.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _score(task: Any, model: Any) -> dict[str, Any]:
    """The metric on 'test' and every split the task reports, plus test's scalar extras."""
    from edgekd.pipeline.evaluate import evaluate_all, model_predict

    res = evaluate_all(task, model_predict(model, task.io_spec()))
    return {"metric": {"test": res["metric"], **res.get("splits", {})}, "extras": _scalars(res["extras"])}


def _fit(task: Any, recipe: Any, student: Any, teacher: Any, work: Path) -> Any:
    """Train ``student`` as the pipeline's KD stage does (or its alone stage, with no teacher)."""
    from edgekd.distill.loop import fit
    from edgekd.pipeline.teacher_source import val_fn

    spec = task.io_spec()
    kd = {} if teacher is None else dict(
        teacher=teacher, losses=recipe.distill.losses, task_loss_weight=recipe.distill.task_loss_weight,
        teacher_cache=work / "teacher_cache" if recipe.distill.teacher_cache else None)
    return fit(student, train_set=task.dataset("train"), input_names=spec.input_names, cfg=recipe.train,
               task_loss=task.task_loss, val_fn=val_fn(task, spec), lower_is_better=task.metric.lower_is_better,
               seed=recipe.seed, progress=False, **kd)


def _dagger(task: Any, recipe: Any, student: Any, st: Settings) -> Any:
    """DAgger rounds on top of the behaviour-cloning student (as benchmarks/drone_closed_loop.py)."""
    from edgekd.pipeline.teacher_source import val_fn
    from edgekd.tasks.drone.dagger import run_dagger

    d = st.dagger
    cfg = recipe.train.model_copy(update={"epochs": d["epochs"], "warmup_steps": 0, "lr": recipe.train.lr / 2})
    return run_dagger(task, student, task.frames("train"), iterations=d["iterations"], episodes=d["episodes"],
                      train_cfg=cfg, seed=recipe.seed, val_fn=val_fn(task)).student


def _train_arm(unit: Unit, arm: Arm, st: Settings, work: Path) -> tuple[Any, Any, dict[str, Any]]:
    """(model to score, teacher, info) for one arm; ``info`` has the training seconds."""
    from edgekd.pipeline.teacher_source import obtain_teacher
    from edgekd.tasks import build_task

    recipe = _arm_recipe(unit, arm, st)
    task = build_task(recipe.task, unit.seed)
    if arm.kind == "alone":  # no teacher at all: nothing to obtain
        t0 = _clocks()
        model = _fit(task, recipe, task.build_student(init="scratch"), None, work).student
        return model, None, {"teacher_source": None, "losses": [], **_since(t0)}
    teacher, tinfo = obtain_teacher(recipe, task, work, progress=False)
    info: dict[str, Any] = {"teacher_source": tinfo["source"], "losses": [lc.kind for lc in recipe.distill.losses]}
    if arm.kind == "teacher":
        return teacher, teacher, {**info, "train_seconds": 0.0, "train_cpu_seconds": 0.0}
    t0 = _clocks()
    model = _fit(task, recipe, task.build_student(), teacher, work).student
    if arm.kind == "dagger":
        model = _dagger(task, recipe, model, st)
    return model, teacher, {**info, **_since(t0)}


def _clocks() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _since(t0: tuple[float, float]) -> dict[str, float]:
    """Wall and CPU seconds since ``t0``. The table uses CPU seconds: with one torch thread they are the
    training's compute, untouched by other jobs on the machine or by a unit paused (SIGSTOP) while a
    latency benchmark runs, both of which inflate the wall clock."""
    wall, cpu = _clocks()
    return {"train_seconds": round(wall - t0[0], 2), "train_cpu_seconds": round(cpu - t0[1], 2)}


def run_unit(unit: Unit, st: Settings) -> dict[str, Any]:
    """Train and score one unit; write its JSON (atomically) and return it. The scoring task is the
    recipe's own, so an arm that trains on other data (LAD's hinted teacher) is judged like the rest."""
    import torch

    from edgekd.fileio import write_json
    from edgekd.pipeline.evaluate import param_count
    from edgekd.tasks import build_task

    torch.set_num_threads(1)
    arm = ARMS[unit.recipe][unit.arm]
    unit_path(st.out, unit).parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"seed{unit.seed}.", dir=unit_path(st.out, unit).parent))
    try:
        model, teacher, info = _train_arm(unit, arm, st, work)
        base = _recipe(unit, st)
        scores = _score(build_task(base.task, unit.seed), model)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    metric = build_task(base.task, unit.seed).metric
    res = {"recipe": unit.recipe, "arm": unit.arm, "seed": unit.seed, "preset": base.preset,
           "metric_name": metric.name, "lower_is_better": metric.lower_is_better, "unit": metric.unit,
           **scores, **info,
           "params": {"model": param_count(model), "teacher": param_count(teacher)}, "overrides": st.sets}
    write_json(unit_path(st.out, unit), res)
    return res


def _run_one(unit: Unit, st: Settings) -> str:
    t0 = time.perf_counter()
    res = run_unit(unit, st)
    return (f"{unit.recipe}/{unit.arm}/seed{unit.seed}: test {res['metric']['test']:.4f} "
            f"(train {res['train_seconds']:.0f}s, cpu {res['train_cpu_seconds']:.0f}s, wall {time.perf_counter() - t0:.0f}s)")


def plan(recipes: Sequence[str], arms: Sequence[str] | None, seeds: Sequence[int], out: Path) -> list[Unit]:
    """The units still to run (finished ones, with a JSON on disk, are skipped)."""
    units = [Unit(r, a, s) for r in recipes for a in (arms or ARMS[r]) if a in ARMS[r] for s in seeds]
    return [u for u in units if not unit_path(out, u).is_file()]


def run_all(units: list[Unit], st: Settings, jobs: int) -> list[Unit]:
    """Run the units, ``jobs`` processes at a time (one torch thread each); report each as it ends. A failed
    unit does not stop the others (it has no JSON, so the next run retries it); the failed ones are returned."""
    failed: list[Unit] = []
    if jobs <= 1:
        for u in units:
            try:
                print(_run_one(u, st), flush=True)
            except Exception as exc:  # reported; the next run retries it
                failed.append(u)
                print(f"{u}: FAILED {type(exc).__name__}: {exc}", flush=True)
        return failed
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(jobs) as pool:
        futs = {pool.submit(_run_one, u, st): u for u in units}
        for f in as_completed(futs):
            try:
                print(f.result(), flush=True)
            except Exception as exc:  # reported; the next run retries it
                failed.append(futs[f])
                print(f"{futs[f]}: FAILED {type(exc).__name__}: {exc}", flush=True)
    return failed


def _check_arms(ap: argparse.ArgumentParser, recipes: Sequence[str], arms: Sequence[str] | None) -> None:
    bad_r = [r for r in recipes if r not in ARMS]
    if bad_r:
        ap.error(f"--recipes {bad_r}: allowed {', '.join(ARMS)}")
    known = {a for r in recipes for a in ARMS[r]}
    bad = [a for a in arms or () if a not in known]
    if bad:
        ap.error(f"--arms {bad}: the arms of {', '.join(recipes)} are {', '.join(sorted(known))}")


def _print_arms() -> None:
    for r, arms in ARMS.items():
        print(f"{r}:")
        for name, a in arms.items():
            losses = "recipe's" if a.losses is None else ", ".join(x["kind"] for x in a.losses) or "-"
            print(f"  {name:<14} {a.kind:<8} losses: {losses}  {a.note}")


def parser() -> argparse.ArgumentParser:
    from _common import add_seeds

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipes", nargs="+", default=list(ARMS), help=f"any of {', '.join(ARMS)}")
    ap.add_argument("--arms", nargs="+", default=None, help="only these arms (default: every arm of each recipe)")
    add_seeds(ap)
    ap.add_argument("--out", type=Path, default=Path("runs/methods"))
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--tiny", action="store_true", help="the recipes' smoke preset (seconds; numbers mean nothing)")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="recipe override a.b=value")
    ap.add_argument("--jobs", type=int, default=1, help="units in parallel (processes, 1 torch thread each)")
    ap.add_argument("--aggregate", action="store_true", help="only write the tables, plots and docs/results.md")
    ap.add_argument("--docs", type=Path, default=None, help="docs folder for --aggregate (default: the repo's)")
    ap.add_argument("--list", action="store_true", help="print the arms of every recipe and exit")
    ap.add_argument("--dagger-iterations", type=int, default=2)
    ap.add_argument("--dagger-episodes", type=int, default=20)
    ap.add_argument("--dagger-epochs", type=int, default=3)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    ap = parser()
    args = ap.parse_args(argv)
    if args.list:
        _print_arms()
        return 0
    _check_arms(ap, args.recipes, args.arms)
    if args.aggregate:
        from _methods_table import write_report

        docs = args.docs or Path(__file__).resolve().parents[1] / "docs"
        return write_report(args.out, args.recipes, args.seeds, docs)
    st = Settings(out=args.out, preset="smoke" if args.tiny else args.preset, sets=args.sets,
                  dagger={"iterations": args.dagger_iterations, "episodes": args.dagger_episodes,
                          "epochs": args.dagger_epochs})
    units = plan(args.recipes, args.arms, args.seeds, args.out)
    print(f"{len(units)} unit(s) to run ({args.jobs} at a time) into {args.out}", flush=True)
    t0 = time.perf_counter()
    failed = run_all(units, st, args.jobs)
    print(f"done in {time.perf_counter() - t0:.0f}s ({len(failed)} failed); table: python benchmarks/methods.py "
          f"--out {args.out} --aggregate", flush=True)
    return 70 if failed else 0  # 70: an internal error (a failed unit), never 1 (a judged FAIL)


if __name__ == "__main__":
    raise SystemExit(main())
