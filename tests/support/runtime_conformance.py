"""The conformance tests every runtime backend passes, written once and subclassed per backend.

A backend's test file loads this module with :func:`load` and subclasses :class:`RuntimeConformance`
as ``Test<Backend>``, overriding ``runtime`` and, where it cannot load ONNX, ``make_artifact`` /
``open_session`` (e.g. convert the fixture model to its own format). A backend whose artifact has a
fixed batch (a converter that cannot keep it dynamic) sets ``batch`` to that size. The fixture model has two inputs (an image with a dynamic batch and a vector) and
two outputs (class scores and a dense map), so name/order mistakes cannot cancel out.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from edgekd.errors import EdgekdError, ProfileError
from edgekd.export.parity import check_parity
from edgekd.iospec import IOSpec, TensorSpec
from edgekd.runtime.base import Session, SessionOptions
from edgekd.runtime.predict import session_predict
from edgekd.tasks.base import torch_predict

SPEC = IOSpec(
    (TensorSpec("image", ("batch", 3, 16, 16)), TensorSpec("extra", ("batch", 4))),
    (TensorSpec("scores", ("batch", 5)), TensorSpec("dense", ("batch", 2, 16, 16))),
)


class TwoHead(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 2, 1)
        self.fc = nn.Linear(8 + 4, 5)

    def forward(self, image: torch.Tensor, extra: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.relu(self.bn(self.conv1(image)))
        pooled = h.mean(dim=(2, 3))
        return self.fc(torch.cat([pooled, extra], dim=1)), torch.sigmoid(self.conv2(h))


def make_model(seed: int = 0) -> TwoHead:
    torch.manual_seed(seed)
    m = TwoHead()
    with torch.no_grad():  # non-trivial BatchNorm statistics, so folding them is exercised
        m.bn.running_mean.uniform_(-0.5, 0.5)
        m.bn.running_var.uniform_(0.5, 2.0)
    return m.eval()


def export_fixture_onnx(path: Path, model: nn.Module | None = None) -> Path:
    """The fixture as ONNX (TorchScript exporter: fast, and this is not the exporter's test)."""
    from edgekd.export.onnx import export_onnx

    return export_onnx(model or make_model(), SPEC, path, opset=17, exporter="torchscript", simplify=False).path


def load() -> Any:
    """Import this file as a module (tests run with --import-mode=importlib: no package imports)."""
    name = "edgekd_tests_runtime_conformance"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, Path(__file__))
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


class RuntimeConformance:
    runtime: str = ""
    atol: float = 1e-4
    rtol: float = 1e-3
    options: SessionOptions = SessionOptions(threads=1)
    batch: int | None = None  # None: the artifact keeps a dynamic batch; an int: its fixed batch
    # settings() keys every backend reports (the profiler writes them into its report)
    settings_keys = ("name", "version", "threads", "device", "precision")

    # --- hooks a backend may override ---------------------------------------------------------
    def make_artifact(self, folder: Path, model: nn.Module) -> Path:
        return export_fixture_onnx(folder / "fixture.onnx", model)

    def open_session(self, artifact: Path) -> Session:
        from edgekd.runtime import get_runtime

        return get_runtime(self.runtime).load(artifact, self.options)

    def missing_artifact(self, folder: Path) -> Path:
        return folder / "does_not_exist.onnx"

    # --- fixtures -----------------------------------------------------------------------------
    @pytest.fixture(scope="class")
    def model(self) -> nn.Module:
        return make_model()

    @pytest.fixture(scope="class")
    def session(self, model: nn.Module, tmp_path_factory: pytest.TempPathFactory) -> Session:
        folder = tmp_path_factory.mktemp(f"conf_{self.runtime}")
        return self.open_session(self.make_artifact(folder, model))

    @pytest.fixture
    def feeds(self) -> dict[str, np.ndarray]:
        return SPEC.dummy_inputs({"batch": self.batch or 3}, seed=1)

    # --- tests --------------------------------------------------------------------------------
    def test_available(self) -> None:
        from edgekd.runtime import get_runtime

        ok, version = get_runtime(self.runtime).available()
        assert ok, version
        assert version

    def test_is_a_session(self, session: Session) -> None:
        assert isinstance(session, Session)
        assert [t.name for t in session.inputs] == SPEC.input_names
        assert [t.name for t in session.outputs] == SPEC.output_names
        # the dynamic batch stays dynamic (a name), the fixed dims stay fixed
        if self.batch is None:
            assert isinstance(session.inputs[0].shape[0], str)
        else:
            assert session.inputs[0].shape[0] == self.batch
        assert tuple(session.inputs[0].shape[1:]) == (3, 16, 16)
        assert [t.dtype for t in session.inputs] == ["float32", "float32"]

    def test_parity_with_torch(self, session: Session, model: nn.Module) -> None:
        batches = (1, 4) if self.batch is None else (self.batch, self.batch)
        feeds = [SPEC.dummy_inputs({"batch": b}, seed=b if self.batch is None else i)
                 for i, b in enumerate(batches, 1)]
        rep = check_parity(torch_predict(model, SPEC), session_predict(session), feeds,
                           output_names=SPEC.output_names, atol=self.atol, rtol=self.rtol, artifact=self.runtime)
        assert rep.passed
        assert rep.samples == sum(batches)
        assert [o.name for o in rep.outputs] == SPEC.output_names
        assert all(o.max_abs_diff < self.atol * 10 for o in rep.outputs)

    def test_outputs_in_declared_order_and_shape(self, session: Session, feeds: dict[str, np.ndarray]) -> None:
        outs = session.run(feeds)
        b = self.batch or 3
        assert [o.shape for o in outs] == [(b, 5), (b, 2, 16, 16)]
        assert all(o.dtype == np.float32 for o in outs)

    @pytest.mark.parametrize("case, needle", [
        ("missing", "missing input 'extra'"),
        ("rank", "input 'image': rank 3"),
        ("fixed_dim", "input 'image': dim 2 is 15"),
        ("dtype", "input 'extra': dtype float64"),
        ("extra_input", "unexpected input 'mask'"),
    ])
    def test_bad_feeds_raise_profile_error_naming_the_input(self, session: Session, feeds: dict[str, np.ndarray],
                                                            case: str, needle: str) -> None:
        bad = dict(feeds)
        if case == "missing":
            del bad["extra"]
        elif case == "rank":
            bad["image"] = bad["image"][0]
        elif case == "fixed_dim":
            bad["image"] = bad["image"][:, :, :15, :]
        elif case == "dtype":
            bad["extra"] = bad["extra"].astype(np.float64)
        elif case == "extra_input":
            bad["mask"] = np.zeros((3, 1), np.float32)
        with pytest.raises(ProfileError) as ei:
            session.run(bad)
        assert needle in str(ei.value)

    def test_a_feed_changed_after_a_good_run_is_checked_again(self, session: Session,
                                                              feeds: dict[str, np.ndarray]) -> None:
        session.run(feeds)  # validated once; a cached validation must not hide the change below
        feeds["extra"] = feeds["extra"].astype(np.float64)
        with pytest.raises(ProfileError, match="dtype float64"):
            session.run(feeds)

    def test_settings_report_what_is_used(self, session: Session) -> None:
        s = session.settings()
        missing = [k for k in self.settings_keys if k not in s]
        assert not missing, f"settings() lacks {missing}: {s}"
        assert s["name"] == self.runtime
        assert s["threads"] == 1

    def test_missing_artifact_raises_edgekd_error(self, tmp_path: Path) -> None:
        from edgekd.runtime import get_runtime

        path = self.missing_artifact(tmp_path)
        with pytest.raises(EdgekdError) as ei:
            get_runtime(self.runtime).load(path, self.options)
        assert path.name in str(ei.value)
