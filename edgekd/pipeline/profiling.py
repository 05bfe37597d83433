"""Stage 4, profile: interleaved sessions of the torch student (eager FP32), the teacher, and every
exported artifact on its own runtime, on this machine. Each report is saved under ``profile/``; the
run's report keeps a summary per artifact."""

from __future__ import annotations

from typing import Any

from edgekd.pipeline.context import RunContext
from edgekd.pipeline.evaluate import param_count
from edgekd.pipeline.train import TrainedModels


def profile_variants(ctx: RunContext, trained: TrainedModels) -> dict[str, dict[str, Any]]:
    from edgekd.profile.protocol import MeasureConfig, ProfileTarget, profile_artifacts
    from edgekd.runtime import SessionOptions

    p = ctx.recipe.profile
    threads = p.threads or ctx.device.default_threads
    feeds = ctx.spec.dummy_inputs({"batch": p.batch}, seed=ctx.recipe.seed)
    opts = SessionOptions(threads=threads)
    student, teacher = trained.student, trained.teacher
    # labelled by role: the student and teacher are often the same class (both print as GazeNet)
    targets: list[tuple[str, Any]] = [("torch_fp32", ProfileTarget.from_module(
        student, ctx.spec, opts, feeds, label=f"student ({type(student).__name__}, torch eager)"))]
    from edgekd.distill.teachers import OnnxTeacher

    if isinstance(teacher, OnnxTeacher):  # an ONNX teacher runs in ONNX Runtime, fed by position
        t_feeds = dict(zip(teacher.input_names, [feeds[n] for n in ctx.spec.input_names], strict=True))
        targets.append(("teacher_onnx_fp32", ProfileTarget(teacher.path, "onnxruntime", opts, t_feeds,
                                                           label=f"teacher ({teacher.path.name}, onnxruntime)")))
    elif param_count(teacher):
        targets.append(("teacher_torch_fp32", ProfileTarget.from_module(
            teacher, ctx.spec, opts, feeds, label=f"teacher ({type(teacher).__name__}, torch eager)")))
    for art in ctx.artifacts.runtime_artifacts():
        path = art.path(ctx.out_dir)
        if path.exists() and art.variant:
            targets.append((art.variant, ProfileTarget(path, art.runtime, opts, feeds)))
    cfg = MeasureConfig(warmup_s=p.warmup_s, warmup_iters=p.warmup_iters, sessions=p.sessions,
                        iterations=p.iterations, min_duration_s=p.min_duration_s)
    with ctx.rec.stage("profile") as r:
        reports = profile_artifacts([t for _, t in targets], cfg, interleave=True, progress=ctx.progress)
        out: dict[str, dict[str, Any]] = {}
        for (name, _), rep in zip(targets, reports, strict=True):
            rep.save(ctx.out_dir / "profile" / f"{name}.json")
            out[name] = _summary(rep.to_json(), name, threads)
        r["artifacts"] = list(out)
    return out


def _summary(d: dict[str, Any], name: str, threads: int | None) -> dict[str, Any]:
    """What report.json keeps of one profile: latency, memory, validity, the threads asked for and used,
    and whether other processes competed for the CPUs while it ran."""
    res = d["results"]
    cont = (d.get("sensors") or {}).get("cpu_contention") or {}
    return {"latency_ms": res["latency_ms"], "session_medians_ms": res["session_medians_ms"],
            "peak_rss_mb": res.get("peak_rss_mb"), "valid": d["valid"],
            "invalid_reasons": d.get("invalid_reasons", []), "runtime": d["runtime"].get("name"),
            "threads": threads, "threads_used": threads_used(d["runtime"]),
            "contended": bool(res.get("contended", False)),
            **({"cpu_contention": cont} if cont else {}), "report": f"profile/{name}.json"}


def threads_used(runtime: dict[str, Any]) -> int | None:
    """The intra-op thread count the session ran with. A runtime left at its default reports
    "default (0)": ONNX Runtime then uses one thread per physical core, OpenVINO its reported count."""
    t = runtime.get("threads")
    if isinstance(t, int) and t > 0:
        return t
    import re

    m = re.search(r"\((\d+)\)", str(t))
    if m and int(m.group(1)) > 0:
        return int(m.group(1))
    if runtime.get("name") == "onnxruntime":
        return physical_cores()
    return None


def physical_cores() -> int:
    """Distinct (package, core) pairs of the CPUs this process may use (Linux); else the usable CPUs."""
    from edgekd.profile.sensors import usable_cpus

    try:
        text = open("/proc/cpuinfo", encoding="utf-8").read()
    except OSError:
        return usable_cpus()
    cores, pkg, core = set(), "0", None
    for line in text.splitlines() + [""]:
        key, _, val = line.partition(":")
        key = key.strip()
        if key == "physical id":
            pkg = val.strip()
        elif key == "core id":
            core = val.strip()
        elif not line.strip() and core is not None:
            cores.add((pkg, core))
            core = None
    return min(len(cores), usable_cpus()) if cores else usable_cpus()
