"""Evaluation: torch-fidelity metrics on a domain extractor, the study's pixel statistics, memorization, C2ST.

Public API (stable; the trainer, the command line and the notebooks call it):

* :func:`evaluate` ``(real, fake, metrics, extractor="inception-v3-compat", train=None, n=None, seed=0,
  device="auto", kimg=None, run=None) -> list[dict]``: one record per metric value.
* :func:`append_records` ``(path, records)``: append to a run's ``metrics.jsonl``.
* :data:`METRICS`: every metric name; :data:`DEFAULT_METRICS`: those computed by default.
* :func:`extractor_sha256` ``(name)``: the identity of an extractor's weights.

Modules: :mod:`~echolib.metrics.fidelity` (FID/KID/precision-recall via
torch-fidelity, Inception weights), :mod:`~echolib.metrics.features` (the ``echo``
extractor), :mod:`~echolib.metrics.pixel` (JSD, SSIM, PSNR, MS-SSIM),
:mod:`~echolib.metrics.memorization`, :mod:`~echolib.metrics.c2st`,
:mod:`~echolib.metrics.lpips`, :mod:`~echolib.metrics.perceptual` (the perceptual losses the
trainer hands to models), :mod:`~echolib.metrics.records`,
:mod:`~echolib.metrics.registry` (what each metric is, its direction, whether it ranks),
:mod:`~echolib.metrics.intervals` (uncertainty of set-to-set metrics),
:mod:`~echolib.metrics.corruptions` (sanity-check degradations),
:mod:`~echolib.metrics.train_extractor` (the ``echo`` training recipe).
"""

from echolib.metrics.evaluate import evaluate
from echolib.metrics.fidelity import extractor_sha256
from echolib.metrics.records import append_records, make_record, read_records
from echolib.metrics.registry import DEFAULT_METRICS, METRICS

__all__ = [
    "DEFAULT_METRICS",
    "METRICS",
    "append_records",
    "evaluate",
    "extractor_sha256",
    "make_record",
    "read_records",
]
