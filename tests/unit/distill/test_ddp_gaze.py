"""The gaze recipe under ``torchrun --nproc_per_node 2`` (gloo, CPU) against one process.

Two checks, both on the gaze task built from ``recipes/gaze.yaml`` (smoke preset) with
``edgekd.tasks.build_task``, each run for a few steps:

- ``exact``: the gaze student without its BatchNorm adapters and with the deterministic
  regression loss only. 2 ranks at batch 8 see the samples of 1 process at batch 16 and
  average the same gradients, so the weights must agree up to float summation order.
- ``recipe``: the recipe as written (adapters with BatchNorm, regression + masked-autoencoder
  feature distillation, teacher cache). BatchNorm statistics are per rank (8 samples, not 16)
  and each rank draws its own masks, so the final validation metric is compared within a
  tolerance (0.5 deg) and the final-epoch training loss within 15%.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent("""
    import json, sys, torch
    from pathlib import Path
    torch.set_num_threads(1)
    from edgekd.tasks.recipe import load_recipe
    from edgekd.distill import ddp
    from edgekd.distill.loop import fit
    from edgekd.tasks import build_task
    from edgekd.tasks.base import torch_predict
    from edgekd.fileio import write_json

    out, batch = Path(sys.argv[1]), int(sys.argv[2])
    results = {}
    for mode in ("exact", "recipe"):
        sets = ["task.train_size=64", "task.val_size=16", f"train.batch_size={batch}", "train.epochs=2",
                "train.lr=0.002", "train.log_every_steps=1"]
        if mode == "exact":
            sets += ["task.model.adapters=false"]
        recipe = load_recipe("gaze", sets, preset="smoke")
        losses = recipe.distill.losses if mode == "recipe" else \\
            [lc for lc in recipe.distill.losses if lc.kind == "regression"]
        task = build_task(recipe.task, recipe.seed)
        teacher = task.build_teacher().eval()   # seeded by the task: the same weights in every process
        student = task.build_student()          # stage 1 copied from the teacher, the rest seeded
        spec = task.io_spec()

        def val(model):
            return float(task.evaluate(torch_predict(model, spec), split="val").metric)

        before = val(task.build_student())
        res = fit(student, train_set=task.dataset("train"), input_names=spec.input_names, cfg=recipe.train,
                  task_loss=task.task_loss, teacher=teacher, losses=losses, val_fn=val,
                  lower_is_better=True, out_dir=out / mode, seed=recipe.seed, progress=False,
                  teacher_cache=out / f"cache_{mode}" if mode == "recipe" else None)
        results[mode] = {"before": before, "best": res.best_metric, "final": res.history[-1]["val_metric"],
                         "loss": res.history[-1]["train_loss"], "steps": res.history[-1]["step"]}
    if int(__import__("os").environ.get("RANK", "0")) == 0:
        write_json(out / "result.json", results)
""")


def _run(cmd: list[str], tmp: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=tmp)
    assert proc.returncode == 0, proc.stderr[-4000:]


@pytest.mark.slow  # two torchrun processes on the gaze models: ~35 s (tests/unit/distill/test_ddp.py keeps DDP in the default suite)
def test_torchrun_two_processes_trains_gaze_like_one(tmp_path: Path) -> None:
    from edgekd.distill import checkpoint as ckpt

    script = tmp_path / "train_gaze.py"
    script.write_text(SCRIPT)
    _run([sys.executable, str(script), str(tmp_path / "single"), "16"], tmp_path)
    _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script),
          str(tmp_path / "ddp"), "8"], tmp_path)
    single = json.loads((tmp_path / "single" / "result.json").read_text())
    dist = json.loads((tmp_path / "ddp" / "result.json").read_text())
    print(f"gaze smoke, 1 process x batch 16 vs torchrun 2 x 8: {json.dumps({'single': single, 'ddp': dist})}")

    # exact: same optimisation steps, same weights
    assert dist["exact"]["steps"] == single["exact"]["steps"] == 8  # 64 images / 16 per step x 2 epochs
    w1, _ = ckpt.load(tmp_path / "single" / "exact" / "last.safetensors")
    w2, _ = ckpt.load(tmp_path / "ddp" / "exact" / "last.safetensors")
    keys = [k for k in w1 if k.startswith("student.")]
    assert keys and set(keys) <= set(w2)
    w_diff = max(float((w1[k] - w2[k]).abs().max()) for k in keys)
    assert w_diff < 1e-4, w_diff
    assert dist["exact"]["final"] == pytest.approx(single["exact"]["final"], rel=1e-4, abs=1e-4)
    assert dist["exact"]["loss"] == pytest.approx(single["exact"]["loss"], rel=1e-4)

    # recipe as written: the final metric within 0.5 deg (about 4% of it; measured gap 0.22 deg),
    # and the steps did change the student (measured: by 0.5-0.7 deg in either run)
    for run in (single, dist):
        assert abs(run["recipe"]["final"] - run["recipe"]["before"]) > 0.1, run["recipe"]
    assert dist["recipe"]["final"] == pytest.approx(single["recipe"]["final"], abs=0.5)
    assert dist["recipe"]["loss"] == pytest.approx(single["recipe"]["loss"], rel=0.15)
    # rank 0 alone wrote the run folder and the teacher cache (one entry)
    assert sorted(p.name for p in (tmp_path / "ddp" / "recipe").iterdir()) == [
        "best.json", "best.safetensors", "last.json", "last.safetensors", "metrics.jsonl"]
    assert len(list((tmp_path / "ddp" / "cache_recipe").iterdir())) == 1
