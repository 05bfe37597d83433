"""check_parity: every output compared, one error listing each failing output."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgekd.errors import ConfigError, ParityError
from edgekd.export.parity import AgreementError, check_parity

FEEDS = [{"x": np.ones((2, 3), np.float32)}, {"x": np.ones((1, 3), np.float32)}]


def _ref(feed):  # type: ignore[no-untyped-def]
    n = feed["x"].shape[0]
    return [np.full((n, 4), 2.0, np.float32), np.full((n, 3, 2, 2), 1.0, np.float32)]


def _shifted(d0: float, d1: float):  # type: ignore[no-untyped-def]
    def f(feed):  # type: ignore[no-untyped-def]
        a, b = _ref(feed)
        return [a + d0, b + d1]
    return f


def test_identical_passes_and_reports_each_output() -> None:
    rep = check_parity(_ref, _ref, FEEDS, output_names=["a", "b"], atol=1e-5, rtol=1e-4, artifact="m.onnx")
    assert rep.passed and rep.batches == 2 and rep.samples == 3
    assert [(o.name, o.max_abs_diff, o.max_rel_diff) for o in rep.outputs] == [("a", 0.0, 0.0), ("b", 0.0, 0.0)]


def test_small_difference_within_tolerance_is_measured() -> None:
    rep = check_parity(_ref, _shifted(1e-4, 0.0), FEEDS, output_names=["a", "b"], atol=1e-3, rtol=0.0)
    assert rep.passed
    assert rep.outputs[0].max_abs_diff == pytest.approx(1e-4, rel=1e-2)
    assert rep.outputs[0].max_rel_diff == pytest.approx(5e-5, rel=1e-2)  # 1e-4 / 2.0


def test_one_error_lists_every_failing_output() -> None:
    with pytest.raises(ParityError) as ei:
        check_parity(_ref, _shifted(0.5, 0.25), FEEDS, output_names=["a", "b"], atol=1e-4, rtol=1e-3,
                     artifact="m.onnx")
    err = ei.value
    assert set(err.mismatches) == {"a", "b"}
    assert err.mismatches["a"][0] == pytest.approx(0.5)
    assert err.mismatches["b"] == (pytest.approx(0.25), pytest.approx(0.25))
    assert "m.onnx: 2 of 2 outputs" in str(err)


def test_only_the_failing_output_is_listed() -> None:
    with pytest.raises(ParityError) as ei:
        check_parity(_ref, _shifted(0.0, 0.1), FEEDS, output_names=["a", "b"], atol=1e-4, rtol=1e-3)
    assert list(ei.value.mismatches) == ["b"]


def test_rtol_governs_large_values() -> None:
    # |d| = 0.01 on values of 2: fails with atol alone, passes with rtol=1e-2 (0.01 <= 1e-6 + 0.02)
    with pytest.raises(ParityError):
        check_parity(_ref, _shifted(0.01, 0.0), FEEDS, output_names=["a", "b"], atol=1e-6, rtol=0.0)
    assert check_parity(_ref, _shifted(0.01, 0.0), FEEDS, output_names=["a", "b"], atol=1e-6, rtol=1e-2).passed


def test_shape_mismatch_nan_and_missing_output_fail() -> None:
    def bad(feed):  # type: ignore[no-untyped-def]
        a, _ = _ref(feed)
        return [a[:, :3]]  # wrong shape, and the second output missing

    rep = check_parity(_ref, bad, FEEDS, output_names=["a", "b"], atol=1e-4, rtol=1e-3, raise_on_failure=False)
    assert not rep.passed
    assert "shape" in (rep.outputs[0].problem or "") and "missing" in (rep.outputs[1].problem or "")
    assert math.isinf(rep.outputs[0].max_abs_diff)

    def nan(feed):  # type: ignore[no-untyped-def]
        a, b = _ref(feed)
        a[0, 0] = np.nan
        return [a, b]

    with pytest.raises(ParityError) as ei:
        check_parity(_ref, nan, FEEDS, output_names=["a", "b"], atol=1e-4, rtol=1e-3)
    assert list(ei.value.mismatches) == ["a"]


def test_argmax_agreement() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, 5, 8, 8)).astype(np.float32)
    flipped = logits.copy()
    # flip the argmax at 3 of 256 positions: agreement 253/256
    for (n, h, w) in [(0, 0, 0), (1, 2, 3), (3, 7, 7)]:
        k = int(np.argmax(flipped[n, :, h, w]))
        flipped[n, (k + 1) % 5, h, w] = flipped[n, k, h, w] + 1.0
    feeds = [{"x": np.zeros(1, np.float32)}]
    rep = check_parity(lambda f: [logits], lambda f: [flipped], feeds, output_names=["seg"], compare="argmax",
                       min_agreement=0.98)
    assert rep.passed and rep.outputs[0].agreement == pytest.approx(253 / 256)
    with pytest.raises(AgreementError) as ei:
        check_parity(lambda f: [logits], lambda f: [flipped], feeds, output_names=["seg"], compare="argmax",
                     min_agreement=0.999, artifact="seg.int8.onnx")
    assert isinstance(ei.value, ParityError)
    assert "seg: argmax agreement 0.9883" in str(ei.value)


@pytest.mark.parametrize("kw, needle", [
    ({"compare": "exact"}, "compare='exact'"),
    ({"atol": -1.0}, "atol=-1.0"),
    ({"min_agreement": 1.5}, "min_agreement=1.5"),
])
def test_bad_settings_are_config_errors(kw: dict, needle: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError, match=needle):
        check_parity(_ref, _ref, FEEDS, output_names=["a", "b"], **kw)


def test_no_feeds_is_config_error() -> None:
    with pytest.raises(ConfigError, match="feeds"):
        check_parity(_ref, _ref, [], output_names=["a", "b"])
