"""The training loop shared by teacher training, the no-KD baseline and distillation.

``total = task_loss_weight * task_loss + sum_i weight_i * ramp_i(epoch) * term_i`` where
``ramp_i = min(1, epoch / warmup_epochs_i)`` (1 when no warm-up). The optimizer trains the
student and every term's parameters (projectors). See :func:`fit`.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, default_collate

from edgekd.config.recipe import LossConfigBase, TrainConfig
from edgekd.distill import checkpoint as ckpt
from edgekd.distill import ddp
from edgekd.distill.hooks import FeatureTaps, ShapeMap, module_paths, probe_all_shapes, resolve_module
from edgekd.distill.logging import MetricsLog, Progress
from edgekd.distill.teachers import Teacher, as_teacher, to_tensors
from edgekd.distill.terms import LossTerm, StepContext, TapProbe
from edgekd.errors import ConfigError, TrainingError

TaskLoss = Callable[[Sequence[Tensor], Mapping[str, Tensor]], Tensor]


@dataclass
class FitResult:
    student: nn.Module  # best weights loaded (last when there is no val_fn), eval mode
    terms: list[LossTerm]  # the loss terms with their trained projectors
    history: list[dict[str, Any]]  # one dict per epoch
    best_metric: float | None
    checkpoint: Path | None  # out_dir/last.safetensors, or None without out_dir
    seconds: float
    best_epoch: int | None = None
    stopped_early: bool = False
    extras: dict[str, Any] = field(default_factory=dict)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_amp(mode: str, device: torch.device) -> torch.dtype | None:
    """auto: bf16 on a CUDA device that supports it, else off (CPU autocast is slower than fp32 here)."""
    if mode == "off":
        return None
    if mode == "auto":
        return torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else None
    if mode == "fp16" and device.type != "cuda":
        raise ConfigError(f"train.amp='fp16' on device {device.type!r}: fp16 autocast needs CUDA",
                          hint="use train.amp=off (or bf16) on CPU")
    return torch.bfloat16 if mode == "bf16" else torch.float16


def lr_factor(cfg: TrainConfig, step: int, total: int) -> float:
    """Linear warm-up over warmup_steps, then constant or cosine to 0. onecycle: warm-up over 30%
    of the steps when warmup_steps is 0 (Smith & Topin 2019), then cosine annealing."""
    warm = cfg.warmup_steps or (int(0.3 * total) if cfg.schedule == "onecycle" else 0)
    if warm and step < warm:
        return (step + 1) / warm
    if cfg.schedule == "constant":
        return 1.0
    progress = (step - warm) / max(1, total - warm)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def build_optimizer(cfg: TrainConfig, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, nesterov=True, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def as_tuple(out: Any) -> tuple[Tensor, ...]:
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def fit(student: nn.Module, *, train_set: Dataset, input_names: Sequence[str], cfg: TrainConfig,
        task_loss: TaskLoss | None = None, task_loss_weight: float = 1.0,
        teacher: nn.Module | Callable[..., Any] | None = None, losses: Sequence[LossConfigBase] = (),
        val_fn: Callable[[nn.Module], float] | None = None, lower_is_better: bool = True,
        out_dir: Path | None = None, resume: bool = False, seed: int = 0,
        progress: bool = True, desc: str = "train", teacher_cache: Path | None = None,
        qat: bool = False) -> FitResult:
    """Train ``student`` on ``train_set`` with the task loss and the distillation terms ``losses``.

    The student trains on the device its parameters are on (move it first); under torchrun it
    is wrapped in DistributedDataParallel (see :mod:`edgekd.distill.ddp`; ``cfg.batch_size`` is
    per process). Dataset items are dicts holding every name in ``input_names`` plus targets.
    ``teacher_cache`` (a folder) caches teacher outputs/features on disk; the dataset then must
    be deterministic per index (no random augmentation) and gets an ``index`` key if it has none.
    ``resume`` continues from ``out_dir/last.safetensors``. Raises TrainingError on a NaN/Inf term.

    The sections run in a fixed order (each consumes the seeded RNG the same way every run):
    set-up, probe, loss terms, optimizer and schedule, resume, epochs, best weights.
    """
    t0 = time.perf_counter()
    if resume and out_dir is None:
        raise ConfigError("resume=True needs out_dir (the folder holding last.safetensors)",
                          hint="pass out_dir=... (CLI: --out DIR) together with --resume")
    out_dir = Path(out_dir) if out_dir is not None else None
    env = _setup(student, teacher, train_set, input_names, cfg, seed, teacher_cache is not None, qat)
    probe = _probe(env, input_names, cfg.batch_size)
    terms, term_names = _build_terms(losses, probe, env.student, env.teacher, env.device)
    s_taps = FeatureTaps(env.student, [p for t in terms for p in t.student_taps], "student")
    cache = _attach_teacher(env, terms, input_names, cfg.batch_size, teacher_cache, progress)
    tr = _build_trainer(env, cfg, terms, term_names, losses, s_taps, cache, task_loss, task_loss_weight,
                        input_names, seed, out_dir)
    run_config = {"train": cfg.model_dump(mode="json"), "losses": [lc.model_dump(mode="json") for lc in losses],
                  "task_loss_weight": task_loss_weight, "seed": seed, "qat": qat, "input_names": list(input_names),
                  "world_size": env.info.world_size, "lower_is_better": lower_is_better,
                  "teacher": None if env.teacher is None else env.teacher.fingerprint()}
    st = _start_state(tr, run_config, resume, out_dir)
    log = MetricsLog(out_dir, env.info.is_main, resume_step=st.global_step if resume else None)
    bar = Progress(progress and env.info.is_main, desc, tr.plan.total_steps, completed=st.global_step)
    stopped_early = False
    try:
        while st.epoch < cfg.epochs and not stopped_early:
            epoch_t0 = time.perf_counter()
            _run_epoch(tr, st, log, bar)
            stopped_early = _end_epoch(st, cfg, env.info, env.device, env.student, terms, val_fn, lower_is_better,
                                       tr.best_path, log, time.perf_counter() - epoch_t0)
            _save_last(tr, st)
    finally:
        bar.close()
        log.close()
        s_taps.remove()
        if env.teacher is not None:
            env.teacher.set_taps([])
    return _finish(tr, st, t0, stopped_early)


@dataclass
class _Env:
    """Where and what trains: the (possibly QAT-prepared) student, the teacher, the dataset as trained."""

    student: nn.Module
    teacher: Teacher | None
    train_set: Dataset  # type: ignore[type-arg]
    device: torch.device
    info: ddp.DistInfo
    amp: torch.dtype | None


def _setup(student: nn.Module, teacher: nn.Module | Callable[..., Any] | None, train_set: Dataset,  # type: ignore[type-arg]
           input_names: Sequence[str], cfg: TrainConfig, seed: int, cached: bool, qat: bool) -> _Env:
    """Device and process group, the seed, QAT preparation, autocast, the teacher wrapper and (for a
    teacher cache) the indexed dataset."""
    device = next((p.device for p in student.parameters()), torch.device("cpu"))
    info = ddp.setup(device)
    device = ddp.device_for(device, info)
    seed_everything(seed)
    student.to(device)
    if qat:
        from edgekd.quantize.fake_quant import prepare_qat

        student = prepare_qat(student)
    amp = resolve_amp(cfg.amp, device)
    tch: Teacher | None = as_teacher(teacher).to(device) if teacher is not None else None
    if cached and tch is not None:
        from edgekd.distill.cache import IndexedDataset, check_deterministic

        check_deterministic(train_set, input_names)
        train_set = IndexedDataset.wrap(train_set)
    if len(train_set) == 0:  # type: ignore[arg-type]
        raise ConfigError("train_set is empty", hint="check the task's dataset('train') size settings")
    return _Env(student, tch, train_set, device, info, amp)


def _probe(env: _Env, input_names: Sequence[str], batch_size: int) -> TapProbe:
    """Run one batch through both models: tap shapes for sizing projectors, and early input-name checks."""
    n_train = len(env.train_set)  # type: ignore[arg-type]
    probe_batch = _to_device(default_collate([env.train_set[i] for i in range(min(batch_size, n_train))]),
                             env.device)
    missing = [n for n in input_names if n not in probe_batch]
    if missing:
        raise ConfigError(f"input_names {missing} are not keys of the dataset items (keys: {sorted(probe_batch)})",
                          hint="name the model inputs as the task's io_spec does")
    probe_in = [probe_batch[n] for n in input_names]
    student, tch = env.student, env.teacher
    was_training = student.training
    student.eval()
    with torch.no_grad():
        s_outs: list[Any] = []
        s_shapes = probe_all_shapes(student, lambda: s_outs.append(student(*probe_in)))
        t_outs = tch(probe_in)[0] if tch is not None else ()
        t_shapes = tch.probe_shapes(probe_in) if tch is not None else {}
    student.train(was_training)
    t_known = tch.module_paths() if tch is not None else []
    return TapProbe(ShapeMap("student", s_shapes, module_paths(student)),
                    ShapeMap("teacher", t_shapes, t_known,
                             "no such module" if t_known else "the teacher is not a torch module"),
                    [o.shape for o in as_tuple(s_outs[0])], [o.shape for o in t_outs])


def _build_terms(losses: Sequence[LossConfigBase], probe: TapProbe, student: nn.Module, tch: Teacher | None,
                 device: torch.device) -> tuple[list[LossTerm], list[str]]:
    """One loss term per config (seeded above, so projector initialisation is reproducible) and their
    unique names."""
    from edgekd.distill.losses import LOSSES

    terms: list[LossTerm] = []
    for i, lc in enumerate(losses):
        term = LOSSES.get(lc)(lc, probe)
        if term.needs_teacher and tch is None:
            raise ConfigError(f"distill.losses.{i} (kind {lc.kind!r}) needs a teacher, but none was given",
                              hint="pass teacher=..., or drop the loss for a baseline run")
        for path in term.student_taps:
            resolve_module(student, path, "student")
        terms.append(term.to(device))
    return terms, _unique_names([t.name or lc.kind for t, lc in zip(terms, losses, strict=True)])


def _attach_teacher(env: _Env, terms: list[LossTerm], input_names: Sequence[str], batch_size: int,
                    teacher_cache: Path | None, progress: bool) -> Any:
    """Tap the teacher where the terms read it, and open (or build) its on-disk output cache."""
    if env.teacher is None:
        return None
    env.teacher.set_taps([p for t in terms for p in t.teacher_taps])
    if teacher_cache is None:
        return None
    from edgekd.distill.cache import TeacherCache

    return TeacherCache.open_or_build(Path(teacher_cache), env.teacher, env.train_set, input_names,
                                      batch_size=batch_size, info=env.info, progress=progress)


@dataclass
class _Plan:
    """The epoch's data order and length: the same seeded permutation on every rank; rank r takes every
    world_size-th index."""

    sampler: DistributedSampler[Any]
    drop_last: bool
    steps_per_epoch: int
    total_steps: int


def _plan(cfg: TrainConfig, train_set: Dataset, info: ddp.DistInfo, seed: int) -> _Plan:  # type: ignore[type-arg]
    sampler: DistributedSampler[Any] = DistributedSampler(
        train_set, num_replicas=info.world_size, rank=info.rank, shuffle=True, seed=seed, drop_last=False)  # type: ignore[arg-type]
    per_rank = len(sampler)
    # Drop a ragged last batch (BatchNorm fails on a batch of one) unless that would leave none.
    drop_last = per_rank >= cfg.batch_size
    steps_per_epoch = per_rank // cfg.batch_size if drop_last else 1
    if cfg.max_steps_per_epoch is not None:
        steps_per_epoch = min(steps_per_epoch, cfg.max_steps_per_epoch)
    return _Plan(sampler, drop_last, steps_per_epoch, steps_per_epoch * cfg.epochs)


@dataclass
class _Trainer:
    """Everything one optimisation step needs, built once per :func:`fit`."""

    env: _Env
    cfg: TrainConfig
    model: nn.Module  # the student, or its DDP wrapper
    terms: list[LossTerm]
    term_names: list[str]
    losses: Sequence[LossConfigBase]
    s_taps: FeatureTaps
    cache: Any
    need_teacher: bool
    term_params: list[nn.Parameter]
    opt: torch.optim.Optimizer
    sched: Any
    scaler: Any
    plan: _Plan
    task_loss: TaskLoss | None
    task_loss_weight: float
    input_names: Sequence[str]
    seed: int
    last_path: Path | None
    best_path: Path | None


def _build_trainer(env: _Env, cfg: TrainConfig, terms: list[LossTerm], term_names: list[str],
                   losses: Sequence[LossConfigBase], s_taps: FeatureTaps, cache: Any, task_loss: TaskLoss | None,
                   task_loss_weight: float, input_names: Sequence[str], seed: int, out_dir: Path | None) -> _Trainer:
    """Optimizer over the student and the terms' projectors, the DDP wrapper, the schedule."""
    # A teacher with no term that reads it (e.g. task loss only) is not run at all.
    need_teacher = any(t.needs_teacher for t in terms)
    term_params = [p for t in terms for p in t.parameters() if p.requires_grad]
    ddp.broadcast_params([p for t in terms for p in t.parameters()], env.info)
    model: nn.Module = env.student
    if env.info.enabled:
        model = nn.parallel.DistributedDataParallel(
            env.student, device_ids=[env.device.index] if env.device.type == "cuda" else None)
    opt = build_optimizer(cfg, [p for p in env.student.parameters() if p.requires_grad] + term_params)
    plan = _plan(cfg, env.train_set, env.info, seed)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(cfg, s, plan.total_steps))
    scaler = torch.amp.GradScaler(env.device.type) if env.amp == torch.float16 else None
    return _Trainer(env, cfg, model, terms, term_names, losses, s_taps, cache, need_teacher, term_params, opt,
                    sched, scaler, plan, task_loss, task_loss_weight, input_names, seed,
                    out_dir / "last.safetensors" if out_dir is not None else None,
                    out_dir / "best.safetensors" if out_dir is not None else None)


def _start_state(tr: _Trainer, run_config: dict[str, Any], resume: bool, out_dir: Path | None) -> _State:
    """A fresh state, or the killed run's (``resume``); stale checkpoint temp files are swept."""
    st = _State(run_config=run_config)
    if resume and tr.last_path is not None and tr.last_path.exists():
        st = _resume(tr.last_path, tr.best_path, run_config, tr.env.student, tr.terms, tr.opt, tr.sched)
    elif resume:
        raise TrainingError(f"resume requested but {tr.last_path} does not exist",
                            hint="run without --resume to start, or point --out at the killed run's folder")
    if out_dir is not None and tr.env.info.is_main:
        ckpt.remove_stale_temps(out_dir)
    return st


def _save_last(tr: _Trainer, st: _State) -> None:
    """The resumable checkpoint: weights, optimizer, scheduler, RNG and the loop's counters."""
    if tr.last_path is None or not tr.env.info.is_main:
        return
    tensors = ckpt.module_tensors(tr.env.student, tr.terms)
    o_t, o_meta = ckpt.optimizer_state(tr.opt)
    r_t, r_meta = ckpt.rng_state()
    ckpt.save(tr.last_path, {**tensors, **o_t, **r_t}, {
        "kind": "train", "config": st.run_config, "epoch": st.epoch, "step_in_epoch": st.step_in_epoch,
        "global_step": st.global_step, "sums": st.sums, "count": st.count, "history": st.history,
        "best_metric": st.best_metric, "best_epoch": st.best_epoch, "bad_epochs": st.bad_epochs,
        "optimizer": o_meta, "scheduler": _sched_state(tr.sched), "rng": r_meta})


def _run_epoch(tr: _Trainer, st: _State, log: MetricsLog, bar: Progress) -> None:
    """The rest of epoch ``st.epoch`` (all of it unless resumed mid-epoch), one optimisation step per batch."""
    cfg, plan = tr.cfg, tr.plan
    plan.sampler.set_epoch(st.epoch)
    idx = list(plan.sampler)[st.step_in_epoch * cfg.batch_size:]
    gen = torch.Generator().manual_seed(tr.seed * 100_003 + st.epoch)
    loader = DataLoader(tr.env.train_set, batch_size=cfg.batch_size, sampler=idx, drop_last=plan.drop_last,  # type: ignore[arg-type]
                        num_workers=cfg.num_workers, generator=gen)
    tr.model.train()
    for batch in loader:
        if st.step_in_epoch >= plan.steps_per_epoch:
            break
        ep = st.epoch + st.step_in_epoch / plan.steps_per_epoch
        total, values = _losses(tr, _to_device(batch, tr.env.device), ep, st)
        _optimizer_step(tr, total)
        st.step_in_epoch += 1
        st.global_step += 1
        st.count += 1
        for name, v in (("loss", total), *values.items()):
            st.sums[name] = st.sums.get(name, 0.0) + float(v.detach().float().item())
        if st.global_step % cfg.log_every_steps == 0:
            log.write({"kind": "step", "epoch": round(ep, 4), "step": st.global_step,
                       "lr": tr.sched.get_last_lr()[0], "loss": float(total.detach().float().item()),
                       **{k: float(v.detach().float().item()) for k, v in values.items()}})
        bar.update(f"loss {float(total.detach().float().item()):.4g}")
        if cfg.checkpoint_every_steps and st.global_step % cfg.checkpoint_every_steps == 0 \
                and st.step_in_epoch < plan.steps_per_epoch:
            _save_last(tr, st)


def _losses(tr: _Trainer, batch: dict[str, Any], ep: float, st: _State) -> tuple[Tensor, dict[str, Tensor]]:
    """Forward the student (and the teacher, or its cache), then the weighted, ramped sum of every term."""
    env = tr.env
    inputs = tuple(batch[n] for n in tr.input_names)
    tr.s_taps.clear()
    with _autocast(env.device, env.amp):
        s_out = as_tuple(tr.model(*inputs))
    s_feats = tr.s_taps.take()
    t_out: tuple[Tensor, ...] | None = None
    t_feats: dict[str, Tensor] = {}
    if env.teacher is not None and tr.need_teacher:
        t_out, t_feats = tr.cache.lookup(batch["index"], env.device) if tr.cache is not None else env.teacher(inputs)

    def run_student(inp: Sequence[Tensor]) -> tuple[tuple[Tensor, ...], dict[str, Tensor]]:
        # Extra forwards (masked inputs) use the bare module: DDP expects one forward per backward.
        tr.s_taps.clear()
        return as_tuple(env.student(*inp)), tr.s_taps.take()

    ctx = StepContext(batch=batch, inputs=inputs, student_out=s_out, teacher_out=t_out, student_feats=s_feats,
                      teacher_feats=t_feats, run_student=run_student, run_teacher=env.teacher, epoch=ep)
    values: dict[str, Tensor] = {}
    total = torch.zeros((), device=env.device)
    if tr.task_loss is not None and tr.task_loss_weight > 0:
        values["task"] = tr.task_loss(s_out, batch)
        total = total + tr.task_loss_weight * values["task"]
    for name, term, lc in zip(tr.term_names, tr.terms, tr.losses, strict=True):
        values[name] = term(ctx)
        ramp = min(1.0, ep / lc.warmup_epochs) if lc.warmup_epochs > 0 else 1.0
        total = total + lc.weight * ramp * values[name]
    if not values:
        raise ConfigError("nothing to train: no task_loss and no loss terms",
                          hint="pass task_loss=... or losses=[...]")
    _check_finite(values, st, tr.last_path)
    return total, values


def _check_finite(values: dict[str, Tensor], st: _State, last_path: Path | None) -> None:
    for name, v in values.items():
        if not bool(torch.isfinite(v).all()):
            raise TrainingError(
                f"loss term {name!r} is {v.detach().float().item()} at epoch {st.epoch} step "
                f"{st.step_in_epoch} (global step {st.global_step}); training stopped. The last good "
                f"checkpoint is {last_path if last_path is not None and last_path.exists() else '(none)'}",
                hint="lower train.lr, enable train.grad_clip, check the inputs/targets for NaN, or "
                f"lower the weight of {name!r}")


def _optimizer_step(tr: _Trainer, total: Tensor) -> None:
    """Backward (scaled under fp16), average the projectors' gradients over ranks, clip, step."""
    opt, scaler = tr.opt, tr.scaler
    opt.zero_grad(set_to_none=True)
    (scaler.scale(total) if scaler is not None else total).backward()
    ddp.average_gradients(tr.term_params, tr.env.info)
    if scaler is not None:
        scaler.unscale_(opt)
    if tr.cfg.grad_clip is not None:
        nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], tr.cfg.grad_clip)
    if scaler is not None:
        scaler.step(opt)
        scaler.update()
    else:
        opt.step()
    tr.sched.step()


def _finish(tr: _Trainer, st: _State, t0: float, stopped_early: bool) -> FitResult:
    """Load the best weights (when validated) and hand the student back in eval mode."""
    student = tr.env.student
    if st.best_state is not None:
        ckpt.load_module_tensors(st.best_state, student, tr.terms, tr.best_path or "memory")
    student.eval()
    last = tr.last_path
    return FitResult(student=student, terms=tr.terms, history=st.history, best_metric=st.best_metric,
                     checkpoint=last if last is not None and tr.env.info.is_main else None,
                     seconds=time.perf_counter() - t0, best_epoch=st.best_epoch, stopped_early=stopped_early)


@dataclass
class _State:
    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    sums: dict[str, float] = field(default_factory=dict)
    count: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best_metric: float | None = None
    best_epoch: int | None = None
    bad_epochs: int = 0
    best_state: dict[str, Tensor] | None = None
    run_config: dict[str, Any] = field(default_factory=dict)  # what a resume must match


def _end_epoch(st: _State, cfg: TrainConfig, info: ddp.DistInfo, device: torch.device, student: nn.Module,
               terms: list[LossTerm], val_fn: Callable[[nn.Module], float] | None, lower_is_better: bool,
               best_path: Path | None, log: MetricsLog, seconds: float) -> bool:
    """Average the epoch's losses over ranks, validate, track the best weights; True = stop early."""
    names = sorted(st.sums)
    totals = ddp.all_reduce_sum([st.sums[n] for n in names] + [float(st.count)], info, device)
    count = max(1.0, totals[-1])
    rec: dict[str, Any] = {"kind": "epoch", "epoch": st.epoch, "step": st.global_step, "seconds": round(seconds, 4),
                           **{f"train_{n}": totals[i] / count for i, n in enumerate(names)}}
    metric: float | None = None
    if val_fn is not None:
        if info.is_main:
            student.eval()
            metric = float(val_fn(student))
            student.train()
        metric = ddp.broadcast_float(metric, info, device)
        if metric is None or not math.isfinite(metric):
            raise TrainingError(f"val_fn returned {metric} at epoch {st.epoch}",
                                hint="the validation metric must be a finite number")
        rec["val_metric"] = metric
        better = st.best_metric is None or (metric < st.best_metric if lower_is_better else metric > st.best_metric)
        if better:
            st.best_metric, st.best_epoch, st.bad_epochs = metric, st.epoch, 0
            st.best_state = ckpt.module_tensors(student, terms)
            if best_path is not None and info.is_main:
                ckpt.save(best_path, st.best_state, {"kind": "weights", "epoch": st.epoch, "metric": metric})
        else:
            st.bad_epochs += 1
    st.history.append(rec)
    log.write(rec)
    st.epoch += 1
    st.step_in_epoch, st.sums, st.count = 0, {}, 0
    return cfg.early_stopping_patience is not None and st.bad_epochs >= cfg.early_stopping_patience


def _resume(last: Path, best: Path | None, run_config: dict[str, Any], student: nn.Module, terms: list[LossTerm],
            opt: torch.optim.Optimizer, sched: Any) -> _State:
    tensors, meta = ckpt.load(last)
    if meta.get("kind") != "train":
        raise TrainingError(f"{last} holds weights only, not a resumable training state",
                            hint="start a fresh run in another out_dir")
    diff = ckpt.config_diff(meta["config"], run_config)
    if diff:
        raise TrainingError(
            f"cannot resume from {last}: the configuration differs in " + "; ".join(f"field {d}" for d in diff),
            hint="resume with the same recipe and --set overrides, or start a fresh run in another out_dir")
    ckpt.load_module_tensors(tensors, student, terms, last)
    ckpt.load_optimizer_state(opt, tensors, meta["optimizer"])
    sched.load_state_dict({**meta["scheduler"], "lr_lambdas": [None] * len(opt.param_groups)})
    ckpt.set_rng_state(tensors, meta["rng"])
    st = _State(epoch=meta["epoch"], step_in_epoch=meta["step_in_epoch"], global_step=meta["global_step"],
                sums=dict(meta["sums"]), count=meta["count"], history=list(meta["history"]),
                best_metric=meta["best_metric"], best_epoch=meta["best_epoch"], bad_epochs=meta["bad_epochs"],
                run_config=run_config)
    if st.best_metric is not None and best is not None and best.exists():
        st.best_state, _ = ckpt.load(best)
    return st


def _sched_state(sched: Any) -> dict[str, Any]:
    return {k: v for k, v in sched.state_dict().items() if k != "lr_lambdas"}


def _unique_names(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 and n != "task" else f"{n}_{seen[n]}")
    return out


def _to_device(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: (v.to(device, non_blocking=True) if isinstance(v, Tensor) else v) for k, v in batch.items()}


def _autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager[Any]:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


__all__ = ["FitResult", "fit", "lr_factor", "resolve_amp", "seed_everything", "to_tensors"]
