"""The ``edgekd.profile/1`` report: JSON schema, validation, saving with raw samples, markdown.

Contract (later versions add keys; these stay)::

    {"schema": "edgekd.profile/1", "valid": bool, "invalid_reasons": [str],
     "device": {fingerprint}, "runtime": {"name", "version", "threads", "providers", ...},
     "results": {"latency_ms": {"p50","p90","p95","p99","mean","std","min","max","p90_ucb99"},
                 "session_medians_ms": [...], "load_ms", "first_inference_ms", "peak_rss_mb", ...},
     "artifact": {"path", "sha256", "size_mb"}, "settings": {...}, "transfers": str,
     "raw_samples": {"path", "sha256", "shape", "unit": "ms"}, "sensors": {...}}

Raw samples (shape sessions x iterations, milliseconds, float64) are saved beside the report as
``<stem>.samples.npy``; their SHA-256 is in the report and checked on load.
"""

from __future__ import annotations

import copy
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekd.errors import EXIT_INVALID, EdgekdError, ProfileError
from edgekd.fileio import atomic_open, sha256_bytes, write_json, write_text

SCHEMA = "edgekd.profile/1"
LATENCY_KEYS = ("p50", "p90", "p95", "p99", "mean", "std", "min", "max", "p90_ucb99")
RESULT_KEYS = ("latency_ms", "session_medians_ms", "load_ms", "first_inference_ms", "peak_rss_mb")
TOP_KEYS = ("schema", "valid", "invalid_reasons", "device", "runtime", "results")


class InvalidRunError(EdgekdError):
    """A measurement that throttled, drifted or has too few samples, with --fail-invalid: exit 4."""

    exit_code = EXIT_INVALID


def _npy_bytes(samples: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(samples, dtype=np.float64), allow_pickle=False)
    return buf.getvalue()


@dataclass
class ProfileReport:
    """One profiled artifact. ``data`` is the JSON document; ``samples`` the raw latencies (ms)."""

    data: dict[str, Any]
    samples: np.ndarray | None = field(default=None, repr=False)

    # ---- convenient read access ------------------------------------------------------------
    @property
    def valid(self) -> bool:
        return bool(self.data["valid"])

    @property
    def invalid_reasons(self) -> list[str]:
        return list(self.data["invalid_reasons"])

    @property
    def latency_ms(self) -> dict[str, float | None]:
        return dict(self.data["results"]["latency_ms"])

    @property
    def session_medians_ms(self) -> list[float]:
        return list(self.data["results"]["session_medians_ms"])

    @property
    def p50(self) -> float:
        return float(self.data["results"]["latency_ms"]["p50"])

    def mark_invalid(self, reason: str) -> None:
        self.data["valid"] = False
        if reason not in self.data["invalid_reasons"]:
            self.data["invalid_reasons"].append(reason)

    # ---- serialisation -----------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        d = copy.deepcopy(self.data)
        if self.samples is not None:
            raw = d.setdefault("raw_samples", {})
            raw.update({"sha256": sha256_bytes(_npy_bytes(self.samples)), "shape": list(self.samples.shape),
                        "unit": "ms", "dtype": "float64"})
        return d

    @classmethod
    def from_json(cls, source: dict[str, Any] | str | Path) -> ProfileReport:
        """Validate and wrap a report (a dict, or a path to a JSON file). Raises ProfileError naming the
        file, the missing or wrong key and the schema expected. Samples are loaded by :meth:`load`."""
        where = "report"
        if isinstance(source, (str, Path)):
            where = str(source)
            p = Path(source)
            if not p.is_file():
                raise ProfileError(f"{where}: no such profile report",
                                   hint="pass the JSON written by `edgekd profile --out FILE`")
            try:
                source = json.loads(p.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise ProfileError(f"{where}: not a JSON file ({exc})",
                                   hint="pass the JSON written by `edgekd profile --out FILE`") from None
        validate_report(source, where)
        return cls(copy.deepcopy(source))  # type: ignore[arg-type]

    @classmethod
    def load(cls, path: str | Path, *, samples: bool = True) -> ProfileReport:
        """Read a saved report and (if present) its raw samples, verifying their SHA-256."""
        rep = cls.from_json(path)
        raw = rep.data.get("raw_samples") or {}
        if samples and raw.get("path"):
            sp = Path(path).parent / raw["path"]
            if not sp.is_file():
                raise ProfileError(f"{path}: its raw samples file {sp} is missing",
                                   hint="copy the .samples.npy file together with the report")
            blob = sp.read_bytes()
            if raw.get("sha256") and sha256_bytes(blob) != raw["sha256"]:
                raise ProfileError(f"{sp}: SHA-256 {sha256_bytes(blob)[:12]}... does not match the report's "
                                   f"{raw['sha256'][:12]}...; the samples file was changed or truncated")
            rep.samples = np.load(io.BytesIO(blob), allow_pickle=False)
        return rep

    def save(self, path: str | Path, *, markdown: bool = False, plots: bool = False) -> Path:
        """Write the samples (``<stem>.samples.npy``) then the JSON, each atomically; optionally the
        markdown (``<stem>.md``) and plots (``<stem>.latency.png``, ``<stem>.layers.png``)."""
        p = Path(path)
        if self.samples is not None:
            sp = p.with_name(p.stem + ".samples.npy")
            blob = _npy_bytes(self.samples)
            with atomic_open(sp, "wb") as fh:
                fh.write(blob)
            self.data.setdefault("raw_samples", {})["path"] = sp.name
        files: dict[str, str] = {}
        if plots:
            from edgekd.profile.plots import save_plots

            files = {k: v.name for k, v in save_plots(self, p).items()}
            self.data["plots"] = files
        write_json(p, self.to_json())
        if markdown:
            write_text(p.with_suffix(".md"), render_markdown(self))
        return p


def validate_report(d: Any, where: str = "report") -> None:
    def bad(what: str) -> ProfileError:
        return ProfileError(f"{where}: not a valid {SCHEMA} report: {what}",
                            hint="pass a report written by `edgekd profile` (schema edgekd.profile/1)")

    if not isinstance(d, dict):
        raise bad(f"the top level is a {type(d).__name__}, expected an object")
    schema = d.get("schema")
    if schema != SCHEMA:
        if isinstance(schema, str) and schema.startswith("edgekd.profile/"):
            raise ProfileError(f"{where}: schema {schema!r} is not supported by this edgekd (reads {SCHEMA!r})",
                               hint="re-run `edgekd profile` with this version, or upgrade edgekd")
        raise bad(f"'schema' is {schema!r}, expected {SCHEMA!r}")
    missing = [k for k in TOP_KEYS if k not in d]
    if missing:
        raise bad(f"missing key(s) {missing}")
    if not isinstance(d["valid"], bool):
        raise bad(f"'valid' is {d['valid']!r}, expected true/false")
    if not isinstance(d["invalid_reasons"], list):
        raise bad("'invalid_reasons' must be a list")
    for k in ("device", "runtime", "results"):
        if not isinstance(d[k], dict):
            raise bad(f"{k!r} must be an object")
    res = d["results"]
    missing = [k for k in RESULT_KEYS if k not in res]
    if missing:
        raise bad(f"results is missing {missing}")
    lat = res["latency_ms"]
    if not isinstance(lat, dict):
        raise bad("results.latency_ms must be an object")
    missing = [k for k in LATENCY_KEYS if k not in lat]
    if missing:
        raise bad(f"results.latency_ms is missing {missing}")
    for k in LATENCY_KEYS:
        v = lat[k]
        if not (v is None and k == "p90_ucb99") and not isinstance(v, (int, float)):
            raise bad(f"results.latency_ms.{k} is {v!r}, expected a number")
    if not isinstance(res["session_medians_ms"], list) or not all(
            isinstance(x, (int, float)) for x in res["session_medians_ms"]):
        raise bad("results.session_medians_ms must be a list of numbers")


def _fmt(v: Any, nd: int = 3) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def render_markdown(rep: ProfileReport | dict[str, Any]) -> str:
    d = rep.to_json() if isinstance(rep, ProfileReport) else rep
    res, lat, rt, dev = d["results"], d["results"]["latency_ms"], d["runtime"], d["device"]
    art = d.get("artifact", {})
    lines = [f"# Profile: {Path(str(art.get('path', d.get('label', '?')))).name}", ""]
    lines.append(f"**{'VALID' if d['valid'] else 'INVALID'}**" + (
        "" if d["valid"] else ": " + "; ".join(d["invalid_reasons"])))
    if res.get("noisy"):
        lines.append(f"\nNoisy run: session medians vary by {res.get('session_cv', 0):.1%} "
                     f"(threshold {res.get('noisy_threshold', 0):.0%}).")
    cont = (d.get("sensors") or {}).get("cpu_contention") or {}
    if res.get("contended") and cont:
        lines.append(f"\nContended CPU: on average {cont['runnable_threads_mean']:.1f} runnable threads for "
                     f"{cont['cpus']} CPU(s) during the run; other processes took CPU time from it.")
    lines += ["", "| p50 | p90 | p95 | p99 | p90 99% UCB | mean | std | min | max |",
              "|---|---|---|---|---|---|---|---|---|",
              "| " + " | ".join(_fmt(lat[k]) for k in ("p50", "p90", "p95", "p99", "p90_ucb99", "mean", "std",
                                                    "min", "max")) + " |", "",
              "Latency in ms.", ""]
    lines += ["| | |", "|---|---|",
              f"| load | {_fmt(res.get('load_ms'), 1)} ms |",
              f"| first inference | {_fmt(res.get('first_inference_ms'))} ms |",
              f"| throughput | {_fmt(res.get('throughput_per_s'), 1)} /s |",
              f"| session medians | {', '.join(_fmt(x) for x in res['session_medians_ms'])} ms "
              f"(CV {_fmt(res.get('session_cv'), 4)}) |",
              f"| samples | {res.get('n_samples', 'n/a')} |",
              f"| peak RSS | {_fmt(res.get('peak_rss_mb'), 1)} MB |",
              f"| artifact | {_fmt(art.get('size_mb'), 3)} MB, sha256 {str(art.get('sha256', ''))[:16]} |",
              f"| runtime | {rt.get('name')} {rt.get('version', '')}, threads {rt.get('threads')}, "
              f"{rt.get('providers') or rt.get('device', '')}, precision {rt.get('precision', '')} |",
              f"| device | {dev.get('cpu', {}).get('model')} ({dev.get('cpu', {}).get('logical_cores')} cores), "
              f"{dev.get('arch')}, kernel {dev.get('kernel')} |",
              f"| transfers | {d.get('transfers', 'n/a')} |", ""]
    sens = d.get("sensors") or {}
    if sens.get("absent"):
        lines += [f"Sensors absent on this machine: {', '.join(sens['absent'])}.", ""]
    layers = d.get("layers")
    if layers and layers.get("nodes"):
        lines += [f"## Per-layer breakdown ({layers.get('source')}, coverage {_fmt(layers.get('coverage_pct'), 1)}% "
                  "of end-to-end)", "", "| node | op | ms | % |", "|---|---|---|---|"]
        for n in layers["nodes"][:15]:
            lines.append(f"| {n['node']} | {n.get('op', '')} | {_fmt(n['ms'], 4)} | {_fmt(n.get('pct'), 1)} |")
        lines.append("")
    for name in (d.get("plots") or {}).values():
        lines.append(f"![{name}]({name})")
    return "\n".join(lines) + "\n"
