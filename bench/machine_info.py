"""What a session ran on, as ``machine.txt`` keeps it: the device line, then the software line.

``bench/gpu_session.sh`` and ``bench/cpu64_comparison.sh`` both write it, so
every kept session describes its machine the same way; the book reads the
first field of the first line (up to a comma) as the device's name.

    python bench/machine_info.py --device cpu > machine.txt
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import torch


def cpu_line() -> str:
    """The CPU's model, the cores this process may use and its bf16 instructions (what bounds a CPU run)."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")),
                 platform.processor() or platform.machine())
    flags = set(next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), []))
    bf16 = ",".join(f for f in ("avx512_bf16", "amx_bf16") if f in flags) or "none"
    return f"{model}, {len(os.sched_getaffinity(0))} cores, bf16 instructions: {bf16}"


def gpu_line() -> str:
    """The GPU's name, memory and driver (``nvidia-smi``'s words), or torch's view of it without the tool."""
    if shutil.which("nvidia-smi"):
        query = ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"]
        done = subprocess.run(query, capture_output=True, text=True, check=False)
        if done.returncode == 0 and done.stdout.strip():
            return done.stdout.strip().splitlines()[0]
    if not torch.cuda.is_available():
        return "no CUDA device visible"
    props = torch.cuda.get_device_properties(0)
    return f"{props.name}, {props.total_memory // 2**20} MiB"


def software_line() -> str:
    cuda = f" cuda {torch.version.cuda}" if torch.version.cuda else ""
    return f"torch {torch.__version__}{cuda} python {sys.version.split()[0]}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    args = parser.parse_args(argv)
    print(gpu_line() if args.device == "cuda" else cpu_line())
    print(software_line())


if __name__ == "__main__":
    main()
