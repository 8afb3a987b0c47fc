"""Which feature extractor weights this machine would load, and which ones made the book's numbers.

A FID under one set of weights is a different metric from a FID under another,
so a rebuilt number is only the same number when the weights are the same
file. Every metric record carries its extractor's name and the sha256 of its
weights; this table puts the weights on this machine beside the records of a
runs folder and counts the records that another file produced.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd

from echolib.errors import ConfigError
from echolib.metrics.features import ECHO, ECHO_V1, ENV_ECHO_WEIGHTS, file_sha256
from echolib.metrics.fidelity import ENV_INCEPTION_WEIGHTS, INCEPTION, PIXEL, extractor_weights_path
from echolib.metrics.lpips import ENV_LPIPS_WEIGHTS, ENV_VGG16_WEIGHTS, lpips_weights_paths
from echolib.metrics.lpips import NAME as LPIPS
from echolib.metrics.records import read_records
from echolib.paths import shown_path
from echolib.train.run_folder import RunFolder

# (extractor as records name it, the variable that overrides its weights, what it scores)
EXTRACTORS: tuple[tuple[str, str, str], ...] = (
    (ECHO, ENV_ECHO_WEIGHTS, "FID, KID, precision/recall, memorization, C2ST (ships with echolib)"),
    (ECHO_V1, "-", "the first echo extractor, kept so that its records stay readable (ships with echolib)"),
    (INCEPTION, ENV_INCEPTION_WEIGHTS, "FID, KID, precision/recall as published"),
    (LPIPS, ENV_LPIPS_WEIGHTS, f"LPIPS (with {ENV_VGG16_WEIGHTS})"),
)


def _weights_here(name: str) -> Path:
    """The file this machine would load for ``name``, without downloading; ConfigError when there is none."""
    if name == LPIPS:
        return lpips_weights_paths()[1]  # records carry the sha256 of LPIPS's own (linear) weights
    path = extractor_weights_path(name, download=False)
    if path is None:
        raise ConfigError(f"feature extractor {name!r} reads no weights file")
    return path


def record_extractors(runs: str | Path) -> Counter[tuple[str, str | None]]:
    """(extractor, weights sha256) of every metric record in ``runs/<arch>/<config>/metrics.jsonl``."""
    counts: Counter[tuple[str, str | None]] = Counter()
    for path in sorted(Path(runs).glob(f"*/*/{RunFolder.METRICS}")):
        for rec in read_records(path):
            if rec.get("extractor"):
                counts[(rec["extractor"], rec.get("extractor_sha256"))] += 1
    return counts


def extractor_table(runs: str | Path | None = None) -> pd.DataFrame:
    """One row per extractor: weights file found here (nothing is downloaded), sha256, records in ``runs``.

    ``records, other weights`` counts records whose sha256 differs from the file
    found here: those numbers cannot be rebuilt on this machine as they are.
    """
    counts = record_extractors(runs) if runs is not None else Counter()
    rows = []
    for name, env, scores in EXTRACTORS:
        try:
            path = _weights_here(name)
            weights, sha = shown_path(path), file_sha256(path)
        except ConfigError:  # the metric's own error says where to put the file
            weights, sha = "not found", None
        mine = {k: n for k, n in counts.items() if k[0] == name}
        row: dict[str, str | int] = {"extractor": name, "scores": scores, "override": env, "weights": weights,
                                     "sha256": sha[:16] if sha else "-"}
        if runs is not None:
            row["records"] = sum(mine.values())
            row["records, other weights"] = sum(n for (_, s), n in mine.items() if s != sha)
        rows.append(row)
    for name in sorted({k[0] for k in counts} - {e[0] for e in EXTRACTORS}):
        # the pixel pseudo-extractor (JSD, SSIM, PSNR, MS-SSIM on intensities) has no weights to differ
        rows.append({"extractor": name, "scores": "pixel statistics" if name == PIXEL else "unknown to echolib",
                     "override": "-", "weights": "-", "sha256": "-",
                     "records": sum(n for k, n in counts.items() if k[0] == name), "records, other weights": 0})
    return pd.DataFrame(rows).set_index("extractor")
