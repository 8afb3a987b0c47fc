"""A run's configuration: an architecture's ``model:`` block joined with the trainer's ``train:`` block.

Configurations live in YAML files with two blocks, ``model:`` (the
architecture's own dataclass, named by :mod:`echolib.models.registry`) and
``train:`` (:class:`~echolib.train.config.TrainConfig`). The join is a trainer
concern, so it lives here: models know their own settings and nothing of the
loop that trains them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from echolib.config import ConfigError, from_dict, merge, read_yaml, to_dict
from echolib.models.base import GenerativeModel
from echolib.models.registry import config_path, model_class
from echolib.train.config import TrainConfig, upgrade_train_block


@dataclass
class RunConfig:
    """A resolved configuration: architecture, its name, model settings, trainer settings."""

    arch: str
    name: str
    model: Any
    train: TrainConfig

    def to_dict(self) -> dict[str, Any]:
        return {"arch": self.arch, "name": self.name, "model": to_dict(self.model), "train": to_dict(self.train)}


def load_config(arch: str, name: str = "smoke", overrides: dict[str, Any] | None = None) -> RunConfig:
    """The named configuration ``name`` of ``arch`` (or a YAML path), with ``overrides`` merged in."""
    model_class(arch)
    path = config_path(arch, name)
    data = read_yaml(path)
    source = str(path)
    if overrides:
        data = merge(data, overrides)
        source += f" with overrides {', '.join(_dotted(overrides))}"  # the bad key may be the caller's, not the file's
    return from_plain(arch, Path(name).stem, data, source)


def _dotted(tree: dict[str, Any], prefix: str = "") -> list[str]:
    return [k for key, value in tree.items()
            for k in (_dotted(value, f"{prefix}{key}.") if isinstance(value, dict) and value else [f"{prefix}{key}"])]


def from_plain(arch: str, name: str, data: dict[str, Any], source: str = "config") -> RunConfig:
    """A :class:`RunConfig` from plain data (a YAML file, a checkpoint's ``config``); ``source`` names it in errors."""
    cls = model_class(arch)
    unknown = sorted(set(data) - {"model", "train", "arch", "name"})
    if unknown:
        raise ConfigError(f"{source}: unknown top-level key(s) {', '.join(unknown)}; expected model, train")
    model_cfg: Any = from_dict(cls.Config, data.get("model"), f"{source}: model")
    train_cfg = from_dict(TrainConfig, upgrade_train_block(data.get("train"), source), f"{source}: train")
    return RunConfig(arch=arch, name=name, model=model_cfg, train=train_cfg)


def build_model(run: RunConfig) -> GenerativeModel:
    """The untrained model ``run`` describes, at the trainer's resolution."""
    return model_class(run.arch)(run.model, resolution=run.train.resolution)
