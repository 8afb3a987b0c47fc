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

A run folder is the unit of record; what it holds and the rules that keep
it one run are in :mod:`echolib.train.run_records`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import resource
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from echolib.config import dump_yaml
from echolib.data.sources import resolve_data
from echolib.devices import (
    autocast_dtype,
    available_cores,
    cpu_has_fast_bf16,
    cpu_model,
    cpu_threads,
    resolve_device,
    uses_channels_last,
)
from echolib.errors import ConfigError, TrainingError
from echolib.images import make_grid, to_float, write_gray
from echolib.io import atomic_write_text, check_writable
from echolib.metrics.perceptual import PERCEPTUAL_LOSSES
from echolib.metrics.registry import ranking_score
from echolib.models.base import GenerativeModel, RealBatch, StepContext, eval_mode
from echolib.progress import progress_bar
from echolib.train import checkpoint as ckpt
from echolib.train import distributed as dist
from echolib.train import run_lock, run_records
from echolib.train.compiling import wire_forwards
from echolib.train.ema import ema_beta, update_ema
from echolib.train.run_config import RunConfig, build_model
from echolib.train.run_folder import RunFolder


class Interrupted(Exception):
    """Training stopped by SIGINT/SIGTERM after writing a checkpoint."""

    def __init__(self, signum: int, path: Path) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}; checkpoint written to {path}")
        self.signum = signum
        self.path = path


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
    if t.metrics_kimg > 0:
        from echolib.metrics.fidelity import extractor_weights_path
        from echolib.metrics.registry import METRICS as METRIC_NAMES
        from echolib.metrics.registry import ranking_metrics

        unknown = [m for m in t.metrics if m not in METRIC_NAMES]
        if unknown or not t.metrics:
            raise ConfigError(
                f"train.metrics: unknown {unknown or 'empty list'}; choose from {', '.join(METRIC_NAMES)}"
            )
        if t.metrics[0] not in ranking_metrics():
            raise ConfigError(
                f"train.metrics: the first metric ranks the checkpoints (best.pt), and {t.metrics[0]!r} cannot; "
                f"put one of {', '.join(ranking_metrics())} first"
            )
        extractor_weights_path(t.metrics_extractor)  # unknown name or missing weights: fail now, not after a tick


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
    """Train ``run`` on ``data`` into the run folder ``out``; resume if it holds a checkpoint."""
    if kimg is not None:
        run.train.kimg = float(kimg)
    return Trainer(run, data, Path(out), device=device, resume=resume, progress=progress).fit()


class Trainer:
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
        self.run = run
        self.cfg = run.train
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
        self._lock = None
        if self.dist.is_main:
            check_writable(self.out)
            self._lock = run_lock.acquire(self.out)  # before anything in the folder is read or changed
        try:
            self.data_source = str(data)
            self.dataset = self._load_data(data)
            self.clock = Clock()
            self.model = self._build_model()
            self.optimizers = self.model.make_optimizers()
            self._check_run_folder()
            self.resumed_from: Path | None = None
            #: checkpoints this resume passed over, recorded in ``run.json`` when fitting starts
            self.skipped_checkpoints: list[dict[str, Any]] = []
            if resume:
                self._resume()
        except BaseException:
            self.close()  # a refused run leaves the folder free at once, not when this object is collected
            raise
        self._stop_signal: int | None = None

    def close(self) -> None:
        """Release the run folder for another process (also happens when this process ends)."""
        run_lock.release(self._lock)

    # -- setup ----------------------------------------------------------
    def _load_data(self, data: str | Path):
        """The training split (whole videos; ``train.holdout`` of them are kept aside)."""
        from echolib.data.frames import FrameDataset, holdout_split

        path = resolve_data(data, size=self.cfg.resolution)
        full = FrameDataset(path, resolution=self.cfg.resolution)
        self.full_fingerprint = run_records.fingerprint(full)
        train_idx, held_idx = holdout_split(full.video_ids, self.cfg.holdout, self.cfg.holdout_seed)
        ds = full.subset(train_idx) if held_idx else full
        self.heldout = full.subset(held_idx) if held_idx else None
        if self.cfg.batch > len(ds):
            raise ConfigError(
                f"batch {self.cfg.batch} is larger than the training set ({len(ds)} of {len(full)} frames in "
                f"{path}); use a smaller batch or more data"
            )
        if self.cfg.data_on_device:
            ds = ds.to(self.device)
        return ds

    def _build_model(self) -> GenerativeModel:
        torch.manual_seed(seed_for(self.cfg.seed, 0, stream=99))
        model = build_model(self.run)
        model.use_perceptual(PERCEPTUAL_LOSSES)
        model.setup(self.dataset, heldout=self.heldout)
        model.to(self.device)
        self.channels_last = self.channels_last and getattr(model, "channels_last", True)  # a model may opt out
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        wire_forwards(model, self.device, self.dist, self.cfg.compile)
        return model

    def _check_run_folder(self) -> None:
        run_records.check_run_folder(self.out, self.run, self._data_fingerprint())

    def _data_fingerprint(self) -> str:
        return self.full_fingerprint

    def _resume(self) -> None:
        found = ckpt.load_latest(
            self.folder.checkpoints_dir, arch=self.run.arch, resolution=self.cfg.resolution, map_location=self.device
        )
        if found is None:
            if self.dist.is_main:  # a run killed before its first checkpoint starts over: drop what it logged
                run_records.truncate_records(self.out, 0.0)
            return
        path, state = found.path, found.state
        for skipped in found.skipped:
            self._skipped_checkpoint(skipped, path)
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

    def _skipped_checkpoint(self, skipped: ckpt.SkippedCheckpoint, resumed_from: Path) -> None:
        """Say that a newer checkpoint did not load, set it aside, and keep a note for ``run.json``."""
        if not self.dist.is_main:
            return
        set_aside = self.folder.set_aside(skipped.path) if skipped.path.exists() else None
        kept = f"; it is kept as {set_aside.name}" if set_aside is not None else ""
        print(f"warning: resuming from {resumed_from.name}, not the newer {skipped.path.name}: {skipped.reason}{kept}",
              file=sys.stderr)  # fmt: skip
        self.skipped_checkpoints.append({
            "file": skipped.path.name,
            "reason": skipped.reason,
            "resumed_from": resumed_from.name,
            "set_aside_as": set_aside.name if set_aside is not None else None,
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        })

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
        total = round(self.cfg.kimg * 1000)
        if self.dist.is_main:
            self._write_run_files()
        done_file = self.folder.done_file
        if self.clock.metrics_pending is not None:
            self._pending_metrics()
        if self.clock.nimg >= total:
            if self.dist.is_main and not done_file.exists():
                self._finish(total)
            return self.out
        done_file.unlink(missing_ok=True) if self.dist.is_main else None
        writer = self._tensorboard()
        bar = progress_bar(
            enabled=self.progress,
            total=round(self.cfg.kimg, 3),
            initial=round(self.clock.nimg / 1000, 3),
            unit="kimg",
            desc=f"{self.run.arch}/{self.run.name}",
            dynamic_ncols=True,
            bar_format="{l_bar}{bar}| {n:.2f}/{total:.2f} kimg [{elapsed}<{remaining}{postfix}]",
        )
        sums: dict[str, torch.Tensor] = {}
        counts: dict[str, int] = dict(self.clock.counts)
        for k, v in self.clock.sums.items():
            sums[k] = torch.tensor(v, device=self.device, dtype=torch.float64)
        first_bad: dict[str, torch.Tensor] = {}
        generator = torch.Generator(device=self.device)
        tick_nimg = round(self.cfg.tick_kimg * 1000)
        t_tick = time.perf_counter()
        t_tick_elapsed = self.clock.elapsed  # at this process's start of the tick (a resume may start mid-tick)
        autocast = self._autocast_factory()
        with self._signals(), contextlib.ExitStack() as closing:
            closing.callback(bar.close)
            if self.device.type == "cuda":
                closing.enter_context(_cudnn_benchmark(self.cfg.cudnn_benchmark))
            else:
                closing.enter_context(_intra_op_threads(self.threads))
            if writer is not None:
                closing.callback(writer.close)
            while self.clock.nimg < total:
                losses, drawn = self._step(generator, autocast)
                self.clock.nimg += drawn
                self.clock.step += 1
                self._ema_update(drawn)
                for k, v in losses.items():
                    v = v.detach().to(torch.float64)
                    bad = ~torch.isfinite(v)
                    prev = first_bad.get(k)
                    step_t = torch.full((), self.clock.step - 1, device=self.device)  # a fill: no host copy
                    first_bad[k] = torch.where(bad, step_t, torch.full_like(step_t, -1)) if prev is None else torch.where(
                        (prev < 0) & bad, step_t, prev
                    )
                    sums[k] = sums[k] + v if k in sums else v.clone()
                    counts[k] = counts.get(k, 0) + 1
                if self.device.type == "cpu":
                    self._check_finite(first_bad)
                at_tick = self.clock.nimg - self.clock.tick_start_nimg >= tick_nimg or self.clock.nimg >= total
                if not at_tick and (signum := self._agreed_stop(self.clock.step % _STOP_POLL_STEPS == 0)):
                    self._check_finite(first_bad)  # never let a poisoned state become the checkpoint a resume loads
                    self._save_midtick(sums, counts, t_tick, t_tick_elapsed)
                    raise Interrupted(signum, self._last_ckpt)
                if not at_tick:
                    continue
                self._check_finite(first_bad)
                now = time.perf_counter()
                self.clock.elapsed = t_tick_elapsed + (now - t_tick)
                row = self._tick_row(sums, counts, self.clock.elapsed - self.clock.tick_start_elapsed,
                                     self.clock.nimg - self.clock.tick_start_nimg)
                sums, counts = {}, {}
                self.clock.sums, self.clock.counts = {}, {}
                prev_nimg = self.clock.tick_start_nimg
                self.clock.tick += 1
                self.clock.tick_start_nimg = self.clock.nimg
                self.clock.tick_start_elapsed = self.clock.elapsed
                self._after_tick(row, prev_nimg, total, writer, bar)
                t_tick = time.perf_counter()
                t_tick_elapsed = self.clock.elapsed
                if signum := self._agreed_stop(True):
                    if self._last_ckpt_nimg != self.clock.nimg:
                        self._save_checkpoint()
                    raise Interrupted(signum, self._last_ckpt)
        if self.dist.is_main:
            self._finish(total)
        dist.barrier(self.dist)
        return self.out

    _last_ckpt: Path = Path()
    _last_ckpt_nimg: int = -1

    def _agreed_stop(self, poll: bool) -> int:
        """The signal to stop on now, 0 to go on.

        One process acts on its own signal at once. Under DDP every rank must
        stop at the same step (a rank that stops alone waits forever for the
        others' gradients), and the signal may reach them a step apart, so the
        ranks compare flags, a collective that waits for the device, only on
        polling steps.
        """
        if not self.dist.enabled:
            return self._stop_signal or 0
        return dist.all_max_int(self._stop_signal or 0, self.dist) if poll else 0

    def _step(self, generator: torch.Generator, autocast) -> tuple[dict[str, torch.Tensor], int]:
        cfg = self.cfg
        generator.manual_seed(seed_for(cfg.seed, self.clock.step))
        torch.manual_seed(seed_for(cfg.seed, self.clock.step, stream=1))
        drawn = 0
        n = len(self.dataset)

        def next_real() -> RealBatch:
            nonlocal drawn
            idx = torch.randint(n, (cfg.batch,), generator=generator, device=self.device)
            local = ctx.local(idx)
            images = to_float(self.dataset.batch(local)).to(self.device, non_blocking=True)
            if self.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            drawn += cfg.batch
            return RealBatch(images=images, index=local)

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
        if drawn == 0:
            raise TrainingError(f"{self.run.arch}.train_step drew no real images; it must call ctx.next_real()")
        return losses, drawn

    def _autocast_factory(self):
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

    def _check_finite(self, first_bad: dict[str, torch.Tensor]) -> None:
        if not first_bad:
            return
        names = list(first_bad)
        steps = dist.all_min(torch.stack([first_bad[k].to(torch.float64) for k in names]), self.dist).tolist()
        # -1 means "never"; all_min over ranks would pick -1, so rank-local values suffice on one process.
        bad = [(int(s), k) for s, k in zip(steps, names) if s >= 0]
        if bad:
            step, name = min(bad)
            last = self._last_good_checkpoint()
            raise TrainingError(
                f"non-finite loss {name!r} at step {step} (kimg {self.clock.nimg / 1000:.3f}); "
                f"training stopped. Last good checkpoint: {last or 'none yet'}. "
                f"Lower the learning rate or check the data, then resume from it."
            )

    def _last_good_checkpoint(self) -> Path | None:
        return self.folder.latest_checkpoint()

    # -- per tick -------------------------------------------------------
    def _tick_row(self, sums, counts, seconds: float, nimg_tick: int) -> dict[str, Any]:
        names = sorted(sums)
        if names:
            vals = torch.stack([sums[k] / counts[k] for k in names]).to(torch.float64)
            vals = dist.all_mean(vals, self.dist).tolist()
        else:
            vals = []
        stats = {}
        for k, v in self.model.tick_stats().items():
            stats[k] = float(v) if not isinstance(v, torch.Tensor) else float(dist.all_mean(v.detach().double(), self.dist))
        kimg_tick = nimg_tick / 1000.0
        row: dict[str, Any] = {
            "tick": self.clock.tick,
            "kimg": round(self.clock.nimg / 1000.0, 6),
            "step": self.clock.step,
            "time_s": round(self.clock.elapsed, 3),
            "sec_per_kimg": round(seconds / kimg_tick, 4) if kimg_tick else None,
            "kimg_per_s": round(kimg_tick / seconds, 5) if seconds > 0 else None,
        }
        row.update({k: v for k, v in zip(names, vals)})
        row.update(stats)
        row["mem_gb"] = round(_peak_memory_gb(self.device), 4)
        if self.device.type == "cuda":  # each row its own tick's peak, not the first tick's cuDNN autotuning trials
            torch.cuda.reset_peak_memory_stats(self.device)
        return row

    def _after_tick(self, row: dict[str, Any], prev_nimg: int, total: int, writer, bar) -> None:
        kimg = self.clock.nimg / 1000.0
        final = self.clock.nimg >= total
        snap = _every(self.cfg.snapshot_kimg, prev_nimg, self.clock.nimg)
        sample = _every(self.cfg.sample_kimg, prev_nimg, self.clock.nimg)
        metrics = _every(self.cfg.metrics_kimg, prev_nimg, self.clock.nimg)
        if self.dist.is_main:
            run_records.append_log_row(self.out, row)
            if writer is not None:
                for k, v in row.items():
                    if k not in ("tick", "kimg", "step") and isinstance(v, (int, float)):
                        writer.add_scalar(k, v, global_step=self.clock.nimg)
                writer.flush()
            bar.update(round(min(kimg, bar.total) - bar.n, 3))
            bar.set_postfix({k: f"{v:.3g}" for k, v in row.items() if k.startswith(("loss", "augment_p")) and v is not None}
                            | {"kimg/s": f"{row['kimg_per_s'] or 0:.3g}"}, refresh=False)
        improved = False
        if metrics or (final and self.cfg.metrics_kimg > 0):
            improved = bool(dist.all_max_int(int(self._training_metrics(kimg)), self.dist))  # rank 0 evaluates
        if sample or final:
            self._sample_grid(kimg)
        if snap or final or improved:
            self._save_checkpoint()
            if improved and self.dist.is_main:
                ckpt.copy_atomic(self._last_ckpt, self.folder.best_checkpoint)

    def _save_checkpoint(self) -> None:
        self.clock.sums, self.clock.counts = {}, {}
        self._write_checkpoint()

    def _save_midtick(self, sums, counts, t_tick, t_tick_elapsed) -> None:
        self.clock.elapsed = t_tick_elapsed + (time.perf_counter() - t_tick)
        self.clock.sums = {k: float(v) for k, v in sums.items()}
        self.clock.counts = dict(counts)
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
            images = self.model.sample(self.cfg.grid_size, g)
        grid = make_grid(images, nrow=math.ceil(math.sqrt(self.cfg.grid_size)))
        write_gray(self.folder.sample_file("grid", round(kimg * 1000)), grid)
        with eval_mode(self.model):
            previews = self.model.previews()
        for name, (preview, nrow) in previews.items():
            write_gray(self.folder.sample_file(name, round(kimg * 1000)), make_grid(preview, nrow=nrow))

    def _pending_metrics(self) -> None:
        """Redo the evaluation a signal cut short, on the checkpoint written at that tick, before training on.

        Once its records are written, the checkpoint is written again without the
        pending mark (same state otherwise), so a crash before the next checkpoint
        cannot make a later resume evaluate, and record, this kimg twice.
        """
        with self._signals():
            improved = bool(dist.all_max_int(int(self._training_metrics(self.clock.metrics_pending)), self.dist))
            if signum := self._agreed_stop(True):  # the checkpoint on disk still marks the evaluation pending
                raise Interrupted(signum, self.resumed_from or self._last_ckpt)
            self.clock.metrics_pending = None
            self._write_checkpoint()
            if improved and self.dist.is_main:
                ckpt.copy_atomic(self._last_ckpt, self.folder.best_checkpoint)

    def _training_metrics(self, kimg: float) -> bool:
        """Append metric records; True when the first metric improved (:mod:`~echolib.metrics.registry`).

        A stop signal during the evaluation abandons it between sample chunks
        and marks it pending in the clock, so the checkpoint written next makes
        the resumed run evaluate this kimg first: no record is lost or doubled.
        """
        if not self.dist.is_main:
            return False
        from echolib.metrics import evaluate
        from echolib.train.sampling import SamplingStopped, model_sampler

        self.clock.metrics_pending = kimg
        try:
            records = evaluate(
                real=self.dataset,
                fake=model_sampler(self.model, batch=max(self.cfg.batch, 64), stop=lambda: self._stop_signal is not None),
                metrics=list(self.cfg.metrics),
                extractor=self.cfg.metrics_extractor,
                n=self.cfg.metrics_n,
                seed=self.cfg.seed,
                device=str(self.device),
                kimg=kimg,
                run=str(self.out),
                warn_overlap=False,  # scored against training frames by design; the records say the overlap
            )
        except SamplingStopped:
            return False
        self.clock.metrics_pending = None
        for r in records:
            r["source"] = "train"
        self.folder.append_records(records)
        head = next((r for r in records if r["metric"] == self.cfg.metrics[0]), None)
        if head is None or head["value"] is None:  # not computed, or not finite: never the best
            return False
        score = ranking_score(head["metric"], head["value"])
        if self.clock.best is None or score < self.clock.best:
            self.clock.best = score
            return True
        return False

    def _finish(self, total: int) -> None:
        atomic_write_text(
            self.folder.done_file,
            json.dumps({"kimg": self.clock.nimg / 1000.0, "target_kimg": total / 1000.0, "steps": self.clock.step,
                        "time_s": round(self.clock.elapsed, 3)}, indent=2),
        )

    def _write_run_files(self) -> None:
        atomic_write_text(self.folder.config_file, dump_yaml(self.run.to_dict()))
        meta = {
            "arch": self.run.arch,
            "config": self.run.name,
            "data": self.data_source,
            "frames": len(self.dataset) + (len(self.heldout) if self.heldout is not None else 0),
            "train_frames": len(self.dataset),
            "heldout_videos": sorted(set(self.heldout.video_ids)) if self.heldout is not None else [],
            "data_fingerprint": self._data_fingerprint(),
            "device": _device_name(self.device),
            "world_size": self.dist.world_size,
            "precision": "bf16" if self.amp_dtype is not None else "fp32",  # what train.precision meant here
            "channels_last": self.channels_last,
            "torch": torch.__version__,
            "python": sys.version.split()[0],
        }
        if self.device.type == "cpu":
            meta["threads"] = self.threads
        if facts := self.model.run_facts():
            meta["model"] = facts
        meta[RunFolder.SKIPPED_CHECKPOINTS] = self.skipped_checkpoints  # appended to earlier resumes' notes
        self.folder.write_meta(meta)

    def _tensorboard(self):
        if not (self.cfg.tensorboard and self.dist.is_main):
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard not installed: logs still go to log.csv
            return None
        return SummaryWriter(log_dir=str(self.folder.tensorboard_dir), purge_step=self.clock.nimg)

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        """SIGINT/SIGTERM: finish the current step, write a checkpoint, stop with a clear message."""
        import threading

        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum, frame):
            if self._stop_signal is not None:  # asked twice: stop now, the way the signal would without us
                for s, h in old.items():
                    signal.signal(s, h)
                signal.raise_signal(signum)
                return
            self._stop_signal = signum

        old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, h in old.items():
                signal.signal(s, h)


#: under DDP, steps between comparisons of the ranks' stop flags (each one waits for the device)
_STOP_POLL_STEPS = 16


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


def _peak_memory_gb(device: torch.device) -> float:
    """GPU: peak allocated since the last tick's row. CPU: the process's peak resident memory so far."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({cpu_model()}, {os.cpu_count()} cores)"
