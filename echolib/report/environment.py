"""What a reader needs to rebuild a number: versions, device, data hashes."""

from __future__ import annotations

import hashlib
import os
import platform
from pathlib import Path

import pandas as pd
import torch

from echolib.dependencies import dependency_rows


def dependency_table() -> pd.DataFrame:
    """Every dependency of ``pyproject.toml`` with its installed and locked version and what it is used for."""
    return pd.DataFrame(dependency_rows()).set_index("package")


def device_info() -> dict[str, str]:
    info = {
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": str(os.cpu_count()),
        "cuda_available": str(torch.cuda.is_available()),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = str(torch.version.cuda)
    return info


def folder_sha256(folder: str | Path, pattern: str = "*.png") -> tuple[str, int]:
    """sha256 over (name, bytes) of every matching file in sorted order, and the file count."""
    folder = Path(folder)
    h = hashlib.sha256()
    files = sorted(folder.glob(pattern)) if folder.is_dir() else [folder]
    for p in files:
        h.update(p.name.encode() + b"\0")
        h.update(p.read_bytes())
    return h.hexdigest(), len(files)
