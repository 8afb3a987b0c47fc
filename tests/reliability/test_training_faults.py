"""Training survives kills, signals, numerical faults and unwritable folders, and says what happened."""

from __future__ import annotations

import csv
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from echolib.errors import DataError
from echolib.io import read_jsonl
from echolib.train import checkpoint as ckpt
from echolib.train.loop import train
from echolib.train.run_config import load_config

ROOT = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def cli(out: Path, data: Path) -> list[str]:
    """A smoke run that snapshots every tick, so kills often land in or near a checkpoint write."""
    return [sys.executable, "-m", "echolib", "train", "wgan", "--config", "smoke", "--data", str(data),
            "--out", str(out), "--device", "cpu", "--no-progress", "--set", "train.snapshot_kimg=0.04",
            "--kimg", "0.6"]


def final_state(run: Path) -> dict[str, torch.Tensor]:
    state = torch.load(ckpt.list_checkpoints(run / "checkpoints")[-1], weights_only=True)
    return {f"{g}.{n}.{k}": v for g in ("nets", "ema") for n, sd in state[g].items() for k, v in sd.items()}


def ticks(run: Path) -> list[int]:
    with open(run / "log.csv") as fh:
        return [int(r["tick"]) for r in csv.DictReader(fh)]


@pytest.fixture(scope="module")
def reference(noise_frames, tmp_path_factory) -> Path:
    """The uninterrupted run every faulty run must reproduce bit for bit (same process settings)."""
    out = tmp_path_factory.mktemp("ref") / "run"
    r = subprocess.run(cli(out, noise_frames), env=ENV, capture_output=True, text=True, timeout=600, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    return out


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume(noise_frames, reference, tmp_path):
    out = tmp_path / "run"
    rng = random.Random(1234)
    kills = 0
    for _ in range(5):
        proc = subprocess.Popen(cli(out, noise_frames), env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # wait for training to start (or the run to finish), then kill at a random moment
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None and not (out / "log.csv").exists():
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 1.5))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.communicate(timeout=120)
        found = ckpt.list_checkpoints(out / "checkpoints")
        if found:
            ckpt.load(found[-1], arch="wgan")  # the newest checkpoint always loads
    assert kills >= 2, "the run finished before it could be killed; the test lost its point"
    done = subprocess.run(cli(out, noise_frames), env=ENV, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    t = ticks(out)
    assert t == list(range(len(t))), f"duplicated or missing ticks: {t}"
    a, b = final_state(reference), final_state(out)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed run differs from the uninterrupted one"
    kimgs = [r.get("kimg") for r in read_jsonl(out / "metrics.jsonl") if r.get("source") == "train"]
    assert len(kimgs) == len(set(kimgs))


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_writes_checkpoint_and_resume_is_exact(noise_frames, reference, tmp_path, sig):
    out = tmp_path / "run"
    proc = subprocess.Popen(cli(out, noise_frames), env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (out / "log.csv").exists():
        time.sleep(0.05)
    assert proc.poll() is None, "training ended before the signal could be sent"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    name = signal.Signals(sig).name
    assert proc.returncode == 128 + sig, (proc.returncode, err[-2000:])
    assert f"stopped by {name}; checkpoint written to" in err and "Run the same command again to resume" in err
    last = ckpt.list_checkpoints(out / "checkpoints")[-1]
    state = ckpt.load(last, arch="wgan")
    assert 0 < state["trainer"]["nimg"] < 600
    done = subprocess.run(cli(out, noise_frames), env=ENV, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    a, b = final_state(reference), final_state(out)
    assert all(torch.equal(a[k], b[k]) for k in a)
    t = ticks(out)
    assert t == list(range(len(t)))


def _readonly_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o500)
        return folder
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)],
                       capture_output=True, check=False)
    if r.returncode != 0:
        pytest.skip(f"cannot make a read-only folder as root here: {r.stderr.decode().strip()}")
    return folder


def test_read_only_output_fails_at_start(noise_frames, tmp_path):
    folder = _readonly_folder(tmp_path)
    try:
        t0 = time.time()
        with pytest.raises(PermissionError, match=f"output folder {folder}/run is not writable"):
            train(load_config("wgan", "smoke"), noise_frames, folder / "run", device="cpu", progress=False)
        assert time.time() - t0 < 30
        r = subprocess.run(cli(folder / "run", noise_frames), env=ENV, capture_output=True, text=True, timeout=300,
                           check=False)
        assert r.returncode == 2 and "is not writable" in r.stderr
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", str(folder)], check=False)
        else:
            folder.chmod(0o700)


@pytest.mark.parametrize(
    "args, msg",
    [(["--config", "E77"], "unknown config 'E77' for architecture 'wgan'; choose one of"),
     (["--kimg", "0"], "kimg must be a positive number"),
     (["--kimg", "-3"], "kimg must be a positive number"),
     (["--batch", "4096"], "batch 4096 is larger than the training set"),
     (["--set", "train.resolution=100"], "resolution must be a power of two"),
     (["--set", "model.lr=fast"], "model: lr: expected a number, got 'fast'")],
)
def test_bad_cli_parameters_fail_before_work(noise_frames, tmp_path, args, msg):
    cmd = [sys.executable, "-m", "echolib", "train", "wgan", "--data", str(noise_frames), "--out",
           str(tmp_path / "run"), "--device", "cpu", "--no-progress", *args]
    r = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 2, r.stderr[-1000:]
    assert msg in r.stderr
    assert not (tmp_path / "run" / "log.csv").exists()


def test_unknown_architecture_lists_choices():
    r = subprocess.run([sys.executable, "-m", "echolib", "train", "gan9000"], env=ENV, capture_output=True,
                       text=True, timeout=300, check=False)
    assert r.returncode == 2 and "unknown architecture 'gan9000'; choose one of" in r.stderr and "wgan" in r.stderr


def test_data_errors_name_the_file(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=f"{tmp_path / 'empty'}: no PNG/JPEG images"):
        train(load_config("wgan", "smoke"), tmp_path / "empty", tmp_path / "run", device="cpu", progress=False)


def test_signal_during_training_metrics_stops_at_once_and_resume_redoes_them(noise_frames, tmp_path):
    """A signal while a metric's samples are being made abandons the evaluation and the resumed run redoes it."""
    from echolib.train.loop import Interrupted, Trainer

    def run_config():
        run = load_config("wgan", "smoke")
        run.train.kimg, run.train.sample_kimg = 0.12, 100.0
        run.train.metrics_kimg, run.train.metrics, run.train.metrics_n = 0.04, ["fid"], 256  # 4 chunks of 64
        return run

    train(run_config(), noise_frames, tmp_path / "ref", device="cpu", progress=False)
    reference = [(r["metric"], r["kimg"], r["value"]) for r in read_jsonl(tmp_path / "ref" / "metrics.jsonl")]
    assert len(reference) == 3  # one evaluation per 0.04 kimg (ticks land where whole steps end)
    first = reference[0][1]

    out = tmp_path / "run"
    trainer = Trainer(run_config(), noise_frames, out, device="cpu", progress=False)
    real_sample, chunks = trainer.model.sample, []

    def sample_then_signal(n, generator, **kw):  # the fault: SIGTERM arrives while the first chunk is drawn
        chunks.append(n)
        if len(chunks) == 1:
            os.kill(os.getpid(), signal.SIGTERM)
        return real_sample(n, generator, **kw)

    trainer.model.sample = sample_then_signal
    with pytest.raises(Interrupted, match="stopped by SIGTERM"):
        trainer.fit()
    assert chunks == [64], "the evaluation went on drawing samples after the signal"
    assert not (out / "metrics.jsonl").exists() or not read_jsonl(out / "metrics.jsonl")
    state = ckpt.load(ckpt.list_checkpoints(out / "checkpoints")[-1], arch="wgan")
    assert state["trainer"]["nimg"] == round(first * 1000) and state["trainer"]["metrics_pending"] == first

    # the resumed run redoes the evaluation, then dies (a kill, an OOM) before its next checkpoint ...
    trainer = Trainer(run_config(), noise_frames, out, device="cpu", progress=False)
    resumed_at = trainer.clock.step

    def killed(ctx, optimizers):
        raise SystemExit("killed")

    trainer.model.train_step = killed
    with pytest.raises(SystemExit):
        trainer.fit()
    assert [r["kimg"] for r in read_jsonl(out / "metrics.jsonl")] == [first]
    state = ckpt.load(ckpt.list_checkpoints(out / "checkpoints")[-1], arch="wgan")
    assert state["trainer"]["metrics_pending"] is None and state["trainer"]["step"] == resumed_at
    # ... so the next resume must not evaluate (and record) that kimg a second time
    train(run_config(), noise_frames, out, device="cpu", progress=False)
    resumed = [(r["metric"], r["kimg"], r["value"]) for r in read_jsonl(out / "metrics.jsonl")]
    assert resumed == reference, "records lost, doubled or different after the interrupted evaluation"
    a, b = final_state(tmp_path / "ref"), final_state(out)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_kill_before_the_first_checkpoint_then_a_rerun_logs_every_tick_once(noise_frames, tmp_path):
    from echolib.train.loop import Trainer

    def run_config():
        run = load_config("wgan", "smoke")
        run.train.kimg, run.train.snapshot_kimg, run.train.tensorboard = 0.12, 100.0, True
        return run

    trainer = Trainer(run_config(), noise_frames, tmp_path / "run", device="cpu", progress=False)
    original = trainer.model.train_step

    def killed_at_step_5(ctx, optimizers):  # after the first tick's row (3 steps of 16 images), before a checkpoint
        if ctx.step == 5:
            raise SystemExit("killed")
        return original(ctx, optimizers)

    trainer.model.train_step = killed_at_step_5
    with pytest.raises(SystemExit):
        trainer.fit()
    assert ticks(tmp_path / "run") and not ckpt.list_checkpoints(tmp_path / "run" / "checkpoints")
    train(run_config(), noise_frames, tmp_path / "run", device="cpu", progress=False)
    logged = ticks(tmp_path / "run")
    assert logged == list(range(len(logged))), logged
