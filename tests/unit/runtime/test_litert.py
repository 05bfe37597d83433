"""LiteRT backend: the shared conformance tests on a .tflite of the fixture model, int8 I/O wrapping,
options, and the errors a user meets.

The .tflite files come from edgekd's own exporter (edgekd/export/litert.py) when litert-torch (the
``litert-export`` extra) is installed; otherwise from ``data/twohead.{fp32,int8}.tflite``, written by
that exporter from ``make_model()`` (regenerate with ``python tests/unit/runtime/test_litert.py``
in an environment with the extra). The parity test catches a checked-in file that drifted from the model.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from support import runtime_conformance as C

from edgekd.errors import ConfigError, DependencyMissingError, ProfileError
from edgekd.runtime import SessionOptions, get_runtime

pytest.importorskip("ai_edge_litert", reason="the litert extra is not installed (pip install 'edgekd[litert]')")

DATA = Path(__file__).parent / "data"
HAVE_CONVERTER = importlib.util.find_spec("litert_torch") is not None


def calibration() -> list[dict[str, np.ndarray]]:
    return [C.SPEC.dummy_inputs({"batch": 1}, seed=100 + i) for i in range(16)]


def fixture_tflite(folder: Path, precision: str, model=None) -> Path:  # type: ignore[no-untyped-def]
    """The fixture model as .tflite: exported here when the converter is installed, else the stored copy."""
    target = folder / f"twohead.{precision}.tflite"
    if HAVE_CONVERTER:
        from edgekd.export.litert import export_litert

        export_litert(model or C.make_model(), C.SPEC, target, precision=precision, calibration=calibration())
    else:
        shutil.copy(DATA / target.name, target)
    return target


class TestLiteRt(C.RuntimeConformance):
    runtime = "litert"
    batch = 1  # litert-torch 0.10 cannot keep this model's batch dynamic (see edgekd/export/litert.py)

    def make_artifact(self, folder: Path, model):  # type: ignore[no-untyped-def]
        return fixture_tflite(folder, "fp32", model)

    def missing_artifact(self, folder: Path) -> Path:
        return folder / "nothing.tflite"

    def test_xnnpack_and_float_io_reported(self, session) -> None:  # type: ignore[no-untyped-def]
        s = session.settings()
        assert s["delegate"] == "xnnpack"
        assert s["precision"] == "fp32"
        assert s["io"] == "float"


@pytest.fixture(scope="module")
def int8_session(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    path = fixture_tflite(tmp_path_factory.mktemp("litert_int8"), "int8")
    return get_runtime("litert").load(path, SessionOptions(threads=1))


def test_int8_io_is_wrapped_to_float(int8_session) -> None:  # type: ignore[no-untyped-def]
    import torch

    assert [t.dtype for t in int8_session.inputs] == ["float32", "float32"]
    assert [t.name for t in int8_session.outputs] == C.SPEC.output_names
    s = int8_session.settings()
    assert s["precision"] == "int8" and s["io"].startswith("int8")
    feeds = C.SPEC.dummy_inputs({"batch": 1}, seed=7)
    outs = int8_session.run(feeds)
    with torch.no_grad():
        ref = C.make_model()(*(torch.from_numpy(feeds[n]) for n in C.SPEC.input_names))
    for got, want in zip(outs, ref, strict=True):
        assert got.dtype == np.float32
        # int8 activations: within a few quantization steps of the float model, far from garbage
        err = float(np.abs(got - want.numpy()).max())
        assert err < 0.05 * max(1.0, float(np.abs(want.numpy()).max())), err


def test_reference_kernels_match_xnnpack(tmp_path: Path) -> None:
    path = fixture_tflite(tmp_path, "fp32")
    feeds = C.SPEC.dummy_inputs({"batch": 1}, seed=3)
    fast = get_runtime("litert").load(path, SessionOptions(threads=1)).run(feeds)
    ref_sess = get_runtime("litert").load(path, SessionOptions(threads=1, extra={"xnnpack": False}))
    assert ref_sess.settings()["delegate"].startswith("none")
    for a, b in zip(fast, ref_sess.run(feeds), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-4)


def test_export_parity_helper_judges_fp32_and_int8(tmp_path: Path) -> None:
    from edgekd.errors import ParityError
    from edgekd.export.litert import check_litert_parity

    feeds = [C.SPEC.dummy_inputs({"batch": 1}, seed=s) for s in (11, 12)]
    rep = check_litert_parity(C.make_model(), C.SPEC, fixture_tflite(tmp_path, "fp32"), feeds)
    assert rep.passed and rep.samples == 2
    q = check_litert_parity(C.make_model(), C.SPEC, fixture_tflite(tmp_path, "int8"), feeds, precision="int8",
                            raise_on_failure=False)
    assert all(o.agreement is not None for o in q.outputs)  # INT8 is judged by argmax agreement
    with pytest.raises(ParityError):  # another model's weights: the check can fail
        check_litert_parity(C.make_model(seed=1), C.SPEC, fixture_tflite(tmp_path, "fp32"), feeds)


def test_not_a_model_is_profile_error(tmp_path: Path) -> None:
    bad = tmp_path / "junk.tflite"
    bad.write_bytes(b"this is not a flatbuffer")
    with pytest.raises(ProfileError, match="junk.tflite"):
        get_runtime("litert").load(bad, SessionOptions())


@pytest.mark.parametrize("options, needle", [
    (SessionOptions(extra={"delegate": "gpu"}), "delegate"),
    (SessionOptions(threads=0), "threads=0"),
    (SessionOptions(extra={"signature": "nope"}), "nope"),
])
def test_bad_options(tmp_path: Path, options: SessionOptions, needle: str) -> None:
    path = fixture_tflite(tmp_path, "fp32")
    with pytest.raises(ConfigError, match=needle):
        get_runtime("litert").load(path, options)


def test_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)  # import fails as if not installed
    with pytest.raises(DependencyMissingError) as ei:
        get_runtime("litert").load(tmp_path / "m.tflite", SessionOptions())
    assert "edgekd[litert]" in str(ei.value)
    ok, why = get_runtime("litert").available()
    assert not ok and "ai-edge-litert" in why


if __name__ == "__main__":  # regenerate the stored fixtures (needs the litert-export extra)
    assert HAVE_CONVERTER, "install the litert-export extra first"
    DATA.mkdir(exist_ok=True)
    for p in ("fp32", "int8"):
        print(fixture_tflite(DATA, p))
