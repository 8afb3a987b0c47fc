"""The ``cpu64`` recipes: real-data training on machines without a GPU (the comparison chapter).

Every built-in architecture has one. They are not study configurations, so they are held
to what makes them laptop-sized: 64 px, no metrics inside the loop, under ten million
parameters (StyleGAN2-ADA's is the thinnest, 0.8 M), and a first step that runs through
the real trainer.
"""

from __future__ import annotations

import pytest

from echolib.models.registry import available_architectures, config_names
from echolib.train.loop import Trainer
from echolib.train.run_config import build_model, load_config

BUILT_IN = ["stylegan2_ada", "wgan", "medgan", "vqgan", "pix2pix", "diffusion"]


def test_every_built_in_architecture_has_a_cpu_recipe():
    recipes = {arch for arch in available_architectures() if "cpu64" in config_names(arch)}
    assert recipes >= set(BUILT_IN)


@pytest.mark.slow
@pytest.mark.parametrize("arch", BUILT_IN)
def test_cpu_recipe_is_laptop_sized_and_trains(arch, noise_frames, tmp_path):
    run = load_config(arch, "cpu64")
    assert run.train.resolution == 64 and run.train.metrics_kimg == 0
    params = sum(p.numel() for net in build_model(run).nets.values() for p in net.parameters())
    assert 5e5 < params < 1e7, params
    one_batch = load_config(arch, "cpu64", {"train": {"kimg": run.train.batch / 1000, "grid_size": 4, "holdout": 0}})
    trainer = Trainer(one_batch, noise_frames, tmp_path / "run", device="cpu", progress=False)
    trainer.fit()
    assert trainer.clock.nimg >= run.train.batch and (tmp_path / "run" / "log.csv").is_file()
