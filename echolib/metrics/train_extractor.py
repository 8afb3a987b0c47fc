"""Train the ``echo`` feature extractor: contrastive learning on real echo frames, deterministic.

Recipe (SimCLR, Chen et al. 2020, adapted to echocardiography):

* **Data.** Real 128x128 frames (``--data``, e.g. ``shared/data/echonet-dynamic-128/frames``),
  split by video with :meth:`FrameDataset.split` (fractions 0.8/0.1/0.1, seed 0):
  the extractor sees only the ``train`` videos; ``val`` and ``test`` videos stay
  unseen for the sanity checks below and for the metric tests.
* **Positive pairs.** Two augmented views of one frame (instance discrimination);
  one frame per video in a batch, so the other 2B - 2 views, all of other
  hearts, are the negatives.
* **Augmentations that keep anatomy, and only those that are nuisances.** A
  random whole-pixel shift within +-3 px (probe placement; exact, no resampling)
  and a random gain and gamma of +-5 % (machine settings). The first extractor
  (``echo-v1``) allowed +-10 %, which taught it to ignore a frame's overall
  brightness, one of the ways generated frames go wrong (a darker set scored
  close to real); without any, the network found brightness the easiest way to
  tell frames apart, and its features followed brightness more than blur or
  distorted anatomy. Between the two, a 5 % darker set and a 1 px blurred one
  move its FID about equally (the metric validation suite measures this for
  the shipped weights). Deliberately absent:
  noise, blur and smoothing (a network taught to ignore them gives a metric blind
  to the most common generator failures) and rotation, zoom or any resampling.
  Trials with small random affines (rotation +-4 to 6 degrees, zoom +-5 to 8 %),
  and with two different frames of one clip as positives, gave features nearly
  invariant to smooth elastic distortion: FID no longer grew with a distorted
  anatomy. The affine and multi-frame options remain in :class:`Recipe`
  (``rotate_deg``, ``scale``, ``same_frame``) for such experiments.
* **Network.** :class:`echolib.metrics.features.EchoEncoder` (about 0.7 M
  parameters) plus a two-layer projection head (discarded after training),
  NT-Xent loss with temperature 0.2, AdamW (lr 1e-3, weight decay 1e-4, 12 warm-up
  steps then cosine decay), batch 64 videos, 240 steps (about 7.6 passes over the training videos).
* **Features and standardisation.** The ``moments`` readout: each channel's
  spatial mean and standard deviation at the stem and stages 1 and 2, and the
  trained 256-d head's means (592 numbers; :mod:`echolib.metrics.features` says
  why the spreads). The readout does not change training, only what is read
  out afterwards. After training, the mean and standard deviation of each
  feature over all training frames are stored in the network, so its output
  has unit variance per dimension on real data.
* **Determinism.** One seed drives every draw (torch generators, no global RNG),
  ``torch.use_deterministic_algorithms(True)`` and a fixed thread count: the
  same command on the same machine writes the same bytes. The sha256 of the
  weights file identifies the extractor in every metric record.

The JSON written next to the weights holds the recipe, the loss curve, the
sha256, and the sanity checks on held-out videos: FID between two disjoint real
video sets (should be near 0), FID against real frames corrupted at three
strengths of noise, blur, speckle smoothing and elastic distortion (should grow
monotonically), FID against the built-in phantom (should be large), and
same-video retrieval accuracy.

Run::

    python -m echolib.metrics.train_extractor --data ../shared/data/echonet-dynamic-128/frames \\
        --out echolib/assets/echo_extractor.pt
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import math
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import yaml
from torch import nn

from echolib.data.frames import FrameDataset
from echolib.io import atomic_torch_save, atomic_write_text
from echolib.metrics import corruptions
from echolib.metrics.features import EchoEncoder, echo_checkpoint, file_sha256, video_digest
from echolib.metrics.fidelity import fid, kid
from echolib.metrics.references import phantom_image_set


@dataclass
class Recipe:
    """Every knob of the extractor's training; the defaults are the shipped recipe."""

    seed: int = 0  # drives initialisation, batches and augmentations
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)  # train/val/test fractions by video
    split_seed: int = 0  # seed of the by-video split (FrameDataset.split)
    steps: int = 240  # optimisation steps (about 7.6 passes over the training videos)
    batch: int = 64  # videos per step (two views each)
    lr: float = 1e-3  # AdamW peak learning rate
    weight_decay: float = 1e-4  # AdamW weight decay
    warmup: int = 12  # linear warm-up steps before cosine decay
    temperature: float = 0.2  # NT-Xent temperature
    same_frame: float = 1.0  # probability that both views come from the same frame (1: instance discrimination)
    rotate_deg: float = 0.0  # max absolute rotation of the affine augmentation (0: none, see docstring)
    scale: float = 0.0  # max relative zoom of the affine augmentation (0: none)
    shift_px: int = 3  # max shift in whole pixels (exact, no interpolation when rotation and zoom are 0)
    gain: float = 0.05  # max relative gain change (see the module docstring for why so little)
    gamma: float = 0.05  # max relative gamma change (gamma in [1 - g, 1 + g])
    widths: tuple[int, ...] = (24, 48, 96, 192)  # encoder stage widths
    dim: int = 256  # feature dimension
    readout: str = "moments"  # the features read from a frame (EchoEncoder.pooled): pooled means, or means and stds
    proj_dim: int = 128  # projection head output (training only)
    threads: int = 2  # torch CPU threads (fixed for reproducibility)


class Projector(nn.Module):
    def __init__(self, dim: int, out: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.net(x), dim=1)


def augment(x: torch.Tensor, r: Recipe, g: torch.Generator) -> torch.Tensor:
    """Random affine plus gain/gamma on float ``[B, 1, H, W]`` in [-1, 1]; the background stays black."""
    b = x.shape[0]

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(b, generator=g)

    angle = uniform(-r.rotate_deg, r.rotate_deg) * (math.pi / 180)
    zoom = uniform(1 - r.scale, 1 + r.scale)
    shift = (
        torch.randint(-r.shift_px, r.shift_px + 1, (b,), generator=g).float(),
        torch.randint(-r.shift_px, r.shift_px + 1, (b,), generator=g).float(),
    )
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack(
        [
            torch.stack([cos, -sin, shift[0] * 2 / x.shape[-1]], 1),
            torch.stack([sin, cos, shift[1] * 2 / x.shape[-2]], 1),
        ],
        1,
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    unit = F.grid_sample((x + 1) / 2, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    gain = uniform(1 - r.gain, 1 + r.gain).view(b, 1, 1, 1)
    gamma = uniform(1 - r.gamma, 1 + r.gamma).view(b, 1, 1, 1)
    unit = (unit.clamp(0, 1) ** gamma * gain).clamp(0, 1)
    return unit * 2 - 1


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR loss: each view must pick its partner among the other 2B - 1 views."""
    z = torch.cat([z1, z2])
    logits = z @ z.T / temperature
    logits.fill_diagonal_(float("-inf"))
    b = z1.shape[0]
    target = torch.cat([torch.arange(b, 2 * b), torch.arange(0, b)])
    return F.cross_entropy(logits, target)


def video_groups(ds: FrameDataset) -> list[torch.Tensor]:
    """Frame indices of each video, in a fixed order (sorted video ids)."""
    groups: dict[str, list[int]] = {}
    for i, v in enumerate(ds.video_ids):
        groups.setdefault(v, []).append(i)
    return [torch.tensor(groups[v]) for v in sorted(groups)]


def draw_pairs(groups: list[torch.Tensor], order: torch.Tensor, same_frame: float, g: torch.Generator):
    """Two frame indices per video of ``order``: same frame with probability ``same_frame``."""
    first, second = [], []
    for v in order.tolist():
        frames = groups[v]
        k = len(frames)
        i = int(torch.randint(k, (1,), generator=g))
        j = i
        if k > 1 and float(torch.rand(1, generator=g)) >= same_frame:
            j = (i + 1 + int(torch.randint(k - 1, (1,), generator=g))) % k
        first.append(int(frames[i]))
        second.append(int(frames[j]))
    return torch.tensor(first), torch.tensor(second)


def lr_at(step: int, r: Recipe) -> float:
    if step < r.warmup:
        return r.lr * (step + 1) / r.warmup
    t = (step - r.warmup) / max(1, r.steps - r.warmup)
    return r.lr * 0.5 * (1 + math.cos(math.pi * t))


def train(train_set: FrameDataset, r: Recipe, log_every: int = 10) -> tuple[EchoEncoder, list[dict]]:
    torch.manual_seed(r.seed)  # module initialisation draws from the global generator
    encoder = EchoEncoder(r.widths, r.dim, r.readout).to(memory_format=torch.channels_last)
    head = Projector(r.dim, r.proj_dim)
    params = list(encoder.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=r.lr, weight_decay=r.weight_decay)
    g = torch.Generator().manual_seed(r.seed + 1)
    groups = video_groups(train_set)
    order = torch.randperm(len(groups), generator=g)
    cursor, history, started = 0, [], time.time()
    for step in range(r.steps):
        if cursor + r.batch > len(order):
            order, cursor = torch.randperm(len(groups), generator=g), 0
        vids = order[cursor : cursor + r.batch]
        cursor += r.batch
        i, j = draw_pairs(groups, vids, r.same_frame, g)
        x = torch.cat([train_set.batch(i), train_set.batch(j)]).float().mul_(2 / 255).sub_(1)
        x = augment(x, r, g).contiguous(memory_format=torch.channels_last)
        z = head(encoder.embed(x))
        loss = nt_xent(z[: len(i)], z[len(i) :], r.temperature)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, r)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % log_every == 0 or step == r.steps - 1:
            history.append(
                {
                    "step": step,
                    "loss": round(float(loss.detach()), 5),
                    "lr": lr_at(step, r),
                    "seconds": round(time.time() - started, 1),
                }
            )
            print(json.dumps(history[-1]), file=sys.stderr, flush=True)
    encoder.eval()
    return encoder, history


@torch.no_grad()
def embed_all(encoder: EchoEncoder, images: torch.Tensor, batch: int = 250, raw: bool = False) -> torch.Tensor:
    """Standardised features (or, with ``raw``, the unstandardised pooled averages) of uint8 images."""
    out = []
    for s in range(0, len(images), batch):
        x = images[s : s + batch].float().mul_(2 / 255).sub_(1).contiguous(memory_format=torch.channels_last)
        out.append(encoder.pooled(x) if raw else encoder(x))
    return torch.cat(out)


@torch.no_grad()
def standardise(encoder: EchoEncoder, images: torch.Tensor) -> None:
    """Store each feature's mean and standard deviation over ``images`` (the training frames) in the network."""
    feats = embed_all(encoder, images, raw=True).double()
    encoder.feat_mean.copy_(feats.mean(0).float())
    encoder.feat_std.copy_(feats.std(0).clamp_min(1e-6).float())


def retrieval_top1(feats: torch.Tensor, video_ids: list[str]) -> float:
    """Share of frames whose nearest other frame (cosine) belongs to the same video."""
    f = F.normalize(feats, dim=1)
    sim = f @ f.T
    sim.fill_diagonal_(-2)
    nn_idx = sim.argmax(1)
    return float(sum(video_ids[i] == video_ids[int(j)] for i, j in enumerate(nn_idx)) / len(video_ids))


def sanity_checks(
    encoder: EchoEncoder,
    val: FrameDataset,
    test: FrameDataset,
    phantom: torch.Tensor | None,
    n_corrupt: int | None = None,
) -> dict:
    """Held-out checks that the features make a sensible metric (see module docstring).

    Corruptions are applied to the test frames (or the first ``n_corrupt``: whole
    videos, names are sorted) and compared with the validation videos; the
    baseline is the same uncorrupted frames against the validation videos.
    """
    f_val, f_test = embed_all(encoder, val.images), embed_all(encoder, test.images)
    sub = test.images[:n_corrupt] if n_corrupt else test.images
    f_sub = f_test[:n_corrupt]
    out: dict = {
        "n_val": len(val),
        "n_test": len(test),
        "fid_val_vs_test": fid(f_val, f_test),
        "kid_val_vs_test": kid(f_val, f_test)[0],
        "retrieval_top1_test": retrieval_top1(f_test, test.video_ids),
        "n_corrupted": len(sub),
        "fid_val_vs_test_subset": fid(f_sub, f_val),
        "corruptions": {},
    }
    for kind, strengths in corruptions.STRENGTHS.items():
        rows = []
        for s in strengths:
            f_bad = embed_all(encoder, corruptions.corrupt(sub, kind, s, seed=1))
            rows.append({"strength": s, "fid": fid(f_bad, f_val), "kid": kid(f_bad, f_val)[0]})
        out["corruptions"][kind] = rows
        out["corruptions_monotone"] = (
            out.get("corruptions_monotone", True)
            and all(a["fid"] < b["fid"] for a, b in itertools.pairwise(rows))
            and rows[0]["fid"] > out["fid_val_vs_test_subset"]
        )
    if phantom is not None:
        f_ph = embed_all(encoder, phantom)
        out["fid_phantom_vs_test"] = fid(f_ph, f_test)
        out["kid_phantom_vs_test"] = kid(f_ph, f_test)[0]
        out["n_phantom"] = len(phantom)
    return out


def phantom_frames(n_hearts: int, seed: int = 12345) -> torch.Tensor:
    return phantom_image_set(n_hearts, seed=seed).images


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m echolib.metrics.train_extractor",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", required=True, help="folder/zip/manifest of real 128x128 frames")
    p.add_argument("--out", default="echolib/assets/echo_extractor.pt", help="weights file to write (+ .json)")
    p.add_argument("--steps", type=int, default=None, help="override the recipe's step count (for smoke runs)")
    p.add_argument("--seed", type=int, default=0, help="training seed")
    p.add_argument("--phantom-hearts", type=int, default=100, help="phantom hearts for the sanity check (0: skip)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a recipe field, e.g. --set gain=0 --set steps=1000 (repeatable)")
    args = p.parse_args(argv)

    recipe = Recipe(seed=args.seed)
    if args.steps is not None:
        recipe = dataclasses.replace(recipe, steps=args.steps)
    recipe = _override(recipe, args.set)
    torch.set_num_threads(recipe.threads)
    torch.use_deterministic_algorithms(True)
    data = FrameDataset(args.data)
    parts = data.split(recipe.split, seed=recipe.split_seed)
    train_set = parts["train"]
    print(f"train {len(train_set)} frames / {len(set(train_set.video_ids))} videos", file=sys.stderr)
    started = time.time()
    encoder, history = train(train_set, recipe)
    standardise(encoder, train_set.images)
    train_seconds = time.time() - started
    out = Path(args.out)
    atomic_torch_save(echo_checkpoint(encoder, recipe=dataclasses.asdict(recipe)), out)
    phantom = phantom_frames(args.phantom_hearts) if args.phantom_hearts > 0 else None
    report = {
        "file": out.name,
        "sha256": file_sha256(out),
        "bytes": out.stat().st_size,
        "parameters": sum(p.numel() for p in encoder.parameters()),
        "recipe": dataclasses.asdict(recipe),
        "data": {
            "source": Path(args.data).name,
            "frames": len(data),
            "train_frames": len(train_set),
            "train_videos": len(set(train_set.video_ids)),
            "split_rule": "FrameDataset.split(recipe.split, seed=recipe.split_seed): its 'train' part",
            # which videos it saw, without naming them: an evaluation whose real frames are among these says so
            "train_video_digests": sorted({video_digest(v) for v in train_set.video_ids}),
        },
        "train_seconds": round(train_seconds, 1),
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "cpu": platform.processor() or platform.machine(),
            "threads": recipe.threads,
        },
        "history": history,
        "sanity": sanity_checks(encoder, parts["val"], parts["test"], phantom),
        "command": "python -m echolib.metrics.train_extractor " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    atomic_write_text(out.with_suffix(".json"), json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["sanity"], indent=2))
    return 0


def _override(recipe: Recipe, pairs: list[str]) -> Recipe:
    """``FIELD=VALUE`` strings applied to a recipe, each value parsed as YAML (numbers, lists, booleans)."""
    fields = {f.name for f in dataclasses.fields(Recipe)}
    changes: dict[str, Any] = {}
    for text in pairs:
        key, sep, value = text.partition("=")
        if not sep or key not in fields:
            raise SystemExit(f"--set {text!r}: expected FIELD=VALUE with FIELD one of {', '.join(sorted(fields))}")
        parsed = yaml.safe_load(value)
        changes[key] = tuple(parsed) if isinstance(parsed, list) else parsed
    return dataclasses.replace(recipe, **changes)


if __name__ == "__main__":
    raise SystemExit(main())
