"""Typed configs: strict, typo-proof loading."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from echolib.config import ConfigError, from_dict, load_yaml, parse_override, to_dict
from echolib.train.config import TrainConfig


@dataclass
class Inner:
    depth: int = 2
    rate: float = 0.1


@dataclass
class Outer:
    name: str = "x"
    inner: Inner = field(default_factory=Inner)
    sizes: list[int] = field(default_factory=lambda: [1, 2])
    target: float | None = None


def test_round_trip_and_int_to_float():
    cfg = from_dict(Outer, {"inner": {"rate": 1}, "sizes": [3], "target": 0.6})
    assert cfg.inner.rate == 1.0 and isinstance(cfg.inner.rate, float)
    assert from_dict(Outer, to_dict(cfg)) == cfg


def test_unknown_key_lists_valid_keys():
    with pytest.raises(ConfigError, match=r"E9.yaml: inner: unknown key\(s\) dpeth.*valid keys: depth, rate"):
        from_dict(Outer, {"inner": {"dpeth": 3}}, "E9.yaml")


@pytest.mark.parametrize(
    "data, msg",
    [({"name": 3}, "name: expected a string"), ({"inner": {"depth": 2.5}}, "depth: expected an integer"),
     ({"sizes": "12"}, "sizes: expected a list"), ({"inner": {"depth": True}}, "expected an integer")],
)
def test_wrong_types_are_named(data, msg):
    with pytest.raises(ConfigError, match=msg):
        from_dict(Outer, data)


def test_yaml_file_and_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("kimg: 2\nbatch: 8\n")
    cfg = load_yaml(TrainConfig, p)
    assert cfg.kimg == 2.0 and cfg.batch == 8 and cfg.resolution == 128
    assert parse_override("train.kimg=0.5") == {"train": {"kimg": 0.5}}
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_override("kimg")
    (tmp_path / "bad.yaml").write_text("kimg: [1\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_yaml(TrainConfig, tmp_path / "bad.yaml")
