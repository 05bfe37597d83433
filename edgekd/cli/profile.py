"""`edgekd profile ARTIFACT`: trustworthy latency of a model file, here or on boards over SSH."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

PRECISIONS = ("fp32", "fp16", "bf16", "int8")


def register(app: typer.Typer) -> None:
    @app.command("profile")
    def profile(
        artifact: Annotated[Path, typer.Argument(help="model file: .onnx, OpenVINO .xml, TensorRT .engine/.plan, "
                                                   "LiteRT .tflite")],
        runtime: Annotated[str | None, typer.Option("--runtime", "-r", help="onnxruntime | openvino | tensorrt | "
                                                    "litert | torch [default: from the suffix]")] = None,
        device: Annotated[str | None, typer.Option("--device", "-d", help="device profile: checks the runtime "
                                                   "and precision, gives the default threads")] = None,
        precision: Annotated[str, typer.Option("--precision", "-p", help="fp32 | fp16 | bf16 | int8 (inference "
                                               "precision hint)")] = "fp32",
        threads: Annotated[int | None, typer.Option("--threads", "-t", help="intra-op threads [default: the "
                                                    "device's, else the runtime's]")] = None,
        inputs: Annotated[list[str] | None, typer.Option("--input", "-i", help="NAME=1x3x48x192 (a shape, "
                                                         "needed for dynamic dims), NAME=16000 (a scalar value "
                                                         "for a rank-0 or [1] input) or NAME=1,2,3 (a 1-D "
                                                         "value) (repeatable)")] = None,
        feed_files: Annotated[list[str] | None, typer.Option("--feed", help="NAME=FILE.npy: an input's array "
                                                             "from a file; dtype and shape must fit the model "
                                                             "(repeatable)")] = None,
        mode: Annotated[str, typer.Option("--mode", help="latency | throughput: throughput runs the latency "
                                          "measurement, then a --batch x --streams sweep")] = "latency",
        batches: Annotated[list[int] | None, typer.Option("--batch", help="throughput mode: batch sizes "
                                                          "(repeatable) [default: 1 2 4 8]")] = None,
        streams: Annotated[list[int] | None, typer.Option("--streams", help="throughput mode: concurrent "
                                                          "streams (repeatable) [default: 1 2]")] = None,
        duration_s: Annotated[float | None, typer.Option("--duration-s", help="throughput mode: timed seconds "
                                                         "per point [default: 2]")] = None,
        sessions: Annotated[int, typer.Option("--sessions", help="measurement sessions")] = 5,
        iterations: Annotated[int, typer.Option("--iterations", help="iterations per session (raised to "
                                                "reach --min-duration)")] = 100,
        warmup_s: Annotated[float, typer.Option("--warmup-s", help="warm-up seconds (and --warmup-iters)")] = 0.5,
        warmup_iters: Annotated[int, typer.Option("--warmup-iters")] = 10,
        min_duration_s: Annotated[float, typer.Option("--min-duration-s", help="minimum timed seconds")] = 1.0,
        provider: Annotated[str | None, typer.Option("--provider", help="ONNX Runtime execution provider")] = None,
        layers: Annotated[bool, typer.Option("--layers", help="per-layer breakdown (a separate run)")] = False,
        plots: Annotated[bool, typer.Option("--plots", help="PNG plots beside the report")] = False,
        markdown: Annotated[bool, typer.Option("--markdown/--no-markdown", help="write REPORT.md")] = True,
        out: Annotated[Path | None, typer.Option("--out", "-o", help="report JSON [default: "
                                                 "ARTIFACT-STEM.profile.json]")] = None,
        hosts: Annotated[list[str] | None, typer.Option("--host", help="user@board[:port]: profile there over "
                                                        "SSH (repeatable: a fleet, concurrently)")] = None,
        known_hosts: Annotated[Path | None, typer.Option("--known-hosts", help="known_hosts file [default: "
                                                         "~/.ssh/known_hosts]")] = None,
        identity: Annotated[Path | None, typer.Option("--identity", help="SSH private key file")] = None,
        remote_edgekd: Annotated[str, typer.Option("--remote-edgekd", help="edgekd command on the board")] = "edgekd",
        fail_invalid: Annotated[bool, typer.Option("--fail-invalid", help="exit 4 when the run is invalid "
                                                   "(throttling, clock drift, too few samples), 3 when it was "
                                                   "contended (more runnable threads than CPUs)")] = False,
        no_progress: Annotated[bool, typer.Option("--no-progress")] = False,
    ) -> None:
        """Measure latency: load and first inference apart, warm-up, interleavable sessions; p50..p99, a 99%
        upper bound on p90, session medians; device fingerprint and sensors; raw samples with SHA-256.

        Exit codes: 0 done, 2 bad input or environment (missing file, not a model, runtime missing, shape that
        does not fit, unreachable host, unknown host key), 4 invalid run with --fail-invalid, 3 a valid run on a
        contended machine with --fail-invalid. A dynamic batch dim without --input is profiled at batch 1.

        --mode throughput records the latency figures as always, then sweeps --batch x --streams (one session
        per stream, --threads threads each, default 1) for --duration-s each; the report gets a `throughput`
        section and table. onnxruntime and openvino only, and not with --host.

        Inputs not given by --input/--feed are random: floats in [0, 1), integers in [0, rows) where the input
        indexes a Gather, else in [0, 10); a rank-0 input stays rank 0."""
        from edgekd.cli._common import install_run_loader
        from edgekd.profile.local import LocalProfileRequest

        out_path = out or Path(f"{artifact.stem}.profile.json")
        _check_flags(artifact, out_path, precision=precision, threads=threads, sessions=sessions,
                     iterations=iterations, warmup_s=warmup_s, warmup_iters=warmup_iters,
                     min_duration_s=min_duration_s, identity=identity)
        _check_throughput(mode, batches, streams, duration_s, hosts, feed_files)
        install_run_loader(artifact)
        req = LocalProfileRequest(artifact=artifact, runtime=runtime, device=device, precision=precision,
                                  threads=threads, inputs=tuple(inputs or ()), sessions=sessions,
                                  iterations=iterations, warmup_s=warmup_s, warmup_iters=warmup_iters,
                                  min_duration_s=min_duration_s, layers=layers, provider=provider, mode=mode,
                                  batches=tuple(batches or (1, 2, 4, 8)), streams=tuple(streams or (1, 2)),
                                  duration_s=2.0 if duration_s is None else duration_s,
                                  feeds=tuple(feed_files or ()))
        if hosts:
            from edgekd.profile.remote import RemoteOptions

            reps = _profile_remote(hosts, req, out_path, RemoteOptions(
                known_hosts=known_hosts, identity=identity, edgekd=remote_edgekd, plots=plots, markdown=markdown))
        else:
            reps = [_profile_local(req, out_path, progress=not no_progress, markdown=markdown, plots=plots)]
        if fail_invalid:
            _fail_invalid(reps)


def _profile_remote(hosts: list[str], req: Any, out_path: Path, options: Any) -> list[Any]:
    """Profile on each board over SSH (concurrently), print each summary; the reports in host order."""
    from edgekd.cli._common import console
    from edgekd.profile.remote import profile_hosts

    reps = []
    for host, rep, path in profile_hosts(hosts, req, out_path, options):
        _summary(console, rep, f"{host}: {path}")
        reps.append(rep)
    return reps


def _profile_local(req: Any, out_path: Path, *, progress: bool, markdown: bool, plots: bool) -> Any:
    """Profile here, save the report (JSON, markdown, plots) and print the summary and throughput table."""
    from edgekd.cli._common import console, err_console
    from edgekd.profile.local import profile_file

    notes: list[str] = []
    rep = profile_file(req, progress=progress, notes=notes)
    for note in notes:
        err_console.print(f"note: {note}", highlight=False, markup=False)
    rep.save(out_path, markdown=markdown, plots=plots)
    _summary(console, rep, str(out_path))
    _throughput_summary(console, rep)
    return rep


def _check_flags(artifact: Path, out: Path, *, precision: str, threads: int | None, sessions: int, iterations: int,
                 warmup_s: float, warmup_iters: int, min_duration_s: float, identity: Path | None) -> None:
    """Every flag checked before a model is loaded; each error names the flag."""
    from edgekd.cli import _checks as c

    c.one_of("--precision", precision, PRECISIONS)
    c.at_least("--threads", threads, 1, example="1")
    c.at_least("--sessions", sessions, 1, example="5")
    c.at_least("--iterations", iterations, 1, example="100")
    c.at_least("--warmup-iters", warmup_iters, 0, example="10")
    c.finite("--warmup-s", warmup_s, minimum=0, example="0.5")
    c.finite("--min-duration-s", min_duration_s, minimum=0, example="1")
    c.in_file("--identity", identity, what="private key file")
    c.out_file("--out", out, inputs=[artifact])


def _check_throughput(mode: str, batches: list[int] | None, streams: list[int] | None, duration_s: float | None,
                      hosts: list[str] | None, feed_files: list[str] | None) -> None:
    """The throughput flags: each error names the flag, the value and the fix; sweep flags without
    --mode throughput are refused rather than silently ignored."""
    from edgekd.cli import _checks as c
    from edgekd.errors import ConfigError
    from edgekd.profile.local import MODES

    c.one_of("--mode", mode, MODES)
    for b in batches or ():
        c.at_least("--batch", b, 1, example="4")
    for s in streams or ():
        c.at_least("--streams", s, 1, example="2")
    c.finite("--duration-s", duration_s, above=0, example="2")
    if mode != "throughput":
        given = [f for f, v in (("--batch", batches), ("--streams", streams), ("--duration-s", duration_s))
                 if v is not None and v != []]
        if given:
            raise ConfigError(f"{given[0]} applies to --mode throughput only", hint="add --mode throughput")
    if mode == "throughput" and hosts:
        raise ConfigError("--mode throughput with --host: the sweep runs on this machine only",
                          hint="profile on the board with `edgekd profile --mode throughput` there, or drop --host")
    if feed_files and hosts:
        raise ConfigError("--feed with --host: the .npy files are on this machine, not on the board",
                          hint="copy them to the board and profile there, or give scalar values with --input")


def _throughput_summary(console: object, rep: object) -> None:
    """The sweep table, printed after the latency summary."""
    tp = rep.data.get("throughput")  # type: ignore[attr-defined]
    if not tp:
        return
    from edgekd.profile.throughput import ThroughputPoint, ThroughputResult, format_table

    res = ThroughputResult(tp["artifact"], tp["runtime"], tp["runtime_settings"], tp["config"],
                           [ThroughputPoint(**p) for p in tp["points"]])
    print_ = console.print  # type: ignore[attr-defined]
    print_(f"throughput ({tp['runtime']}, {tp['config']['duration_s']} s per point):", highlight=False, markup=False)
    for line in format_table(res):
        print_(line, highlight=False, markup=False)


def _fail_invalid(reps: list[object]) -> None:
    """--fail-invalid: exit 4 for an invalid run, 3 for a valid but contended one (its latencies are inflated
    by other work on the machine: inconclusive, not a measurement of the model)."""
    from edgekd.errors import GateInconclusive
    from edgekd.profile.report import InvalidRunError

    if any(not r.valid for r in reps):  # type: ignore[attr-defined]
        raise InvalidRunError("--fail-invalid: the run is invalid (see the reasons above)",
                              hint="fix the cause (cooling, power, clocks) and profile again")
    if any(r.data["results"].get("contended") for r in reps):  # type: ignore[attr-defined]
        raise GateInconclusive("--fail-invalid: the run was contended (more runnable threads than CPUs): its "
                               "latencies include waiting for a CPU", hint="stop other jobs and profile again")


def _summary(console: object, rep: object, where: str) -> None:
    lat = rep.latency_ms  # type: ignore[attr-defined]
    res = rep.data["results"]  # type: ignore[attr-defined]
    ucb = lat["p90_ucb99"]
    line = (f"p50 {lat['p50']:.4f} ms  p90 {lat['p90']:.4f} ms  p90<= {ucb:.4f} ms (99%)  "
            if ucb is not None else f"p50 {lat['p50']:.4f} ms  p90 {lat['p90']:.4f} ms  ")
    line += f"load {res['load_ms']:.1f} ms  first {res['first_inference_ms']:.3f} ms  peak RSS {res['peak_rss_mb']:.0f} MB"
    print_ = console.print  # type: ignore[attr-defined]
    print_(line, highlight=False, markup=False)
    if res.get("noisy"):
        print_(f"noisy: session medians vary by {res['session_cv']:.1%}", highlight=False, markup=False)
    energy, why = rep.data.get("energy"), rep.data.get("energy_unavailable")  # type: ignore[attr-defined]
    if energy:
        print_(f"energy {energy['mj_per_inference']:.4g} mJ/inference (mean {energy['mean_power_mw']:.0f} mW on "
               f"{energy['rail']}, {energy['source']})", highlight=False, markup=False)
    elif why and not str(why).startswith("no power source"):  # a source was there and could not give a figure
        print_(f"energy not measured: {why}", highlight=False, markup=False)
    cont = (rep.data.get("sensors") or {}).get("cpu_contention") or {}  # type: ignore[attr-defined]
    if res.get("contended") and cont:
        print_(f"contended: {cont['runnable_threads_mean']:.1f} runnable threads on average for {cont['cpus']} "
               "CPU(s) during the run", highlight=False, markup=False)
    if not rep.valid:  # type: ignore[attr-defined]
        print_("INVALID run: " + "; ".join(rep.invalid_reasons), highlight=False, markup=False)  # type: ignore[attr-defined]
    elif res.get("contended"):
        # Never a silent VALID: other work shared the CPUs, so the latencies are an upper bound at best.
        print_("VALID but CONTENDED: latencies include waiting for a CPU; profile again on an idle machine "
               "(--fail-invalid exits 3 on this)", highlight=False, markup=False)
    else:
        print_("VALID run", highlight=False, markup=False)
    print_(f"wrote {where}", highlight=False, markup=False)
