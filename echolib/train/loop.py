"""One training loop for every architecture.

The loop is written once so that every model gets the same guarantees:

* **kimg clock** -- length, ticks, snapshots and samples are measured in
  thousands of real images drawn, as StyleGAN2-ADA reports them, so runs
  compare across batch sizes and with the study.
* **exact resume** -- all randomness of step ``s`` comes from a generator seeded
  with ``(seed, s)``; the checkpoint carries the clock and the half-finished
  tick, so stopping at 2 kimg and resuming to 4 gives the same bytes as one
  uninterrupted run (on CPU).
* **nothing lost** -- checkpoints are atomic; ``log.csv`` rows past the resumed
  checkpoint are dropped (they will be recomputed identically), so the log has
  no duplicated or missing ticks after a kill.
* **no host syncs in the step** -- losses accumulate on the device; one sync
  per tick reads them, checks for NaN/Inf, and logs.
* **the caller's configuration is theirs** -- the trainer works on its own copy.

This module is the loop, read top to bottom: setup, resume, the kimg loop
with its ticks, snapshots and evaluations, and the end. Each job it hands off
has a module of its own: :mod:`~echolib.train.splits` (the held-out videos),
:mod:`~echolib.train.nan_guard`, :mod:`~echolib.train.tick_log` (log rows),
:mod:`~echolib.train.in_training_eval` (metrics and ``best.pt``),
:mod:`~echolib.train.stopping` (signals), :mod:`~echolib.train.run_records`
(what the run folder records, and the rules that keep it one run).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import torch

from echolib.devices import (
    autocast_dtype,
    available_cores,
    cpu_has_fast_bf16,
    cpu_threads,
    resolve_device,
    uses_channels_last,
)
from echolib.errors import ConfigError, TrainingError
from echolib.images import make_grid, write_gray
from echolib.io import check_writable
from echolib.metrics.perceptual import PERCEPTUAL_LOSSES
from echolib.models.base import GenerativeModel, StepContext, eval_mode
from echolib.train import checkpoint as ckpt
from echolib.train import distributed as dist
from echolib.train import in_training_eval, run_lock, run_records, splits
from echolib.train.compiling import wire_forwards
from echolib.train.conditions import condition_maps
from echolib.train.ema import ema_beta, update_ema
from echolib.train.nan_guard import NanGuard
from echolib.train.real_batches import RealDraws
from echolib.train.run_config import RunConfig, build_model
from echolib.train.run_folder import RunFolder
from echolib.train.stopping import POLL_STEPS, Interrupted, StopSignals
from echolib.train.tick_log import LossSums, TickReport, model_stats, tick_row

__all__ = ["Clock", "Interrupted", "Trainer", "seed_for", "train", "validate"]


def seed_for(seed: int, step: int, stream: int = 0) -> int:
    """A well-mixed 63-bit seed for ``(seed, step, stream)`` (SplitMix64 finaliser)."""
    x = (seed * 0x9E3779B97F4A7C15 + step * 0xBF58476D1CE4E5B9 + stream * 0x94D049BB133111EB) & (2**64 - 1)
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & (2**64 - 1)
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & (2**64 - 1)
    x ^= x >> 31
    return x & (2**63 - 1)


@dataclass
class Clock:
    """The trainer's state besides the model: saved in every checkpoint."""

    nimg: int = 0
    step: int = 0
    tick: int = 0
    elapsed: float = 0.0  # wall seconds spent training, summed over resumes
    tick_start_nimg: int = 0
    tick_start_elapsed: float = 0.0  # ``elapsed`` when the current tick began: its sec/kimg spans resumes
    sums: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    best: float | None = None
    metrics_pending: float | None = None  # kimg whose in-training metrics a signal interrupted: redone on resume

    def to_state(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def validate(run: RunConfig) -> None:
    """Parameter checks that must fail before any work starts."""
    t = run.train
    if not (t.kimg > 0 and math.isfinite(t.kimg)):
        raise ConfigError(f"kimg must be a positive number, got {t.kimg}")
    if t.batch <= 0:
        raise ConfigError(f"batch must be a positive integer, got {t.batch}")
    if t.tick_kimg <= 0:
        raise ConfigError(f"tick_kimg must be positive, got {t.tick_kimg}")
    r = t.resolution
    if r <= 0 or r & (r - 1):
        raise ConfigError(f"resolution must be a power of two, got {r}")
    if t.keep_last < 1:
        raise ConfigError(f"train.keep_last must be at least 1 (the checkpoint a resume needs), got {t.keep_last}")
    in_training_eval.check_settings(t)


def train(
    run: RunConfig,
    data: str | Path,
    out: str | Path,
    *,
    device: str | torch.device = "auto",
    kimg: float | None = None,
    resume: bool = True,
    progress: bool = True,
) -> Path:
    """Train ``run`` on ``data`` into the run folder ``out``; resume if it holds a checkpoint.

    ``kimg`` overrides ``run.train.kimg`` for this call only; ``run`` itself is left as it was.
    """
    if kimg is not None:
        run = dataclasses.replace(run, train=dataclasses.replace(run.train, kimg=float(kimg)))
    return Trainer(run, data, Path(out), device=device, resume=resume, progress=progress).fit()


class Trainer:
    """Trains one run folder: built ready to fit (data split, model built, checkpoint resumed)."""

    def __init__(
        self,
        run: RunConfig,
        data: str | Path,
        out: Path,
        *,
        device: str | torch.device = "auto",
        resume: bool = True,
        progress: bool = True,
    ) -> None:
        validate(run)
        self.run = copy.deepcopy(run)  # the model keeps its config: a caller's object must not change with it
        self.cfg = self.run.train
        self.out = Path(out)
        self.folder = RunFolder(self.out)
        base_device = resolve_device(device)
        self.dist = dist.init_from_env(base_device)
        if base_device.type == "cuda" and self.dist.enabled:
            base_device = torch.device("cuda", self.dist.local_rank)
            torch.cuda.set_device(base_device)
        self.device = base_device
        self.amp_dtype = autocast_dtype(self.cfg.precision, self.device)
        self.channels_last = uses_channels_last(self.cfg.memory_format, self.device)
        #: intra-op threads while fitting on a CPU (see :func:`echolib.devices.cpu_threads`)
        self.threads = cpu_threads(os.environ, available_cores(), int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
        if self.cfg.batch % self.dist.world_size:
            raise ConfigError(f"batch {self.cfg.batch} must be divisible by the {self.dist.world_size} processes")
        self.progress = progress and self.dist.is_main
        if self.device.type == "cpu" and self.amp_dtype is not None and self.dist.is_main and not cpu_has_fast_bf16():
            print("warning: train.precision bf16 on a CPU without bf16 instructions (AVX512-BF16 or AMX) is emulated "
                  "and slower than fp32; use --set train.precision=fp32 here", file=sys.stderr)  # fmt: skip
        self._lock: IO[str] | None = None
        if self.dist.is_main:
            check_writable(self.out)
            self._lock = run_lock.acquire(self.out)  # before anything in the folder is read or changed
        try:
            self.data = splits.split_data(data, self.cfg, self.device)
            self.dataset, self.heldout = self.data.train, self.data.heldout
            self.clock = Clock()
            #: an image-conditioned model's maps of the training frames (indices as the dataset's), else None
            self.conditions: torch.Tensor | None = None
            #: what every sample this trainer draws is given (the held-out maps for an image-conditioned model)
            self.sample_options: dict[str, Any] = {}
            self.model = self._build_model()
            self.optimizers = self.model.make_optimizers()
            run_records.check_run_folder(self.out, self.run, self.data.fingerprint)
            self.resumed_from: Path | None = None
            #: notes on the checkpoints this resume passed over, recorded in ``run.json`` when fitting starts
            self.skipped_checkpoints: list[dict[str, Any]] = []
            if resume:
                self._resume()
        except BaseException:
            self.close()  # a refused run leaves the folder free at once, not when this object is collected
            raise
        self.stop = StopSignals()
        self._last_ckpt = Path()
        self._last_ckpt_nimg = -1

    @property
    def data_source(self) -> str:
        """The data as the caller named it (``phantom``, a folder, a zip, a manifest)."""
        return self.data.source

    def close(self) -> None:
        """Release the run folder for another process (also happens when this process ends)."""
        run_lock.release(self._lock)

    # -- setup ----------------------------------------------------------
    def _build_model(self) -> GenerativeModel:
        torch.manual_seed(seed_for(self.cfg.seed, 0, stream=99))
        model = build_model(self.run)
        model.use_perceptual(PERCEPTUAL_LOSSES)
        model.setup(self.dataset, heldout=self.heldout)
        if model.image_conditioned:  # the maps it trains on, and those of unseen hearts for its samples
            self.conditions = condition_maps(model, self.dataset)
            unseen = self.heldout if self.heldout is not None and len(self.heldout) else self.dataset
            self.sample_options = {"condition": condition_maps(model, unseen).to(self.device)}
        model.to(self.device)
        self.channels_last = self.channels_last and getattr(model, "channels_last", True)  # a model may opt out
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        wire_forwards(model, self.device, self.dist, self.cfg.compile)
        return model

    def _resume(self) -> None:
        found = ckpt.load_latest(
            self.folder.checkpoints_dir, arch=self.run.arch, resolution=self.cfg.resolution, map_location=self.device
        )
        if found is None:
            if self.dist.is_main:  # a run killed before its first checkpoint starts over: drop what it logged
                run_records.truncate_records(self.out, 0.0)
            return
        path, state = found.path, found.state
        if self.dist.is_main:
            for skipped in found.skipped:
                self.skipped_checkpoints.append(run_records.set_aside_skipped(self.out, skipped, path))
        m = self.model
        for name, net in m.nets.items():
            ckpt.load_state_strict(net, state["nets"][name], f"network {name!r}", path)
        for name, net in m.ema.items():
            ckpt.load_state_strict(net, state["ema"][name], f"EMA network {name!r}", path)
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        m.load_extra_state(state.get("extra", {}))
        self.clock = Clock(**state["trainer"])
        if "tick_start_elapsed" not in state["trainer"]:  # older checkpoints are written at tick ends
            self.clock.tick_start_elapsed = self.clock.elapsed
        rng = state.get("rng", {})
        if "torch" in rng:
            torch.set_rng_state(rng["torch"].cpu())
        self.resumed_from = path
        if self.dist.is_main:
            run_records.truncate_records(self.out, self.clock.nimg / 1000.0)

    # -- the loop -------------------------------------------------------
    def fit(self) -> Path:
        """Train to ``train.kimg``; the run folder is released when this returns or raises."""
        if self.dist.is_main and (self._lock is None or self._lock.closed):
            self._lock = run_lock.acquire(self.out)  # a second fit() of this object
        try:
            return self._fit()
        finally:
            self.close()

    def _fit(self) -> Path:
        cfg, clock, main = self.cfg, self.clock, self.dist.is_main
        total = round(cfg.kimg * 1000)
        if main:
            run_records.write_run_files(self.out, self.run, self._run_meta())
        if clock.metrics_pending is not None:
            self._pending_metrics(clock.metrics_pending)
        if clock.nimg >= total:
            if main and not self.folder.done_file.exists():
                self._finish(total)
            return self.out
        if main:
            self.folder.done_file.unlink(missing_ok=True)
        report = TickReport(self.out, main=main, progress=self.progress, tensorboard=cfg.tensorboard, kimg=cfg.kimg,
                            nimg=clock.nimg, desc=f"{self.run.arch}/{self.run.name}")  # fmt: skip
        tick_losses = LossSums.from_state(clock.sums, clock.counts, self.device)  # a resume may start mid-tick
        nan_guard = NanGuard()
        generator = torch.Generator(device=self.device)
        tick_nimg = round(cfg.tick_kimg * 1000)
        t_tick = time.perf_counter()
        t_tick_elapsed = clock.elapsed  # at this process's start of the tick (a resume may start mid-tick)
        autocast = self._autocast_factory()
        with self.stop.handled(), contextlib.ExitStack() as closing:
            closing.callback(report.close)
            if self.device.type == "cuda":
                closing.enter_context(_cudnn_benchmark(cfg.cudnn_benchmark))
            else:
                closing.enter_context(_intra_op_threads(self.threads))
            while clock.nimg < total:
                # One step: the model draws its real batches, steps its optimizers, the EMA follows.
                losses, drawn = self._step(generator, autocast)
                clock.nimg += drawn
                clock.step += 1
                self._ema_update(drawn)
                losses = {k: v.detach().to(torch.float64) for k, v in losses.items()}
                nan_guard.observe(losses, clock.step - 1)
                tick_losses.add(losses)
                if self.device.type == "cpu":  # reading back is free here: stop at the step that went bad
                    self._check_finite(nan_guard)
                at_tick = clock.nimg - clock.tick_start_nimg >= tick_nimg or clock.nimg >= total
                if not at_tick:
                    if signum := self.stop.agreed(clock.step % POLL_STEPS == 0, self.dist):
                        self._check_finite(nan_guard)  # never let a poisoned state become the checkpoint to resume
                        clock.elapsed = t_tick_elapsed + (time.perf_counter() - t_tick)
                        clock.sums, clock.counts = tick_losses.to_state()
                        self._write_checkpoint()
                        raise Interrupted(signum, self._last_ckpt)
                    continue

                # The tick's end: one read of the losses, one log row.
                self._check_finite(nan_guard)
                clock.elapsed = t_tick_elapsed + (time.perf_counter() - t_tick)
                row = tick_row(tick=clock.tick, nimg=clock.nimg, step=clock.step, elapsed=clock.elapsed,
                               seconds=clock.elapsed - clock.tick_start_elapsed,
                               nimg_tick=clock.nimg - clock.tick_start_nimg, losses=tick_losses.means(self.dist),
                               stats=model_stats(self.model, self.dist), device=self.device)  # fmt: skip
                tick_losses = LossSums()
                clock.sums, clock.counts = {}, {}
                prev_nimg = clock.tick_start_nimg
                clock.tick += 1
                clock.tick_start_nimg = clock.nimg
                clock.tick_start_elapsed = clock.elapsed
                report.write(row, clock.nimg)

                # Evaluation, sample grid, snapshot: each on its own kimg interval, all at the end.
                kimg, final = clock.nimg / 1000.0, clock.nimg >= total
                improved = False
                if _every(cfg.metrics_kimg, prev_nimg, clock.nimg) or (final and cfg.metrics_kimg > 0):
                    improved = bool(dist.all_max_int(int(self._evaluate(kimg)), self.dist))  # rank 0 evaluates
                if _every(cfg.sample_kimg, prev_nimg, clock.nimg) or final:
                    self._sample_grid(kimg)
                if _every(cfg.snapshot_kimg, prev_nimg, clock.nimg) or final or improved:
                    self._save_checkpoint()
                    if improved and main:
                        ckpt.copy_atomic(self._last_ckpt, self.folder.best_checkpoint)
                t_tick = time.perf_counter()
                t_tick_elapsed = clock.elapsed
                if signum := self.stop.agreed(True, self.dist):
                    if self._last_ckpt_nimg != clock.nimg:
                        self._save_checkpoint()
                    raise Interrupted(signum, self._last_ckpt)
        if main:
            self._finish(total)
        dist.barrier(self.dist)
        return self.out

    def _step(self, generator: torch.Generator, autocast: Callable[[], Any]) -> tuple[dict[str, torch.Tensor], int]:
        cfg = self.cfg
        generator.manual_seed(seed_for(cfg.seed, self.clock.step))
        torch.manual_seed(seed_for(cfg.seed, self.clock.step, stream=1))
        next_real = RealDraws(self.dataset, cfg.batch, generator, conditions=self.conditions,
                              channels_last=self.channels_last, device=self.device, rank=self.dist.rank,
                              world_size=self.dist.world_size)
        ctx = StepContext(
            step=self.clock.step,
            nimg=self.clock.nimg,
            batch=cfg.batch,
            device=self.device,
            generator=generator,
            next_real=next_real,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
            autocast=autocast,
            channels_last=self.channels_last,
        )
        with autocast():
            losses = self.model.train_step(ctx, self.optimizers)
        if next_real.drawn == 0:
            raise TrainingError(f"{self.run.arch}.train_step drew no real images; it must call ctx.next_real()")
        return losses, next_real.drawn

    def _autocast_factory(self) -> Callable[[], Any]:
        """The context each step runs in: bf16 autocast of the networks, or nothing (``train.precision``).

        Only the networks' operations follow autocast's casting lists; weights,
        gradients, Adam's state and the EMA stay fp32, and each model turns
        autocast off where precision matters (R1, gradient penalties, the
        diffusion loss weighting, vector quantisation, augmentation).
        """
        if self.amp_dtype is None:
            return contextlib.nullcontext
        device_type, dtype = self.device.type, self.amp_dtype
        return lambda: torch.autocast(device_type, dtype=dtype)

    def _ema_update(self, drawn: int) -> None:
        if not self.model.ema:
            return
        # the official loop computes beta before counting the step's images: the first step copies G
        beta = ema_beta(drawn, self.clock.nimg - drawn, self.cfg.ema_kimg, self.cfg.ema_rampup)
        for name, ema in self.model.ema.items():
            update_ema(ema, self.model.nets[name], beta)

    def _check_finite(self, guard: NanGuard) -> None:
        guard.check(self.dist, self.clock.nimg / 1000, self.folder)

    # -- snapshots, samples, evaluation ----------------------------------
    def _save_checkpoint(self) -> None:
        """A checkpoint at a tick's end (no half-finished tick to carry)."""
        self.clock.sums, self.clock.counts = {}, {}
        self._write_checkpoint()

    def _write_checkpoint(self) -> None:
        path = self.folder.checkpoint_file(self.clock.nimg)
        if self.dist.is_main:
            m = self.model
            state = {
                "arch": self.run.arch,
                "config": self.run.to_dict(),
                "resolution": self.cfg.resolution,
                "channels": m.channels,
                "kimg": self.clock.nimg / 1000.0,
                "nets": {k: _cpu_state(v) for k, v in m.nets.items()},
                "ema": {k: _cpu_state(v) for k, v in m.ema.items()},
                "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
                "extra": m.extra_state(),
                "trainer": self.clock.to_state(),
                "rng": {"torch": torch.get_rng_state()},
            }
            ckpt.save(state, path)
            ckpt.prune(path.parent, self.cfg.keep_last)
        self._last_ckpt = path
        self._last_ckpt_nimg = self.clock.nimg
        dist.barrier(self.dist)

    def _sample_grid(self, kimg: float) -> None:
        if not self.dist.is_main:
            return
        g = torch.Generator(device=self.device).manual_seed(seed_for(self.cfg.seed, 0, stream=7))
        with eval_mode(self.model):
            images = self.model.sample(self.cfg.grid_size, g, **self.sample_options)
        grid = make_grid(images, nrow=math.ceil(math.sqrt(self.cfg.grid_size)))
        write_gray(self.folder.sample_file("grid", round(kimg * 1000)), grid)
        with eval_mode(self.model):
            previews = self.model.previews()
        for name, (preview, nrow) in previews.items():
            write_gray(self.folder.sample_file(name, round(kimg * 1000)), make_grid(preview, nrow=nrow))

    def _evaluate(self, kimg: float) -> bool:
        """Append the in-training metric records at ``kimg``; True when the first metric found a new best.

        A stop signal during the evaluation abandons it between sample chunks
        and leaves it marked pending in the clock, so the checkpoint written
        next makes the resumed run evaluate this kimg first: no record is lost
        or doubled.
        """
        if not self.dist.is_main:
            return False
        self.clock.metrics_pending = kimg
        records = in_training_eval.evaluate(self.model, self.dataset, self.cfg, device=self.device, kimg=kimg,
                                            run=self.out, stop=lambda: self.stop.requested,
                                            sample_options=self.sample_options)  # fmt: skip
        if records is None:
            return False
        self.clock.metrics_pending = None
        self.folder.append_records(records)
        best = in_training_eval.new_best(records, self.cfg.metrics[0], self.clock.best)
        if best is None:
            return False
        self.clock.best = best
        return True

    def _pending_metrics(self, kimg: float) -> None:
        """Redo the evaluation a signal cut short, on the checkpoint written at that tick, before training on.

        Once its records are written, the checkpoint is written again without the
        pending mark (same state otherwise), so a crash before the next checkpoint
        cannot make a later resume evaluate, and record, this kimg twice.
        """
        with self.stop.handled():
            improved = bool(dist.all_max_int(int(self._evaluate(kimg)), self.dist))
            if signum := self.stop.agreed(True, self.dist):  # the checkpoint on disk still marks it pending
                raise Interrupted(signum, self.resumed_from or self._last_ckpt)
            self.clock.metrics_pending = None
            self._write_checkpoint()
            if improved and self.dist.is_main:
                ckpt.copy_atomic(self._last_ckpt, self.folder.best_checkpoint)

    # -- records ----------------------------------------------------------
    def _run_meta(self) -> dict[str, Any]:
        return run_records.run_meta(
            self.run,
            self.data,
            device=self.device,
            world_size=self.dist.world_size,
            bf16=self.amp_dtype is not None,
            channels_last=self.channels_last,
            threads=self.threads,
            model_facts=self.model.run_facts(),
            skipped_checkpoints=self.skipped_checkpoints,
        )

    def _finish(self, total: int) -> None:
        run_records.write_done(self.out, nimg=self.clock.nimg, target_nimg=total, steps=self.clock.step,
                               elapsed=self.clock.elapsed)  # fmt: skip


def _every(interval_kimg: float, prev_nimg: int, nimg: int) -> bool:
    """True when the tick ``(prev_nimg, nimg]`` crossed a multiple of ``interval_kimg``."""
    if interval_kimg <= 0:
        return False
    interval = interval_kimg * 1000.0
    return math.floor(nimg / interval) > math.floor(prev_nimg / interval)


@contextlib.contextmanager
def _cudnn_benchmark(on: bool) -> Iterator[None]:
    """cuDNN autotuning for the training loop only (a process-wide flag: restored afterwards)."""
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = on
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


@contextlib.contextmanager
def _intra_op_threads(n: int) -> Iterator[None]:
    """``n`` intra-op threads for the training loop only (a process-wide setting: restored afterwards)."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _cpu_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}
