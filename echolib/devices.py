"""Device names as users write them ("auto", "cpu", "cuda:1") -> torch devices, checked; and how a device runs.

Besides resolving names, this is the one home of the rules that decide how a
training process uses its device: the autocast dtype ``train.precision``
means there, whether ``train.memory_format`` means channels_last there, and
how many intra-op threads a CPU process runs.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping
from pathlib import Path

import torch

from echolib.errors import ConfigError


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` picks CUDA when present; asking for CUDA without it is an error, not a silent CPU run."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available; use device='cpu' or 'auto'")
    if device != "cpu" and not device.startswith("cuda"):
        raise ConfigError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {device!r}")
    return torch.device(device)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The dtype a training step autocasts its networks to under ``train.precision``, or None for fp32.

    ``auto`` keeps the CPU in fp32 because bf16 is only fast on CPUs with bf16
    matrix instructions (AVX512-BF16, AMX); elsewhere oneDNN emulates it and a
    step gets slower, not faster. ``bf16`` asks for it on any device.
    """
    if precision == "fp32":
        return None
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return torch.bfloat16
    if precision == "auto":
        return None
    raise ConfigError(f"train.precision must be auto, bf16 or fp32, got {precision!r}")


def cpu_has_fast_bf16() -> bool:
    """True when oneDNN runs bf16 on native instructions here (AVX512-BF16 or AMX), not by emulation."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN, or an older torch without the query
        return False


def uses_channels_last(memory_format: str, device: torch.device) -> bool:
    """Whether ``train.memory_format`` puts a run's networks and batches in channels_last on ``device``."""
    if memory_format == "auto":
        return device.type == "cuda"
    if memory_format in ("channels_last", "contiguous"):
        return memory_format == "channels_last"
    raise ConfigError(f"train.memory_format must be auto, channels_last or contiguous, got {memory_format!r}")


def cpu_threads(environ: Mapping[str, str], available: int, processes: int = 1) -> int:
    """Intra-op threads for one training process: ``OMP_NUM_THREADS`` if set, else its share of ``available`` cores.

    ``available`` is the number of cores this process may run on
    (``len(os.sched_getaffinity(0))``: a container or ``taskset`` limit, not
    the machine's count, which oversubscribes). ``processes`` training
    processes on the machine (DDP ranks) share them. ``make book`` exports
    ``OMP_NUM_THREADS=1`` so that notebook kernels building in parallel do not
    spin against each other.
    """
    value = environ.get("OMP_NUM_THREADS", "").strip()
    if value:
        first = value.split(",")[0]  # OpenMP allows a list for nested levels: the first is ours
        if not first.isdigit() or int(first) < 1:
            raise ConfigError(f"OMP_NUM_THREADS must be a positive integer, got {value!r}")
        return int(first)
    return max(1, available // max(1, processes))


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity), or the machine's count where affinity is unknown."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no sched_getaffinity
        return os.cpu_count() or 1


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux), for run records; the architecture name elsewhere."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
