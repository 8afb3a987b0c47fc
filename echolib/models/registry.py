"""Architecture names -> model classes and their YAML configuration files.

Configurations live in ``echolib/configs/<arch>/<name>.yaml``; reading one into
a run configuration (its ``model:`` and ``train:`` blocks) is
:mod:`echolib.train.run_config`'s job. A name that is not found is an error
listing the valid choices.

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
import re
from pathlib import Path
from typing import Any

from echolib.config import ConfigError
from echolib.errors import InstallError
from echolib.models.base import GenerativeModel

CONFIG_ROOT = Path(__file__).resolve().parent.parent / "configs"

#: registry name -> "module:Class"; every one ships with echolib, so one that cannot be imported is an error
ARCHITECTURES: dict[str, str] = {
    "stylegan2_ada": "echolib.models.stylegan2:StyleGAN2ADA",
    "wgan": "echolib.models.wgan:WGAN",
    "medgan": "echolib.models.medgan:MedGAN",
    "vqgan": "echolib.models.vqgan:VQGAN",
    "pix2pix": "echolib.models.pix2pix:Pix2Pix",
    "diffusion": "echolib.models.diffusion:Diffusion",
}


#: the entry-point group through which installed packages register architectures
ENTRY_POINT_GROUP = "echolib.architectures"


def available_architectures() -> list[str]:
    """The built-in architectures (the book compares these), each imported to prove it works.

    A built-in whose module fails to import raises :class:`InstallError` naming
    the module and the exception, rather than dropping out of the list: a broken
    installation must not build a book that quietly compares fewer models.
    """
    for arch in ARCHITECTURES:
        _import_builtin(arch)
    return list(ARCHITECTURES)


def _import_builtin(arch: str) -> Any:
    """The module of built-in architecture ``arch``; any failure to import it is an :class:`InstallError`."""
    module = ARCHITECTURES[arch].partition(":")[0]
    try:
        return importlib.import_module(module)
    except Exception as exc:  # ImportError, or whatever the module's own top level raises
        raise InstallError(
            f"built-in architecture {arch!r}: module {module} fails to import ({type(exc).__name__}: {exc}); "
            "the echolib installation is broken"
        ) from exc


def plugin_architectures() -> dict[str, str]:
    """Architectures installed packages register: name -> ``"module:Class"``."""
    out: dict[str, str] = {}
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
    target = ARCHITECTURES.get(arch) or plugins.get(arch)
    if target is None:
        raise ConfigError(f"unknown architecture {arch!r}; choose one of {', '.join(architecture_names())}")
    module, _, attr = target.partition(":")
    try:
        cls = getattr(_import_builtin(arch) if arch in ARCHITECTURES else importlib.import_module(module), attr)
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
