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
    # eager: compiling a recipe costs minutes and is tested on its own (tests/test_compile.py)
    one_batch = load_config(arch, "cpu64", {"train": {"kimg": run.train.batch / 1000, "grid_size": 4, "holdout": 0,
                                                      "compile": False}})
    trainer = Trainer(one_batch, noise_frames, tmp_path / "run", device="cpu", progress=False)
    trainer.fit()
    assert trainer.clock.nimg >= run.train.batch and (tmp_path / "run" / "log.csv").is_file()


@pytest.mark.slow
def test_the_phase_conditioned_recipe_trains_on_the_study_frames_labelled_by_name(tmp_path, capsys):
    """``preprocess study-frames`` labels a folder of ``<video>_f<k>.png`` frames; ``cpu64_cond`` learns those labels."""
    import numpy as np

    from echolib.cli import main
    from echolib.data.frames import FrameDataset
    from echolib.images import write_gray

    frames = tmp_path / "frames"
    frames.mkdir()
    rng = np.random.default_rng(0)
    for v in range(8):
        for k in range(4):
            write_gray(frames / f"0X{v:04d}_f{k}.png", rng.integers(0, 256, (64, 64), dtype=np.uint8))
    assert main(["preprocess", "study-frames", "--root", str(frames), "--out", str(tmp_path / "study")]) == 0
    assert "32 frames" in capsys.readouterr().out
    manifest = tmp_path / "study" / "manifest.csv"
    assert FrameDataset(manifest).phase_labels[:4] == ["other", "ES", "ED", "other"]
    run = load_config("diffusion", "cpu64_cond")
    assert run.model.labels == ["ED", "ES", "other"] and run.model.label_key == "phase_label"
    assert {k: v for k, v in vars(run.train).items() if k != "kimg"} == {
        k: v for k, v in vars(load_config("diffusion", "cpu64").train).items() if k != "kimg"}
    one_batch = load_config("diffusion", "cpu64_cond", {"train": {"kimg": 0.032, "grid_size": 4, "holdout": 0}})
    trainer = Trainer(one_batch, manifest, tmp_path / "run", device="cpu", progress=False)
    trainer.fit()
    assert trainer.model.classes == ["ED", "ES", "other"] and trainer.clock.nimg >= 32
    assert trainer.model.class_freq.tolist() == [0.25, 0.25, 0.5]  # one ED and one ES of four frames per video
    assert main(["preprocess", "study-frames", "--root", str(tmp_path / "missing"), "--out", str(tmp_path / "x")]) == 2
