"""`edgekd estimate ARTIFACT --device D`: predicted latency interval on a device not at hand;
`edgekd calibrate REPORTS... --out FILE`: fit a device's characteristics to real profile reports."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer


def register(app: typer.Typer) -> None:
    app.command("estimate")(estimate_cmd)
    app.command("calibrate")(calibrate_cmd)


def estimate_cmd(
    artifact: Annotated[Path, typer.Argument(help="ONNX model")],
    device: Annotated[str | None, typer.Option("--device", "-d", help="device profile whose characteristics "
                                               "to use (devices/*.yaml or a path)")] = None,
    calibration: Annotated[Path | None, typer.Option("--calibration", "-c", help="calibration JSON from "
                                                     "`edgekd calibrate` (replaces the device's datasheet "
                                                     "characteristics)")] = None,
    inputs: Annotated[list[str] | None, typer.Option("--input", "-i", help="NAME=1x3x48x192; needed for "
                                                     "dynamic dims (repeatable)")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="write the estimate as JSON")] = None,
) -> None:
    """Predict latency from per-operator work (FLOPs, bytes moved) and the device's characteristics:
    max(flops/peak, bytes/bandwidth) + per-op overhead, summed over kernels; an interval, not a point.

    Exit codes: 0 done, 2 bad input (missing file, not an ONNX model, shape that does not fit, unknown
    device, bad calibration file)."""
    from edgekd.cli import _checks as c
    from edgekd.cli._common import console
    from edgekd.iospec import parse_input_shapes
    from edgekd.profile.estimate import estimate

    c.in_file("ARTIFACT", artifact, what="model file")
    c.in_file("--calibration", calibration, what="calibration JSON file")
    if out is not None:
        c.out_file("--out", out, inputs=[artifact, calibration])
    shapes = parse_input_shapes(list(inputs or ()))
    machine, dev_name = _machine(device, calibration)
    est = estimate(artifact, machine, shapes, device=dev_name)
    d = est.to_json()
    lat, w = d["latency_ms"], d["work"]
    p = console.print
    p(f"{artifact.name} on {dev_name or 'calibrated device'} ({machine.source}): "
      f"{lat['estimate']:.3f} ms, interval [{lat['low']:.3f}, {lat['high']:.3f}] ms", highlight=False,
      markup=False)
    gf = ", ".join(f"{k} {v:.3f} GFLOP" for k, v in w["gflops_by_precision"].items())
    p(f"  {w['kernels']} kernels ({w['folded_nodes']} nodes folded, {w['fused_nodes']} fused), {gf}, "
      f"{w['mbytes_moved']:.1f} MB moved; {w['compute_bound_kernels']} compute-bound, "
      f"{w['memory_bound_kernels']} memory-bound", highlight=False, markup=False)
    for note in est.notes:
        p(f"  note: {note}", highlight=False, markup=False)
    if out is not None:
        from edgekd.fileio import write_json

        write_json(out, d)
        p(f"wrote {out}", highlight=False, markup=False)


def _machine(device: str | None, calibration: Path | None) -> tuple[Any, str | None]:
    """The machine model: the device's datasheet characteristics, replaced by a calibration when given."""
    from edgekd.errors import ConfigError
    from edgekd.profile.estimate import Machine

    dev_name, machine = None, None
    if device is not None:
        from edgekd.config.device import load_device

        dev = load_device(device)
        dev_name = dev.name
        machine = Machine.from_characteristics(dev.characteristics)
    if calibration is not None:
        from edgekd.profile.calibrate import load_calibration

        machine, doc = load_calibration(calibration)
        if dev_name and doc.get("device") and doc["device"] != dev_name:
            raise ConfigError(f"--calibration {str(calibration)!r} was fitted for device {doc['device']!r}, "
                              f"not --device {dev_name!r}", hint="pass the matching --device, or drop --device")
        dev_name = dev_name or doc.get("device")
    if machine is None:
        raise ConfigError("estimate: neither --device nor --calibration was given",
                          hint="pass --device NAME (see `edgekd devices`) and/or --calibration FILE")
    return machine, dev_name


def calibrate_cmd(
    reports: Annotated[list[Path], typer.Argument(help="profile reports (JSON from `edgekd profile`) of ONNX "
                                                  "models, all on one device with one runtime setting")],
    out: Annotated[Path, typer.Option("--out", "-o", help="calibration JSON to write")],
    device: Annotated[str | None, typer.Option("--device", "-d", help="device profile: its datasheet "
                                               "characteristics are the prior, its name is recorded")] = None,
    artifact_dir: Annotated[Path | None, typer.Option("--artifact-dir", help="folder holding the profiled "
                                                      ".onnx files, if they moved")] = None,
    allow_invalid: Annotated[bool, typer.Option("--allow-invalid", help="use reports marked invalid")] = False,
) -> None:
    """Fit peak compute per precision, bandwidth and per-op overhead to measured medians (log least
    squares, weak prior on the device's datasheet figures); the estimate's interval is the spread of
    leave-one-out errors. Writes a JSON data file atomically.

    Exit codes: 0 done, 2 bad input (missing or malformed report, artifact not found or changed, invalid
    runs without --allow-invalid, mixed runtime settings)."""
    from edgekd.cli import _checks as c
    from edgekd.cli._common import console
    from edgekd.config.device import Characteristics
    from edgekd.profile.calibrate import calibrate_samples, samples_from_reports, save_calibration
    from edgekd.profile.estimate import Machine

    c.out_file("--out", out, inputs=list(reports))
    dev_name = None
    if device is not None:
        from edgekd.config.device import load_device

        dev = load_device(device)
        dev_name = dev.name
        prior = Machine.from_characteristics(dev.characteristics)
    else:
        prior = Machine.from_characteristics(Characteristics(peak_gflops={"fp32": 100.0, "int8": 400.0},
                                                             bandwidth_gbs=20.0, op_overhead_us=5.0,
                                                             source="generic CPU prior"))
    samples, runtime, cpu = samples_from_reports(reports, artifact_dir=artifact_dir, allow_invalid=allow_invalid)
    cal = calibrate_samples(samples, prior, device=dev_name, runtime=runtime, cpu=cpu, source=str(out))
    save_calibration(cal, out)
    m = cal.machine
    p = console.print
    p(f"calibrated on {len(samples)} report(s) ({runtime.get('name')} threads={runtime.get('threads')}): "
      + ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in m.peak_gflops.items())
      + f", bandwidth {m.bandwidth_gbs:.1f} GB/s, overhead {m.op_overhead_us:.2f} us/op; "
      f"fit RMS error {cal.rms_log_error:.1%} (log), band [{m.band[0]:.2f}x, {m.band[1]:.2f}x]",
      highlight=False, markup=False)
    for pt in cal.points:
        loo = pt["loo_predicted_ms"]
        p(f"  {pt['label']}: measured {pt['measured_ms']:.4f} ms, fitted {pt['predicted_ms']:.4f} ms"
          + (f", held out {loo:.4f} ms" if loo is not None else ""), highlight=False, markup=False)
    if len(samples) < 8:
        # 4+ parameters from a handful of latencies: the fit can trade peak for bandwidth freely.
        p(f"note: {len(samples)} report(s) determine the parameters poorly; calibrate on 8 or more models of "
          "varied shapes (compute- and memory-bound, big and small) for a tighter band", highlight=False,
          markup=False)
    p(f"wrote {out}", highlight=False, markup=False)
