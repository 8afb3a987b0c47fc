"""Shared fixtures: where the real data lives, and small deterministic images."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("ECHOLIB_SHARED_DATA", ROOT.parent / "shared" / "data"))
REAL_FRAMES = SHARED / "echonet-dynamic-128" / "frames"
STUDY_SAMPLES = SHARED / "seed-reference" / "stylegan2-ada-E4-samples"
STUDY_LOGS = SHARED / "seed-reference" / "training-logs"
EXPERT_CSV = SHARED / "seed-reference" / "expert-evaluation" / "Ecocardiogramas_Evaluation_Limpio.csv"


def need(path: Path) -> Path:
    """Skip the calling test, with a reason, when shared real data is absent."""
    if not path.exists():
        pytest.skip(f"real data not available: {path} (set ECHOLIB_SHARED_DATA)")
    return path


@pytest.fixture
def real_frames() -> Path:
    return need(REAL_FRAMES)


@pytest.fixture
def study_samples() -> Path:
    return need(STUDY_SAMPLES)
