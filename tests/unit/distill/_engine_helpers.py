"""Tiny models, datasets and loss terms for the engine tests (the loss library is tested elsewhere).

Loaded by path (tests run with --import-mode=importlib) and by the subprocess scripts.
"""



from typing import Literal

import torch
from torch import nn
from torch.utils.data import Dataset

from edgekd.config.recipe import LossConfigBase
from edgekd.distill.losses import LOSSES
from edgekd.distill.terms import LossTerm, StepContext, TapProbe


class OutMSEConfig(LossConfigBase):
    kind: Literal["engine_test_out_mse"] = "engine_test_out_mse"


class FeatMSEConfig(LossConfigBase):
    kind: Literal["engine_test_feat_mse"] = "engine_test_feat_mse"
    student: str = "body.0"
    teacher: str = "body.0"


class NaNAfterConfig(LossConfigBase):
    kind: Literal["engine_test_nan_after"] = "engine_test_nan_after"
    steps: int = 3


class OutMSE(LossTerm):
    def forward(self, ctx: StepContext) -> torch.Tensor:
        return ((ctx.student_out[0].float() - ctx.teacher_out[0].float()) ** 2).mean()


class FeatMSE(LossTerm):
    def __init__(self, cfg: FeatMSEConfig, probe: TapProbe) -> None:
        super().__init__("feat")
        self.student_taps, self.teacher_taps = (cfg.student,), (cfg.teacher,)
        s, t = probe.student_shapes[cfg.student], probe.teacher_shapes[cfg.teacher]
        self.proj = nn.Linear(s[-1], t[-1])  # the trainable projector saved with the student

    def forward(self, ctx: StepContext) -> torch.Tensor:
        s = ctx.student_feats[self.student_taps[0]]
        t = ctx.teacher_feats[self.teacher_taps[0]]
        return ((self.proj(s.float()) - t.float()) ** 2).mean()


class NaNAfter(LossTerm):
    needs_teacher = False

    def __init__(self, cfg: NaNAfterConfig) -> None:
        super().__init__("exploder")
        self.steps = cfg.steps
        self.calls = 0

    def forward(self, ctx: StepContext) -> torch.Tensor:
        self.calls += 1
        v = ctx.student_out[0].float().mean() * 0.0
        return v + float("nan") if self.calls > self.steps else v


_FACTORIES = {
    OutMSEConfig: lambda cfg, probe: OutMSE("out_mse"),
    FeatMSEConfig: lambda cfg, probe: FeatMSE(cfg, probe),
    NaNAfterConfig: lambda cfg, probe: NaNAfter(cfg),
}


def register() -> None:
    for cls, factory in _FACTORIES.items():
        if cls not in LOSSES._by_cls:
            LOSSES.register(cls)(factory)


def unregister() -> None:
    for cls in _FACTORIES:
        if cls in LOSSES._by_cls:
            del LOSSES._by_cls[cls]
            del LOSSES._by_kind[cls.model_fields["kind"].default]


class TinyMLP(nn.Module):
    def __init__(self, d_in: int = 6, hidden: int = 16, d_out: int = 3, dropout: float = 0.0) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Dropout(dropout))
        self.head = nn.Linear(hidden, d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class RandomRegression(Dataset):
    """y = x @ W (fixed), with x ~ N(0, 1): learnable by a tiny MLP in a few epochs."""

    def __init__(self, n: int = 128, d_in: int = 6, d_out: int = 3, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, d_in, generator=g)
        self.w = torch.randn(d_in, d_out, generator=g)
        self.y = self.x @ self.w

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": self.x[i], "y": self.y[i]}


def mse_task_loss(outputs, batch) -> torch.Tensor:  # type: ignore[no-untyped-def]
    return ((outputs[0] - batch["y"]) ** 2).mean()


def val_mse(ds: RandomRegression):  # type: ignore[no-untyped-def]
    def fn(model: nn.Module) -> float:
        with torch.no_grad():
            return float(((model(ds.x) - ds.y) ** 2).mean())
    return fn
