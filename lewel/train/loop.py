"""The training loop: single process or ``torchrun``, CPU or GPU, resumable to the exact same weights."""

from __future__ import annotations

import math
import os
import random
import re
import warnings
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from ..data.folders import DataError
from ..distributed import Runtime, join_processes
from ..files.checkpoints import CheckpointError, atomic_save, remove_stale_temporaries, safe_load, training_checkpoint
from ..inference import LewelModel
from ..models import MomentumMethod, build_model
from ..views.augmentations import center_crop_transform, two_view_transform
from . import TrainingDiverged
from .config import TrainConfig
from .data import EpochSampler, SeededViews, training_images
from .knn import knn_top1
from .logging import MetricsLogger
from .monitor import MapMonitor, monitor_splits
from .optim import build_optimizer
from .schedules import cosine_momentum, warmup_cosine_lr

LAST = "last.pt"
EPOCH_FILE = re.compile(r"^epoch_(\d+)\.pt$")
RESUME_KEYS = ("state_dict", "optimizer", "scaler", "step", "rng", "model_config")


class TrainingWarning(UserWarning):
    """Something about a run worth knowing that does not stop it (a fallback, a capped setting)."""


def _warn(message: str) -> None:
    warnings.warn(message, TrainingWarning, stacklevel=3)


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity), as PyTorch's DataLoader counts them."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def loader_workers(requested: int) -> int:
    """``requested`` data-loader workers, capped at ``usable_cpus()`` (beyond, PyTorch warns and they only
    compete for the same cores)."""
    return max(0, min(requested, usable_cpus()))


def autocast_dtype(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    """bf16 on GPU by default, nothing on CPU; ``fp16`` and ``bf16`` when asked."""
    if config.amp == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "none": None}[config.amp]


def _rng_state(device: torch.device) -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _restore_rng(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _memory_format(config: TrainConfig, runtime: Runtime) -> torch.memory_format:
    """channels_last on GPU when asked (faster convolutions there), the default layout otherwise."""
    return torch.channels_last if config.channels_last and runtime.device.type == "cuda" else torch.contiguous_format


def _prepare_model(config: TrainConfig, runtime: Runtime) -> tuple[MomentumMethod, nn.Module]:
    """Build the method, move it, apply SyncBN / channels_last / compile, wrap in DDP. Returns (model, wrapped)."""
    model = build_model(config.model)
    if config.sync_bn and runtime.distributed:
        if runtime.device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        elif runtime.is_main:
            print("lewel train: sync_bn needs GPUs; BatchNorm stays per process on the CPU")
    model = model.to(runtime.device, memory_format=_memory_format(config, runtime))
    if config.compile:
        for online, target in model.momentum_pairs():
            online.backbone.compile()
            target.backbone.compile()
    if runtime.distributed:
        device_ids = [runtime.device.index] if runtime.device.type == "cuda" else None
        return model, DistributedDataParallel(model, device_ids=device_ids)
    return model, model


def _map_monitor(config: TrainConfig, runtime: Runtime) -> MapMonitor | None:
    """The map monitor of a LEWEL run on the main process (``None`` for the baselines, with
    ``maps_every: 0``, and on the other ranks). It scores maps when ``val_data`` has masks (scenes), and
    draws the probe set in any case."""
    if not (config.model.is_lewel and config.maps_every != 0 and runtime.is_main):
        return None
    splits = monitor_splits(config.val_data, images=config.maps_images, size=config.maps_size, seed=config.seed)
    return MapMonitor(
        splits, size=config.maps_size, batch_size=min(config.batch_size, 64), control_seeds=config.maps_controls
    )


def _epoch_files(folder: Path) -> list[Path]:
    """``epoch_XXXX.pt`` in ``folder``, newest (highest epoch) first."""
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := EPOCH_FILE.match(p.name)) and p.is_file()]
    return [p for _, p in sorted(found, reverse=True)]


def _read_resumable(path: Path, device: torch.device) -> dict[str, Any]:
    """A training checkpoint of ``lewel train`` that a run can continue from; ``CheckpointError`` otherwise."""
    state = safe_load(path, map_location=device)
    missing = [k for k in RESUME_KEYS if not isinstance(state, dict) or k not in state]
    if missing:
        raise CheckpointError(
            f"{str(path)!r} cannot be resumed from: it is not a lewel train checkpoint (missing {', '.join(missing)})"
        )
    return state


def _newest_readable(paths: list[Path], device: torch.device) -> tuple[Path, dict[str, Any]] | None:
    for candidate in paths:
        try:
            return candidate, _read_resumable(candidate, device)
        except CheckpointError:
            continue
    return None


def _load_resume(config: TrainConfig, runtime: Runtime) -> tuple[Path, dict[str, Any]] | None:
    """The checkpoint to continue from, read. ``--resume auto``: ``OUT/last.pt``, or when it cannot be read,
    the newest readable ``epoch_XXXX.pt`` (with a warning); nothing when there is none. ``--resume PATH``:
    that file, or an error naming the newest readable checkpoint next to it."""
    if not config.resume:
        return None
    out = Path(config.out)
    if config.resume == "auto":
        last = out / LAST
        epochs = _epoch_files(out)
        if not last.is_file():
            if epochs and runtime.is_main:
                _warn(f"--resume auto: {str(last)!r} is missing; continuing from the newest readable epoch checkpoint")
            found = _newest_readable(epochs, runtime.device)
            return found
        try:
            return last, _read_resumable(last, runtime.device)
        except CheckpointError as error:
            found = _newest_readable(epochs, runtime.device)
            if found is None:
                raise CheckpointError(
                    f"--resume auto: {error}; no readable epoch_XXXX.pt in {str(out)!r} to fall back to. Move the "
                    "file away to start afresh"
                ) from None
            if runtime.is_main:
                _warn(
                    f"--resume auto: {error}; continuing from {str(found[0])!r}, the newest readable checkpoint "
                    f"(the steps after it are trained again; {last.name} is replaced at the next save)"
                )
            return found
    path = Path(config.resume)
    if not path.is_file():
        raise ValueError(f"cannot resume: checkpoint {str(path)!r} does not exist")
    try:
        return path, _read_resumable(path, runtime.device)
    except CheckpointError as error:
        others = [p for p in [path.parent / LAST, *_epoch_files(path.parent)] if p != path and p.is_file()]
        found = _newest_readable(others, runtime.device)
        hint = f"; the newest readable checkpoint there is {str(found[0])!r} (--resume {found[0]})" if found else ""
        raise CheckpointError(f"cannot resume: {error}{hint}") from None


def _batches(loader: DataLoader) -> Any:
    """The loader's batches; a data error in a worker is raised with its own message (PyTorch prefixes it
    with "Caught DataError in DataLoader worker process N" and a traceback)."""
    try:
        yield from loader
    except DataError as error:
        lines = [line for line in str(error).splitlines() if line.strip()]
        message = lines[-1].removeprefix(f"{DataError.__module__}.DataError: ").removeprefix("DataError: ")
        raise DataError(message) from None


def train(config: TrainConfig) -> dict[str, Any]:
    """Run (or continue) the training described by ``config``; returns a summary of the run.

    The global batch is split evenly over the processes. Each view is seeded by (seed, epoch, sample), the
    data order by (seed, epoch), so a run killed and resumed from ``last.pt`` ends with the weights of a run
    never interrupted. Checkpoints: ``epoch_XXXX.pt`` every ``save_every`` epochs and at the end, and
    ``last.pt`` (the newest state, also refreshed every ``save_every_steps`` steps), all written atomically.
    """
    config.validate()
    runtime = join_processes()  # nccl on GPU, gloo on CPU, or alone
    out = Path(config.out)
    if runtime.is_main:
        for note in config.advice():
            _warn(note)
    try:
        return _train(config, runtime, out)
    finally:
        runtime.leave()


@dataclass
class _Run:
    """A training run as ``_train`` carries it from step to step: what the set-up built once, then the
    position (``step``) and what the run has done so far."""

    config: TrainConfig
    runtime: Runtime
    out: Path
    local_batch: int
    workers: int
    source: Any
    steps_per_epoch: int
    total_steps: int
    sampler: EpochSampler
    loader: DataLoader
    model: MomentumMethod
    wrapped: nn.Module
    optimizer: torch.optim.Optimizer
    dtype: torch.dtype | None
    scaler: torch.amp.GradScaler
    memory_format: torch.memory_format
    step: int = 0
    resume: Path | None = None  #: the checkpoint the run continued from
    logger: MetricsLogger | None = None
    knn_sources: tuple[Any, Any] | None = None
    monitor: MapMonitor | None = None
    maps_interval: int = 0
    first_step: int = 1
    last_loss: float = math.nan
    saved: list[str] = field(default_factory=list)


def _set_up(config: TrainConfig, runtime: Runtime, out: Path) -> _Run:
    """Seeds, the data (source, sampler, loader), the model, its optimiser and gradient scaler."""
    if config.batch_size % runtime.world_size:
        raise ValueError(f"batch_size {config.batch_size} is not divisible by the {runtime.world_size} processes")
    local_batch = config.batch_size // runtime.world_size
    torch.manual_seed(config.seed)
    random.seed(config.seed)
    if runtime.is_main:
        removed = remove_stale_temporaries(out)
        if removed:
            _warn(
                f"removed {len(removed)} temporary file(s) left in {str(out)!r} by an interrupted checkpoint write: "
                + ", ".join(p.name for p in removed)
            )
    workers = loader_workers(config.workers)
    if workers < config.workers and runtime.is_main:
        _warn(f"--workers {config.workers} lowered to {workers}: this process may use {usable_cpus()} CPU(s)")

    source = training_images(config.data, image_size=config.image_size, seed=config.seed, shared_backdrops=config.shared_backdrops)
    steps_per_epoch = len(source) // config.batch_size  # type: ignore[arg-type]
    if steps_per_epoch == 0:
        raise ValueError(
            f"{config.data!r} holds {len(source)} images, fewer than one batch of {config.batch_size}: "  # type: ignore[arg-type]
            "lower --batch-size or add images"
        )
    source[0]  # an unreadable folder fails here, with its own message, not inside a loader worker
    views = SeededViews(source, two_view_transform(config.augmentation, config.image_size), config.seed)
    sampler = EpochSampler(len(source), num_replicas=runtime.world_size, rank=runtime.rank, seed=config.seed, epoch=0)  # type: ignore[arg-type]
    loader = DataLoader(
        views,
        batch_size=local_batch,
        sampler=sampler,
        num_workers=workers,
        pin_memory=runtime.device.type == "cuda",
        persistent_workers=workers > 0,
        drop_last=True,
    )

    model, wrapped = _prepare_model(config, runtime)
    optimizer = build_optimizer(
        model, config.optimizer, config.lr, config.weight_decay, config.optimizer_momentum,
        exclude=config.lars_exclude, eman=config.model.eman,
    )
    dtype = autocast_dtype(config, runtime.device)
    scaler = torch.amp.GradScaler(runtime.device.type, enabled=dtype == torch.float16)
    return _Run(
        config=config, runtime=runtime, out=out, local_batch=local_batch, workers=workers, source=source,
        steps_per_epoch=steps_per_epoch, total_steps=config.epochs * steps_per_epoch, sampler=sampler, loader=loader,
        model=model, wrapped=wrapped, optimizer=optimizer, dtype=dtype, scaler=scaler,
        memory_format=_memory_format(config, runtime),
    )


def _initialise(run: _Run) -> None:
    """Start a fresh run from ``config.init``: its backbone and head (``lewel.load_model``, the same shape)
    replace the online encoder's, and every target copies its online network, as at a fresh start."""
    from ..inference import load_model

    loaded = load_model(run.config.init, num_groups=run.config.model.num_groups, map_location="cpu")
    encoder = run.model.online_encoder
    try:
        encoder.backbone.load_state_dict(loaded.backbone.state_dict())
        encoder.neck.load_state_dict(loaded.neck.state_dict())
    except RuntimeError as error:
        raise ValueError(
            f"--init {run.config.init!r} does not fit this run's model ({run.config.model.method}, "
            f"{run.config.model.backbone}): {str(error).splitlines()[0]}"
        ) from None
    for online, target in run.model.momentum_pairs():
        target.load_state_dict(online.state_dict())


def _resume(run: _Run) -> None:
    """Continue from the checkpoint ``--resume`` names (if any): weights, optimiser, scaler, step and RNG."""
    config = run.config
    resumed = _load_resume(config, run.runtime)
    if resumed is None:
        return
    resume, state = resumed
    run.resume = resume
    if (state.get("steps_per_epoch"), state.get("batch_size")) != (run.steps_per_epoch, config.batch_size):
        raise ValueError(
            f"cannot resume from {str(resume)!r}: it was trained with batch {state.get('batch_size')} and "
            f"{state.get('steps_per_epoch')} steps per epoch, this run has {config.batch_size} and {run.steps_per_epoch}"
        )
    if state.get("model_config") != config.model.to_dict():
        raise ValueError(
            f"cannot resume from {str(resume)!r}: it holds a different model "
            f"({state.get('model_config', {}).get('method')}) than this run's ({config.model.method}, see its "
            "model_config); use another --out or the same settings"
        )
    run.model.load_state_dict(state["state_dict"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.scaler.load_state_dict(state["scaler"])
    run.step = int(state["step"])
    _restore_rng(state["rng"], run.runtime.device)


def _set_up_watchers(run: _Run) -> None:
    """After the resume (the RNG restored, the step known): the metrics logger, the kNN monitor's sources and
    the map monitor."""
    config = run.config
    run.logger = MetricsLogger(run.out, enabled=run.runtime.is_main, total=run.total_steps, initial=run.step)
    if config.val_data:
        val_source = training_images(config.val_data, image_size=config.image_size, seed=config.seed, split="val")
        val_source[0]
        run.knn_sources = (run.source, val_source)
    run.monitor = _map_monitor(config, run.runtime)
    run.maps_interval = config.maps_every if config.model.is_lewel else 0


def _watch_maps(run: _Run) -> None:
    """A map monitor pass on the main process (the others wait); the online network is back in training mode
    afterwards."""
    if run.monitor is not None:
        encoder = run.model.online_encoder
        scores, png = run.monitor.measure(
            LewelModel(encoder.backbone, encoder.neck, config=run.config.model), label=f"step {run.step}"
        )
        run.wrapped.train()
        run.logger.maps(run.step, run.step / run.steps_per_epoch, scores, png)
    if run.maps_interval:
        run.runtime.barrier()


def _save(run: _Run, name: str) -> Path:
    """The training checkpoint ``OUT/name`` (written by the main process; ``last.pt`` follows it)."""
    out, runtime = run.out, run.runtime
    path = out / name
    if runtime.is_main:
        payload = training_checkpoint(
            run.model,
            run.config.model,
            config=run.config.to_dict(),
            optimizer=run.optimizer.state_dict(),
            scaler=run.scaler.state_dict(),
            epoch=run.step // run.steps_per_epoch,
            step=run.step,
            steps_per_epoch=run.steps_per_epoch,
            batch_size=run.config.batch_size,
            rng=_rng_state(runtime.device),
        )
        atomic_save(payload, path)
        if name != LAST:
            temporary = out / f".{LAST}.link"
            temporary.unlink(missing_ok=True)
            os.link(path, temporary)
            os.replace(temporary, out / LAST)
    runtime.barrier()
    return path


def _step(run: _Run, view1: torch.Tensor, view2: torch.Tensor, epoch: int) -> None:
    """One optimisation step on a batch of view pairs, then its logging, map monitor pass and step checkpoint."""
    config, runtime, step = run.config, run.runtime, run.step
    view1 = view1.to(runtime.device, non_blocking=True, memory_format=run.memory_format)
    view2 = view2.to(runtime.device, non_blocking=True, memory_format=run.memory_format)
    lr = warmup_cosine_lr(config.lr, step, run.steps_per_epoch, config.warmup_epochs, config.epochs)
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    momentum = (
        cosine_momentum(config.base_momentum, step, run.total_steps)
        if config.momentum_schedule == "cosine"
        else config.base_momentum
    )
    context = torch.autocast(runtime.device.type, dtype=run.dtype) if run.dtype is not None else nullcontext()
    with context:
        output = run.wrapped(view1, view2)
    finite = torch.isfinite(output.loss.detach()).float()
    if runtime.distributed:
        dist.all_reduce(finite, op=dist.ReduceOp.MIN)
    if finite.item() < 1:
        run.logger.close()
        out = run.out
        kept = f"the last good checkpoint is {str(out / LAST)!r}" if (out / LAST).exists() else "no checkpoint was written yet"
        raise TrainingDiverged(
            f"loss became {output.loss.item()} at step {step} (epoch {epoch}); training stopped, {kept}. "
            "Lower the learning rate or use --amp none/bf16."
        )
    run.optimizer.zero_grad(set_to_none=True)
    run.scaler.scale(output.loss).backward()
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.model.update_target(momentum)
    run.step = step = step + 1
    run.last_loss = output.loss.item()
    log = step % config.log_every == 0 or step in (run.first_step, run.total_steps)
    run.logger.step(step, epoch, output, lr=lr, momentum=momentum, log=log)
    if run.maps_interval and (step % run.maps_interval == 0 or step == run.total_steps):
        _watch_maps(run)
    if config.save_every_steps and step % config.save_every_steps == 0 and step % run.steps_per_epoch:
        _save(run, LAST)


def _end_of_epoch(run: _Run) -> None:
    """After a whole epoch: the kNN monitor when due (and at the end), and the epoch checkpoint when due."""
    config, runtime, step = run.config, run.runtime, run.step
    finished_epoch = step // run.steps_per_epoch
    periodic = bool(config.knn_every) and finished_epoch % config.knn_every == 0
    if run.knn_sources is not None and (periodic or step == run.total_steps):
        if runtime.is_main:
            top1 = knn_top1(
                run.model.online_encoder.backbone,
                *run.knn_sources,
                transform=center_crop_transform(config.image_size),
                k=config.knn_k,
                temperature=config.knn_temperature,
                batch_size=run.local_batch,
                workers=run.workers,
                device=runtime.device,
            )
            run.logger.scalar("knn_top1", top1, step, epoch=finished_epoch)
        runtime.barrier()
    if finished_epoch % config.save_every == 0 or step == run.total_steps:
        run.saved.append(str(_save(run, f"epoch_{finished_epoch:04d}.pt")))


def _finish(run: _Run) -> dict[str, Any]:
    """After the last step: ``last.pt`` of a run stopped early, the closing line, and the run's summary."""
    step, total_steps, saved = run.step, run.total_steps, run.saved
    if step < total_steps:  # stopped early (stop_after_steps): --resume auto goes on from here
        saved.append(str(_save(run, LAST)))
    where = saved[-1] if saved else (str(run.resume) if run.resume is not None else "none written")
    stopped = f" of {total_steps} (stop_after_steps; --resume auto continues)" if step < total_steps else ""
    trained = step >= run.first_step  # a resumed run that had already reached its end trains no step
    note = f"last loss {run.last_loss:.4f}" if trained else f"the run had already finished: no step trained, {where} kept"
    run.logger.finish(
        f"done: {step} steps{stopped} ({step // run.steps_per_epoch} epochs), {note}, checkpoint {where}, "
        f"metrics in {str(run.out / 'metrics.jsonl')!r}"
    )
    return {
        "steps": step, "epochs": step // run.steps_per_epoch, "loss": run.last_loss if trained else None,
        "already_finished": not trained, "checkpoints": saved, "out": str(run.out),
    }


def _train(config: TrainConfig, runtime: Runtime, out: Path) -> dict[str, Any]:
    """Set up, resume, then step through the epochs (``stop_after_steps`` may end the run inside one)."""
    run = _set_up(config, runtime, out)
    _resume(run)
    if config.init and run.resume is None:
        _initialise(run)
    _set_up_watchers(run)
    run.first_step = run.step + 1
    run.wrapped.train()
    if run.step == 0 and run.maps_interval:
        _watch_maps(run)  # the network at its random initialisation: the run's own random control
    end = min(run.total_steps, config.stop_after_steps) if config.stop_after_steps else run.total_steps
    while run.step < end:
        epoch, done_in_epoch = divmod(run.step, run.steps_per_epoch)
        run.sampler.set_position(epoch, skip=done_in_epoch * run.local_batch)
        for (view1, view2), _ in _batches(run.loader):
            _step(run, view1, view2, epoch)
            if run.step >= end:
                break
        if run.step % run.steps_per_epoch:  # stopped inside an epoch (stop_after_steps)
            continue
        _end_of_epoch(run)
    return _finish(run)
