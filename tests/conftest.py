"""Shared fixtures: where the real data lives, and small deterministic images."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("ECHOLIB_SHARED_DATA", ROOT.parent / "shared" / "data"))
REAL_FRAMES = SHARED / "echonet-dynamic-128" / "frames"
STUDY_SAMPLES = SHARED / "seed-reference" / "stylegan2-ada-E4-samples"
STUDY_LOGS = SHARED / "seed-reference" / "training-logs"
EXPERT_CSV = SHARED / "seed-reference" / "expert-evaluation" / "Ecocardiogramas_Evaluation_Limpio.csv"


def trainer_context(images, step: int, batch: int, conditions=None):
    """A StepContext drawn the way the Trainer draws: batch indices from the step's own generator.

    ``images`` is a uint8 ``[N, C, H, W]`` tensor (a FrameDataset's ``images``);
    the generator is seeded from the step, so a test can replay any step.
    ``conditions``: an image-conditioned model's maps of those frames, gathered into each batch.
    """
    import torch

    from echolib.models.base import StepContext
    from echolib.train.real_batches import RealDraws

    g = torch.Generator().manual_seed(1000 + step)
    return StepContext(step=step, nimg=step * batch, batch=batch, device=torch.device("cpu"), generator=g,
                       next_real=RealDraws(images, batch, g, conditions=conditions))  # fmt: skip


@contextmanager
def dispatched_ops():
    """Names of the aten operators dispatched inside the block (e.g. ``"aten.slice_backward"``), as a set."""
    from torch.utils._python_dispatch import TorchDispatchMode

    seen: set[str] = set()

    class Ops(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            seen.add(str(func.overloadpacket))
            return func(*args, **(kwargs or {}))

    with Ops():
        yield seen


def need(path: Path) -> Path:
    """Skip the calling test, with a reason, when shared real data is absent."""
    if not path.exists():
        pytest.skip(f"real data not available: {path} (set ECHOLIB_SHARED_DATA)")
    return path


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """One intra-op thread: the test models are tiny, and on a 2-core machine shared with
    subprocesses and notebook kernels torch's spinning OpenMP threads cost 5-20x (the
    Makefile also sets OMP_NUM_THREADS=1; this covers a plain `pytest`). The variable
    too, because the trainer sets its threads from it (else from every core it may use)."""
    import torch

    before, env = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    yield
    torch.set_num_threads(before)
    if env is None:
        os.environ.pop("OMP_NUM_THREADS", None)


@pytest.fixture
def real_frames() -> Path:
    return need(REAL_FRAMES)


@pytest.fixture
def study_samples() -> Path:
    return need(STUDY_SAMPLES)


@pytest.fixture(scope="session")
def noise_frames(tmp_path_factory) -> Path:
    """64 random 64x64 frames in 16 'videos': enough to exercise training mechanics fast."""
    import numpy as np
    from PIL import Image

    folder = tmp_path_factory.mktemp("noise_frames")
    rng = np.random.default_rng(0)
    for v in range(16):
        for k in range(4):
            arr = rng.integers(0, 256, (64, 64), dtype=np.uint8)
            Image.fromarray(arr, "L").save(folder / f"0XNOISE{v:03d}_f{k}.png")
    return folder


@pytest.fixture
def lpips_weights(tmp_path, monkeypatch):
    """Randomly initialised VGG16 and LPIPS linear layers saved as weights files and named by the variables.

    The real weights cannot be downloaded here; these exercise the real loading
    path and network with untrained numbers (linear weights non-negative, as LPIPS's are).
    """
    import torch
    import torchvision
    from torch_fidelity.sample_similarity_lpips import NetLinLayer

    from echolib.metrics import lpips

    torch.manual_seed(0)
    vgg = torchvision.models.vgg16(weights=None).features
    torch.save({f"features.{k}": v for k, v in vgg.state_dict().items()}, tmp_path / "vgg16.pth")
    lins = {f"lin{i}": NetLinLayer(c, use_dropout=True) for i, c in enumerate(lpips.CHANNELS)}
    for layer in lins.values():
        torch.nn.init.uniform_(layer.model[1].weight, 0.0, 1.0)
    torch.save(torch.nn.ModuleDict(lins).state_dict(), tmp_path / "lin.pth")
    monkeypatch.setenv(lpips.ENV_VGG16_WEIGHTS, str(tmp_path / "vgg16.pth"))
    monkeypatch.setenv(lpips.ENV_LPIPS_WEIGHTS, str(tmp_path / "lin.pth"))
    return tmp_path / "vgg16.pth", tmp_path / "lin.pth"


@pytest.fixture
def no_lpips_weights(tmp_path, monkeypatch):
    """Neither variable set and an empty torch hub: LPIPS is unavailable whatever this machine caches."""
    from echolib.metrics import lpips

    monkeypatch.delenv(lpips.ENV_VGG16_WEIGHTS, raising=False)
    monkeypatch.delenv(lpips.ENV_LPIPS_WEIGHTS, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-hub"))
