"""``python -m echolib configs``: what exists, what each is for, and what training would actually run."""

from __future__ import annotations

import pytest
import yaml

from echolib.cli import main
from echolib.models.registry import available_architectures, config_names
from echolib.train.run_config import load_config


def test_lists_every_architecture_with_its_configurations(capsys):
    assert main(["configs"]) == 0
    lines = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
    assert list(lines) == available_architectures()
    for arch, names in lines.items():
        assert names.split(", ") == config_names(arch) and "smoke" in names


def test_describes_each_configuration_by_its_comment(capsys):
    assert main(["configs", "stylegan2_ada"]) == 0
    rows = dict(line.split(None, 1) for line in capsys.readouterr().out.splitlines())
    assert list(rows) == config_names("stylegan2_ada")
    assert "gamma 8" in rows["E4"] and "FID 9.17" in rows["E4"]
    assert rows["E5"] == "StyleGAN2-ADA E5: no E5 exists in the study's published logs."  # one sentence, not more


def test_prints_the_configuration_training_would_run(capsys):
    assert main(["configs", "stylegan2_ada", "E4", "--set", "model.r1_gamma=4", "--set", "train.batch=16"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    expected = load_config("stylegan2_ada", "E4", {"model": {"r1_gamma": 4}, "train": {"batch": 16}}).to_dict()
    assert printed == expected
    assert printed["model"]["r1_gamma"] == 4 and printed["model"]["ada_target"] == 0.6  # override + the file
    assert printed["train"]["cudnn_benchmark"] is True  # a field E4.yaml does not set: its default


def test_unknown_names_list_the_choices(capsys):
    assert main(["configs", "stylegan"]) == 2
    assert "unknown architecture 'stylegan'; choose one of stylegan2_ada" in capsys.readouterr().err
    assert main(["configs", "wgan", "E42"]) == 2
    assert "unknown config 'E42' for architecture 'wgan'; choose one of E1" in capsys.readouterr().err


def test_a_bad_override_is_blamed_on_the_override_not_the_file(capsys):
    assert main(["configs", "wgan", "E1", "--set", "train.lr=1e-4"]) == 2
    err = capsys.readouterr().err
    assert "E1.yaml with overrides train.lr: train: unknown key(s) lr" in err and "valid keys: batch" in err
    assert main(["configs", "wgan", "E1", "--set", "model.lr=fast"]) == 2
    assert "with overrides model.lr: model: lr: expected a number, got 'fast'" in capsys.readouterr().err


def test_command_help_keeps_its_examples_one_per_line(capsys):
    with pytest.raises(SystemExit):
        main(["configs", "--help"])
    assert "\n    python -m echolib configs stylegan2_ada            # its configurations" in capsys.readouterr().out
