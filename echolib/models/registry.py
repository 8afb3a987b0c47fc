"""Architecture names -> model classes and their YAML configurations.

Configurations live in ``echolib/configs/<arch>/<name>.yaml`` with two blocks,
``model:`` (the architecture's own dataclass) and ``train:``
(:class:`echolib.train.config.TrainConfig`). A name that is not found is an
error listing the valid choices.

Other packages add architectures through the ``echolib.architectures``
entry-point group, so a research group can train, sample, sweep and evaluate
its own model with echolib's commands and metrics without forking::

    [project.entry-points."echolib.architectures"]
    mynet = "mypackage.mynet:MyNet"

Their named configurations come from the class's ``config_dir``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from echolib.config import ConfigError, from_dict, merge, read_yaml, to_dict
from echolib.models.base import GenerativeModel
from echolib.train.config import TrainConfig, upgrade_train_block

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


#: the entry-point group through which installed packages register architectures
ENTRY_POINT_GROUP = "echolib.architectures"


def available_architectures() -> list[str]:
    """The built-in architectures whose module exists in this installation (the book compares these)."""
    out = []
    for name, target in ARCHITECTURES.items():
        module = target.split(":")[0]
        if importlib.util.find_spec(module) is not None:
            out.append(name)
    return out


def plugin_architectures() -> dict[str, str]:
    """Architectures installed packages register: name -> ``"module:Class"``."""
    out = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        where = ep.dist.name if ep.dist is not None else "an installed package"
        if ep.name in ARCHITECTURES:
            raise ConfigError(f"{where} registers architecture {ep.name!r}, a built-in name; rename its entry point")
        if ep.name in out and out[ep.name] != ep.value:
            raise ConfigError(f"architecture {ep.name!r} is registered twice ({out[ep.name]} and {ep.value})")
        out[ep.name] = ep.value
    return out


def architecture_names() -> list[str]:
    """Every architecture ``train``/``sample``/``sweep`` accept: the built-ins, then installed plugins."""
    return available_architectures() + sorted(plugin_architectures())


def model_class(arch: str) -> type[GenerativeModel]:
    plugins = plugin_architectures()  # first: a plugin shadowing a built-in name is an error, not ignored
    target = ARCHITECTURES[arch] if arch in available_architectures() else plugins.get(arch)
    if target is None:
        raise ConfigError(f"unknown architecture {arch!r}; choose one of {', '.join(architecture_names())}")
    module, _, attr = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"architecture {arch!r}: cannot load {target} ({type(exc).__name__}: {exc})") from exc
    if not (isinstance(cls, type) and issubclass(cls, GenerativeModel)):
        raise ConfigError(f"architecture {arch!r}: {target} is not a subclass of echolib.models.base.GenerativeModel")
    return cls


def config_dir(arch: str) -> Path:
    """Where ``arch``'s named configurations live: its class's ``config_dir``, else ``echolib/configs/<arch>``."""
    own = model_class(arch).config_dir
    return Path(own) if own is not None else CONFIG_ROOT / arch


def config_names(arch: str) -> list[str]:
    folder = config_dir(arch)
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def config_description(arch: str, name: str) -> str:
    """The first sentence of a config file's leading comment: what the configuration is for."""
    lines = []
    for line in config_path(arch, name).read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    return re.split(r"(?<=[.!?])\s+(?=[A-Z])", " ".join(lines).strip(), maxsplit=1)[0]


def config_path(arch: str, name: str) -> Path:
    """A config given by name (``E4``) or by path to a YAML file."""
    p = Path(name)
    if p.suffix in (".yaml", ".yml"):
        if not p.exists():
            raise ConfigError(f"config file {p} not found")
        return p
    path = config_dir(arch) / f"{name}.yaml"
    if not path.exists():
        raise ConfigError(
            f"unknown config {name!r} for architecture {arch!r}; choose one of {', '.join(config_names(arch))}"
        )
    return path


def load_config(arch: str, name: str = "smoke", overrides: dict[str, Any] | None = None) -> RunConfig:
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
    cls = model_class(arch)
    unknown = sorted(set(data) - {"model", "train", "arch", "name"})
    if unknown:
        raise ConfigError(f"{source}: unknown top-level key(s) {', '.join(unknown)}; expected model, train")
    model_cfg = from_dict(cls.Config, data.get("model"), f"{source}: model")
    train_cfg = from_dict(TrainConfig, upgrade_train_block(data.get("train"), source), f"{source}: train")
    return RunConfig(arch=arch, name=name, model=model_cfg, train=train_cfg)


def build_model(run: RunConfig) -> GenerativeModel:
    return model_class(run.arch)(run.model, resolution=run.train.resolution)
