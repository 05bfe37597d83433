import math

import numpy as np
import pytest
import torch

from edgekd.distill.losses import LOSSES
from edgekd.distill.losses.ppl_ce import PPLCEConfig, ppl_weighted_ce


def _logp(z: np.ndarray, y: int) -> float:
    m = z.max()
    return float(z[y] - m - math.log(np.exp(z - m).sum()))


def _ref(z, y, valid, alpha, gran, zr=None, max_w=None) -> float:
    z, y, valid = z.numpy(), y.numpy(), valid.numpy()
    zr = z if zr is None else zr.numpy()
    B, L = y.shape
    ce = [[-_logp(z[b, t], y[b, t]) if valid[b, t] else 0.0 for t in range(L)] for b in range(B)]
    r = [[-_logp(zr[b, t], y[b, t]) if valid[b, t] else 0.0 for t in range(L)] for b in range(B)]
    if gran == "sequence":
        seqs = [b for b in range(B) if valid[b].any()]
        ppl = {b: math.exp(sum(r[b][t] for t in range(L) if valid[b, t]) / valid[b].sum()) for b in seqs}
        u = {b: ppl[b] ** alpha for b in seqs}
        mean_u = sum(u.values()) / len(seqs)
        total = 0.0
        for b in seqs:
            w = u[b] / mean_u
            w = min(w, max_w) if max_w else w
            total += w * sum(ce[b][t] for t in range(L) if valid[b, t]) / valid[b].sum()
        return total / len(seqs)
    toks = [(b, t) for b in range(B) for t in range(L) if valid[b, t]]
    u = {k: math.exp(r[k[0]][k[1]]) ** alpha for k in toks}
    mean_u = sum(u.values()) / len(toks)
    weights = {k: min(u[k] / mean_u, max_w) if max_w else u[k] / mean_u for k in toks}
    return sum(weights[k] * ce[k[0]][k[1]] for k in toks) / len(toks)


@pytest.fixture
def data(gen: torch.Generator):
    z = torch.randn(4, 6, 7, generator=gen, dtype=torch.float64) * 2
    y = torch.randint(0, 7, (4, 6), generator=gen)
    y[0, 5] = -100
    mask = torch.ones(4, 6, dtype=torch.long)
    mask[2, 3:] = 0
    mask[3] = 0  # a fully padded sequence is skipped, not NaN
    valid = (y != -100) & (mask != 0)
    return z, y, mask, valid


@pytest.mark.parametrize("gran", ["sequence", "token"])
@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_matches_reference(data, gran: str, alpha: float) -> None:
    z, y, mask, valid = data
    got = ppl_weighted_ce(z, y, mask, alpha=alpha, granularity=gran)
    assert got.item() == pytest.approx(_ref(z, y, valid, alpha, gran), abs=1e-10)


def test_alpha_zero_is_plain_ce(data) -> None:
    z, y, mask, valid = data
    ce = torch.nn.functional.cross_entropy(z[valid], y[valid])
    assert ppl_weighted_ce(z, y, mask, alpha=0.0, granularity="token").item() == pytest.approx(ce.item(), abs=1e-12)


def test_teacher_difficulty_and_clip(data, gen: torch.Generator) -> None:
    z, y, mask, valid = data
    zt = torch.randn(4, 6, 7, generator=gen, dtype=torch.float64) * 3
    got = ppl_weighted_ce(z, y, mask, alpha=1.0, granularity="token", difficulty_logits=zt, max_weight=1.5)
    assert got.item() == pytest.approx(_ref(z, y, valid, 1.0, "token", zt, 1.5), abs=1e-10)


def test_hard_tokens_weigh_more(gen: torch.Generator) -> None:
    z = torch.zeros(1, 2, 3, dtype=torch.float64)
    z[0, 0, 0] = 5.0  # token 0 easy (target 0), token 1 uniform = hard
    y = torch.tensor([[0, 1]])
    zr = z.clone().requires_grad_(True)
    ppl_weighted_ce(zr, y, alpha=1.0, granularity="token").backward()
    g_easy, g_hard = zr.grad[0, 0].norm(), zr.grad[0, 1].norm()
    plain = z.clone().requires_grad_(True)
    ppl_weighted_ce(plain, y, alpha=0.0, granularity="token").backward()
    assert g_hard / g_easy > plain.grad[0, 1].norm() / plain.grad[0, 0].norm()


def test_gradcheck(data) -> None:
    # The weights are stop-gradient constants; with the student's own perplexity they would
    # move under gradcheck's finite differences, so the difficulty comes from fixed logits here.
    z, y, mask, _ = data
    x = z[:3, :3].clone().requires_grad_(True)
    zr = z[:3, :3].flip(-1)
    for gran in ("sequence", "token"):
        assert torch.autograd.gradcheck(
            lambda a, g=gran: ppl_weighted_ce(a, y[:3, :3], mask[:3, :3], alpha=1.0, granularity=g, difficulty_logits=zr),
            (x,))


def test_term(data, make_ctx, make_probe) -> None:
    z, y, mask, valid = data
    cfg = PPLCEConfig(target_key="labels", mask_key="attention_mask", granularity="sequence", alpha=1.0)
    term = LOSSES.get(cfg)(cfg, make_probe([z], []))
    assert term.needs_teacher is False
    got = term(make_ctx([z], None, batch={"labels": y, "attention_mask": mask}))
    assert got.item() == pytest.approx(_ref(z, y, valid, 1.0, "sequence"), abs=1e-10)
    from edgekd.errors import TrainingError
    with pytest.raises(TrainingError, match="targets"):
        term(make_ctx([z], None, batch={"labels": y[:, :3], "attention_mask": mask}))


@pytest.mark.parametrize("gran", ["sequence", "token"])
def test_no_valid_token_is_zero_not_nan(gran: str, make_ctx, make_probe, gen: torch.Generator) -> None:
    z = torch.randn(2, 3, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    all_ignored = torch.full((2, 3), -100)
    targets = torch.randint(0, 5, (2, 3), generator=gen)
    for y, mask in ((all_ignored, None), (targets, torch.zeros(2, 3))):
        loss = ppl_weighted_ce(z, y, mask, alpha=0.5, granularity=gran, max_weight=4.0)
        assert loss.item() == 0.0
        loss.backward()
        assert torch.isfinite(z.grad).all() and z.grad.abs().sum().item() == 0.0
        z.grad = None
    # the same through the term (ppl_from teacher, as the GUI-agent recipe)
    cfg = PPLCEConfig(target_key="t", granularity=gran, alpha=0.5, ppl_from="teacher", max_weight=4.0)
    term = LOSSES.get(cfg)(cfg, make_probe([z], [z]))
    assert term(make_ctx([z], [z.detach()], batch={"t": all_ignored})).item() == 0.0


@pytest.mark.parametrize("gran", ["sequence", "token"])
def test_batch_of_one_and_large_logits(gran: str, gen: torch.Generator) -> None:
    z = torch.randn(1, 5, 9, generator=gen, dtype=torch.float64) * 50
    y = torch.randint(0, 9, (1, 5), generator=gen)
    y[0, 1] = -100
    valid = y != -100
    got = ppl_weighted_ce(z, y, alpha=0.5, granularity=gran)
    assert torch.isfinite(got)
    assert got.item() == pytest.approx(_ref(z, y, valid, 0.5, gran), rel=1e-9, abs=1e-10)
