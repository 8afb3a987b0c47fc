"""List architectures and their configurations, or print one configuration as training resolves it.

    python -m echolib configs                          # every architecture (installed plugins too)
    python -m echolib configs stylegan2_ada            # its configurations, with their descriptions
    python -m echolib configs stylegan2_ada E4 --set model.r1_gamma=4   # every field, defaults filled in

The last form prints exactly what ``train`` with the same arguments would run,
so a sweep can be checked before it spends GPU hours.
"""

from __future__ import annotations

import argparse

from echolib.config import dump_yaml, parse_overrides

HELP = "list architectures and configurations, or print one configuration with every field resolved"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("arch", nargs="?", help="an architecture (omit to list them all)")
    p.add_argument("config", nargs="?", help="a configuration name or YAML path (omit to list them)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a field as train does, e.g. --set model.r1_gamma=4")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    # lazy: keeps python -m echolib --help fast
    from echolib.models.registry import architecture_names, config_description, config_names
    from echolib.train.run_config import load_config

    if args.arch is None:
        for arch in architecture_names():
            print(f"{arch}: {', '.join(config_names(arch))}")
        return 0
    if args.config is None:
        names = config_names(args.arch)  # an unknown architecture raises here, listing the known ones
        width = max(map(len, names), default=0)
        for name in names:
            print(f"{name:<{width}}  {config_description(args.arch, name)}")
        return 0
    print(dump_yaml(load_config(args.arch, args.config, parse_overrides(args.set)).to_dict()), end="")
    return 0
