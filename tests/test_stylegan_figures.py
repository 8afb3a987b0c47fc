"""The StyleGAN2-ADA chapter's figures and tables: what they show must be what the model and configs do."""

from __future__ import annotations

import math

import matplotlib
import pandas as pd
import pytest
import torch
import yaml

from echolib.augment.ada import OPS
from echolib.images import to_float
from echolib.models.registry import config_path
from echolib.models.stylegan2 import Generator, StyleGAN2Config
from echolib.report import stylegan_figures as sf

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def frame() -> torch.Tensor:
    """An asymmetric 32x32 frame (a bright off-centre block on a gradient), so flips and rotations show."""
    y, x = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
    img = (x * 4 + y * 2).clamp(max=200)
    img[4:12, 18:28] = 255
    return img.to(torch.uint8)[None, None]


def test_augment_examples_identity_at_p0(frame):
    out = sf.augment_examples(frame, p=0.0, n=4, seed=1)
    assert list(out) == list(OPS) + ["bgc (all)"]
    x = to_float(frame).expand(4, -1, -1, -1)
    for label, images in out.items():
        assert images.shape == (4, 1, 32, 32), label
        assert torch.equal(images, x), f"{label} changed the frame with every gate closed"


def test_augment_examples_each_op_does_its_own_thing(frame):
    n = 8
    out = sf.augment_examples(frame, p=1.0, n=n, seed=0)
    x = to_float(frame)[0]
    for op in ("scale", "rotate", "aniso", "xfrac", "brightness", "contrast", "imgfilter", "noise"):
        changed = (out[op] - x).abs().flatten(1).amax(dim=1) > 1e-3
        assert changed.all(), f"{op} at p=1 left some frames untouched"
    # discrete ops: every draw is one of the exact symmetric images, and not all draws are the identity
    for op, candidates in {
        "xflip": [x, x.flip(-1)],
        "lumaflip": [x, -x],
        "rotate90": [torch.rot90(x, k, dims=(-2, -1)) for k in range(4)],
    }.items():
        for img in out[op]:
            assert min((img - c).abs().max().item() for c in candidates) < 1e-4, op
        assert any((img - x).abs().max() > 0.1 for img in out[op]), f"{op}: all {n} draws were the identity"
    # cutout zeroes (mid-grey) a square of half the frame's side, clipped where its random centre nears a border
    zeros = (out["cutout"] == 0).flatten(1).float().mean(dim=1)
    assert ((zeros > 0) & (zeros <= 0.25)).all() and (zeros == 0.25).any(), zeros


def test_augment_figure_one_row_per_label(frame):
    out = sf.augment_examples(frame, ops=("xflip", "noise"), pipes=(), n=3)
    fig = sf.augment_figure(frame, out)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["xflip", "noise"]
    h, w = ax.images[0].get_array().shape
    assert h == 2 * (32 + 4) and w > 4 * 32


@pytest.fixture
def run_with_log(tmp_path):
    """A run folder whose log.csv has the trainer's columns, with R1 only on some ticks (lazy)."""
    log = pd.DataFrame({
        "tick": range(6), "kimg": [0.04 * (i + 1) for i in range(6)],
        "loss_G": [0.7, 0.8, 0.9, 0.9, 1.0, 1.0], "loss_r1": [0.01, None, None, 0.02, None, None],
        "loss_pl": [0.3, 0.4, 0.2, 0.1, 0.3, 0.2], "augment_p": [0.0, 0.03, 0.06, 0.03, 0.0, 0.03],
        "ada_rt": [1.0, 0.7, 0.5, 0.4, 0.7, 0.8],
    })  # fmt: skip
    log.to_csv(tmp_path / "log.csv", index=False)
    return tmp_path


def test_lazy_regularizer_curves_plot_only_ticks_with_a_value(run_with_log):
    fig = sf.lazy_regularizer_curves(run_with_log)
    r1, pl = fig.axes
    assert list(r1.lines[0].get_xdata()) == pytest.approx([0.04, 0.16])
    assert list(r1.lines[0].get_ydata()) == pytest.approx([0.01, 0.02])
    assert len(pl.lines[0].get_xdata()) == 6


def test_ada_curves_show_p_and_rt_against_target(run_with_log):
    fig = sf.ada_curves(run_with_log, target=0.6)
    p_ax, rt_ax = fig.axes
    assert list(p_ax.lines[0].get_ydata()) == pytest.approx([0.0, 0.03, 0.06, 0.03, 0.0, 0.03])
    assert p_ax.get_ylim()[0] <= 0 and p_ax.get_ylim()[1] >= 1
    target = [ln for ln in rt_ax.lines if ln.get_linestyle() == "--"]
    assert len(target) == 1 and set(target[0].get_ydata()) == {0.6}


@pytest.fixture(scope="module")
def tiny_G() -> Generator:
    torch.manual_seed(0)
    cfg = StyleGAN2Config(z_dim=16, w_dim=16, mapping_layers=2, channel_base=256, channel_max=16)
    return Generator(cfg, resolution=16, img_channels=1).eval()


def test_style_mixing_extremes_reproduce_the_sources(tiny_G):
    g = torch.Generator().manual_seed(0)
    z_rows, z_cols = torch.randn(3, 16, generator=g), torch.randn(2, 16, generator=g)
    rows, cols, mixed = sf.style_mixing(tiny_G, z_rows, z_cols, cutoff=0)
    assert rows.shape == (3, 1, 16, 16) and cols.shape == (2, 1, 16, 16) and mixed.shape == (3, 2, 1, 16, 16)
    for i in range(3):  # nothing from the rows: every mix is its column source
        torch.testing.assert_close(mixed[i], cols, atol=1e-5, rtol=0)
    _, _, mixed = sf.style_mixing(tiny_G, z_rows, z_cols, cutoff=tiny_G.num_ws)
    for j in range(2):  # everything from the rows
        torch.testing.assert_close(mixed[:, j], rows, atol=1e-5, rtol=0)
    _, _, mixed = sf.style_mixing(tiny_G, z_rows, z_cols, cutoff=2)
    assert (mixed[0, 0] - rows[0]).abs().max() > 1e-4 and (mixed[0, 0] - cols[0]).abs().max() > 1e-4
    with pytest.raises(ValueError, match="cutoff"):
        sf.style_mixing(tiny_G, z_rows, z_cols, cutoff=tiny_G.num_ws + 1)


def test_style_mixing_figure_layout(tiny_G):
    g = torch.Generator().manual_seed(1)
    rows, cols, mixed = sf.style_mixing(tiny_G, torch.randn(2, 16, generator=g), torch.randn(3, 16, generator=g), 2)
    fig = sf.style_mixing_figure(rows, cols, mixed)
    h, w = fig.axes[0].images[0].get_array().shape
    assert (h, w) == (3 * 18 + 2, 4 * 18 + 2)


def test_config_table_matches_the_yaml_files():
    table = sf.config_table()
    names = list(table.index)
    assert names[:9] == [f"E{i}" for i in range(1, 10)] and {"auto", "smoke"} <= set(names[9:])
    defaults = StyleGAN2Config()
    for name in names:
        raw = yaml.safe_load(config_path("stylegan2_ada", name).read_text())
        model, train = raw.get("model", {}), raw.get("train", {})
        row = table.loc[name]
        assert row["batch"] == train["batch"], name
        assert row["r1_gamma"] == pytest.approx(model.get("r1_gamma", defaults.r1_gamma)), name
        assert row["mapping_layers"] == model.get("mapping_layers", defaults.mapping_layers), name
        assert row["augment"] == model.get("augment", defaults.augment), name
        if row["augment"] == "ada":
            assert row["ada_target"] == pytest.approx(model.get("ada_target", defaults.ada_target)), name
        else:
            assert row["ada_target"] is None or math.isnan(row["ada_target"]), name
        assert row["note"] and not row["note"].startswith("StyleGAN2-ADA"), name


def test_side_by_side_accepts_different_resolutions():
    fig = sf.side_by_side({"a": torch.zeros(4, 1, 64, 64, dtype=torch.uint8), "b": torch.rand(4, 1, 128, 128) * 2 - 1},
                          nrow=2)
    assert [ax.get_title() for ax in fig.axes] == ["a", "b"]
    assert fig.axes[1].images[0].get_array().shape == (2 * 130 + 2, 2 * 130 + 2)


def test_study_fid_curves_marks_the_best_point():
    logs = pd.DataFrame({
        "config": ["E1"] * 3 + ["E4"] * 3, "kimg": [0, 16, 32] * 2,
        "fid": [200.0, 50.0, 60.0, 180.0, None, 9.5],
    })  # fmt: skip
    fig = sf.study_fid_curves(logs, highlight="E4")
    ax = fig.axes[0]
    star = [ln for ln in ax.lines if ln.get_marker() == "*"]
    assert len(star) == 1 and list(star[0].get_xdata()) == [32] and list(star[0].get_ydata()) == [9.5]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["E1", "E4"]


def test_study_fid_curves_on_the_study_logs():
    from conftest import STUDY_LOGS, need

    from echolib.report.study_logs import load_study_logs

    logs = load_study_logs(need(STUDY_LOGS))
    logs = logs[logs["arch"] == "stylegan2_ada"]
    fig = sf.study_fid_curves(logs, highlight="E4")
    star = next(ln for ln in fig.axes[0].lines if ln.get_marker() == "*")
    assert star.get_ydata()[0] == pytest.approx(9.17, abs=0.005)
    assert star.get_xdata()[0] == pytest.approx(764, abs=1)
