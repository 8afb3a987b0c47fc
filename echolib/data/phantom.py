"""The built-in phantom as a frame folder: frames, LV masks and manifest, written as one unit.

Frames come from the simulator (:mod:`echolib.data.phantom_sim`); this module
names them like the study's frames (``PH<seed>H<heart>_f<k>.png``, four per
heart), records each one's true phase in the manifest
(:mod:`echolib.data.manifest`) and writes the folder through the shared writer
(:mod:`echolib.data.writer`): in worker processes, into a temporary folder that
is renamed into place only when complete. The same seed gives the same bytes
whatever the worker count.
"""

from __future__ import annotations

from pathlib import Path

import cv2

from echolib.data.manifest import MANIFEST, FrameRecord, video_id_of, write_manifest
from echolib.data.phantom_sim import FRAMES_PER_HEART, phase_label, render_hearts
from echolib.data.writer import run_jobs, staged_folder, write_mask, write_png
from echolib.errors import DataError

#: what k = 0..3 of a heart is: its clip's first frame, the first ES, the first ED, the last frame
ROLES = ("first", "ES", "ED", "last")


def frame_name(seed: int, heart: int, k: int) -> str:
    """EchoNet-style name: ``PH<seed>H<heart>`` plays the video id, so frames group by heart."""
    return f"PH{seed}H{heart:06d}_f{k}.png"


def _write_hearts(job: tuple[Path, int, int, int, int, int]) -> list[FrameRecord]:
    """Render and write hearts ``[lo, hi)``, keeping only the first ``n`` frames overall; return their records."""
    out, seed, size, lo, hi, n = job
    cv2.setNumThreads(1)
    records = []
    for start in range(lo, hi, 32):
        ids = list(range(start, min(hi, start + 32)))
        rendered, _, phases = render_hearts(seed, ids, size)
        for j, h in enumerate(ids):
            for k in range(min(FRAMES_PER_HEART, n - h * FRAMES_PER_HEART)):
                i = j * FRAMES_PER_HEART + k
                name, mask, phase = frame_name(seed, h, k), rendered.lv_masks[i], float(phases[j, k])
                write_png(out / name, rendered.frames[i], atomic=False)
                write_mask(out / "masks" / name, mask, atomic=False)
                records.append(FrameRecord(
                    file=name, video_id=video_id_of(name), k=k, role=ROLES[k], phase=round(phase, 4),
                    phase_label=phase_label(phase), phase_source="phantom", lv_area=int(mask.sum()),
                    mask=f"masks/{name}",
                ))
    return records


def generate(out: str | Path, n: int, size: int = 128, seed: int = 0, *, workers: int = 2,
             progress: bool = True) -> Path:
    """Write ``n`` phantom frames, their LV masks (``masks/``) and ``manifest.csv`` into the new folder ``out``.

    ``out`` appears only when complete (:func:`~echolib.data.writer.staged_folder`).
    """
    out = Path(out)
    if n < 1 or size < 32:
        raise DataError(f"phantom: need n >= 1 and size >= 32, got n={n}, size={size}")
    with staged_folder(out, "phantom") as tmp:
        (tmp / "masks").mkdir()
        n_hearts = -(-n // FRAMES_PER_HEART)
        chunk = max(1, min(64, -(-n_hearts // max(1, workers * 4))))
        jobs = [(tmp, seed, size, lo, min(n_hearts, lo + chunk), n) for lo in range(0, n_hearts, chunk)]
        parts = run_jobs(_write_hearts, jobs, workers=workers, progress=progress, desc="phantom", unit="heart",
                         size=lambda job: job[4] - job[3])
        write_manifest(tmp / MANIFEST, [record for part in parts for record in part])
    return out
