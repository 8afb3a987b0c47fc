"""Architecture names -> model classes and their YAML configurations.

Configurations live in ``echolib/configs/<arch>/<name>.yaml`` with two blocks,
``model:`` (the architecture's own dataclass) and ``train:``
(:class:`echolib.train.config.TrainConfig`). A name that is not found is an
error listing the valid choices.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from echolib.config import ConfigError, from_dict, merge, read_yaml, to_dict
from echolib.models.base import GenerativeModel
from echolib.train.config import TrainConfig

CONFIG_ROOT = Path(__file__).resolve().parent.parent / "configs"

#: registry name -> "module:Class"; a module may be absent until it is written
ARCHITECTURES: dict[str, str] = {
    "stylegan2_ada": "echolib.models.stylegan2:StyleGAN2ADA",
    "wgan": "echolib.models.wgan:WGAN",
    "medgan": "echolib.models.medgan:MedGAN",
    "vqgan": "echolib.models.vqgan:VQGAN",
    "pix2pix": "echolib.models.pix2pix:Pix2Pix",
    "diffusion": "echolib.models.diffusion:Diffusion",
}


@dataclass
class RunConfig:
    """A resolved configuration: architecture, its name, model settings, trainer settings."""

    arch: str
    name: str
    model: Any
    train: TrainConfig

    def to_dict(self) -> dict[str, Any]:
        return {"arch": self.arch, "name": self.name, "model": to_dict(self.model), "train": to_dict(self.train)}


def available_architectures() -> list[str]:
    """Registered names whose module exists in this installation."""
    out = []
    for name, target in ARCHITECTURES.items():
        module = target.split(":")[0]
        if importlib.util.find_spec(module) is not None:
            out.append(name)
    return out


def model_class(arch: str) -> type[GenerativeModel]:
    if arch not in ARCHITECTURES or arch not in available_architectures():
        raise ConfigError(f"unknown architecture {arch!r}; choose one of {', '.join(available_architectures())}")
    module, cls = ARCHITECTURES[arch].split(":")
    return getattr(importlib.import_module(module), cls)


def config_names(arch: str) -> list[str]:
    folder = CONFIG_ROOT / arch
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def config_path(arch: str, name: str) -> Path:
    """A config given by name (``E4``) or by path to a YAML file."""
    p = Path(name)
    if p.suffix in (".yaml", ".yml"):
        if not p.exists():
            raise ConfigError(f"config file {p} not found")
        return p
    path = CONFIG_ROOT / arch / f"{name}.yaml"
    if not path.exists():
        raise ConfigError(
            f"unknown config {name!r} for architecture {arch!r}; choose one of {', '.join(config_names(arch))}"
        )
    return path


def load_config(arch: str, name: str = "smoke", overrides: dict[str, Any] | None = None) -> RunConfig:
    model_class(arch)
    path = config_path(arch, name)
    data = read_yaml(path)
    if overrides:
        data = merge(data, overrides)
    return from_plain(arch, Path(name).stem, data, str(path))


def from_plain(arch: str, name: str, data: dict[str, Any], source: str = "config") -> RunConfig:
    cls = model_class(arch)
    unknown = sorted(set(data) - {"model", "train", "arch", "name"})
    if unknown:
        raise ConfigError(f"{source}: unknown top-level key(s) {', '.join(unknown)}; expected model, train")
    model_cfg = from_dict(cls.Config, data.get("model"), f"{source}: model")
    train_cfg = from_dict(TrainConfig, data.get("train"), f"{source}: train")
    return RunConfig(arch=arch, name=name, model=model_cfg, train=train_cfg)


def build_model(run: RunConfig) -> GenerativeModel:
    return model_class(run.arch)(run.model, resolution=run.train.resolution)
