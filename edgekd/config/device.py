"""Device profiles (``devices/*.yaml``): what a target can run, its threads, its budgets
per recipe, and its calibrated characteristics for the latency estimator."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from edgekd.config.loading import read_yaml, validate
from edgekd.config.recipe import Strict

RuntimeName = Literal["torch", "onnxruntime", "openvino", "tensorrt", "litert"]
Precision = Literal["fp32", "fp16", "bf16", "int8"]


class RuntimeSupport(Strict):
    name: RuntimeName
    precisions: list[Precision]
    providers: list[str] = Field(default_factory=list, description="ORT execution providers / OV devices")


class Budget(Strict):
    """Limits for one recipe on this device. Latency is checked on the p90 99% upper bound."""

    latency_p90_ms: float | None = Field(None, gt=0)
    peak_rss_mb: float | None = Field(None, gt=0)
    artifact_mb: float | None = Field(None, gt=0)
    metric_max: float | None = Field(None, description="for lower-is-better metrics (e.g. degrees)")
    metric_min: float | None = Field(None, description="for higher-is-better metrics (e.g. mIoU)")
    runtime: RuntimeName = "onnxruntime"
    precision: Precision = "int8"


class Characteristics(Strict):
    """Calibrated machine model for ``edgekd estimate``: time = max(flops/peak, bytes/bw) + overhead."""

    peak_gflops: dict[Precision, float] = Field(default_factory=dict)
    bandwidth_gbs: float | None = Field(None, gt=0)
    op_overhead_us: float = Field(5.0, ge=0)
    source: str = Field("datasheet", description="'datasheet' or the calibration file it came from")


class Fingerprint(Strict):
    """What the board should look like; `edgekd doctor` compares against it."""

    arch: Literal["x86_64", "aarch64", "any"] = "any"
    cpu_model_contains: list[str] = Field(default_factory=list)
    min_cores: int | None = Field(None, ge=1)
    gpu: str | None = None
    jetson: bool = False
    raspberry_pi: bool = False


class DeviceConfig(Strict):
    name: str
    description: str = ""
    family: Literal["cpu", "raspberry-pi", "jetson", "gpu"]
    fingerprint: Fingerprint = Field(default_factory=Fingerprint)
    default_threads: int | None = Field(None, ge=1, description="null = all cores of the machine")
    memory_mb: int | None = Field(None, gt=0)
    runtimes: list[RuntimeSupport]
    budgets: dict[str, Budget] = Field(default_factory=dict, description="keyed by recipe name")
    characteristics: Characteristics = Field(default_factory=Characteristics)
    power_rail: str | None = Field(
        None, pattern=r"^[A-Z][A-Z0-9_]*(\+[A-Z][A-Z0-9_]*)*$",
        description="tegrastats rail whose power is integrated for energy per inference, or rails summed as "
                    "A+B+C; null: the board's input rail (VDD_IN, POM_5V_IN). Jetsons only")

    def supports(self, runtime: str, precision: str) -> bool:
        return any(r.name == runtime and precision in r.precisions for r in self.runtimes)

    def runtime_names(self) -> list[str]:
        return [r.name for r in self.runtimes]


def list_devices(folder: Path | None = None) -> list[str]:
    from edgekd.paths import devices_dir

    return sorted(p.stem for p in (folder or devices_dir()).glob("*.yaml"))


def load_device(name_or_path: str | Path, overrides: list[str] | None = None) -> DeviceConfig:
    from edgekd.config.loading import apply_overrides
    from edgekd.errors import UnknownNameError
    from edgekd.paths import devices_dir

    p = Path(name_or_path)
    if not (p.suffix in (".yaml", ".yml") or p.exists()):
        cand = devices_dir() / f"{name_or_path}.yaml"
        if not cand.is_file():
            raise UnknownNameError("device", str(name_or_path), list_devices(),
                                   hint="list devices with `edgekd devices`, or pass a path to a device YAML")
        p = cand
    raw = apply_overrides(read_yaml(p), overrides or [])
    return validate(DeviceConfig, raw, str(p))
