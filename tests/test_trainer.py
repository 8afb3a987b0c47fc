"""The shared trainer: records, exact resume, NaN guard, checkpoints, DDP equivalence."""

from __future__ import annotations

import copy
import csv
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from echolib.errors import (
    CheckpointError,
    CheckpointMismatchError,
    CheckpointUnreadableError,
    ConfigError,
    TrainingError,
)
from echolib.train import checkpoint as ckpt
from echolib.train.loop import Trainer, train
from echolib.train.run_config import load_config
from echolib.train.run_folder import RunFolder
from echolib.train.run_records import load_run_config
from echolib.train.sampling import load_model, write_samples

ROOT = Path(__file__).resolve().parent.parent


def smoke(**train_over):
    return load_config("wgan", "smoke", {"train": train_over} if train_over else None)


def read_log(run: Path) -> list[dict[str, str]]:
    with open(run / "log.csv") as fh:
        return list(csv.DictReader(fh))


def test_smoke_run_writes_a_complete_run_folder(noise_frames, tmp_path):
    out = train(smoke(), noise_frames, tmp_path / "run", device="cpu", progress=False)
    rows = read_log(out)
    assert [int(r["tick"]) for r in rows] == list(range(len(rows))) and len(rows) >= 4
    assert all(float(r["loss_D"]) == float(r["loss_D"]) for r in rows)  # finite, parsed
    kimgs = [float(r["kimg"]) for r in rows]
    assert kimgs == sorted(kimgs) and kimgs[-1] >= 0.2
    assert (out / "config.yaml").exists() and (out / "run.json").exists() and (out / "done.json").exists()
    ckpts = ckpt.list_checkpoints(out / "checkpoints")
    assert 1 <= len(ckpts) <= 3  # keep_last
    state = torch.load(ckpts[-1], weights_only=True)
    assert state["arch"] == "wgan" and state["trainer"]["nimg"] >= 200
    assert list((out / "samples").glob("grid-*.png"))
    assert list((out / "tb").iterdir())


def test_rerun_of_a_finished_run_does_no_work(noise_frames, tmp_path):
    out = train(smoke(), noise_frames, tmp_path / "run", device="cpu", progress=False)
    before = (out / "log.csv").read_text()
    train(smoke(), noise_frames, out, device="cpu", progress=False)
    assert (out / "log.csv").read_text() == before


def _all_state(run: Path) -> dict[str, torch.Tensor]:
    state = torch.load(ckpt.list_checkpoints(run / "checkpoints")[-1], weights_only=True)
    flat = {}
    for group in ("nets", "ema"):
        for net, sd in state[group].items():
            flat.update({f"{group}.{net}.{k}": v for k, v in sd.items()})
    for name, opt in state["optimizers"].items():
        for pid, st in opt["state"].items():
            for k, v in st.items():
                if isinstance(v, torch.Tensor):
                    flat[f"opt.{name}.{pid}.{k}"] = v
    return flat


def test_exact_resume_is_bitwise(noise_frames, tmp_path):
    full = train(smoke(kimg=0.4), noise_frames, tmp_path / "full", device="cpu", progress=False)
    part = train(smoke(kimg=0.2), noise_frames, tmp_path / "part", device="cpu", progress=False)
    part = train(smoke(kimg=0.4), noise_frames, part, device="cpu", progress=False)
    a, b = _all_state(full), _all_state(part)
    assert a.keys() == b.keys() and len(a) > 10
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, different[:5]
    # the resumed log has every tick exactly once
    ticks = [int(r["tick"]) for r in read_log(part)]
    assert ticks == list(range(len(ticks)))


def test_training_leaves_the_callers_config_unchanged(noise_frames, tmp_path):
    run = smoke(kimg=0.04)
    before = copy.deepcopy(run)
    out = train(run, noise_frames, tmp_path / "run", device="cpu", kimg=0.08, progress=False)
    assert run == before  # the kimg override went into the trainer's own copy
    assert load_run_config(out).train.kimg == 0.08
    trainer = Trainer(run, noise_frames, out, device="cpu", progress=False)
    trainer.close()
    assert trainer.run == run and trainer.run is not run and trainer.model.cfg is not run.model
    assert run == before


def test_config_mismatch_in_run_folder_is_refused(noise_frames, tmp_path):
    out = train(smoke(), noise_frames, tmp_path / "run", device="cpu", progress=False)
    other = load_config("wgan", "smoke", {"model": {"lr": 0.001}})
    with pytest.raises(ConfigError, match="different configuration.*model.lr"):
        train(other, noise_frames, out, device="cpu", progress=False)
    with pytest.raises(ConfigError, match=r"differs in: train.batch\b"):
        train(smoke(batch=16), noise_frames, out, device="cpu", progress=False)


def test_resume_may_change_runtime_settings_and_reads_older_run_folders(noise_frames, tmp_path):
    out = train(smoke(kimg=0.1), noise_frames, tmp_path / "run", device="cpu", progress=False)
    # a folder written before a setting existed: the missing key counts as its default
    cfg = out / "config.yaml"
    cfg.write_text("\n".join(line for line in cfg.read_text().splitlines() if "cudnn_benchmark" not in line))
    assert "cudnn_benchmark" not in cfg.read_text()
    faster = smoke(kimg=0.2, compile=True, cudnn_benchmark=False, data_on_device=False, tensorboard=False)
    trainer = Trainer(faster, noise_frames, out, device="cpu", progress=False)
    assert trainer.resumed_from is not None and trainer.clock.nimg >= 100


def test_nan_guard_names_the_step_and_keeps_last_good_checkpoint(noise_frames, tmp_path):
    out = train(smoke(kimg=0.1), noise_frames, tmp_path / "run", device="cpu", progress=False)
    good = ckpt.list_checkpoints(out / "checkpoints")
    run = smoke(kimg=0.3)
    trainer = Trainer(run, noise_frames, out, device="cpu", progress=False)
    step = trainer.clock.step
    with torch.no_grad():
        next(trainer.model.nets["D"].parameters()).view(-1)[0] = float("nan")
    with pytest.raises(TrainingError, match=rf"non-finite loss 'loss_[DG]' at step {step}\b.*Last good checkpoint: .*ckpt-"):
        trainer.fit()
    assert ckpt.list_checkpoints(out / "checkpoints") == good
    torch.load(good[-1], weights_only=True)


@pytest.mark.parametrize(
    "over, msg",
    [({"kimg": 0}, "kimg must be a positive"), ({"kimg": -1}, "kimg must be a positive"),
     ({"batch": 1000}, "batch 1000 is larger than the training set"), ({"resolution": 96}, "power of two"),
     ({"keep_last": 0}, "keep_last must be at least 1"),
     ({"metrics_kimg": 0.04, "metrics": ["fdi"]}, r"train.metrics: unknown \['fdi'\]"),
     ({"metrics_kimg": 0.04, "metrics": ["ssim", "fid"]}, "the first metric ranks the checkpoints"),
     ({"metrics_kimg": 0.04, "metrics_extractor": "vgg"}, "unknown feature extractor 'vgg'")],
)
def test_bad_parameters_fail_before_work(noise_frames, tmp_path, over, msg):
    with pytest.raises(ConfigError, match=msg):
        train(smoke(**over), noise_frames, tmp_path / "run", device="cpu", progress=False)
    assert not (tmp_path / "run" / "log.csv").exists()


def test_checkpoint_refusals(noise_frames, tmp_path):
    out = train(smoke(), noise_frames, tmp_path / "run", device="cpu", progress=False)
    good = ckpt.list_checkpoints(out / "checkpoints")[-1]
    trunc = tmp_path / "trunc.pt"
    trunc.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="trunc.pt is truncated or corrupt"):
        ckpt.load(trunc)
    with pytest.raises(CheckpointError, match="is for architecture 'wgan', not 'stylegan2_ada'"):
        ckpt.load(good, arch="stylegan2_ada")
    with pytest.raises(CheckpointError, match="is for resolution 64, not 128"):
        ckpt.load(good, resolution=128)

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"format": ckpt.FORMAT, "x": Evil()}))
    with pytest.raises(CheckpointError, match="evil.pt"):
        ckpt.load(evil)
    torch.save({"format": ckpt.FORMAT, "x": Evil()}, tmp_path / "evil2.pt")
    with pytest.raises(CheckpointError, match="refused"):
        ckpt.load(tmp_path / "evil2.pt")
    assert not marker.exists()


class _Touch:
    """Pickles as a call to ``touch``: a checkpoint holding code, which loading must refuse, not run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("damage, why", [("truncated", "is truncated or corrupt"), ("code", "refused: it contains")])
def test_resume_past_an_unloadable_newest_checkpoint_warns_and_records_it(noise_frames, tmp_path, capsys, damage, why):
    out = train(smoke(), noise_frames, tmp_path / "run", device="cpu", progress=False)
    *_, previous, newest = ckpt.list_checkpoints(out / "checkpoints")
    if damage == "truncated":
        newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    else:
        torch.save({"format": ckpt.FORMAT, "x": _Touch(tmp_path / "pwned")}, newest)
    capsys.readouterr()
    trainer = Trainer(smoke(), noise_frames, out, device="cpu", progress=False)
    err = capsys.readouterr().err
    assert trainer.resumed_from == previous and not (tmp_path / "pwned").exists()
    assert err.count("\n") == 1, err
    assert err.startswith(f"warning: resuming from {previous.name}, not the newer {newest.name}: checkpoint {newest} ")
    assert why in err and err.rstrip().endswith(f"it is kept as {newest.name}.skipped")
    trainer.fit()  # trains the lost stretch again, writing a sound checkpoint under the newest name
    assert ckpt.load(newest)["trainer"]["nimg"] == round(ckpt.checkpoint_kimg(newest) * 1000)
    assert newest.with_name(newest.name + ".skipped").exists()
    train(smoke(), noise_frames, out, device="cpu", progress=False)  # a later rerun keeps the note
    (note,) = RunFolder(out).skipped_checkpoints()
    assert note["file"] == newest.name and note["resumed_from"] == previous.name and why in note["reason"]
    assert note["set_aside_as"] == f"{newest.name}.skipped" and note["time"]
    assert json.loads((out / "run.json").read_text())["arch"] == "wgan"


def test_checkpoint_failures_are_typed_and_a_mismatch_is_not_skipped(noise_frames, tmp_path):
    """Resume decides by exception type: a checkpoint of another run stops it, an unreadable one is passed over."""
    out = train(smoke(), noise_frames, tmp_path / "run", device="cpu", progress=False)
    folder = out / "checkpoints"
    with pytest.raises(CheckpointMismatchError, match="is for architecture 'wgan', not 'stylegan2_ada'"):
        ckpt.load_latest(folder, arch="stylegan2_ada")
    with pytest.raises(CheckpointMismatchError, match="is for resolution 64, not 128"):
        ckpt.load_latest(folder, resolution=128)
    for path in ckpt.list_checkpoints(folder):
        path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointUnreadableError, match="no loadable checkpoint: checkpoint .* is truncated or corrupt"):
        ckpt.load_latest(folder, arch="wgan")


def test_sample_writes_requested_count_deterministically(noise_frames, tmp_path):
    out = train(smoke(), noise_frames, tmp_path / "run", device="cpu", progress=False)
    model, _path = load_model(out, device="cpu")
    a = write_samples(model, 7, tmp_path / "a", seed=3, batch=4, progress=False)
    b = write_samples(model, 7, tmp_path / "b", seed=3, batch=4, progress=False)
    assert len(a) == 7 and [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    for batch in (0, -4):  # used to write nothing and report success (or divide by zero)
        with pytest.raises(ConfigError, match="batch must be a positive number"):
            write_samples(model, 7, tmp_path / "c", batch=batch, progress=False)


@pytest.mark.slow
def test_cli_train_and_sample(noise_frames, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    run = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "echolib", "train", "wgan", "--config", "smoke", "--data",
                        str(noise_frames), "--out", str(run), "--device", "cpu", "--no-progress"],
                       check=False, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, "-m", "echolib", "sample", str(run), "--n", "5", "--out", str(tmp_path / "s"),
                        "--device", "cpu"], check=False, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert len(list((tmp_path / "s").glob("img_*.png"))) == 5
    r = subprocess.run([sys.executable, "-m", "echolib", "sample", str(run), "--n", "5", "--batch", "0", "--out",
                        str(tmp_path / "z")], check=False, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 2 and "--batch must be a positive number" in r.stderr

    def sample(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "echolib", "sample", str(run), "--out", str(tmp_path / "s"),
                               "--device", "cpu", *extra], check=False, capture_output=True, text=True, env=env,
                              timeout=300)  # fmt: skip

    r = sample("--n", "3")  # into a folder of earlier samples: two sets would mix
    assert r.returncode == 2 and "already holds 5 sampled images" in r.stderr
    r = sample("--n", "3", "--overwrite")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "s").glob("img_*.png")) == [f"img_{i:05d}.png" for i in range(3)]
    r = sample("--n", "3", "--overwrite", "--truncation", "0.7")  # a StyleGAN2 option: wgan has none
    assert r.returncode == 2 and "wgan sampling: unknown option(s) truncation; it takes none" in r.stderr
    r = subprocess.run([sys.executable, "-m", "echolib", "train", "wgan", "--config", "E99"],
                       check=False, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 2 and "unknown config 'E99'" in r.stderr and "smoke" in r.stderr


# Per-process batch statistics would make two processes differ from one by design (as in the official
# code), so batch norm and the minibatch-stddev groups are switched off; everything else runs as configured:
# for StyleGAN2-ADA that is style mixing, ADA (p adapted from signs summed over ranks), lazy R1 through the
# DDP discriminator and path length through the DDP generator with one running mean for all ranks. Its
# ticks are one step long, so the first row holds only step 0, before a GAN amplifies rounding.
DDP_CASES = {
    "wgan": ["--set", "model.g_norm=none", "--set", "model.critic_norm=layer"],
    "stylegan2_ada": ["--set", "model.mbstd_group=1", "--set", "train.tick_kimg=0.008"],
}


@pytest.mark.slow
@pytest.mark.parametrize("arch", sorted(DDP_CASES))
def test_ddp_gloo_two_processes_match_one(noise_frames, tmp_path, arch):
    """torchrun with 2 CPU processes (gloo), batch 8 split 4+4, follows the 1-process trajectory."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    common = [arch, "--config", "smoke", "--data", str(noise_frames), "--device", "cpu", "--no-progress",
              *DDP_CASES[arch], "--kimg", "0.12"]
    one = subprocess.run([sys.executable, "-m", "echolib", "train", *common, "--out", str(tmp_path / "one")],
                         check=False, capture_output=True, text=True, env=env, timeout=600)
    assert one.returncode == 0, one.stderr
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "echolib", "train", *common, "--out", str(tmp_path / "two")],
                         check=False, capture_output=True, text=True, env=env, timeout=600)
    assert two.returncode == 0, two.stderr[-3000:]
    assert json.loads((tmp_path / "two" / "run.json").read_text())["world_size"] == 2
    a, b = read_log(tmp_path / "one"), read_log(tmp_path / "two")
    assert len(a) == len(b) >= 3
    assert [r["kimg"] for r in a] == [r["kimg"] for r in b]
    keys = [k for k in a[0] if k.startswith("loss_") or k == "augment_p"]
    assert {"loss_D", "loss_G"} <= set(keys) and keys == [k for k in b[0] if k in keys]
    for key in keys:
        assert [r[key] == "" for r in a] == [r[key] == "" for r in b], key  # same lazy-regularisation ticks
        x = [float(r[key]) for r in a if r[key]]
        y = [float(r[key]) for r in b if r[key]]
        # the first tick differs only by the order of the gradient all-reduce ...
        assert y[0] == pytest.approx(x[0], rel=1e-4)
        # ... which a GAN then amplifies a little: stay within 3% of the loss's scale
        scale = max(abs(v) for v in x + y)
        assert y == pytest.approx(x, abs=0.03 * scale)


def test_ensure_run_trains_once_and_reports(noise_frames, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from echolib.report import plots
    from echolib.report.records import read_log as read_log_df
    from echolib.train.runs import ensure_run

    run = ensure_run("wgan", "smoke", noise_frames, tmp_path, device="cpu", progress=False)
    assert run == tmp_path / "wgan" / "smoke"
    mtime = (run / "log.csv").stat().st_mtime_ns
    assert ensure_run("wgan", "smoke", noise_frames, tmp_path, device="cpu", progress=False) == run
    assert (run / "log.csv").stat().st_mtime_ns == mtime
    # a finished run is not handed out for other data or another seed (a book on real frames used to
    # score the phantom runs of an earlier build)
    with pytest.raises(ConfigError, match="trained on other data"):
        ensure_run("wgan", "smoke", "phantom", tmp_path, device="cpu", progress=False)
    with pytest.raises(ConfigError, match="differs in: train.seed"):
        ensure_run("wgan", "smoke", noise_frames, tmp_path, device="cpu", seed=7, progress=False)
    df = read_log_df(run)
    fig = plots.loss_curves(run)
    assert {ax.get_title() for ax in fig.axes} >= {"loss_D", "loss_G"}
    assert len(fig.axes[0].lines[0].get_xdata()) == len(df)
    assert plots.sample_timeline(run).axes[0].images


def test_ranking_scores_order_each_metric_its_own_way():
    from echolib.metrics.registry import ranking_metrics, ranking_score

    assert ranking_score("fid", 3.0) < ranking_score("fid", 4.0)
    assert ranking_score("recall", 0.9) < ranking_score("recall", 0.4)
    assert ranking_score("c2st_auc", 0.52) < ranking_score("c2st_auc", 0.4) < ranking_score("c2st_auc", 0.95)
    assert "ssim" not in ranking_metrics()
    with pytest.raises(ValueError, match="cannot rank"):
        ranking_score("ssim", 0.5)


def test_ddp_in_training_metrics_do_not_hang_the_ranks(noise_frames, tmp_path):
    """Rank 0 evaluates, and every rank learns whether it improved: they all save best.pt's checkpoint."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "echolib",
           "train", "wgan", "--config", "smoke", "--data", str(noise_frames), "--device", "cpu", "--no-progress",
           "--set", "model.g_norm=none", "--set", "model.critic_norm=layer", "--set", "train.metrics_kimg=0.04",
           "--set", "train.metrics=[fid]", "--set", "train.metrics_n=64", "--set", "train.snapshot_kimg=100",
           "--kimg", "0.08", "--out", str(tmp_path / "run")]  # fmt: skip
    r = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    from echolib.io import read_jsonl

    assert [rec["kimg"] for rec in read_jsonl(tmp_path / "run" / "metrics.jsonl")] == pytest.approx([0.04, 0.08], abs=0.01)
    assert (tmp_path / "run" / "checkpoints" / "best.pt").is_file()


@pytest.mark.slow
def test_ddp_a_signal_reaching_one_rank_stops_every_rank_at_one_step(noise_frames, tmp_path):
    """SIGTERM to one worker only: the ranks agree on the step to stop at, checkpoint, exit, and resume."""
    import signal
    import time

    import psutil

    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")

    def torchrun(kimg: str) -> list[str]:
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
                "echolib", "train", "wgan", "--config", "smoke", "--data", str(noise_frames), "--device", "cpu",
                "--no-progress", *DDP_CASES["wgan"], "--set", "train.snapshot_kimg=100", "--kimg", kimg,
                "--out", str(tmp_path / "run")]  # fmt: skip

    proc = subprocess.Popen(torchrun("20"), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not (tmp_path / "run" / "log.csv").exists() and time.time() < deadline:
            time.sleep(0.2)
        workers = [c for c in psutil.Process(proc.pid).children(recursive=True) if "echolib" in " ".join(c.cmdline())]
        assert len(workers) == 2, workers
        workers[-1].send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:  # on a failure, leave no worker behind
        for c in psutil.Process(proc.pid).children(recursive=True) if proc.poll() is None else []:
            c.kill()
        proc.kill()
    assert "stopped by SIGTERM" in err, err[-3000:]
    saved = ckpt.list_checkpoints(tmp_path / "run" / "checkpoints")
    assert saved, err[-3000:]
    kimg = torch.load(saved[-1], weights_only=True)["kimg"]
    done = subprocess.run(torchrun(f"{kimg + 0.04:.3f}"), env=env, capture_output=True, text=True, timeout=300,
                          check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "run" / "done.json").is_file()


def test_the_first_step_copies_the_generator_into_the_ema_as_the_official_loop_does(noise_frames, tmp_path):
    # the official loop computes the EMA decay before counting the step's images: with a ramp-up the
    # half-life is 0 at the first step, so the average starts from the trained weights, not the initial ones
    cfg = load_config("stylegan2_ada", "smoke", {"train": {"kimg": 0.008, "ema_rampup": 1.0, "ema_kimg": 10.0}})
    assert cfg.train.batch == 8  # kimg 0.008: exactly one step
    out = train(cfg, noise_frames, tmp_path / "run", device="cpu", progress=False)
    model, _ = load_model(out, device="cpu")
    g, ema = dict(model.nets["G"].named_parameters()), dict(model.ema["G"].named_parameters())
    assert all(torch.equal(ema[k], g[k]) for k in g)


@pytest.mark.slow
def test_a_run_folder_being_trained_is_refused_to_a_second_process(noise_frames, tmp_path):
    out = tmp_path / "run"
    first = Trainer(smoke(kimg=0.04), noise_frames, out, device="cpu", progress=False)
    # another process: a child that tries to train the same folder while this one holds it
    code = ("import sys; from echolib.train.loop import train; from echolib.train.run_config import load_config; "
            "train(load_config('wgan', 'smoke', {'train': {'kimg': 0.04}}), sys.argv[1], sys.argv[2], device='cpu', "
            "progress=False)")
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    refused = subprocess.run([sys.executable, "-c", code, str(noise_frames), str(out)], check=False, env=env,
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode != 0
    assert f"run folder {out} is being trained by another process (pid {os.getpid()})" in refused.stderr
    assert not (out / "checkpoints").exists() or not ckpt.list_checkpoints(out / "checkpoints")
    first.fit()  # releases the folder when it returns
    done = subprocess.run([sys.executable, "-c", code, str(noise_frames), str(out)], check=False, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr  # released: the finished run is simply reused
    # a refused configuration releases the folder at once, in the same process too
    with pytest.raises(ConfigError):
        Trainer(smoke(batch=4096), noise_frames, out, device="cpu", progress=False)
    Trainer(smoke(kimg=0.04), noise_frames, out, device="cpu", progress=False).close()
