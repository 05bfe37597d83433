"""The recipe's ``export.formats`` beyond ONNX, written by ``distill-and-export`` next to ``student.onnx``.

- ``openvino``: ``openvino/student.xml`` + ``.bin``, converted from the torch student and checked
  against it (allclose at the recipe's parity tolerances, on test-split inputs).
- ``litert``: ``litert/student.tflite`` and ``student.int8.tflite`` (LiteRT/XNNPACK, the Raspberry Pi's CPU
  runtime), converted from the torch student by litert-torch (the ``litert-export`` extra) and checked;
- ``tensorrt``: the ONNX TensorRT builds + ``student.plan.json``: engines are not portable, so the engine
  itself is built on the target by ``edgekd build-engine``, which checks its parity there. Its precision
  is the device budget's when that budget runs on TensorRT (a Jetson's INT8), else FP16. INT8 is explicit
  quantization: a QAT run with int8 activations hands TensorRT its QDQ model; otherwise edgekd quantizes
  ``student.onnx`` to symmetric INT8 Q/DQ (``tensorrt/student.qdq.onnx``) on the calibration inputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgekd.config.device import DeviceConfig
from edgekd.config.recipe import RecipeBase
from edgekd.tasks.base import Task


def tensorrt_precision(device: DeviceConfig, recipe_name: str) -> str:
    """The precision the device's budget asks of TensorRT for this recipe; fp16 when it asks nothing of TensorRT."""
    budget = device.budgets.get(recipe_name)
    if budget is not None and budget.runtime == "tensorrt":
        return str(budget.precision)
    return "fp16"


def export_extra_formats(student: Any, task: Task, recipe: RecipeBase, device: DeviceConfig, out_dir: Path, *,
                         onnx_path: Path | None, qdq: bool, feeds: list[dict[str, np.ndarray]],
                         calib: list[dict[str, np.ndarray]], tensorrt_note: str | None = None, spec: Any = None
                         ) -> dict[str, dict[str, Any]]:
    """Write every format of ``recipe.export.formats`` other than ONNX; returns {format: details} with the
    written files under ``files`` (relative to ``out_dir``). ``onnx_path`` is the model TensorRT gets (None:
    none, ``tensorrt_note`` says why); ``qdq``: it is a QAT QDQ model with symmetric int8 Q/DQ (TensorRT
    builds it as explicit INT8, no calibration)."""
    done: dict[str, dict[str, Any]] = {}
    for fmt in recipe.export.formats:
        if fmt == "openvino":
            done[fmt] = _openvino(student, spec if spec is not None else task.io_spec(), recipe, out_dir, feeds)
        elif fmt == "tensorrt":
            done[fmt] = _tensorrt(recipe, task, device, out_dir, onnx_path, qdq, feeds, calib, tensorrt_note)
        elif fmt == "litert":
            done[fmt] = _litert(student, spec if spec is not None else task.io_spec(), recipe, out_dir, feeds,
                                calib)
    return done


def _litert(student: Any, spec: Any, recipe: RecipeBase, out_dir: Path, feeds: list[dict[str, np.ndarray]],
            calib: list[dict[str, np.ndarray]]) -> dict[str, Any]:
    """``litert/student.tflite`` (FP32) and ``student.int8.tflite`` (PT2E INT8, int8 I/O) from the torch student,
    each checked against it (FP32 allclose; INT8 by argmax agreement, measured, not judged)."""
    import importlib.util

    from edgekd.quantize.fake_quant import is_qat

    if is_qat(student):
        return {"skipped": "distill.qat: the fake-quant student has no LiteRT conversion here", "files": []}
    if importlib.util.find_spec("litert_torch") is None:
        return {"skipped": "the litert-export extra is not installed: pip install 'edgekd[litert-export]' (in its "
                           "own environment: it pins typing-extensions below what pydantic wants)", "files": []}
    from edgekd.export.litert import check_litert_parity, export_litert

    par, files, parity = recipe.export.parity, [], {}
    for precision, name in (("fp32", "student.tflite"), ("int8", "student.int8.tflite")):
        res = export_litert(student, spec, out_dir / "litert" / name, precision=precision, calibration=calib)
        rep = check_litert_parity(student, spec, res.path, feeds, precision=precision, atol=par.atol,
                                  rtol=par.rtol, raise_on_failure=precision == "fp32")
        files.append(str(res.path.relative_to(out_dir)))
        parity[precision] = bool(getattr(rep, "passed", True))
    return {"files": files, "parity_passed": parity}


def _openvino(student: Any, spec: Any, recipe: RecipeBase, out_dir: Path,
              feeds: list[dict[str, np.ndarray]]) -> dict[str, Any]:
    """``openvino/student.xml`` + ``.bin`` from the torch student, checked against it."""
    import importlib.util

    from edgekd.quantize.fake_quant import is_qat

    if is_qat(student):
        # the fake-quant student converts to FakeQuantize-laden IR that is not the QDQ model judged
        # here; OpenVINO reads the QDQ ONNX (student.int8.onnx) directly instead
        return {"skipped": "distill.qat: OpenVINO runs student.int8.onnx (QDQ) directly", "files": []}
    if importlib.util.find_spec("openvino") is None:
        return {"skipped": "the openvino extra is not installed: pip install 'edgekd[openvino]'", "files": []}
    from edgekd.export.openvino import check_openvino_parity, export_openvino_from_torch

    par = recipe.export.parity
    res = export_openvino_from_torch(student, spec, out_dir / "openvino" / "student.xml",
                                     dynamic_batch=recipe.export.dynamic_batch)
    rep = check_openvino_parity(student, spec, res.xml, feeds, atol=par.atol, rtol=par.rtol)
    return {"files": [str(Path(p).relative_to(out_dir)) for p in (res.xml, res.bin)],
            "parity_passed": bool(getattr(rep, "passed", True))}


def _tensorrt(recipe: RecipeBase, task: Task, device: DeviceConfig, out_dir: Path, onnx_path: Path | None,
              qdq: bool,
              feeds: list[dict[str, np.ndarray]], calib: list[dict[str, np.ndarray]],
              tensorrt_note: str | None) -> dict[str, Any]:
    """The ONNX TensorRT builds + its build plan; the engine is built on the target. An INT8 engine's parity
    follows the task's INT8 policy (argmax agreement for class scores, else allclose; measured, not judged)."""
    from edgekd.export.tensorrt import write_build_plan

    if onnx_path is None:
        return {"skipped": tensorrt_note or "no ONNX model for TensorRT", "files": []}
    par = recipe.export.parity
    precision = "int8" if qdq else tensorrt_precision(device, recipe.name)
    # one optimisation profile at the task's own input sizes: batch 1..8 (opt 1: edge latency) when the
    # export has a dynamic batch
    hi = 8 if recipe.export.dynamic_batch else 1
    ranges = {k: ([1, *v.shape[1:]], [1, *v.shape[1:]], [hi, *v.shape[1:]]) for k, v in calib[0].items()}
    plan = write_build_plan(onnx_path, out_dir / "tensorrt", precision=precision, ranges=ranges,
                            max_batch=hi, calib=calib if precision == "int8" and not qdq else None,
                            method=recipe.quantize.calibration.method,
                            parity_feeds=[{k: v[:hi] for k, v in feeds[0].items()}],
                            atol=max(par.atol, 1e-3), rtol=max(par.rtol, 1e-3), compare=task.parity_compare,
                            min_agreement=task.parity_min_agreement)
    return {"files": [str(p.relative_to(out_dir)) for p in sorted(plan.parent.iterdir()) if p.is_file()],
            "precision": precision, **({"note": tensorrt_note} if tensorrt_note else {}),
            "next": f"on the target: edgekd build-engine {plan.relative_to(out_dir)}"}
