"""Training on the CPU: bf16 autocast, channels_last, threads, and the older spelling of the precision setting."""

from __future__ import annotations

import contextlib
import json
import math
import os
from typing import ClassVar

import pytest
import torch
from conftest import trainer_context

from echolib.data.frames import FrameDataset
from echolib.devices import autocast_dtype, cpu_threads, uses_channels_last
from echolib.errors import ConfigError
from echolib.metrics.perceptual import PERCEPTUAL_LOSSES
from echolib.models.registry import available_architectures
from echolib.train.compiling import wire_forwards
from echolib.train.conditions import condition_maps
from echolib.train.distributed import DistInfo
from echolib.train.loop import Trainer, train
from echolib.train.run_config import build_model, from_plain, load_config

CPU = torch.device("cpu")

#: |bf16 - fp32| <= RTOL * max(|fp32|, FLOOR) for every loss of a step: bf16 keeps 8 bits of mantissa (0.4 %
#: per rounding). The floor is for losses that are differences of nearly equal means (a WGAN critic's), whose
#: relative error means nothing.
RTOL, FLOOR = 0.05, 0.1
#: one update per network in the compared step: MedGAN's warm-up is 5 critic steps in a row, over which
#: RMSprop's first, sign-like steps amplify bf16's roundings of tiny gradients into different critics
ONE_UPDATE = {"medgan": {"model": {"warmup_cycles": 0}}}


class MatmulDtypes(torch.utils._python_dispatch.TorchDispatchMode):
    """The dtypes the convolutions and matrix products of a block ran in."""

    OPS: ClassVar[set[str]] = {"aten.convolution", "aten.mm", "aten.addmm", "aten.bmm"}

    def __init__(self) -> None:
        super().__init__()
        self.dtypes: set[torch.dtype] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if str(func.overloadpacket) in self.OPS:
            self.dtypes.update(a.dtype for a in args[:2] if isinstance(a, torch.Tensor))
        return func(*args, **(kwargs or {}))


def last_step(arch: str, precision: str) -> tuple[dict[str, float], MatmulDtypes, dict[str, torch.Tensor]]:
    """Two fp32 training steps of ``arch``'s smoke config, then one in ``precision``, as the trainer runs them.

    Layers initialised to zero (the diffusion U-Net's output layers) get
    random weights first: the loss would not depend on the network otherwise,
    and no precision could change it.
    """
    run = load_config(arch, "smoke", ONE_UPDATE.get(arch))
    res = run.train.resolution
    data = torch.randint(0, 256, (64, 1, res, res), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    torch.manual_seed(0)
    model = build_model(run)
    model.use_perceptual(PERCEPTUAL_LOSSES)  # as the trainer does
    frames = FrameDataset.of_images(data)
    model.setup(frames, heldout=None)
    maps = condition_maps(model, frames) if model.image_conditioned else None  # as the trainer hands them
    with torch.no_grad():
        for p in model.nets.parameters():
            if p.ndim > 1 and not p.any():
                p.normal_(0.0, 0.1)
    wire_forwards(model, CPU, DistInfo(), compile=False)
    opts = model.make_optimizers()
    seen = MatmulDtypes()
    for step in range(3):
        ctx = trainer_context(data, step, run.train.batch, maps)
        dtype = autocast_dtype(precision if step == 2 else "fp32", CPU)
        if dtype is not None:  # what the trainer's step runs in (Trainer._autocast_factory)
            ctx.autocast = lambda dtype=dtype: torch.autocast("cpu", dtype=dtype)
        torch.manual_seed(step + 1)
        with seen if step == 2 else contextlib.nullcontext(), ctx.autocast():
            out = model.train_step(ctx, opts)
    return {k: float(v) for k, v in out.items()}, seen, {k: v.detach() for k, v in model.nets.state_dict().items()}


@pytest.mark.parametrize("arch", available_architectures())
def test_a_bf16_cpu_step_is_finite_and_close_to_fp32_on_the_same_batch(arch):
    fp32, fp32_ops, _ = last_step(arch, "fp32")
    bf16, bf16_ops, weights = last_step(arch, "bf16")
    assert fp32_ops.dtypes == {torch.float32}
    assert torch.bfloat16 in bf16_ops.dtypes  # autocast reached the networks: the comparison below means something
    assert all(v.isfinite().all() for v in weights.values() if v.is_floating_point())
    assert fp32.keys() == bf16.keys()
    for k, v in fp32.items():
        assert math.isfinite(bf16[k]), k
        assert abs(bf16[k] - v) <= RTOL * max(abs(v), FLOOR), (arch, k, v, bf16[k])


def test_the_precision_setting_and_its_older_spelling():
    cuda = torch.device("cuda")  # only compared, never used: no GPU needed
    assert autocast_dtype("auto", cuda) is torch.bfloat16 and autocast_dtype("auto", CPU) is None
    assert autocast_dtype("bf16", CPU) is torch.bfloat16 and autocast_dtype("fp32", cuda) is None
    assert uses_channels_last("auto", cuda) and not uses_channels_last("auto", CPU)
    assert uses_channels_last("channels_last", CPU) and not uses_channels_last("contiguous", cuda)

    def read(train: dict):
        return from_plain("wgan", "smoke", {"train": train}, "old/config.yaml").train

    assert read({"bf16": True}).precision == "auto"  # bf16 on CUDA, fp32 on the CPU: what bf16: true meant
    assert read({"bf16": False}).precision == "fp32"
    assert read({}).precision == "auto"
    with pytest.raises(ConfigError, match=r"old/config.yaml: train.bf16 and train.precision both given"):
        read({"bf16": True, "precision": "bf16"})
    with pytest.raises(ConfigError, match=r"train.bf16 .* must be true or false, got 'yes please'"):
        read({"bf16": "yes please"})
    with pytest.raises(ConfigError, match=r"precision: expected one of 'auto', 'bf16', 'fp32', got 'fp16'"):
        read({"precision": "fp16"})


def test_a_run_folder_written_with_bf16_true_resumes_and_one_with_bf16_false_is_refused(noise_frames, tmp_path):
    smoke = load_config("wgan", "smoke", {"train": {"kimg": 0.02, "tick_kimg": 0.01}})
    out = train(smoke, noise_frames, tmp_path / "run", device="cpu", progress=False)
    cfg = out / "config.yaml"
    written = cfg.read_text()
    assert "  precision: auto\n" in written
    cfg.write_text(written.replace("  precision: auto\n", "  bf16: true\n"))  # as echolib wrote it before
    longer = load_config("wgan", "smoke", {"train": {"kimg": 0.04, "tick_kimg": 0.01}})
    resumed = Trainer(longer, noise_frames, out, device="cpu", progress=False)
    assert resumed.resumed_from is not None
    resumed.close()
    cfg.write_text(written.replace("  precision: auto\n", "  bf16: false\n"))
    with pytest.raises(ConfigError, match=r"differs in: train.precision"):
        Trainer(longer, noise_frames, out, device="cpu", progress=False)


def test_cpu_threads_follow_omp_num_threads_else_the_cores_the_process_may_use():
    assert cpu_threads({}, available=2) == 2
    assert cpu_threads({"OMP_NUM_THREADS": "1"}, available=2) == 1
    assert cpu_threads({"OMP_NUM_THREADS": "3,1"}, available=2) == 3  # OpenMP's nested list: the first level
    assert cpu_threads({"OMP_NUM_THREADS": " "}, available=8, processes=2) == 4  # DDP ranks share the cores
    assert cpu_threads({}, available=1, processes=4) == 1
    for bad in ("0", "two", "-1"):
        with pytest.raises(ConfigError, match=rf"OMP_NUM_THREADS must be a positive integer, got '{bad}'"):
            cpu_threads({"OMP_NUM_THREADS": bad}, available=2)


def test_the_trainer_uses_every_core_it_is_given_unless_omp_num_threads_is_set(noise_frames, tmp_path, monkeypatch):
    cores = len(os.sched_getaffinity(0))
    before = torch.get_num_threads()
    for env, expected in ((None, cores), ("1", 1)):  # make book exports OMP_NUM_THREADS=1: one per notebook
        if env is None:
            monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        else:
            monkeypatch.setenv("OMP_NUM_THREADS", env)
        run = load_config("wgan", "smoke", {"train": {"kimg": 0.01, "tick_kimg": 0.01}})
        trainer = Trainer(run, noise_frames, tmp_path / f"run-{env}", device="cpu", progress=False)
        during = []
        step = trainer.model.train_step

        def spy(ctx, optimizers, step=step, during=during):
            during.append(torch.get_num_threads())
            return step(ctx, optimizers)

        trainer.model.train_step = spy
        out = trainer.fit()
        assert during and set(during) == {expected}
        assert json.loads((out / "run.json").read_text())["threads"] == expected
        assert torch.get_num_threads() == before  # a process-wide setting: given back after fit


def test_channels_last_on_the_cpu_reaches_networks_and_the_conditions_a_model_makes(noise_frames, tmp_path):
    run = load_config("pix2pix", "smoke", {"train": {"kimg": 0.008, "tick_kimg": 0.008, "memory_format": "channels_last",
                                                     "precision": "bf16"}})  # fmt: skip
    trainer = Trainer(run, noise_frames, tmp_path / "run", device="cpu", progress=False)
    convs = [p for p in trainer.model.nets.parameters() if p.ndim == 4 and p.shape[1] > 1]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous() for p in convs)
    seen = []
    g_forward = trainer.model.fwd["G"]

    def spy(cond, masks, forward=g_forward):
        seen.append(cond.is_contiguous(memory_format=torch.channels_last))
        return forward(cond, masks)

    trainer.model.fwd["G"] = spy
    out = trainer.fit()
    meta = json.loads((out / "run.json").read_text())
    assert meta["precision"] == "bf16" and meta["channels_last"] is True and seen == [True]


def test_bf16_training_on_the_cpu_is_deterministic_and_resumes_exactly(noise_frames, tmp_path):
    """Two bf16 runs from one seed give the same bytes, and so does one stopped half-way and resumed."""

    def run(kimg: float):
        return load_config("stylegan2_ada", "smoke", {"train": {"kimg": kimg, "tick_kimg": 0.016, "precision": "bf16",
                                                                "sample_kimg": 0}})  # fmt: skip

    full = train(run(0.032), noise_frames, tmp_path / "full", device="cpu", progress=False)
    again = train(run(0.032), noise_frames, tmp_path / "again", device="cpu", progress=False)
    part = train(run(0.016), noise_frames, tmp_path / "part", device="cpu", progress=False)
    part = train(run(0.032), noise_frames, part, device="cpu", progress=False)
    from test_trainer import _all_state

    a = _all_state(full)
    assert len(a) > 10
    for other in (again, part):
        b = _all_state(other)
        assert a.keys() == b.keys() and not [k for k in a if not torch.equal(a[k], b[k])]
    assert json.loads((full / "run.json").read_text())["precision"] == "bf16"
