"""Personalised phase of DFT Gaze: adapt a gaze student to one wearer from a handful of images.

GazeGen (arXiv:2411.04335), DFT Gaze: after the generalised phase, only the bottleneck adapters
``x + up(LeakyReLU(BN(down(x))))`` of the LAST stage are trained, on 5 labelled images of the new
wearer; the backbone, the other adapters and the head stay frozen. What this removes on our
synthetic eyes is mostly the wearer's angle kappa (visual minus optical axis, ~5 deg horizontal,
~1.5 deg vertical, varying per wearer): an image shows only the optical axis, so no generalised
model can know a new wearer's kappa; a few labelled images reveal it.

Objective on the support set S (|S| ~ 5), with theta the last-stage adapter parameters and
theta_0 their generalised values (an L2-SP anchor, Li et al., ICML 2018, so 5 images cannot
drag the adapters far):

    L(theta) = mean_{(x, g) in S} smooth_l1((f_theta(aug(x)) - g) / 10 deg)  +  anchor * ||theta - theta_0||^2

``aug`` is a light photometric jitter (gain, noise) because 5 images are few. BatchNorm layers
stay in eval mode: their running statistics come from thousands of images and must not be
replaced by the statistics of 5.
"""

from __future__ import annotations

import copy
import csv
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field

from edgekd.config.recipe import Strict
from edgekd.errors import ConfigError
from edgekd.tasks.gaze.models import GazeNet, adapter_parameters

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
LABEL_COLUMNS = ("file", "yaw_deg", "pitch_deg")


class PersonalizeConfig(Strict):
    steps: int = Field(200, ge=1, description="optimiser steps on the (full-batch) support set")
    lr: float = Field(3e-3, gt=0, description="Adam learning rate of the adapters")
    stages: tuple[int, ...] = Field((3,), description="stages whose adapters train (DFT Gaze: the last)")
    anchor: float = Field(1e-2, ge=0, description="L2-SP weight pulling the adapters to their generalised values")
    jitter: float = Field(1.0, ge=0, description="scale of the photometric augmentation (0 = none)")
    seed: int = 0


@dataclass
class PersonalizeResult:
    model: GazeNet  # a personalised copy (the input model is untouched), eval mode
    history: list[float] = field(default_factory=list)  # support loss every 10 steps
    support_error_before_deg: float = 0.0
    support_error_after_deg: float = 0.0
    trained_parameters: int = 0


def _angular(pred: torch.Tensor, true: torch.Tensor) -> float:
    from edgekd.tasks.gaze.metric import mean_angular_error_deg

    return mean_angular_error_deg(pred.detach().double().numpy(), true.detach().double().numpy())


def personalize(model: GazeNet, images: torch.Tensor, gaze: torch.Tensor,
                cfg: PersonalizeConfig | None = None) -> PersonalizeResult:
    """Train only the adapters of ``cfg.stages`` of a copy of ``model`` on (images [N,1,H,W] in [0,1],
    gaze [N,2] visual-axis yaw/pitch degrees); see the module docstring for the objective."""
    cfg = cfg or PersonalizeConfig()
    if images.ndim != 4 or gaze.ndim != 2 or gaze.shape[1] != 2 or images.shape[0] != gaze.shape[0]:
        raise ConfigError(f"personalize: images {tuple(images.shape)} and gaze {tuple(gaze.shape)} do not fit; "
                          "expected images [N, C, H, W] and gaze [N, 2] with the same N")
    if images.shape[0] < 1:
        raise ConfigError("personalize: no support images", hint="give about 5 labelled images of the wearer")
    n_stages = len(model.stages)
    bad = [s for s in cfg.stages if not 0 <= s < n_stages]
    if bad:
        raise ConfigError(f"personalize: stages={list(cfg.stages)} includes {bad}; the model has stages "
                          f"0..{n_stages - 1}", hint=f"use stages: [{n_stages - 1}] (the last, as DFT Gaze does)")
    net = copy.deepcopy(model).eval()
    params = adapter_parameters(net, cfg.stages)
    if not params:
        raise ConfigError("personalize: the model has no adapters in stages "
                          f"{list(cfg.stages)} (it was built with model.adapters: false)",
                          hint="personalise a student trained with task.model.adapters: true")
    for p in net.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    init = [p.detach().clone() for p in params]
    x = images.float()
    g = gaze.float()
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.Adam(params, lr=cfg.lr)
    with torch.no_grad():
        before = _angular(net(x), g)
    res = PersonalizeResult(model=net, support_error_before_deg=before,
                            trained_parameters=sum(p.numel() for p in params))
    for step in range(cfg.steps):
        xa = x
        if cfg.jitter > 0:  # gain in [0.9, 1.1] and sensor noise: 5 images are easy to memorise
            gain = 1 + 0.1 * cfg.jitter * (2 * torch.rand(len(x), 1, 1, 1, generator=gen) - 1)
            xa = (x * gain + 0.01 * cfg.jitter * torch.randn(x.shape, generator=gen)).clamp(0, 1)
        loss = F.smooth_l1_loss(net(xa) / 10.0, g / 10.0, beta=0.1)
        if cfg.anchor > 0:
            loss = loss + cfg.anchor * sum(((p - p0) ** 2).sum() for p, p0 in zip(params, init, strict=True))
        for grp in opt.param_groups:  # cosine decay: the last steps refine rather than jump
            grp["lr"] = cfg.lr * 0.5 * (1 + math.cos(math.pi * step / cfg.steps))
        opt.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[union-attr]
        opt.step()
        if step % 10 == 0 or step == cfg.steps - 1:
            res.history.append(float(loss.detach()))  # type: ignore[union-attr]
    for p in net.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        res.support_error_after_deg = _angular(net(x), g)
    return res


# ----------------------------------------------------------------------------- a folder of images + labels

def read_labels(labels_file: Path) -> dict[str, tuple[float, float]]:
    """CSV with header ``file,yaw_deg,pitch_deg`` (edgekd's gaze convention, degrees)."""
    if not labels_file.is_file():
        raise ConfigError(f"--labels {str(labels_file)!r} does not exist or is not a file",
                          hint="give a CSV with the header file,yaw_deg,pitch_deg")
    try:
        text = labels_file.read_text(encoding="utf-8-sig")  # spreadsheet exports often start with a BOM
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--labels {str(labels_file)!r}: not a readable UTF-8 text file ({exc})") from None
    rows = list(csv.reader(line for line in text.splitlines() if line.strip()))
    if not rows or [c.strip() for c in rows[0]] != list(LABEL_COLUMNS):
        got = ",".join(rows[0]) if rows else "(empty file)"
        raise ConfigError(f"--labels {str(labels_file)!r}: header is {got!r}; expected 'file,yaw_deg,pitch_deg'",
                          hint="one row per image: its file name, then yaw and pitch of the visual axis in "
                          "degrees (edgekd convention: +yaw towards the image's left, +pitch up)")
    out: dict[str, tuple[float, float]] = {}
    problems = []
    for i, row in enumerate(rows[1:], start=2):
        if len(row) != 3:
            problems.append(f"line {i}: {len(row)} fields, expected 3 (file,yaw_deg,pitch_deg)")
            continue
        name = row[0].strip()
        try:
            yaw, pitch = float(row[1]), float(row[2])
        except ValueError:
            problems.append(f"line {i}: yaw/pitch {row[1]!r}, {row[2]!r} are not numbers")
            continue
        if not (math.isfinite(yaw) and math.isfinite(pitch)) or abs(yaw) > 90 or abs(pitch) > 90:
            problems.append(f"line {i}: yaw={yaw}, pitch={pitch} deg; both must be finite and within +-90 deg")
            continue
        if name in out:
            problems.append(f"line {i}: {name!r} is labelled twice")
            continue
        out[name] = (yaw, pitch)
    if problems:
        raise ConfigError(f"--labels {str(labels_file)!r} has {len(problems)} bad line(s)", problems)
    if not out:
        raise ConfigError(f"--labels {str(labels_file)!r} has a header but no rows",
                          hint="add one row per image: file,yaw_deg,pitch_deg")
    return out


def load_support_folder(images_dir: Path, labels_file: Path, size: tuple[int, int] | None = None
                        ) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """(images [N,1,H,W] uint8 grayscale, gaze [N,2] float32 deg, file names, notes). Every labelled
    file must exist and every image must be labelled. ``size`` (H, W) resizes (bilinear) when given."""
    from PIL import Image, UnidentifiedImageError

    if not images_dir.is_dir():
        raise ConfigError(f"--images {str(images_dir)!r} is not a folder",
                          hint="give the folder that holds the wearer's eye images (PNG/JPEG)")
    labels = read_labels(labels_file)
    files = sorted(p.name for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ConfigError(f"--images {str(images_dir)!r} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    missing = sorted(set(labels) - set(files))
    unlabelled = sorted(set(files) - set(labels))
    problems = [f"{n}: labelled in {labels_file.name} but not in the folder" for n in missing]
    problems += [f"{n}: in the folder but has no label row" for n in unlabelled]
    if problems:
        raise ConfigError(f"--images {str(images_dir)!r} and --labels {str(labels_file)!r} do not match", problems,
                          hint="label every image once, or remove the extra files")
    imgs, notes = [], []
    for name in files:
        try:
            with Image.open(images_dir / name) as im:
                g = im.convert("L")
                if size is not None and g.size != (size[1], size[0]):
                    notes.append(f"{name}: resized from {g.size[0]}x{g.size[1]} to {size[1]}x{size[0]}")
                    g = g.resize((size[1], size[0]), Image.Resampling.BILINEAR)
                imgs.append(np.asarray(g, dtype=np.uint8))
        except (UnidentifiedImageError, OSError) as exc:
            raise ConfigError(f"--images: {name} is not a readable image ({exc})") from None
    shapes = {a.shape for a in imgs}
    if len(shapes) != 1:
        raise ConfigError(f"--images {str(images_dir)!r}: images have different sizes {sorted(shapes)}",
                          hint="crop/resize the eye images to one size (the model's input size)")
    gaze = np.asarray([labels[n] for n in files], dtype=np.float32)
    return np.stack(imgs)[:, None], gaze, files, notes


# ----------------------------------------------------------------------------- checkpoints

_STAGE_KEY = re.compile(r"^stages\.(\d+)\.(\d+)\.")


def model_from_state(state: dict[str, torch.Tensor]) -> GazeNet:
    """Rebuild the GazeNet a safetensors state dict was saved from (widths, depths, kernel, stem stride,
    adapters all read off the tensor shapes), with the weights loaded."""
    try:
        stem = state["downsample.0.0.weight"]
        blocks: dict[int, set[int]] = {}
        for k in state:
            m = _STAGE_KEY.match(k)
            if m:
                blocks.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
        n_stages = len(blocks)
        if n_stages == 0 or sorted(blocks) != list(range(n_stages)):
            raise KeyError("stages")
        dims = [int(state[f"stages.{s}.0.dwconv.weight"].shape[0]) for s in range(n_stages)]
        depths = [len(blocks[s]) for s in range(n_stages)]
        kernel = int(state["stages.0.0.dwconv.weight"].shape[-1])
        adapters = "stages.0.0.adapter.down.weight" in state
        red = dims[0] // int(state["stages.0.0.adapter.down.weight"].shape[0]) if adapters else 4
    except (KeyError, IndexError):
        raise ConfigError("CHECKPOINT is not a gaze network (no downsample.0.0.weight / stages.N.M.dwconv.weight "
                          "tensors)", hint="pass an edgekd gaze run folder or a student's .safetensors") from None
    net = GazeNet(dims, depths, kernel_size=kernel, stem_stride=int(stem.shape[-1]), adapters=adapters,
                  adapter_reduction=max(1, red), in_channels=int(stem.shape[1]))
    missing, unexpected = net.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ConfigError(f"CHECKPOINT does not fit the gaze network its shapes describe: {len(missing)} missing "
                          f"(e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]})")
    return net.eval()


def load_checkpoint(path: Path) -> tuple[GazeNet, tuple[int, int] | None, dict[str, Any]]:
    """(student, its input size (H, W) when known, provenance). ``path`` is an edgekd run folder of the
    gaze recipe (manifest.json + student weights) or a .safetensors file of a gaze network."""
    if path.is_dir():
        from edgekd.tasks.run_student import load_run_student

        run = load_run_student(path)
        if getattr(run.recipe.task, "kind", None) != "gaze" or not isinstance(run.module, GazeNet):
            raise ConfigError(f"CHECKPOINT {str(path)!r} is a run of task {getattr(run.recipe.task, 'kind', '?')!r}, "
                              "not gaze", hint="personalise a run of recipes/gaze.yaml")
        return run.module, (run.recipe.task.height, run.recipe.task.width), {"run": str(path),
                                                                              "weights": str(run.weights)}
    if path.suffix != ".safetensors" or not path.is_file():
        raise ConfigError(f"CHECKPOINT {str(path)!r} is neither an edgekd run folder nor a .safetensors file",
                          hint="pass the output folder of `edgekd distill-and-export recipes/gaze.yaml` or its "
                          "student_kd.safetensors")
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise ConfigError(f"CHECKPOINT {str(path)!r}: not a readable safetensors file ({exc})") from None
    return model_from_state(state), None, {"weights": str(path)}


def support_error(model: GazeNet, images: np.ndarray, gaze: np.ndarray) -> float:
    with torch.no_grad():
        return _angular(model(torch.from_numpy(images).float() / 255.0), torch.from_numpy(gaze))


def personalize_folder(checkpoint: Path, images_dir: Path, labels_file: Path, out: Path, *,
                       cfg: PersonalizeConfig | None = None, opset: int = 17,
                       export: bool = True, exporter: str = "auto") -> dict[str, Any]:
    """The whole ``edgekd personalize`` command: load, adapt, write ``personalized.safetensors``,
    ``personalized.onnx`` (parity-checked against torch) and ``personalize.json`` into ``out``."""
    from edgekd.fileio import sha256_file, write_json
    from edgekd.weights import save_module_weights

    cfg = cfg or PersonalizeConfig()
    model, size, prov = load_checkpoint(checkpoint)
    images, gaze, files, notes = load_support_folder(images_dir, labels_file, size)
    in_ch = int(model.downsample[0][0].weight.shape[1])  # type: ignore[index]
    if images.shape[1] != in_ch:
        raise ConfigError(f"the model takes {in_ch}-channel images but the support images are grayscale")
    res = personalize(model, torch.from_numpy(images).float() / 255.0, torch.from_numpy(gaze), cfg)
    out.mkdir(parents=True, exist_ok=True)
    weights = save_module_weights(res.model, out / "personalized.safetensors",
                                  metadata={"edgekd": "gaze-personalized", "images": str(len(files))})
    summary: dict[str, Any] = {
        "checkpoint": prov, "images": files, "notes": notes, "config": cfg.model_dump(mode="json"),
        "trained_parameters": res.trained_parameters,
        "support_error_before_deg": res.support_error_before_deg,
        "support_error_after_deg": res.support_error_after_deg, "loss_history": res.history,
        "artifacts": {"personalized.safetensors": sha256_file(weights)},
    }
    if export:
        onnx_path = _export(res.model, out / "personalized.onnx", images, opset, exporter)
        summary["artifacts"]["personalized.onnx"] = sha256_file(onnx_path)
    write_json(out / "personalize.json", summary)
    return summary


def _export(model: GazeNet, path: Path, images: np.ndarray, opset: int, exporter: str) -> Path:
    from edgekd.export.onnx import export_onnx
    from edgekd.export.parity import check_parity
    from edgekd.iospec import IOSpec, TensorSpec
    from edgekd.runtime import SessionOptions, get_runtime
    from edgekd.runtime.predict import session_predict
    from edgekd.tasks.base import torch_predict

    _, c, h, w = images.shape
    spec = IOSpec(inputs=(TensorSpec("image", ("batch", c, h, w), "float32", 0.0, 1.0),),
                  outputs=(TensorSpec("gaze", ("batch", 2), "float32"),))
    if exporter not in ("auto", "dynamo", "torchscript"):
        raise ConfigError(f"--exporter {exporter!r}: allowed are auto, dynamo, torchscript")
    res = export_onnx(model, spec, path, opset=opset, exporter=exporter)  # type: ignore[arg-type]
    feeds: Sequence[dict[str, np.ndarray]] = [{"image": images.astype(np.float32) / 255.0}]
    sess = get_runtime("onnxruntime").load(res.path, SessionOptions(threads=1))
    check_parity(torch_predict(model, spec), session_predict(sess), feeds, output_names=["gaze"],
                 atol=1e-3, rtol=1e-3, artifact=path.name)
    return res.path
