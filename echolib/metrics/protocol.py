"""The evaluation protocol: how every row of one table is scored, owned in one place.

FID, KID and their kin are not properties of a generator alone: they depend on
the real set they are measured against, on how many real and generated images
enter, on the feature extractor's weights and on the seed of every subset. Two
numbers are comparable only when all of that is the same, so a
:class:`Protocol` holds it, scores every row of a table (a run's samples, the
published model's, a copier's training frames, the phantom) through the same
call, and stamps each record with its :attr:`Protocol.id`. A table refuses
records of two protocols (:func:`check_one_protocol`), and a reader may reuse an
earlier record only when its protocol id matches (the whole protocol, not a
name).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import torch

from echolib.errors import DataError
from echolib.metrics import fidelity
from echolib.metrics.evaluate import evaluate
from echolib.metrics.features import training_video_digests, video_digest
from echolib.metrics.inputs import ImageSet, as_image_set
from echolib.metrics.intervals import DEFAULT_REPLICATES
from echolib.metrics.registry import DEFAULT_METRICS

VERSION = "echolib.protocol/1"


@dataclass(frozen=True, eq=False)
class Protocol:
    """The real reference set, the memorisation bank, sample sizes, extractor (by sha256), seed and metrics.

    ``real`` is the set every row is compared with (a run's held-out videos);
    ``bank`` the frames a generator trained on (the memorisation search).
    Every row is scored on exactly ``n_fake`` images: a fixed set with more is
    subsampled (seeded), one with fewer is refused, since FID's bias depends on
    the sample size.
    """

    real: ImageSet
    bank: ImageSet
    n_fake: int
    extractor: str = "echo"
    seed: int = 0
    metrics: tuple[str, ...] = DEFAULT_METRICS
    replicates: int = DEFAULT_REPLICATES
    description: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)  # evaluate() keywords (c2st_folds, cache, device)

    def __post_init__(self) -> None:
        if self.n_fake < 2:
            raise DataError(f"a protocol needs at least 2 generated images per row, got n_fake={self.n_fake}")
        sizes = {tuple(self.real.images.shape[-2:]), tuple(self.bank.images.shape[-2:])}
        if len(sizes) != 1:
            raise DataError(f"the real set and the training bank differ in size ({sorted(sizes)}); load both at one")

    @property
    def n_real(self) -> int:
        return len(self.real)

    @property
    def resolution(self) -> int:
        return int(self.real.images.shape[-1])

    @cached_property
    def extractor_sha256(self) -> str | None:
        return fidelity.extractor_sha256(self.extractor)

    @cached_property
    def real_fingerprint(self) -> str:
        return self.real.fingerprint()[:16]

    @cached_property
    def extractor_overlap(self) -> float | None:
        """Share of the real images whose videos the extractor trained on (0 in every table of the book)."""
        return fidelity.extractor_overlap(self.extractor, self.real.video_ids)

    @cached_property
    def key(self) -> dict[str, Any]:
        """Everything that must match for two records to sit in one table (and for a record to be reused)."""
        return {
            "version": VERSION,
            "n_real": self.n_real,
            "n_fake": self.n_fake,
            "resolution": self.resolution,
            "real_fingerprint": self.real_fingerprint,
            "bank_fingerprint": self.bank.fingerprint()[:16],
            "extractor": self.extractor,
            "extractor_sha256": self.extractor_sha256,
            "seed": self.seed,
            "metrics": list(self.metrics),
            "replicates": self.replicates,
        }

    @cached_property
    def id(self) -> str:
        return hashlib.sha256(json.dumps(self.key, sort_keys=True).encode()).hexdigest()[:16]

    def sized(self, images: ImageSet, row: str) -> ImageSet:
        """``images`` at the protocol's size: ``n_fake`` of them (a seeded subset), refused when fewer or off-size."""
        if tuple(images.images.shape[-2:]) != (self.resolution, self.resolution):
            raise DataError(f"{row}: images are {tuple(images.images.shape[-2:])}, the protocol scores "
                            f"{self.resolution}x{self.resolution} (resample them first)")
        if len(images) < self.n_fake:
            raise DataError(f"{row}: {len(images)} images, but every row of this table is scored on "
                            f"n_fake={self.n_fake}")
        if len(images) == self.n_fake:
            return images
        g = torch.Generator().manual_seed(self.seed + 1)
        return images.subset(torch.randperm(len(images), generator=g)[: self.n_fake].sort().values)

    def evaluate(self, images: ImageSet | torch.Tensor, row: str, **context: Any) -> list[dict[str, Any]]:
        """Records of one row: ``images`` (a fixed set) against the real set, stamped with this protocol.

        ``context`` (kimg, run, kind, ...) is added to every record; ``row``
        names the row in tables and on the command line.
        """
        fake = self.sized(as_image_set(images, label=row), row)
        kimg = context.pop("kimg", None)
        records = evaluate(self.real, fake, metrics=list(self.metrics), extractor=self.extractor, train=self.bank,
                           seed=self.seed, kimg=kimg, run=context.pop("run", row), replicates=self.replicates,
                           warn_overlap=False, **self.options)
        for r in records:
            r.update(row=row, protocol=self.id, resolution=self.resolution, n_bank=len(self.bank), **context)
        return records


def check_one_protocol(records: Iterable[Mapping[str, Any]]) -> str | None:
    """The protocol id shared by ``records``; a DataError naming the rows when they were scored two ways.

    Records without a protocol (older ones, the study's reported numbers) are
    refused as well when mixed with stamped ones: nothing says how they were made.
    """
    by_protocol: dict[str | None, list[str]] = {}
    for r in records:
        by_protocol.setdefault(r.get("protocol"), []).append(str(r.get("row", r.get("run"))))
    if len(by_protocol) > 1:
        parts = [f"{pid or 'no protocol'}: {', '.join(sorted(set(rows))[:4])}" for pid, rows in by_protocol.items()]
        raise DataError("these rows were scored under different protocols (real set, sample sizes, extractor "
                        f"weights or seed) and cannot share a table: {'; '.join(parts)}")
    return next(iter(by_protocol), None)


def reference_frames(frames: ImageSet, extractor: str) -> ImageSet:
    """The frames of ``frames`` whose videos the extractor never trained on (all of them when it saw none).

    The copier row must not be made of frames the feature space learned to tell
    apart: scored against held-out videos, those look unlike any real frame it
    has not memorised, and the "floor" they set is no floor.
    """
    path = fidelity.extractor_weights_path(extractor)
    if extractor == fidelity.INCEPTION or path is None:
        return frames
    seen = training_video_digests(path)
    if seen is None:
        raise DataError(f"the {extractor!r} extractor's card does not list the videos it trained on, so no frames "
                        "can be shown to be unseen by it; retrain it with echolib.metrics.train_extractor")
    keep = [i for i, v in enumerate(frames.video_ids) if video_digest(v) not in seen]
    return frames.subset(torch.tensor(keep, dtype=torch.long))
