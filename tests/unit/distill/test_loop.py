"""The training loop: task loss, KD terms with projectors, teachers of each kind, NaN handling,
validation/early stopping, determinism, AMP resolution."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from edgekd.config.recipe import TrainConfig
from edgekd.distill.loop import fit, lr_factor, resolve_amp
from edgekd.errors import ConfigError, TrainingError

_spec = importlib.util.spec_from_file_location("_engine_helpers", Path(__file__).with_name("_engine_helpers.py"))
H = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(H)  # type: ignore[union-attr]


@pytest.fixture(autouse=True)
def _losses():
    H.register()
    yield
    H.unregister()


def _cfg(**kw) -> TrainConfig:
    base = dict(epochs=3, batch_size=8, lr=3e-2, weight_decay=0.0, log_every_steps=2)
    return TrainConfig(**{**base, **kw})


def test_task_loss_training_reduces_val_error_and_logs(tmp_path: Path) -> None:
    ds = H.RandomRegression()
    student = H.TinyMLP()
    before = H.val_mse(ds)(student)
    res = fit(student, train_set=ds, input_names=["x"], cfg=_cfg(epochs=4), task_loss=H.mse_task_loss,
              val_fn=H.val_mse(ds), out_dir=tmp_path, progress=False)
    assert res.best_metric is not None and res.best_metric < 0.5 * before
    assert len(res.history) == 4 and res.history[0]["train_loss"] > res.history[-1]["train_loss"]
    assert not res.student.training
    assert res.checkpoint == tmp_path / "last.safetensors" and res.checkpoint.is_file()
    assert (tmp_path / "best.safetensors").is_file()
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines if r["kind"] == "epoch"] == [0, 1, 2, 3]
    assert any(r["kind"] == "step" and "task" in r for r in lines)
    assert not list(tmp_path.glob("*.tmp*")) and not list(tmp_path.glob(".*"))


def test_kd_with_module_teacher_feature_projector_and_output_term() -> None:
    ds = H.RandomRegression()
    teacher = H.TinyMLP(hidden=32)
    fit(teacher, train_set=ds, input_names=["x"], cfg=_cfg(epochs=4), task_loss=H.mse_task_loss, progress=False)
    t_params = {k: v.clone() for k, v in teacher.state_dict().items()}
    student = H.TinyMLP(hidden=8)
    res = fit(student, train_set=ds, input_names=["x"], cfg=_cfg(epochs=3), teacher=teacher,
              losses=[H.OutMSEConfig(), H.FeatMSEConfig(weight=0.5, warmup_epochs=1.0)],
              task_loss=H.mse_task_loss, task_loss_weight=0.5, progress=False)
    # the teacher stays frozen and unchanged; the projector (8 -> 32) was built from the probe and trained
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in t_params.items())
    assert all(not p.requires_grad for p in teacher.parameters()) and not teacher.training
    proj = res.terms[1].proj
    assert tuple(proj.weight.shape) == (32, 8)
    h = res.history
    assert {"train_out_mse", "train_feat", "train_task"} <= set(h[0])
    assert h[-1]["train_out_mse"] < h[0]["train_out_mse"]


def test_callable_teacher_returning_numpy_float64() -> None:
    ds = H.RandomRegression()
    w = ds.w.numpy().astype(np.float64)

    def analytic(x: torch.Tensor) -> np.ndarray:  # an "analytic controller": the true map, in numpy
        return x.numpy().astype(np.float64) @ w

    res = fit(H.TinyMLP(), train_set=ds, input_names=["x"], cfg=_cfg(epochs=4), teacher=analytic,
              losses=[H.OutMSEConfig()], task_loss=None, val_fn=H.val_mse(ds), progress=False)
    assert res.history[-1]["train_out_mse"] < 0.5 * res.history[0]["train_out_mse"]


def test_nan_term_raises_naming_the_term_and_keeps_last_good_checkpoint(tmp_path: Path) -> None:
    ds = H.RandomRegression(n=64)
    cfg = _cfg(epochs=3, checkpoint_every_steps=2)
    with pytest.raises(TrainingError) as err:
        fit(H.TinyMLP(), train_set=ds, input_names=["x"], cfg=cfg, task_loss=H.mse_task_loss,
            losses=[H.NaNAfterConfig(steps=5)], out_dir=tmp_path, progress=False)
    msg = str(err.value)
    assert "'exploder'" in msg and "nan" in msg and str(tmp_path / "last.safetensors") in msg
    from edgekd.distill import checkpoint as ckpt

    tensors, meta = ckpt.load(tmp_path / "last.safetensors")
    assert meta["global_step"] == 4  # saved at step 4 (epoch-end), the NaN came at step 6
    assert all(torch.isfinite(v).all() for k, v in tensors.items() if k.startswith("student."))


def test_same_seed_same_result_and_other_seed_differs() -> None:
    ds = H.RandomRegression(n=64)

    def run(s: int):  # same initial weights each time: only fit's seed differs
        torch.manual_seed(0)
        return fit(H.TinyMLP(dropout=0.2), train_set=ds, input_names=["x"], cfg=_cfg(epochs=2),
                   task_loss=H.mse_task_loss, seed=s, progress=False)

    runs = [run(s) for s in (3, 3, 4)]
    a, b, c = (r.student.state_dict() for r in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_early_stopping_and_best_weights_restored() -> None:
    ds = H.RandomRegression(n=64)
    calls: list[float] = []

    def val(model: torch.nn.Module) -> float:  # improves once, then worsens: stop after patience 2
        calls.append(0.0)
        return [5.0, 1.0, 2.0, 3.0, 4.0, 5.0][len(calls) - 1]

    res = fit(H.TinyMLP(), train_set=ds, input_names=["x"], cfg=_cfg(epochs=6, early_stopping_patience=2),
              task_loss=H.mse_task_loss, val_fn=val, progress=False)
    assert res.stopped_early and len(res.history) == 4 and res.best_metric == 1.0 and res.best_epoch == 1


def test_wrong_input_name_and_wrong_tap_path_are_config_errors() -> None:
    ds = H.RandomRegression(n=32)
    with pytest.raises(ConfigError, match=r"input_names \['image'\].*keys: \['x', 'y'\]"):
        fit(H.TinyMLP(), train_set=ds, input_names=["image"], cfg=_cfg(), task_loss=H.mse_task_loss,
            progress=False)
    with pytest.raises(ConfigError) as err:
        fit(H.TinyMLP(), train_set=ds, input_names=["x"], cfg=_cfg(), teacher=H.TinyMLP(),
            losses=[H.FeatMSEConfig(student="body.O")], progress=False)
    assert "'body.O'" in str(err.value) and "body.0" in str(err.value)


def test_feature_loss_with_callable_teacher_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="teacher is not a torch module"):
        fit(H.TinyMLP(), train_set=H.RandomRegression(n=32), input_names=["x"], cfg=_cfg(),
            teacher=lambda x: x[:, :3], losses=[H.FeatMSEConfig()], progress=False)


def test_schedule_and_amp_resolution() -> None:
    cfg = _cfg(schedule="cosine", warmup_steps=10)
    assert lr_factor(cfg, 0, 100) == pytest.approx(0.1) and lr_factor(cfg, 9, 100) == pytest.approx(1.0)
    assert lr_factor(cfg, 99, 100) < 0.01
    assert lr_factor(_cfg(schedule="constant"), 50, 100) == 1.0
    one = _cfg(schedule="onecycle")
    assert lr_factor(one, 14, 100) == pytest.approx(0.5) and lr_factor(one, 30, 100) == pytest.approx(1.0)
    assert resolve_amp("auto", torch.device("cpu")) is None
    assert resolve_amp("bf16", torch.device("cpu")) == torch.bfloat16
    with pytest.raises(ConfigError, match="fp16"):
        resolve_amp("fp16", torch.device("cpu"))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (bf16 autocast path)")
def test_cuda_bf16_autocast_trains() -> None:
    ds = H.RandomRegression()
    student = H.TinyMLP().cuda()
    seen: list[torch.dtype] = []
    student.head.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    res = fit(student, train_set=ds, input_names=["x"], cfg=_cfg(epochs=3), task_loss=H.mse_task_loss,
              progress=False)
    assert torch.bfloat16 in seen and res.history[-1]["train_loss"] < res.history[0]["train_loss"]
