"""Every loss built from a TapProbe of real models and run on features captured by the
hooks module (edgekd.distill.hooks), as the loop will: one optimisation step each."""

import pytest
import torch
from torch import nn

from edgekd.distill.hooks import FeatureTaps, probe_all_shapes
from edgekd.distill.losses import LOSSES
from edgekd.distill.terms import StepContext, TapProbe


class Net(nn.Module):
    def __init__(self, width: int, classes: int = 6) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU())
        self.stage = nn.Sequential(nn.Conv2d(width, width, 3, stride=2, padding=1), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.stage(self.stem(x))).flatten(1))


FEATURE = {"student": "stage", "teacher": "stage"}
CONFIGS = [
    {"kind": "regression"}, {"kind": "hinton_kd"}, {"kind": "dkd"}, {"kind": "dist"}, {"kind": "reverse_kl"},
    {"kind": "jsd"}, {"kind": "bild", "top_k": 4}, {"kind": "dbild", "k_max": 5}, {"kind": "topk_kld", "top_k": 3},
    {"kind": "fitnet", **FEATURE}, {"kind": "cwd", **FEATURE}, {"kind": "attention_transfer", **FEATURE},
    {"kind": "mgd", **FEATURE}, {"kind": "trg", **FEATURE}, {"kind": "rkd_distance", **FEATURE},
    {"kind": "mae_feature", "student": ["stem", "stage"], "teacher": ["stem", "stage"], "patch_size": 4,
     "pixel_weight": 1.0},
    {"kind": "dho", "student": "pool"},
]


DEVICES = ["cpu", pytest.param("cuda", marks=[
    pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU (device placement)")])]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("raw", CONFIGS, ids=[c["kind"] for c in CONFIGS])
def test_one_step(raw: dict, device: str) -> None:
    torch.manual_seed(0)
    student, teacher = Net(4).to(device), Net(8).to(device).eval()
    x = torch.randn(4, 3, 8, 8, device=device)
    batch = {"image": x, "label": torch.tensor([0, 1, 2, 3], device=device)}
    s_shapes = probe_all_shapes(student, lambda: student(x))
    t_shapes = probe_all_shapes(teacher, lambda: teacher(x))
    probe = TapProbe(s_shapes, t_shapes, [torch.Size([4, 6])], [torch.Size([4, 6])])
    cfg = LOSSES.config_class(raw["kind"])(**raw)
    term = LOSSES.get(cfg)(cfg, probe).to(device)
    s_taps, t_taps = FeatureTaps(student, term.student_taps), FeatureTaps(teacher, term.teacher_taps, "teacher")

    def run_student(inputs):
        out = student(*inputs)
        return (out,), s_taps.take()

    def run_teacher(inputs):  # extra teacher forwards (mae_feature runs it on the masked image)
        with torch.no_grad():
            out = teacher(*inputs)
        return (out,), t_taps.take()

    with torch.no_grad():
        t_out = teacher(x)
    t_feats = t_taps.take()
    s_out = student(x)
    ctx = StepContext(batch=batch, inputs=(x,), student_out=(s_out,), teacher_out=(t_out,),
                      student_feats=s_taps.take(), teacher_feats=t_feats, run_student=run_student,
                      run_teacher=run_teacher)
    opt = torch.optim.SGD(list(student.parameters()) + list(term.parameters()), lr=0.1)
    loss = term(ctx)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in student.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert all(p.grad is None for p in teacher.parameters())
    opt.step()
