"""Where frames come from: the word ``phantom`` or a path, resolved to something FrameDataset reads.

Every notebook and command takes ``data = "phantom"`` by default so a fresh
machine (no licensed EchoNet data) runs end to end. The phantom is generated
once per ``(n, size, seed)`` and cached; generation writes to a temporary folder
and renames it, so a run killed half-way leaves no cache that looks complete.
"""

from __future__ import annotations

from pathlib import Path

from echolib.data.phantom import generate
from echolib.data.writer import remove_stale_temps
from echolib.errors import DataError
from echolib.paths import PROJECT

PHANTOM = "phantom"
REPO_ROOT = PROJECT


def default_cache_dir() -> Path:
    return REPO_ROOT / ".cache"


def phantom_cache(cache_dir: str | Path | None = None, *, n: int = 2000, size: int = 128, seed: int = 0) -> Path:
    """The folder that holds (or will hold) the cached phantom for these parameters."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return root / f"phantom-n{n}-s{size}-seed{seed}"


def is_phantom(data: str | Path) -> bool:
    """Whether ``data`` names the built-in phantom rather than a path (any case, surrounding spaces)."""
    return isinstance(data, str) and data.strip().lower() == PHANTOM


def resolve_data(
    data: str | Path,
    *,
    cache_dir: str | Path | None = None,
    n: int = 2000,
    size: int = 128,
    seed: int = 0,
    workers: int = 2,
    progress: bool = True,
) -> Path:
    """``"phantom"`` -> the cached phantom folder (generated on first use); a path -> itself, checked.

    A path must be an existing folder, ``.zip`` or ``.csv`` manifest; anything
    else raises :class:`DataError` naming it. Pass the result to
    :class:`echolib.data.frames.FrameDataset`.
    """
    if is_phantom(data):
        return _cached_phantom(phantom_cache(cache_dir, n=n, size=size, seed=seed), n, size, seed, workers, progress)
    path = Path(data).expanduser()
    if not path.exists():
        raise DataError(
            f"data {str(data)!r}: no such file or folder (expected 'phantom', a folder of PNGs, a .zip or a manifest.csv)"
        )
    if path.is_file() and path.suffix.lower() not in (".zip", ".csv"):
        raise DataError(f"data {str(data)!r}: a file must be a .zip of PNGs or a manifest .csv, not {path.suffix!r}")
    return path


def _cached_phantom(folder: Path, n: int, size: int, seed: int, workers: int, progress: bool) -> Path:
    if folder.parent.is_dir():
        remove_stale_temps(folder.parent)  # leftovers of killed generations
    if (folder / "manifest.csv").is_file():
        return folder
    if folder.exists() and not any(folder.iterdir()):
        folder.rmdir()
    if folder.exists():
        raise DataError(f"phantom cache {folder} exists but has no manifest.csv; delete it to regenerate")
    try:
        return generate(folder, n, size, seed, workers=workers, progress=progress)
    except DataError:
        if (folder / "manifest.csv").is_file():  # another process finished the same cache first
            return folder
        raise
