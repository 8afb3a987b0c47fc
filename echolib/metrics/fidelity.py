"""FID, KID and precision/recall through torch-fidelity, on any registered feature extractor.

torch-fidelity computes a metric in two steps: features from an extractor, then
the statistic. echolib extracts features once per image set (with torch-fidelity's
own extractor classes, :func:`create_extractor`) and hands the same tensors to
torch-fidelity's statistic functions, so FID, KID, precision/recall, the
memorization search and the classifier test share one feature pass, and each
number equals what ``torch_fidelity.calculate_metrics`` returns on the same inputs
(a test checks this). Conventions follow torch-fidelity: ``input1`` is the
generated set, ``input2`` the real set (precision = generated samples inside the
real manifold).

Weights: ``echo`` ships with echolib (:mod:`echolib.metrics.features`).
``inception-v3-compat`` needs torch-fidelity's converted Inception file; it is
taken from ``$ECHOLIB_INCEPTION_WEIGHTS`` or torch's hub cache; when neither
exists it is downloaded into the cache if the network answers, and otherwise
the error says at once where to put which file (:func:`inception_weights_path`).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3
from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric
from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric
from torch_fidelity.metric_prc import KEY_METRIC_PRECISION, KEY_METRIC_RECALL, prc_features_to_metric
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY
from torch_fidelity.utils import create_feature_extractor

from echolib.errors import ConfigError, DataError
from echolib.metrics import features as echo_features
from echolib.progress import progress_bar

INCEPTION = "inception-v3-compat"
ENV_INCEPTION_WEIGHTS = "ECHOLIB_INCEPTION_WEIGHTS"
PIXEL = "pixel"  # the pseudo-extractor named in records of metrics on raw intensities
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
PRC_NEIGHBORHOOD = 3
TF_SEED = 2020  # torch-fidelity's default rng_seed, so KID subsets match a direct call


# -- weights ---------------------------------------------------------------------
def inception_weights_path(download: bool = True) -> Path:
    """torch-fidelity's Inception-v3 weights: ``$ECHOLIB_INCEPTION_WEIGHTS``, else torch's hub cache.

    Raises :class:`ConfigError` naming the expected file, its download address
    and both places it may go, instead of letting torch-fidelity hang on an
    offline download. ``download=False`` only looks (a report listing the
    weights on this machine must not fetch 100 MB as a side effect).
    """
    env = os.environ.get(ENV_INCEPTION_WEIGHTS)
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise ConfigError(f"${ENV_INCEPTION_WEIGHTS} points to {path}, which is not a file")
        return path
    name = URL_INCEPTION_V3.rsplit("/", 1)[-1]
    cached = Path(torch.hub.get_dir()) / "checkpoints" / name
    if cached.is_file():
        return cached
    if download and _download(URL_INCEPTION_V3, cached):
        return cached
    raise ConfigError(
        f"Inception-v3 weights for extractor {INCEPTION!r} not found. Download {URL_INCEPTION_V3} "
        f"and either save it as {cached} or set ${ENV_INCEPTION_WEIGHTS} to its path; "
        f"or use the offline domain extractor: --extractor echo"
    )


def _download(url: str, dest: Path, timeout: float = 5.0) -> bool:
    """Fetch ``url`` into torch's cache when the network answers; False at once when it does not.

    ``$ECHOLIB_OFFLINE=1`` skips the attempt. A failed or partial download
    leaves nothing behind (torch writes to a temp file and renames).
    """
    if os.environ.get("ECHOLIB_OFFLINE") == "1":
        return False
    host = urlparse(url).hostname or ""
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
    except OSError:
        return False
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(url, str(dest), progress=True)
    except Exception:  # noqa: BLE001 -- any failure means: tell the user where to put the file
        return False
    return dest.is_file()


def extractor_weights_path(name: str, download: bool = True) -> Path | None:
    """The weights file an extractor would load (None for the pixel pseudo-extractor).

    ``download=False`` only looks, for reports of what this machine holds.
    """
    if name in echo_features.ECHO_ASSETS:
        return echo_features.echo_weights_path(name=name)
    if name == INCEPTION:
        return inception_weights_path(download=download)
    if name == PIXEL:
        return None
    raise ConfigError(f"unknown feature extractor {name!r}; use one of "
                      f"{', '.join([*echo_features.ECHO_ASSETS, INCEPTION])}")


def extractor_sha256(name: str) -> str | None:
    """sha256 of the weights file behind an extractor, the identity a record carries."""
    path = extractor_weights_path(name)
    return None if path is None else echo_features.file_sha256(path)


def extractor_overlap(name: str, video_ids: list[str]) -> float | None:
    """Share of images whose video the extractor trained on (0 for Inception, which saw no echoes).

    A feature space is tuned to tell its own training frames apart, so a real
    set drawn from them is not a neutral reference. None when unknown: weights
    without a card listing their training videos, or the pixel pseudo-extractor.
    """
    if name == INCEPTION:
        return 0.0
    path = extractor_weights_path(name)
    seen = None if path is None else echo_features.training_video_digests(path)
    if seen is None or not video_ids:
        return None
    return sum(echo_features.video_digest(v) in seen for v in video_ids) / len(video_ids)


def _check_weights_only(path: Path) -> None:
    """Refuse a weights file that holds more than tensors and plain data.

    torch-fidelity itself loads Inception weights with ``weights_only=False``
    (arbitrary pickles); loading the file once with ``weights_only=True`` first
    means a tampered file fails here instead of executing code there.
    """
    try:
        torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors come in many types
        raise DataError(f"{path}: not a plain weights file ({type(exc).__name__}: {exc})") from exc


def create_extractor(name: str, device: torch.device) -> tuple[torch.nn.Module, str]:
    """A torch-fidelity feature extractor instance, on ``device``, eval mode."""
    path = extractor_weights_path(name)
    if path is None or name not in FEATURE_EXTRACTORS_REGISTRY:  # the pixel pseudo-extractor has no network
        raise ConfigError(f"feature extractor {name!r} is not registered with torch-fidelity")
    if name == INCEPTION:
        _check_weights_only(path)
    cls = FEATURE_EXTRACTORS_REGISTRY[name]
    layer = cls.get_default_feature_layer_for_metric("fid")
    extractor = create_feature_extractor(
        name, [layer], cuda=False, verbose=False, feature_extractor_weights_path=str(path)
    )
    return extractor.to(device), layer


@torch.no_grad()
def extract(extractor, layer: str, images: torch.Tensor, device: torch.device, batch: int = 250) -> torch.Tensor:
    """Features of uint8 ``[N, 1, H, W]`` images (gray replicated to RGB, as torch-fidelity expects): float32 CPU."""
    out = []
    for start in progress_bar(
        range(0, len(images), batch),
        enabled=len(images) > 4 * batch,
        desc=f"features ({extractor.get_name()})",
        leave=False,
    ):
        x = images[start : start + batch].to(device, non_blocking=True).expand(-1, 3, -1, -1)
        feats = extractor.convert_features_tuple_to_dict(extractor(x))[layer]
        out.append(feats.float().cpu())
    return torch.cat(out)


# -- statistics, by torch-fidelity ---------------------------------------------------
def fid(fake: torch.Tensor, real: torch.Tensor) -> float:
    """Frechet distance between Gaussians fitted to the two feature sets (torch-fidelity)."""
    stats_fake = fid_features_to_statistics(fake.float().cpu())
    stats_real = fid_features_to_statistics(real.float().cpu())
    return float(fid_statistics_to_metric(stats_fake, stats_real, False)[KEY_METRIC_FID])


def kid(
    fake: torch.Tensor,
    real: torch.Tensor,
    subset_size: int | None = None,
    subsets: int = KID_SUBSETS,
    seed: int = TF_SEED,
) -> tuple[float, float | None, int]:
    """KID (cubic polynomial kernel MMD^2, unbiased) averaged over random subsets: (mean, std, subset size).

    The subset size is ``min(1000, n_fake, n_real)`` unless given: KID is
    unbiased for any subset size, so small evaluations stay comparable. When
    the subsets are the whole of both sets they are all the same draw, and the
    std (0) would pass for a precise estimate: it is ``None`` then.
    """
    size = min(KID_SUBSET_SIZE, len(fake), len(real)) if subset_size is None else subset_size
    if size < 2 or size > min(len(fake), len(real)):
        raise DataError(f"KID subset size {size} needs 2 <= size <= min(n_fake={len(fake)}, n_real={len(real)})")
    out = kid_features_to_metric(
        fake.float().cpu(), real.float().cpu(), kid_subsets=subsets, kid_subset_size=size, rng_seed=seed, verbose=False
    )
    std = None if size == len(fake) == len(real) else float(out[KEY_METRIC_KID_STD])
    return float(out[KEY_METRIC_KID_MEAN]), std, size


def precision_recall(
    fake: torch.Tensor, real: torch.Tensor, neighborhood: int = PRC_NEIGHBORHOOD
) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al., 2019) with k-NN balls (torch-fidelity ``prc``)."""
    if min(len(fake), len(real)) <= neighborhood:
        raise DataError(f"precision/recall needs more than {neighborhood} images per set")
    device = fake.device
    out = prc_features_to_metric(
        fake.float(), real.float().to(device), prc_neighborhood=neighborhood, save_cpu_ram=False, verbose=False
    )
    return float(out[KEY_METRIC_PRECISION]), float(out[KEY_METRIC_RECALL])
