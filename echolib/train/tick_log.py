"""One tick's report: the losses summed on the device, the ``log.csv`` row built from them, and where it goes.

A tick is the loop's one host sync: the step only adds its losses to device
tensors (:class:`LossSums`), and at the tick's end one read turns them into a
row of means, speed and memory (:func:`tick_row`), which :class:`TickReport`
appends to ``log.csv``, TensorBoard and the progress bar.
"""

from __future__ import annotations

import resource
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from echolib.models.base import GenerativeModel
from echolib.progress import progress_bar
from echolib.train import distributed as dist
from echolib.train import run_records
from echolib.train.run_folder import RunFolder


class LossSums:
    """Each loss summed over the steps of the current tick, on the device, and how many steps it was seen in."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}

    @classmethod
    def from_state(cls, sums: Mapping[str, float], counts: Mapping[str, int], device: torch.device) -> LossSums:
        """The half-finished tick a mid-tick checkpoint carried (see :meth:`to_state`)."""
        out = cls()
        out.counts = dict(counts)
        out.sums = {k: torch.tensor(v, device=device, dtype=torch.float64) for k, v in sums.items()}
        return out

    def to_state(self) -> tuple[dict[str, float], dict[str, int]]:
        """Plain numbers for a checkpoint written mid-tick (a host sync: only when stopping)."""
        return {k: float(v) for k, v in self.sums.items()}, dict(self.counts)

    def add(self, losses: Mapping[str, torch.Tensor]) -> None:
        for name, value in losses.items():
            self.sums[name] = self.sums[name] + value if name in self.sums else value.clone()
            self.counts[name] = self.counts.get(name, 0) + 1

    def means(self, info: dist.DistInfo) -> dict[str, float]:
        """Each loss's mean over the tick and every rank, sorted by name: the tick's one read of the losses."""
        names = sorted(self.sums)
        if not names:
            return {}
        values = torch.stack([self.sums[k] / self.counts[k] for k in names]).to(torch.float64)
        return dict(zip(names, dist.all_mean(values, info).tolist()))


def model_stats(model: GenerativeModel, info: dist.DistInfo) -> dict[str, float]:
    """The model's own per-tick values (e.g. ADA's p), device tensors averaged over the ranks."""
    stats = {}
    for k, v in model.tick_stats().items():
        stats[k] = float(v) if not isinstance(v, torch.Tensor) else float(dist.all_mean(v.detach().double(), info))
    return stats


def tick_row(
    *,
    tick: int,
    nimg: int,
    step: int,
    elapsed: float,
    seconds: float,
    nimg_tick: int,
    losses: Mapping[str, float],
    stats: Mapping[str, float],
    device: torch.device,
) -> dict[str, Any]:
    """One ``log.csv`` row: the clock, the tick's speed, the loss means, the model's stats, peak memory.

    ``seconds`` and ``nimg_tick`` span the whole tick, across a resume that
    started mid-tick. On CUDA the peak-memory counter restarts, so each row
    holds its own tick's peak, not the first tick's cuDNN autotuning trials.
    """
    kimg_tick = nimg_tick / 1000.0
    row: dict[str, Any] = {
        "tick": tick,
        "kimg": round(nimg / 1000.0, 6),
        "step": step,
        "time_s": round(elapsed, 3),
        "sec_per_kimg": round(seconds / kimg_tick, 4) if kimg_tick else None,
        "kimg_per_s": round(kimg_tick / seconds, 5) if seconds > 0 else None,
    }
    row.update(losses)
    row.update(stats)
    row["mem_gb"] = round(peak_memory_gb(device), 4)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    return row


def peak_memory_gb(device: torch.device) -> float:
    """GPU: peak allocated since the last tick's row. CPU: the process's peak resident memory so far."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


class TickReport:
    """Where the rows go: ``log.csv`` and TensorBoard on the main rank, and the progress bar."""

    def __init__(
        self,
        out: Path,
        *,
        main: bool,
        progress: bool,
        tensorboard: bool,
        kimg: float,
        nimg: int,
        desc: str,
    ) -> None:
        self.out = out
        self.main = main
        self.writer = _tensorboard(RunFolder(out), nimg) if tensorboard and main else None
        self.bar = progress_bar(
            enabled=progress,
            total=round(kimg, 3),
            initial=round(nimg / 1000, 3),
            unit="kimg",
            desc=desc,
            dynamic_ncols=True,
            bar_format="{l_bar}{bar}| {n:.2f}/{total:.2f} kimg [{elapsed}<{remaining}{postfix}]",
        )

    def write(self, row: Mapping[str, Any], nimg: int) -> None:
        if not self.main:
            return
        run_records.append_log_row(self.out, dict(row))
        if self.writer is not None:
            for k, v in row.items():
                if k not in ("tick", "kimg", "step") and isinstance(v, (int, float)):
                    self.writer.add_scalar(k, v, global_step=nimg)
            self.writer.flush()
        bar = self.bar
        bar.update(round(min(nimg / 1000.0, bar.total) - bar.n, 3))
        bar.set_postfix({k: f"{v:.3g}" for k, v in row.items() if k.startswith(("loss", "augment_p")) and v is not None}
                        | {"kimg/s": f"{row['kimg_per_s'] or 0:.3g}"}, refresh=False)  # fmt: skip

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.bar.close()


def _tensorboard(folder: RunFolder, nimg: int) -> Any:
    """A TensorBoard writer that drops events past ``nimg`` (a resume recomputes them); None without tensorboard."""
    try:
        # lazy: tensorboard is optional
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard not installed: logs still go to log.csv
        return None
    return SummaryWriter(log_dir=str(folder.tensorboard_dir), purge_step=nimg)
