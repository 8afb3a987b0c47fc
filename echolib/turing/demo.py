"""Small stand-ins for real and generated frames, so the Turing-test chapter runs anywhere.

"Real" frames are phantom hearts; two "models" are other phantom hearts
(indistinguishable from the real ones by construction) and the same kind of
hearts blurred (easy to spot). An observer who judges sharpness
(:func:`echolib.turing.simulate.sharpness_chooser`) is fooled by the first
about half the time and almost never by the second, which the chapter checks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from echolib.data.phantom import generate
from echolib.images import read_gray, write_gray


def demo_sources(folder: str | Path, n: int = 24, size: int = 64, seed: int = 0) -> tuple[Path, dict[str, Path]]:
    """Write ``real/``, ``phantom/`` and ``blurred/`` (``n`` frames each) under ``folder``; reuse them if present."""
    folder = Path(folder)
    real, other, blurred = folder / "real", folder / "phantom", folder / "blurred"
    if not (real / "manifest.csv").exists():
        generate(real, n, size=size, seed=seed, workers=1, progress=False)
    if not (other / "manifest.csv").exists():
        generate(other, n, size=size, seed=seed + 1, workers=1, progress=False)
    if not blurred.exists() or len(list(blurred.glob("*.png"))) < n:
        blurred.mkdir(parents=True, exist_ok=True)
        for i, p in enumerate(sorted(other.glob("*.png"))[:n]):
            img = Image.fromarray(read_gray(p)).filter(ImageFilter.GaussianBlur(radius=2.0))
            write_gray(blurred / f"blur_{i:04d}.png", np.asarray(img))
    return real, {"phantom": other, "blurred": blurred}
