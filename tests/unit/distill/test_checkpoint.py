"""Checkpoints: atomic safetensors, no pickle; a run killed with SIGKILL mid-epoch and resumed
ends where an uninterrupted run ends; a resume with another config names the differing field."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from edgekd.config.recipe import TrainConfig
from edgekd.distill import checkpoint as ckpt
from edgekd.distill.loop import fit
from edgekd.errors import TrainingError

HELPERS = Path(__file__).with_name("_engine_helpers.py")
_spec = importlib.util.spec_from_file_location("_engine_helpers", HELPERS)
H = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(H)  # type: ignore[union-attr]

CFG = dict(epochs=4, batch_size=8, lr=3e-2, weight_decay=0.01, log_every_steps=1, checkpoint_every_steps=3)

# The same run as _run() below, in a child process, slowed down so it can be killed mid-epoch.
SCRIPT = textwrap.dedent(f"""
    import importlib.util, sys, time, torch
    torch.set_num_threads(1)
    spec = importlib.util.spec_from_file_location("_engine_helpers", {str(HELPERS)!r})
    H = importlib.util.module_from_spec(spec); spec.loader.exec_module(H)
    H.register()
    from edgekd.config.recipe import TrainConfig
    from edgekd.distill.loop import fit
    def slow_loss(out, batch):
        time.sleep(0.05)
        return H.mse_task_loss(out, batch)
    torch.manual_seed(1); teacher = H.TinyMLP(hidden=12)
    torch.manual_seed(2); student = H.TinyMLP(dropout=0.3)
    ds = H.RandomRegression(n=64)
    fit(student, train_set=ds, input_names=["x"], cfg=TrainConfig(**{CFG!r}), task_loss=slow_loss,
        teacher=teacher, losses=[H.FeatMSEConfig(weight=0.3)], val_fn=H.val_mse(ds),
        out_dir=__import__("pathlib").Path(sys.argv[1]), progress=False, seed=5)
""")


@pytest.fixture(autouse=True)
def _losses():
    H.register()
    yield
    H.unregister()


def _run(out_dir: Path | None, resume: bool = False, **overrides):
    torch.manual_seed(1)
    teacher = H.TinyMLP(hidden=12)
    torch.manual_seed(2)
    student = H.TinyMLP(dropout=0.3)
    ds = H.RandomRegression(n=64)
    return fit(student, train_set=ds, input_names=["x"], cfg=TrainConfig(**{**CFG, **overrides}),
               task_loss=H.mse_task_loss, teacher=teacher, losses=[H.FeatMSEConfig(weight=0.3)],
               val_fn=H.val_mse(ds), out_dir=out_dir, resume=resume, progress=False, seed=5)


def test_sigkill_mid_epoch_then_resume_matches_uninterrupted_run(tmp_path: Path) -> None:
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(killed)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    side = killed / "last.json"
    deadline = time.monotonic() + 60
    state = {}
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if side.exists():
                try:
                    state = json.loads(side.read_text())
                except json.JSONDecodeError:  # side file is written atomically; never torn
                    raise
                if state["epoch"] >= 1 and state["step_in_epoch"] > 0:
                    break
            time.sleep(0.01)
        assert proc.poll() is None, f"child ended before it could be killed: {proc.communicate()[1][-2000:]!r}"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert state["global_step"] < 4 * 8  # killed mid-run, not after it
    stale = killed / ".last.safetensors.abc123.tmp.safetensors"  # what a kill during a save leaves
    stale.write_bytes(b"half a file")
    resumed = _run(killed, resume=True)
    assert not stale.exists()
    full = _run(tmp_path / "full")
    a, b = resumed.student.state_dict(), full.student.state_dict()
    max_diff = max(float((a[k] - b[k]).abs().max()) for k in a)
    print(f"resume: killed at global step {state['global_step']}, max |w_resumed - w_full| = {max_diff:.3g}, "
          f"best metric {resumed.best_metric!r} vs {full.best_metric!r}")
    assert max_diff < 1e-5, max_diff
    assert abs(resumed.best_metric - full.best_metric) < 1e-5
    pa, pb = resumed.terms[0].proj.weight, full.terms[0].proj.weight
    assert torch.allclose(pa, pb, atol=1e-5)
    assert [h["epoch"] for h in resumed.history] == [0, 1, 2, 3]
    assert resumed.history[-1]["train_loss"] == pytest.approx(full.history[-1]["train_loss"], rel=1e-5)
    epochs = [json.loads(x)["epoch"] for x in (killed / "metrics.jsonl").read_text().splitlines()
              if json.loads(x)["kind"] == "epoch"]
    assert epochs == [0, 1, 2, 3]
    assert not [p.name for p in killed.iterdir() if ".tmp" in p.name]


def test_resume_with_other_config_names_the_field(tmp_path: Path) -> None:
    _run(tmp_path, epochs=1)
    with pytest.raises(TrainingError, match=r"field train\.lr: checkpoint has 0\.03, this run has 0\.01"):
        _run(tmp_path, resume=True, epochs=1, lr=0.01)
    with pytest.raises(TrainingError, match="does not exist"):
        _run(tmp_path / "empty", resume=True)


def test_checkpoint_holds_no_pickle_and_round_trips_optimizer_and_rng(tmp_path: Path) -> None:
    res = _run(tmp_path, epochs=1)
    tensors, meta = ckpt.load(res.checkpoint)
    assert meta["format"] == ckpt.FORMAT and meta["epoch"] == 1 and meta["config"]["train"]["lr"] == 0.03
    assert any(k.startswith("optim.") and k.endswith("exp_avg") for k in tensors)
    assert {"rng.torch", "rng.numpy"} <= set(tensors) and any(k.startswith("term.0.proj") for k in tensors)
    with open(res.checkpoint, "rb") as fh:
        assert b"\x80\x04" not in fh.read(64)  # not a pickle
    torch.manual_seed(0)
    before = torch.rand(3)
    r_t, r_m = ckpt.rng_state()
    torch.rand(5)
    ckpt.set_rng_state(r_t, r_m)
    torch.manual_seed(0)
    assert torch.equal(torch.rand(3), before)
    other = H.TinyMLP()
    ckpt.load_weights(tmp_path / "best.safetensors", other)
    with pytest.raises(TrainingError, match="does not fit this student"):
        ckpt.load_weights(tmp_path / "best.safetensors", H.TinyMLP(hidden=5))
