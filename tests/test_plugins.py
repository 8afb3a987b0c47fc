"""Architectures from other packages: registered by entry point, trained and sampled by echolib's commands."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from echolib import cli
from echolib.errors import ConfigError, InstallError
from echolib.models import registry
from echolib.models.registry import architecture_names, config_names, model_class
from echolib.train import checkpoint as ckpt
from echolib.train.run_config import load_config

ROOT = Path(__file__).resolve().parent.parent

#: the smallest generative model there is, written against echolib's protocol only (echolib.models.base)
TOY_MODULE = '''
"""Independent Gaussian per pixel: mean and log-std learned by maximum likelihood."""
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from echolib.models.base import GenerativeModel, make_adam


@dataclass
class PixelGaussianConfig:
    lr: float = 0.05


class Moments(nn.Module):
    def __init__(self, shape):
        super().__init__()
        self.mean = nn.Parameter(torch.zeros(shape))
        self.log_std = nn.Parameter(torch.zeros(shape))

    def forward(self, x):
        """Negative log-likelihood per image (up to a constant)."""
        z = (x - self.mean) * torch.exp(-self.log_std)
        return (0.5 * z.square() + self.log_std).flatten(1).mean(1)


class PixelGaussian(GenerativeModel):
    arch = "pixel_gaussian"
    Config = PixelGaussianConfig
    ema_names = ("moments",)
    config_dir = Path(__file__).parent / "configs"

    def __init__(self, cfg, resolution=128, channels=1):
        super().__init__(cfg, resolution, channels)
        self.nets["moments"] = Moments((channels, resolution, resolution))
        self.finish_init()

    def make_optimizers(self):
        return {"moments": make_adam(self.nets["moments"].parameters(), self.cfg.lr, betas=(0.9, 0.99))}

    def train_step(self, ctx, optimizers):
        loss = self.fwd["moments"](ctx.next_real().images).mean()
        optimizers["moments"].zero_grad(set_to_none=True)
        loss.backward()
        optimizers["moments"].step()
        return {"loss_nll": loss.detach()}

    @torch.no_grad()
    def sample(self, n, generator, *, use_ema=True, **options):
        m = self.sampling_net("moments", use_ema)
        eps = torch.randn((n, *m.mean.shape), generator=generator, device=generator.device).to(self.device)
        return (m.mean + m.log_std.exp() * eps).clamp(-1, 1)
'''

TOY_SMOKE = """
model:
  lr: 0.05
train:
  kimg: 0.2
  batch: 8
  resolution: 64
  tick_kimg: 0.04
  snapshot_kimg: 0.08
  sample_kimg: 0.2
  grid_size: 16
  ema_kimg: 0.05
"""


def install(site: Path, dist: str, entry_points: dict[str, str]) -> Path:
    """A package as pip leaves it on disk: the module plus a dist-info folder declaring its entry points."""
    pkg = site / "toyarch"
    (pkg / "configs").mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text(textwrap.dedent(TOY_MODULE))
    (pkg / "configs" / "smoke.yaml").write_text(TOY_SMOKE)
    info = site / f"{dist}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[echolib.architectures]\n{lines}")
    return site


@pytest.mark.slow
def test_an_installed_architecture_trains_and_samples_through_the_cli(noise_frames, tmp_path):
    site = install(tmp_path / "site", "toyarch", {"pixel_gaussian": "toyarch:PixelGaussian"})
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(ROOT)]), OMP_NUM_THREADS="1")
    run = tmp_path / "run"
    trained = subprocess.run([sys.executable, "-m", "echolib", "train", "pixel_gaussian", "--config", "smoke",
                              "--data", str(noise_frames), "--device", "cpu", "--no-progress", "--out", str(run)],
                             check=False, capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert (run / "done.json").exists() and "loss_nll" in (run / "log.csv").read_text()
    state = torch.load(ckpt.list_checkpoints(run / "checkpoints")[-1], weights_only=True)
    assert state["arch"] == "pixel_gaussian"
    # uniform noise frames have std 0.58 in [-1, 1]: log-std must have moved from 0 toward log(0.58) = -0.55
    assert state["nets"]["moments"]["log_std"].mean() < -0.2
    sampled = subprocess.run([sys.executable, "-m", "echolib", "sample", str(run), "--n", "5", "--out",
                              str(tmp_path / "samples")], check=False, capture_output=True, text=True, env=env,
                             timeout=300)  # fmt: skip
    assert sampled.returncode == 0, sampled.stderr[-2000:]
    assert len(list((tmp_path / "samples").glob("*.png"))) == 5


def test_registry_lists_plugins_and_their_configs(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(install(tmp_path, "toyarch", {"pixel_gaussian": "toyarch:PixelGaussian"})))
    assert architecture_names()[-1] == "pixel_gaussian"
    assert config_names("pixel_gaussian") == ["smoke"]
    assert load_config("pixel_gaussian", "smoke").model.lr == 0.05
    with pytest.raises(ConfigError, match="unknown config 'E1' for architecture 'pixel_gaussian'; choose one of smoke"):
        load_config("pixel_gaussian", "E1")


@pytest.mark.parametrize(
    "entry, message",
    [({"wgan": "toyarch:PixelGaussian"}, "toyarch registers architecture 'wgan', a built-in name"),
     ({"broken": "toyarch_missing:Model"}, r"architecture 'broken': cannot load toyarch_missing:Model \(Module"),
     ({"notamodel": "toyarch:Moments"}, "toyarch:Moments is not a subclass of echolib.models.base.GenerativeModel")],
)  # fmt: skip
def test_bad_registrations_name_the_package_and_the_problem(tmp_path, monkeypatch, entry, message):
    monkeypatch.syspath_prepend(str(install(tmp_path, "toyarch", entry)))
    with pytest.raises(ConfigError, match=message):
        model_class(next(iter(entry)))


def test_a_built_in_whose_module_fails_to_import_is_an_error_naming_it(tmp_path, monkeypatch, capsys):
    """A broken installation must not quietly drop a model from the book's comparison."""
    (tmp_path / "broken_builtin.py").write_text("import a_dependency_nobody_installed\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(registry.ARCHITECTURES, "vqgan", "broken_builtin:VQGAN")
    message = (r"built-in architecture 'vqgan': module broken_builtin fails to import \(ModuleNotFoundError: "
               r"No module named 'a_dependency_nobody_installed'\)")
    with pytest.raises(InstallError, match=message):
        registry.available_architectures()
    with pytest.raises(InstallError, match=message):
        model_class("vqgan")
    assert model_class("wgan").arch == "wgan"  # the others still load on their own
    assert cli.main(["configs"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "module broken_builtin fails to import" in err
