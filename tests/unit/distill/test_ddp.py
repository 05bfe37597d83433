"""The same fit under torch.distributed.run (2 processes, gloo): rank r takes every 2nd index of
the same permutation, so 2 ranks at batch B step through the samples of 1 process at batch 2B
and must end at the same weights and losses (up to float summation order)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from edgekd.config.recipe import TrainConfig
from edgekd.distill import checkpoint as ckpt
from edgekd.distill.ddp import DistInfo, setup
from edgekd.distill.loop import fit

HELPERS = Path(__file__).with_name("_engine_helpers.py")
_spec = importlib.util.spec_from_file_location("_engine_helpers", HELPERS)
H = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(H)  # type: ignore[union-attr]

CFG = dict(epochs=2, batch_size=8, lr=2e-2, weight_decay=0.01, log_every_steps=1)

SCRIPT = textwrap.dedent(f"""
    import importlib.util, sys, torch
    from pathlib import Path
    torch.set_num_threads(1)
    spec = importlib.util.spec_from_file_location("_engine_helpers", {str(HELPERS)!r})
    H = importlib.util.module_from_spec(spec); spec.loader.exec_module(H)
    H.register()
    from edgekd.config.recipe import TrainConfig
    from edgekd.distill.loop import fit
    torch.manual_seed(1); teacher = H.TinyMLP(hidden=12)
    torch.manual_seed(2); student = H.TinyMLP()
    ds = H.RandomRegression(n=96)
    res = fit(student, train_set=ds, input_names=["x"], cfg=TrainConfig(**{CFG!r}), task_loss=H.mse_task_loss,
              teacher=teacher, losses=[H.OutMSEConfig(), H.FeatMSEConfig(weight=0.3)], val_fn=H.val_mse(ds),
              out_dir=Path(sys.argv[1]), teacher_cache=Path(sys.argv[2]), progress=False, seed=7)
""")


@pytest.fixture(autouse=True)
def _losses():
    H.register()
    yield
    H.unregister()


def test_single_process_env_is_not_distributed(monkeypatch: pytest.MonkeyPatch) -> None:
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    assert setup(torch.device("cpu")) == DistInfo(0, 1, 0)
    assert DistInfo(1, 2, 1).enabled and not DistInfo(1, 2, 1).is_main


def test_torchrun_two_processes_matches_single_process(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(script), str(tmp_path / "ddp"), str(tmp_path / "cache")],
                          capture_output=True, text=True, timeout=240, env=env)
    ddp_s = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr[-3000:]
    torch.manual_seed(1)
    teacher = H.TinyMLP(hidden=12)
    torch.manual_seed(2)
    student = H.TinyMLP()
    ds = H.RandomRegression(n=96)
    single = fit(student, train_set=ds, input_names=["x"], cfg=TrainConfig(**{**CFG, "batch_size": 16}),
                 task_loss=H.mse_task_loss, teacher=teacher, losses=[H.OutMSEConfig(), H.FeatMSEConfig(weight=0.3)],
                 val_fn=H.val_mse(ds), progress=False, seed=7)
    tensors, meta = ckpt.load(tmp_path / "ddp" / "last.safetensors")
    last = single.student.state_dict()  # no early best: val improves each epoch, so best == last
    assert single.best_epoch == 1 and meta["best_epoch"] == 1
    w_diff = max(float((tensors[f"student.{k}"] - v).abs().max()) for k, v in last.items())
    p_diff = float((tensors["term.1.proj.weight"] - single.terms[1].proj.weight.detach()).abs().max())
    m_ddp, m_single = meta["best_metric"], single.best_metric
    l_ddp, l_single = meta["history"][-1]["train_loss"], single.history[-1]["train_loss"]
    print(f"ddp(2x8) vs single(16): max |dw| {w_diff:.3g}, projector {p_diff:.3g}, val {m_ddp:.6f} vs {m_single:.6f}, "
          f"final-epoch loss {l_ddp:.6f} vs {l_single:.6f}; torchrun wall {ddp_s:.1f} s")
    assert w_diff < 1e-4 and p_diff < 1e-4
    assert m_ddp == pytest.approx(m_single, rel=1e-4) and l_ddp == pytest.approx(l_single, rel=1e-4)
    assert len(list((tmp_path / "cache").iterdir())) == 1  # built once, by rank 0
    # rank 0 alone wrote: one metrics log, no stray files from rank 1
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir()) == [
        "best.json", "best.safetensors", "last.json", "last.safetensors", "metrics.jsonl"]
