"""The ``edgekd.profile/1`` report: JSON schema, validation, saving with raw samples, markdown.

Contract (later versions add keys; these stay)::

    {"schema": "edgekd.profile/1", "valid": bool, "invalid_reasons": [str],
     "device": {fingerprint}, "runtime": {"name", "version", "threads", "providers", ...},
     "results": {"latency_ms": {"p50","p90","p95","p99","mean","std","min","max","p90_ucb99"},
                 "session_medians_ms": [...], "load_ms", "first_inference_ms", "peak_rss_mb", ...},
     "artifact": {"path", "sha256", "size_mb"}, "settings": {...}, "transfers": str,
     "raw_samples": {"path", "sha256", "shape", "unit": "ms"}, "sensors": {...},
     "energy": {"source", "rail", "mean_power_mw", "mj_per_inference", "samples", "window_s", "method"} | null,
     "energy_unavailable": str | null}

Raw samples (shape sessions x iterations, milliseconds, float64) are saved beside the report as
``<stem>.samples.npy``; their SHA-256 is in the report and checked on load.
"""

from __future__ import annotations

import copy
import io
import json
import math
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


class ReportInvalid(ProfileError):
    """A document that claims the profile schema but cannot be trusted: a figure that is negative,
    non-finite or of the wrong JSON type, a stored summary that its raw samples do not reproduce, or
    raw samples whose SHA-256 does not match. Exit 4 (INVALID), never "allowed" by --allow-invalid."""

    exit_code = EXIT_INVALID


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
                raise ReportInvalid(f"{sp}: SHA-256 {sha256_bytes(blob)[:12]}... does not match the report's "
                                    f"{raw['sha256'][:12]}...; the samples file was changed or truncated",
                                    hint="re-run `edgekd profile`, or copy the report with its own samples file")
            try:
                rep.samples = np.load(io.BytesIO(blob), allow_pickle=False)
            except ValueError as exc:
                raise ReportInvalid(f"{sp}: not a numeric .npy array ({exc})",
                                    hint="re-run `edgekd profile`") from None
        return rep

    def verify_summary(self, where: str = "report") -> None:
        """Recompute every summary figure (quantiles, the p90 bound, mean, session medians) from the raw
        samples and replace the stored ones with them, so that whatever is judged afterwards is what
        the samples say. Raises :class:`ReportInvalid` naming the field when the stored summary
        disagrees, when there are no raw samples to recompute from, or when ``valid`` is true for too
        few samples to bound the p90."""
        from edgekd.profile.stats import summarize, summary_mismatch

        def invalid(what: str) -> ReportInvalid:
            return ReportInvalid(f"{where}: INVALID report: {what}",
                                 hint="re-run `edgekd profile`; a report must not be edited by hand")

        if self.samples is None:
            raise invalid("no raw samples (raw_samples.path): the summary cannot be recomputed, so it "
                          "cannot be trusted")
        shape = (self.data.get("raw_samples") or {}).get("shape")
        if shape is not None and list(np.shape(self.samples)) != list(shape):
            raise invalid(f"raw_samples.shape is {shape} but the samples file holds {list(np.shape(self.samples))}")
        res = self.data["results"]
        why = summary_mismatch(res["latency_ms"], res["session_medians_ms"], self.samples, res.get("n_samples"))
        if why:
            raise invalid(why)
        s = summarize(self.samples)
        if s.p90_ucb99 is None and self.data["valid"]:
            raise invalid(f"'valid' is true but {s.n} samples are too few for a 99% upper bound on p90 "
                          "(at least 44 are needed)")
        res["latency_ms"] = s.latency_dict()
        res["session_medians_ms"] = list(s.session_medians_ms)
        res["n_samples"] = s.n

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


def _bad_number(v: Any, *, allow_none: bool = False) -> str | None:
    """Why ``v`` is not a usable measurement (None when it is). ``bool`` is rejected although Python
    counts it as an ``int``: a JSON ``true`` where a latency belongs is a corrupt report, not 1 ms."""
    if v is None:
        return None if allow_none else "null, expected a number"
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return f"{v!r} ({type(v).__name__}), expected a number"
    if not math.isfinite(v):
        return f"{v!r}, expected a finite number"
    if v < 0:
        return f"{v!r}, expected a number >= 0"
    return None


def _check_values(d: dict[str, Any], where: str) -> None:
    """Values of a structurally sound report: every figure a gate or budget reads is a finite,
    non-negative number of the right JSON type. Raises :class:`ReportInvalid` naming the field."""
    def bad(field_: str, why: str) -> ReportInvalid:
        return ReportInvalid(f"{where}: INVALID report: {field_} is {why}",
                             hint="re-run `edgekd profile`; a report must not be edited by hand")

    res, lat = d["results"], d["results"]["latency_ms"]
    for k in LATENCY_KEYS:
        why = _bad_number(lat[k], allow_none=k == "p90_ucb99")
        if why:
            raise bad(f"results.latency_ms.{k}", why)
    meds = res["session_medians_ms"]
    if not isinstance(meds, list) or not meds:
        raise bad("results.session_medians_ms", f"{type(meds).__name__} of length "
                  f"{len(meds) if isinstance(meds, list) else 'n/a'}, expected a non-empty list of numbers")
    for i, x in enumerate(meds):
        why = _bad_number(x)
        if why:
            raise bad(f"results.session_medians_ms[{i}]", why)
    for k in ("load_ms", "first_inference_ms", "peak_rss_mb", "n_samples"):
        why = _bad_number(res.get(k), allow_none=True)
        if why:
            raise bad(f"results.{k}", why)
    if not all(isinstance(r, str) for r in d["invalid_reasons"]):
        raise bad("invalid_reasons", "not a list of strings")
    art = d.get("artifact")
    if art is not None:
        if not isinstance(art, dict):
            raise bad("artifact", f"a {type(art).__name__}, expected an object")
        why = _bad_number(art.get("size_mb"), allow_none=True)
        if why:
            raise bad("artifact.size_mb", why)
        sha = art.get("sha256")
        if sha is not None and not (isinstance(sha, str) and _is_sha256(sha)):
            raise bad("artifact.sha256", f"{sha!r}, expected 64 hex digits")
    _check_raw(d.get("raw_samples"), bad)
    _check_energy(d.get("energy"), bad)


def _check_energy(energy: Any, bad: Any) -> None:
    """``energy`` is null or carries finite, non-negative figures (a budget may read mJ/inference)."""
    if energy is None:
        return
    if not isinstance(energy, dict):
        raise bad("energy", f"a {type(energy).__name__}, expected an object or null")
    for k in ("mean_power_mw", "mj_per_inference", "samples"):
        why = _bad_number(energy.get(k))
        if why:
            raise bad(f"energy.{k}", why)


def _is_sha256(s: str) -> bool:
    return len(s) == 64 and all(c in "0123456789abcdef" for c in s)


def _check_raw(raw: Any, bad: Any) -> None:
    if raw is None:
        return
    if not isinstance(raw, dict):
        raise bad("raw_samples", f"a {type(raw).__name__}, expected an object")
    path = raw.get("path")
    if path is not None and (not isinstance(path, str) or Path(path).name != path or path in ("", ".", "..")):
        # a bare file name beside the report: a path would let a report point the loader anywhere
        raise bad("raw_samples.path", f"{path!r}, expected a file name beside the report")
    sha = raw.get("sha256")
    if sha is not None and not (isinstance(sha, str) and _is_sha256(sha)):
        raise bad("raw_samples.sha256", f"{sha!r}, expected 64 hex digits")
    shape = raw.get("shape")
    if shape is not None and not (isinstance(shape, list) and len(shape) == 2 and all(
            isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in shape)):
        raise bad("raw_samples.shape", f"{shape!r}, expected [sessions, iterations]")


def validate_report(d: Any, where: str = "report") -> None:
    """Structure (exit 2 when the document is not a profile report at all) then values (exit 4,
    :class:`ReportInvalid`, when a document that claims the schema carries unusable figures)."""
    def bad(what: str) -> ProfileError:
        return ProfileError(f"{where}: not a valid {SCHEMA} report: {what}",
                            hint="pass a report written by `edgekd profile` (schema edgekd.profile/1)")

    def invalid(what: str) -> ReportInvalid:
        return ReportInvalid(f"{where}: INVALID report: {what}",
                             hint="re-run `edgekd profile`; a report must not be edited by hand")

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
        raise invalid(f"missing key(s) {missing}")
    if not isinstance(d["valid"], bool):
        raise invalid(f"'valid' is {d['valid']!r}, expected true/false")
    if not isinstance(d["invalid_reasons"], list):
        raise invalid("'invalid_reasons' must be a list")
    for k in ("device", "runtime", "results"):
        if not isinstance(d[k], dict):
            raise invalid(f"{k!r} must be an object")
    res = d["results"]
    missing = [k for k in RESULT_KEYS if k not in res]
    if missing:
        raise invalid(f"results is missing {missing}")
    lat = res["latency_ms"]
    if not isinstance(lat, dict):
        raise invalid("results.latency_ms must be an object")
    missing = [k for k in LATENCY_KEYS if k not in lat]
    if missing:
        raise invalid(f"results.latency_ms is missing {missing}")
    _check_values(d, where)


def _fmt(v: Any, nd: int = 3) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def _energy_line(d: dict[str, Any]) -> str:
    """The markdown's energy sentence: the figure with its source, or why there is none."""
    e = d.get("energy")
    if not e:
        return f"Energy: not measured ({d.get('energy_unavailable') or 'no power source'})."
    return (f"Energy: {_fmt(e['mj_per_inference'], 4)} mJ/inference (mean {_fmt(e['mean_power_mw'], 0)} mW on "
            f"{e['rail']}, {e['source']}, {e['samples']} samples over {_fmt(e.get('window_s'), 2)} s of timed "
            "sessions; the rail's whole power, idle included).")


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
    lines += [_energy_line(d), ""]
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
    lines += _throughput_markdown(d.get("throughput"))
    for name in (d.get("plots") or {}).values():
        lines.append(f"![{name}]({name})")
    return "\n".join(lines) + "\n"


def _throughput_markdown(tp: dict[str, Any] | None) -> list[str]:
    """The ``--mode throughput`` sweep as a table, with every setting that changes its speed."""
    if not tp:
        return []
    cfg, rs = tp.get("config", {}), tp.get("runtime_settings", {})
    settings = ", ".join(f"{k} {v}" for k, v in rs.items())
    lines = ["## Throughput (batch x streams sweep)", "",
             f"{tp.get('runtime')}: {cfg.get('duration_s')} s per point after {cfg.get('warmup_s')} s warm-up, "
             f"{cfg.get('threads_per_stream')} thread(s) per stream; runtime settings: {settings or 'n/a'}.", "",
             "| batch | streams | threads/stream | items/s | p50 ms | p90 ms | p99 ms | |", "|---|---|---|---|---|---|---|---|"]
    best = tp.get("best") or {}
    for p in tp.get("points", []):
        if p.get("items_per_s") is None:
            lines.append(f"| {p['batch']} | {p['streams']} | {p['threads_per_stream']} | skipped: {p.get('skipped')} "
                         "| | | | |")
            continue
        mark = "best" if (p["batch"], p["streams"]) == (best.get("batch"), best.get("streams")) else ""
        lat = p["latency_ms"]
        lines.append(f"| {p['batch']} | {p['streams']} | {p['threads_per_stream']} | {_fmt(p['items_per_s'], 1)} "
                     f"| {_fmt(lat['p50'])} | {_fmt(lat['p90'])} | {_fmt(lat['p99'])} | {mark} |")
    lines += ["", "Latency per call (one batch) while every stream runs; items/s over all streams.", ""]
    return lines
