"""Every file a ``distill-and-export`` run writes, in one place.

:class:`ArtifactSet` is built from the recipe before anything runs and knows each file's name, kind,
runtime and precision. The stale-file clean-up, the runtime artifacts that are parity-checked,
evaluated and profiled, the manifest's artifact list and the CLI's ``next:`` hint all read it, so
they cannot disagree. :class:`QatPlan` decides, once, which training arms and INT8 artifact a
``distill.qat`` setting produces.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from edgekd.config.recipe import RecipeBase

Kind = Literal["weights", "onnx", "openvino_ir", "report"]
Int8Source = Literal["ptq", "qat_scratch", "qat_finetune", "none"]


@dataclass(frozen=True)
class QatPlan:
    """What ``distill.qat`` (and ``quantize``) make of a run.

    - no QAT: the FP32 student is exported (``student.onnx``); INT8 by PTQ when ``quantize.enabled``;
    - ``mode: scratch``: the KD student trains with fake quantization from the start; its export IS the
      INT8 artifact (QDQ), no FP32 ONNX is written and PTQ is skipped (quantizing QDQ again corrupts it);
    - ``mode: finetune``: the FP32 student is exported and checked as usual, then fine-tuned with fake
      quantization (``student_qat``); that model's export is the INT8 artifact instead of PTQ.
    """

    mode: Literal["scratch", "finetune"] | None
    int8_source: Int8Source

    @classmethod
    def of(cls, recipe: RecipeBase) -> QatPlan:
        qat = recipe.distill.qat
        if qat is not None and qat.mode == "scratch":
            return cls("scratch", "qat_scratch")
        if qat is not None and qat.mode == "finetune":
            return cls("finetune", "qat_finetune")
        return cls(None, "ptq" if recipe.quantize.enabled else "none")

    @property
    def kd_student_is_qat(self) -> bool:
        """The KD arm itself trains with fake quantization."""
        return self.mode == "scratch"

    @property
    def finetune_arm(self) -> bool:
        """A third arm (``student_qat``) fine-tunes the KD student with fake quantization."""
        return self.mode == "finetune"

    @property
    def exports_fp32(self) -> bool:
        return self.mode != "scratch"


@dataclass(frozen=True)
class Artifact:
    """One file of a run. ``variant`` names its row in ``report.json``'s ``variants`` (runtime artifacts
    only); ``sidecars`` are files that belong to it (an IR's ``.bin``)."""

    name: str  # path relative to the run folder
    kind: Kind
    runtime: str = "torch"
    precision: str = "fp32"
    variant: str | None = None
    sidecars: tuple[str, ...] = ()

    def path(self, out_dir: Path) -> Path:
        return out_dir / self.name

    def files(self) -> tuple[str, ...]:
        return (self.name, *self.sidecars)


@dataclass(frozen=True)
class ArtifactSet:
    """The files one recipe's run writes into ``out_dir`` (export formats' files are listed by their
    exporter, under ``openvino/``, ``tensorrt/`` and ``litert/``)."""

    out_dir: Path
    qat: QatPlan
    int8_runtime: str  # quantize.runtime: where the INT8 artifact runs

    @classmethod
    def of(cls, recipe: RecipeBase, out_dir: Path) -> ArtifactSet:
        qat = QatPlan.of(recipe)
        # A QAT model's QDQ export runs on ONNX Runtime whatever quantize.runtime says (PTQ is skipped).
        runtime = recipe.quantize.runtime if qat.int8_source == "ptq" else "onnxruntime"
        return cls(out_dir, qat, runtime)

    # ---- the files ------------------------------------------------------------------------------
    ONNX_FP32 = Artifact("student.onnx", "onnx", "onnxruntime", "fp32", "onnx_fp32")
    ONNX_INT8 = Artifact("student.int8.onnx", "onnx", "onnxruntime", "int8", "onnx_int8")
    OPENVINO_INT8 = Artifact("student.int8.xml", "openvino_ir", "openvino", "int8", "openvino_int8",
                             ("student.int8.bin",))
    TEACHER = Artifact("teacher.safetensors", "weights")
    STUDENT_ALONE = Artifact("student_alone.safetensors", "weights")
    STUDENT_KD = Artifact("student_kd.safetensors", "weights")
    STUDENT_QAT = Artifact("student_qat.safetensors", "weights")  # fake-quant, stored as float32
    REPORTS = (Artifact("report.json", "report", "", ""), Artifact("report.md", "report", "", ""),
               Artifact("report_tradeoff.png", "report", "", ""))
    #: the folders an earlier run's export formats wrote into
    FORMAT_DIRS = ("openvino", "tensorrt", "litert")
    #: the optimize search's folder (recipe ``optimize.enabled``); cleared when a run starts
    OPTIMIZE_DIR = "optimize"

    @property
    def fp32(self) -> Artifact | None:
        return self.ONNX_FP32 if self.qat.exports_fp32 else None

    @property
    def int8(self) -> Artifact | None:
        """The INT8 artifact, wherever it comes from (PTQ on either runtime, or a QAT export)."""
        if self.qat.int8_source == "none":
            return None
        return self.OPENVINO_INT8 if self.int8_runtime == "openvino" else self.ONNX_INT8

    def runtime_artifacts(self) -> list[Artifact]:
        """The exported models, in report order: each is parity-checked, evaluated and profiled."""
        return [a for a in (self.fp32, self.int8) if a is not None]

    def weights(self) -> list[Artifact]:
        return [self.STUDENT_KD, *([self.STUDENT_QAT] if self.qat.finetune_arm else []), self.STUDENT_ALONE,
                self.TEACHER]

    def every_known(self) -> list[Artifact]:
        """Every file any recipe's run may write at the top of the folder, whatever this recipe does."""
        return [self.ONNX_FP32, self.ONNX_INT8, self.OPENVINO_INT8, self.STUDENT_QAT]

    def stale(self) -> list[Path]:
        """Files an earlier run into the same folder may have left: a re-used ``--out`` must not report
        an earlier run's artifact."""
        d = self.out_dir
        plot = self.REPORTS[2]  # drawn only when something was profiled: an old one must not linger
        return [d / f for a in (*self.every_known(), plot) for f in a.files()] + [
            p for sub in self.FORMAT_DIRS for p in (d / sub).glob("student.*")]

    def remove_stale(self) -> None:
        for p in self.stale():
            p.unlink(missing_ok=True)

    def by_variant(self, variant: str) -> Artifact | None:
        return next((a for a in self.runtime_artifacts() if a.variant == variant), None)

    def manifest_entries(self, variants: dict[str, Any], exports: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        """``manifest.json``'s artifact list: every file of the run that exists, with its SHA-256; exported
        models carry their runtime, precision and test metric. Models first, then weights, the export
        formats' files, and the reports."""
        from edgekd.fileio import is_temp_name
        from edgekd.pipeline.manifest import artifact_entry

        d = self.out_dir
        out: list[dict[str, Any]] = []
        for a in (*self.runtime_artifacts(), *self.weights()):
            metric = (variants.get(a.variant or "") or {}).get("metric")
            out += [artifact_entry(d / f, d, runtime=a.runtime, precision=a.precision, metric=metric)
                    for f in a.files() if (d / f).exists()]
        for fmt, info in exports.items():
            out += [artifact_entry(d / rel, d, runtime=fmt) for rel in info.get("files", [])]
        # this run's profile reports and their raw samples (the folder was cleared when the run started)
        out += [artifact_entry(f, d) for f in sorted((d / "profile").glob("*")) if f.is_file()]
        # the optimize search's reports and candidate artifacts (recipe optimize.enabled), however deep
        out += [artifact_entry(f, d) for f in sorted((d / self.OPTIMIZE_DIR).rglob("*"))
                if f.is_file() and not is_temp_name(f.name)]
        return out + [artifact_entry(a.path(d), d) for a in self.REPORTS if a.path(d).exists()]

    def next_commands(self, device: str, recipe: str, inputs: dict[str, list[int]],
                      optimize: dict[str, Any] | None = None) -> str | None:
        """The ``next:`` hint: profile the INT8 artifact (else the FP32 one) and gate its profile; with an
        optimize search that picked something (report.json's ``optimize``), profile the pick first."""
        art = self.int8 or self.fp32
        if art is None:
            return None
        pick = self._pick_command(device, inputs, optimize)
        from edgekd.pipeline.budget_stage import HOST_DEVICES

        flags = " ".join(f"--input {n}={'x'.join(map(str, shape))}" for n, shape in inputs.items())
        d = self.out_dir
        runtime = f" --runtime {art.runtime}" if art.runtime != "onnxruntime" else ""
        # The gate line judges what the budget judged: on the host, this run's own profile (its peak RSS, shared
        # with training, is judged by neither); for a board, a profile taken on the board.
        on_host = device in HOST_DEVICES
        gated = f"{d}/profile/{art.variant}.json" if on_host else "board.json"
        board = "" if on_host else " --host USER@BOARD --out board.json"
        return pick + (f"edgekd profile {d / art.name}{runtime} --device {device} {flags}{board}   |   "
                       f"edgekd gate {gated} --device {device} --recipe {recipe} --recipe-report {d}/report.json")

    def _pick_command(self, device: str, inputs: dict[str, list[int]], optimize: dict[str, Any] | None) -> str:
        """``optimize picked NAME: edgekd profile ARTIFACT ...   |   `` (empty without a pick)."""
        if not optimize or not optimize.get("picked") or not optimize.get("picked_artifact"):
            return ""
        flags = " ".join(f"--input {n}={'x'.join(map(str, shape))}" for n, shape in inputs.items())
        return (f"optimize picked {optimize['picked']}: edgekd profile {self.out_dir / optimize['picked_artifact']}"
                f"{pick_runtime_flags(optimize)} --device {device} {flags}   |   ")


def pick_runtime_flags(optimize: dict[str, Any]) -> str:
    """The ``edgekd profile`` flags that run the optimize pick as the search ran it: its runtime (when not
    ONNX Runtime) and, for a float pick below fp32 (OpenVINO bf16/f16: the FP32 file run at that inference
    precision), its precision."""
    rt = optimize.get("picked_runtime") or "onnxruntime"
    prec = optimize.get("picked_precision")
    return (f" --runtime {rt}" if rt != "onnxruntime" else "") + (f" --precision {prec}" if prec in ("bf16", "fp16") else "")
