"""Does the VQGAN discriminator still discriminate? Probe a GAN setting from a stage-1 checkpoint.

A hinge loss of 1.0 is what a PatchGAN scores when frames and reconstructions get
the same logits, whether it has been fooled or never learnt, so the loss curve
cannot say whether the adversarial term works. This script continues a VQGAN run
from one of its stage-1 checkpoints (autoencoder weights and optimizer state; a
fresh discriminator), with the GAN term switched on at the checkpoint (after
``disc_warmup_kimg`` of the discriminator training alone), for ``--steps`` steps,
and prints a JSON line every ``--every`` steps: the step's losses averaged, and
on a fixed batch of training frames the logit gap ``sep`` (mean logit on frames
minus on their reconstructions: how far D separates them) and ``spread`` (the
standard deviation of per-image mean logits: whether D's output depends on its
input at all). The vqgan chapter's probe table came from this script::

    python bench/vqgan_disc_probe.py runs/vqgan/cpu64 --kimg 8 --data FRAMES --steps 250 \\
        --set model.disc_weight=0.1 --set model.disc_warmup_kimg=1

Nothing is written to the run folder.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from echolib.config import merge, parse_overrides
from echolib.errors import ConfigError
from echolib.images import to_float
from echolib.metrics.perceptual import PERCEPTUAL_LOSSES
from echolib.models.base import StepContext
from echolib.train import checkpoint as ckpt
from echolib.train.loop import seed_for
from echolib.train.real_batches import RealDraws
from echolib.train.run_config import build_model, from_plain
from echolib.train.sampling import find_checkpoint
from echolib.train.splits import split_data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="a vqgan run folder")
    parser.add_argument("--kimg", type=float, default=None, help="checkpoint nearest this kimg (default: latest)")
    parser.add_argument("--data", required=True, help="the frames the run trained on")
    parser.add_argument("--steps", type=int, default=250)
    parser.add_argument("--every", type=int, default=25)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    path = find_checkpoint(args.run, args.kimg)
    state = ckpt.load(path, arch="vqgan")
    start_kimg = state["trainer"]["nimg"] / 1000.0
    raw = merge(state["config"], parse_overrides(args.set))
    warmup = float(raw["model"].get("disc_warmup_kimg", 0.0))
    raw = merge(raw, {"model": {"disc_start_kimg": start_kimg + warmup, "prior_start_kimg": 1e9}})
    run = from_plain("vqgan", "probe", raw, str(path))
    if start_kimg >= state["config"]["model"]["disc_start_kimg"]:
        raise ConfigError(f"{path} is past its own disc_start_kimg: probe from a checkpoint before the switch-on")

    torch.manual_seed(0)
    model = build_model(run)  # a fresh discriminator of the (possibly overridden) kind
    model.use_perceptual(PERCEPTUAL_LOSSES)  # as the trainer does
    model.nets["autoencoder"].load_state_dict(state["nets"]["autoencoder"])
    optimizers = model.make_optimizers()
    optimizers["autoencoder"].load_state_dict(state["optimizers"]["autoencoder"])

    cfg = run.train
    dataset = split_data(args.data, cfg, torch.device("cpu")).train  # the frames the run trained on, as it split them
    fixed = to_float(dataset.batch(torch.randint(len(dataset), (64,), generator=torch.Generator().manual_seed(1))))
    generator = torch.Generator()
    next_real = RealDraws(dataset, cfg.batch, generator)
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    t0 = time.perf_counter()
    for step in range(args.steps):
        generator.manual_seed(seed_for(args.seed, step))
        nimg = round(start_kimg * 1000) + step * cfg.batch
        ctx = StepContext(step=step, nimg=nimg, batch=cfg.batch, device=torch.device("cpu"), generator=generator,
                          next_real=next_real)
        for k, v in model.train_step(ctx, optimizers).items():
            sums[k] = sums.get(k, 0.0) + float(v)
            counts[k] = counts.get(k, 0) + 1
        if (step + 1) % args.every == 0:
            row = {k: round(v / counts[k], 4) for k, v in sums.items()}
            row.update(_separation(model, fixed), step=step + 1, kimg=round(nimg / 1000 + cfg.batch / 1000, 3),
                       seconds=round(time.perf_counter() - t0, 1))
            print(json.dumps(row), flush=True)
            sums, counts = {}, {}


@torch.no_grad()
def _separation(model, frames: torch.Tensor) -> dict[str, float]:
    D, ae = model.nets["D"], model.nets["autoencoder"]
    recon, _ = ae(frames)
    real, fake = D(frames).mean((1, 2, 3)), D(recon).mean((1, 2, 3))
    return {"sep": round(float(real.mean() - fake.mean()), 4), "spread": round(float(torch.cat([real, fake]).std()), 4)}


if __name__ == "__main__":
    main()
