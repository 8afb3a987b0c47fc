"""Sample quality against the number of ODE steps: what a diffusion model's sampler buys per network evaluation.

A diffusion model is sampled by integrating an ODE, and the step count is the
knob that trades time for quality after training is over. The same starting
noise integrated by each solver at each step count, scored by the same metrics,
shows where quality saturates and how much of it a cheaper solver keeps; that is
what a reader needs before choosing ``steps`` for 10,000 synthetic frames.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import matplotlib.pyplot as plt
import torch

from echolib.errors import ConfigError
from echolib.images import to_uint8
from echolib.metrics import evaluate
from echolib.models.base import GenerativeModel
from echolib.models.diffusion import Sampler, network_evaluations
from echolib.train.sampling import model_sampler


@dataclass
class StepsComparison:
    """One row per (sampler, steps) and the first ``preview`` frames of each, for a grid."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    previews: list[torch.Tensor] = field(default_factory=list)


def compare_steps(
    model: GenerativeModel,
    real: Any,
    samplers: Sequence[Sampler],
    step_counts: Sequence[int],
    *,
    n: int,
    metrics: Sequence[str] = ("fid", "kid"),
    extractor: str = "echo",
    seed: int = 0,
    batch: int = 64,
    preview: int = 8,
    device: str | torch.device = "auto",
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> StepsComparison:
    """Score ``n`` samples per (sampler, step count) against all of ``real`` (a folder, dataset or uint8 tensor).

    Every row starts from the same noise (``seed``), so rows differ only by the
    solver. Each row holds ``sampler``, ``steps``, ``nfe`` (network evaluations
    per image), ``seconds`` and ``images_per_s`` of sampling (metrics excluded),
    the pixel ``mean`` and ``std`` in [-1, 1] (too few steps leave blurred,
    low-contrast averages), and one column per metric; ``extractor`` names the feature space, as in
    :func:`echolib.metrics.evaluate`. ``on_row`` sees each row as soon as it is
    scored: a comparison cut off by a time limit still leaves the rows it finished.
    """
    if not hasattr(model.cfg, "sampler"):
        raise ConfigError(f"compare_steps: {model.arch} has no ODE sampler; it needs a diffusion model")
    if n < 2 or not samplers or not step_counts:
        raise ConfigError(f"compare_steps: need n >= 2 and at least one sampler and step count, got n={n}, "
                          f"samplers={list(samplers)}, step_counts={list(step_counts)}")
    out = StepsComparison()
    for solver in samplers:
        for steps in step_counts:
            draw = model_sampler(model, batch=batch, steps=int(steps), sampler=solver)
            generator = torch.Generator(device=model.device).manual_seed(seed)
            t0 = time.perf_counter()
            fake = draw(n, generator)
            if model.device.type == "cuda":
                torch.cuda.synchronize(model.device)
            seconds = time.perf_counter() - t0
            records = evaluate(real, to_uint8(fake), metrics=list(metrics), extractor=extractor, seed=seed,
                               device=device)
            row: dict[str, Any] = {"sampler": solver, "steps": int(steps), "nfe": network_evaluations(solver, steps),
                                   "seconds": seconds, "images_per_s": n / seconds,
                                   "mean": fake.mean().item(), "std": fake.std().item()}
            row.update({r["metric"]: r["value"] for r in records})
            row["extractor"] = extractor
            out.rows.append(row)
            out.previews.append(fake[:preview])
            if on_row is not None:
                on_row(row)
    return out


def steps_figure(rows: Sequence[dict[str, Any]], metrics: Sequence[str], *,
                 reference: dict[str, float] | None = None, reference_label: str = "reference",
                 title: str | None = None):
    """One panel per metric against network evaluations (log scale), one line per sampler.

    ``rows`` are :func:`compare_steps` rows or the JSON lines of
    ``bench/sampler_steps.py``; ``reference`` draws a dashed line per metric
    (e.g. the real frames' pixel standard deviation, or another model's FID).
    """
    missing = [m for m in metrics if not any(m in r for r in rows)]
    if missing or not rows:
        raise ConfigError(f"steps_figure: no {', '.join(missing) or 'rows'} in the rows to plot")
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.3 * len(metrics), 3.1), squeeze=False)
    samplers = list(dict.fromkeys(r["sampler"] for r in rows))
    for ax, metric in zip(axes.flat, metrics):
        for i, solver in enumerate(samplers):
            pts = sorted((r["nfe"], r[metric]) for r in rows if r["sampler"] == solver and r.get(metric) is not None)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", c=f"C{i}", label=solver)
        if reference and metric in reference:
            ax.axhline(reference[metric], ls="--", c="k", lw=0.8, label=reference_label)
        ax.set_xscale("log")
        ax.set_xlabel("network evaluations per image (NFE)")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
