"""The callables a training step runs its networks through: DDP-wrapped, compiled, or plain.

A model calls ``fwd[name]`` in the phase that updates ``name`` (DDP-wrapped so
its gradients are averaged over ranks) and ``peer[name]`` wherever it only
passes data through ``name``: a generator making fakes for the discriminator's
update, a discriminator judging fakes for the generator's. Both are compiled
when the run asks for ``torch.compile``. Had the peer phases stayed eager, a
compiled StyleGAN2 step would still run about half of its network work
(discriminator forward and input gradient in the generator phase, the
generator's forward in the discriminator phase) op by op.

Compilation is optional and must never cost a run: when ``torch.compile`` is
missing or its first call fails (no C++ compiler, no Triton, an unsupported
op), the callable warns once and runs eagerly from then on.
"""

from __future__ import annotations

import sys
from typing import Any

import torch

from echolib.models.base import GenerativeModel
from echolib.train.distributed import DistInfo, wrap


def wire_forwards(model: GenerativeModel, device: torch.device, info: DistInfo, compile: bool) -> None:
    """Fill ``model.fwd`` (DDP where distributed) and ``model.peer`` (never DDP), compiling both if asked."""
    for name, net in model.nets.items():
        fwd: Any = wrap(net, device, info)
        peer: Any = net
        if compile:
            fwd, peer = try_compile(fwd, name), try_compile(net, f"{name} (peer)")
        model.fwd[name], model.peer[name] = fwd, peer


def try_compile(module: Any, name: str) -> Any:
    """``torch.compile(module)`` that falls back to ``module`` if compiling fails now or on the first call."""
    try:
        compiled = torch.compile(module)
    except Exception as exc:  # noqa: BLE001 -- any compile failure: eager still works
        print(f"warning: torch.compile({name}) unavailable ({type(exc).__name__}: {exc}); using eager", file=sys.stderr)
        return module
    return CompileFallback(compiled, module, name)


class CompileFallback:
    """Calls the compiled module; on a failure during its first call, warns once and goes eager."""

    def __init__(self, compiled: Any, eager: Any, name: str) -> None:
        self.compiled, self.eager, self.name, self.proven = compiled, eager, name, False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.proven:
            return self.compiled(*args, **kwargs)
        try:
            out = self.compiled(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 -- inductor/triton missing or unsupported op
            print(f"warning: torch.compile({self.name}) failed on first call ({type(exc).__name__}); using eager",
                  file=sys.stderr)  # fmt: skip
            self.compiled = self.eager
            out = self.eager(*args, **kwargs)
        self.proven = True
        return out

    def __getattr__(self, item: str) -> Any:
        return getattr(self.eager, item)

