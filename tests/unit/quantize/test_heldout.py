"""Held-out split and the metric per output kind: which metric is picked, and its value on known inputs."""

from __future__ import annotations

import numpy as np
import pytest

from edgekd.errors import ConfigError
from edgekd.quantize.heldout import (
    SQNR_CAP_DB,
    ctc_greedy,
    pick_metric,
    resolve_metrics,
    score_output,
    split_heldout,
    within_budget,
)


def _feeds(n: int) -> list[dict[str, np.ndarray]]:
    return [{"x": np.full((1, 2), i, np.float32)} for i in range(n)]


def test_split_holds_out_the_tail_and_says_so() -> None:
    s = split_heldout(_feeds(10))
    assert [int(f["x"][0, 0]) for f in s.calib] == [0, 1, 2, 3, 4]
    assert [int(f["x"][0, 0]) for f in s.eval] == [5, 6, 7, 8, 9]
    assert "split the 10 inputs automatically" in s.note and "held out" in s.note


def test_split_uses_given_eval_set() -> None:
    s = split_heldout(_feeds(3), _feeds(2))
    assert len(s.calib) == 3 and len(s.eval) == 2 and "--eval" in s.note


@pytest.mark.parametrize("n", [0, 1])
def test_split_needs_two_inputs(n: int) -> None:
    with pytest.raises(ConfigError, match="at least 2"):
        split_heldout(_feeds(n))


def _softmax(a: np.ndarray) -> np.ndarray:
    e = np.exp(a - a.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize(("array", "metric"), [
    (np.random.default_rng(0).normal(size=(4, 10)), "argmax"),            # class logits
    (np.random.default_rng(0).normal(size=(4, 10, 1, 1)), "argmax"),      # squeezenet-style [B,C,1,1]
    (np.random.default_rng(0).uniform(size=(2, 1, 8, 8)), "iou"),         # probability map
    (_softmax(np.random.default_rng(0).normal(size=(2, 5, 7))), "sequence"),  # softmax sequence: not a "map"
    (np.random.default_rng(0).normal(size=(2, 5, 7)), "sequence"),        # sequence logits
    (np.random.default_rng(0).normal(size=(2, 1, 8, 8)), "sqnr"),         # features
    (np.random.default_rng(0).normal(size=(4,)), "sqnr"),
])
def test_pick_metric(array: np.ndarray, metric: str) -> None:
    assert pick_metric(array.astype(np.float32)) == metric


def test_resolve_metrics_named_and_unknown() -> None:
    outs = {"a": np.zeros((1, 3), np.float32)}
    assert resolve_metrics("sqnr", outs) == {"a": "sqnr"}
    with pytest.raises(ConfigError, match="--metric"):
        resolve_metrics("top5", outs)


def test_ctc_greedy_collapses_repeats_and_drops_blank() -> None:
    steps = [0, 3, 3, 0, 3, 5, 5, 0]
    logits = np.eye(6)[steps][None]  # [1, T, C]
    assert ctc_greedy(logits) == [(3, 3, 5)]


def test_argmax_agreement_fraction() -> None:
    ref = [np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[1.0, 0.0], [1.0, 0.0]])]
    test = [np.array([[1.0, 0.0], [1.0, 0.0]]), np.array([[1.0, 0.0], [1.0, 0.0]])]
    assert score_output("argmax", ref, test) == pytest.approx(0.75)


def test_iou_pooled_over_inputs() -> None:
    ref = [np.array([[[0.9, 0.9, 0.1]]]), np.array([[[0.9, 0.1, 0.1]]])]
    test = [np.array([[[0.9, 0.1, 0.1]]]), np.array([[[0.9, 0.9, 0.1]]])]
    assert score_output("iou", ref, test) == pytest.approx(2 / 4)


def test_sequence_agreement_compares_decoded_strings() -> None:
    a = np.eye(4)[[1, 1, 0, 2]][None]
    b = np.eye(4)[[1, 0, 0, 2]][None]  # decodes the same: (1, 2)
    c = np.eye(4)[[1, 0, 1, 2]][None]  # (1, 1, 2)
    assert score_output("sequence", [a, a], [b, c]) == pytest.approx(0.5)


def test_sqnr_value_and_cap() -> None:
    ref = [np.ones(100)]
    assert score_output("sqnr", ref, [np.ones(100) * 1.1]) == pytest.approx(20.0)
    assert score_output("sqnr", ref, ref) == SQNR_CAP_DB


@pytest.mark.parametrize(("metric", "score", "ok"), [
    ("argmax", 0.99, True), ("argmax", 0.9899, False), ("iou", 1.0, True),
    ("sqnr", 20.0, True), ("sqnr", 19.99, False),
])
def test_budget_boundary(metric: str, score: float, ok: bool) -> None:
    assert within_budget(metric, score, max_drop=0.01, min_sqnr_db=20.0) is ok  # type: ignore[arg-type]


def test_judge_heldout_per_output() -> None:
    from edgekd.quantize.heldout import judge_heldout

    def ref(f):  # type: ignore[no-untyped-def]
        x = f["x"]
        return [x, np.stack([x.sum(1), -x.sum(1)], 1)]

    def cand(f):  # type: ignore[no-untyped-def]
        x = f["x"]
        return [x * 1.1, np.stack([x.sum(1), -x.sum(1)], 1)]

    feeds = [{"x": np.random.default_rng(i).normal(size=(3, 4))} for i in range(2)]
    got = {j.name: j for j in judge_heldout(ref, cand, feeds, ["feat", "cls"])}
    assert got["feat"].metric == "argmax"  # [B, 4] scores: arg-max kept under a uniform scale
    assert got["feat"].score == 1.0 and got["cls"].score == 1.0 and got["cls"].ok
    sq = {j.name: j for j in judge_heldout(ref, cand, feeds, ["feat", "cls"], metric="sqnr", min_sqnr_db=25)}
    assert sq["feat"].score == pytest.approx(20.0) and not sq["feat"].ok and sq["cls"].ok
    with pytest.raises(ConfigError, match="held-out"):
        judge_heldout(ref, cand, [], ["feat", "cls"])
