"""Offline teacher cache: built once, memory-mapped, reused, invalidated on teacher or data change;
training with the cache gives the same losses as without."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from edgekd.config.recipe import TrainConfig
from edgekd.distill.cache import IndexedDataset, TeacherCache
from edgekd.distill.loop import fit
from edgekd.distill.teachers import as_teacher

_spec = importlib.util.spec_from_file_location("_engine_helpers", Path(__file__).with_name("_engine_helpers.py"))
H = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(H)  # type: ignore[union-attr]


@pytest.fixture(autouse=True)
def _losses():
    H.register()
    yield
    H.unregister()


def test_cache_reused_and_invalidated(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = H.TinyMLP(hidden=10)
    t = as_teacher(net)
    t.set_taps(["body.0"])
    ds = IndexedDataset(H.RandomRegression(n=40))
    c1 = TeacherCache.open_or_build(tmp_path, t, ds, ["x"], batch_size=16)
    assert isinstance(c1.outputs[0], np.memmap) and c1.outputs[0].shape == (40, 3)
    (o,), f = c1.lookup(torch.tensor([3, 0, 39]), "cpu")
    (ref,), rf = t([ds.base.x[[3, 0, 39]]])
    assert torch.allclose(o, ref) and torch.allclose(f["body.0"], rf["body.0"])
    stamp = (c1.folder / "out_0.npy").stat().st_mtime_ns
    c2 = TeacherCache.open_or_build(tmp_path, t, ds, ["x"])
    assert c2.folder == c1.folder and (c2.folder / "out_0.npy").stat().st_mtime_ns == stamp  # reused
    with torch.no_grad():
        net.head.bias += 1.0  # teacher changed -> another key, fresh numbers
    c3 = TeacherCache.open_or_build(tmp_path, t, ds, ["x"])
    assert c3.folder != c1.folder and torch.allclose(c3.lookup(torch.tensor([3]), "cpu")[0][0], ref[:1] + 1.0)
    ds2 = IndexedDataset(H.RandomRegression(n=40, seed=1))  # data changed -> another key
    assert TeacherCache.open_or_build(tmp_path, t, ds2, ["x"]).folder not in (c1.folder, c3.folder)
    (c3.folder / "manifest.json").write_text("{")  # a damaged/incomplete build is rebuilt
    stamp3 = (c3.folder / "out_0.npy").stat().st_mtime_ns
    c4 = TeacherCache.open_or_build(tmp_path, t, ds, ["x"])
    assert c4.folder == c3.folder and c4.manifest["rows"] == 40
    assert (c4.folder / "out_0.npy").stat().st_mtime_ns != stamp3


def test_training_with_cache_gives_identical_losses(tmp_path: Path) -> None:
    ds = H.RandomRegression(n=48)
    cfg = TrainConfig(epochs=2, batch_size=8, lr=1e-2, weight_decay=0.0)

    def run(cache: Path | None):
        torch.manual_seed(1)
        teacher = H.TinyMLP(hidden=10)
        torch.manual_seed(2)
        return fit(H.TinyMLP(), train_set=ds, input_names=["x"], cfg=cfg, teacher=teacher,
                   losses=[H.OutMSEConfig(), H.FeatMSEConfig()], task_loss=H.mse_task_loss,
                   teacher_cache=cache, progress=False, seed=3)

    live, cached = run(None), run(tmp_path / "cache")
    assert len(list((tmp_path / "cache").iterdir())) == 1
    for a, b in zip(live.history, cached.history, strict=True):
        for k in ("train_loss", "train_out_mse", "train_feat"):
            assert a[k] == pytest.approx(b[k], rel=1e-6, abs=1e-7)


def test_cache_of_an_analytic_teacher_is_keyed_by_its_name(tmp_path: Path) -> None:
    ds = IndexedDataset(H.RandomRegression(n=20))

    def double(x: torch.Tensor) -> np.ndarray:
        return (2 * x[:, :3]).numpy()

    def triple(x: torch.Tensor) -> np.ndarray:
        return (3 * x[:, :3]).numpy()

    c2 = TeacherCache.open_or_build(tmp_path, as_teacher(double), ds, ["x"])
    c3 = TeacherCache.open_or_build(tmp_path, as_teacher(triple), ds, ["x"])
    assert c2.folder != c3.folder and c2.features == {}
    (o,), _ = c3.lookup(torch.tensor([7]), "cpu")
    assert torch.allclose(o, 3 * ds.base.x[7:8, :3])


def test_cache_refuses_a_dataset_that_augments_at_every_access(tmp_path: Path) -> None:
    from edgekd.errors import ConfigError

    class Flipping(torch.utils.data.Dataset):  # type: ignore[type-arg]
        """A random horizontal flip drawn at each read, as the segmentation data do."""

        def __init__(self) -> None:
            self.base = H.RandomRegression(n=16)
            self.gen = torch.Generator().manual_seed(0)

        def __len__(self) -> int:
            return len(self.base)

        def __getitem__(self, i: int) -> dict:
            item = dict(self.base[i])
            if torch.rand((), generator=self.gen) < 0.5:
                item["x"] = item["x"].flip(-1)
            return item

    cfg = TrainConfig(epochs=1, batch_size=8, lr=1e-2, weight_decay=0.0)
    with pytest.raises(ConfigError, match=r"teacher_cache is on, but input 'x' of dataset item 0 changed"):
        fit(H.TinyMLP(), train_set=Flipping(), input_names=["x"], cfg=cfg, teacher=H.TinyMLP(hidden=10),
            losses=[H.OutMSEConfig()], task_loss=H.mse_task_loss, teacher_cache=tmp_path / "c", progress=False)
    assert not (tmp_path / "c").exists()  # refused before anything was computed or written
    # the same data without the cache trains
    fit(H.TinyMLP(), train_set=Flipping(), input_names=["x"], cfg=cfg, teacher=H.TinyMLP(hidden=10),
        losses=[H.OutMSEConfig()], task_loss=H.mse_task_loss, progress=False)
