"""Epoch time with and without the offline teacher cache, and a check that the losses match.

A wide CNN teacher (the expensive forward the cache saves) distils into a small CNN student
with Hinton KD on the logits and a FitNets hint on a tapped feature. Each run trains the
same seeded student; the cache is built once (its build time is reported separately) and
the cached run then reads teacher logits and features from memory-mapped .npy files.

    python benchmarks/teacher_cache.py [--n 1024] [--epochs 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset

from edgekd.config.recipe import TrainConfig
from edgekd.distill.cache import IndexedDataset, TeacherCache
from edgekd.distill.loop import fit
from edgekd.distill.losses.fitnet import FitNetConfig
from edgekd.distill.losses.hinton_kd import HintonKDConfig
from edgekd.distill.teachers import as_teacher


def cnn(width: int, classes: int = 10) -> nn.Module:
    def block(cin: int, cout: int, stride: int) -> nn.Module:
        return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())

    return nn.Sequential(
        block(3, width, 1), block(width, width, 1), block(width, 2 * width, 2), block(2 * width, 2 * width, 1),
        block(2 * width, 4 * width, 2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * width, classes))


class Blobs(Dataset):
    def __init__(self, n: int, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.y = torch.randint(0, 10, (n,), generator=g)
        self.x = torch.randn(n, 3, 32, 32, generator=g) + self.y.view(-1, 1, 1, 1) / 5

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"image": self.x[i], "label": self.y[i]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--teacher-width", type=int, default=64)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ds = Blobs(args.n)
    cfg = TrainConfig(epochs=args.epochs, batch_size=64, lr=2e-3, weight_decay=0.0)
    losses = [HintonKDConfig(temperature=4.0), FitNetConfig(student="4", teacher="4")]

    def task_loss(out, batch):  # type: ignore[no-untyped-def]
        return nn.functional.cross_entropy(out[0], batch["label"])

    def run(cache: Path | None) -> tuple[list[float], list[float]]:
        torch.manual_seed(0)
        teacher = cnn(args.teacher_width).eval()
        torch.manual_seed(1)
        res = fit(cnn(8), train_set=ds, input_names=["image"], cfg=cfg, task_loss=task_loss, teacher=teacher,
                  losses=losses, teacher_cache=cache, progress=False, seed=0)
        return [h["seconds"] for h in res.history], [h["train_loss"] for h in res.history]

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        # Build the cache explicitly first so its one-off cost is measured apart from the epochs.
        torch.manual_seed(0)
        t = as_teacher(cnn(args.teacher_width))
        t.set_taps(["4"])
        t0 = time.perf_counter()
        TeacherCache.open_or_build(root, t, IndexedDataset(ds), ["image"], batch_size=256)
        build_s = time.perf_counter() - t0
        live_s, live_loss = run(None)
        cached_s, cached_loss = run(root)
    n_entries = len(live_s)
    print(f"teacher cache benchmark: {args.n} images 3x32x32, teacher width {args.teacher_width}, student width 8, "
          f"batch 64, {args.threads} thread(s), torch {torch.__version__}")
    print(f"cache build (one-off): {build_s:.2f} s")
    print("epoch  live_s  cached_s  speed-up  live_loss    cached_loss")
    for e in range(n_entries):
        print(f"{e:5d}  {live_s[e]:6.2f}  {cached_s[e]:8.2f}  {live_s[e] / cached_s[e]:7.2f}x  "
              f"{live_loss[e]:.8f}  {cached_loss[e]:.8f}")
    med_live, med_cached = sorted(live_s)[n_entries // 2], sorted(cached_s)[n_entries // 2]
    max_rel = max(abs(a - b) / max(abs(a), 1e-12) for a, b in zip(live_loss, cached_loss, strict=True))
    print(f"median epoch: {med_live:.2f} s live, {med_cached:.2f} s cached -> {med_live / med_cached:.2f}x; "
          f"max relative loss difference {max_rel:.2e}")
    if max_rel > 1e-5:
        raise SystemExit(f"losses differ with the cache (max relative difference {max_rel:.2e} > 1e-5)")


if __name__ == "__main__":
    main()
