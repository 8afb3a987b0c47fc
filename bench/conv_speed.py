"""GFLOP/s of one 3x3 convolution, forward and backward, in fp32 and bf16, contiguous and channels_last.

The ceiling a CPU training step can reach: a step's FLOPs are almost all
convolutions (``bench/step_flops.py``), so a kimg cannot take less than its
FLOPs divided by this rate. Prints one JSON line per (threads, dtype, layout):

    python bench/conv_speed.py --threads 1,2
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch
import torch.nn.functional as F


def conv_rate(batch: int, channels: int, size: int, dtype: torch.dtype, channels_last: bool, repeats: int) -> float:
    """GFLOP/s of ``conv2d`` 3x3 ``channels -> channels`` at ``size`` px, forward + input and weight gradients."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.randn(batch, channels, size, size).contiguous(memory_format=fmt).requires_grad_(True)
    w = torch.randn(channels, channels, 3, 3).contiguous(memory_format=fmt).requires_grad_(True)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
            y = F.conv2d(x, w, padding=1)
        y.float().sum().backward()

    for _ in range(3):
        step()
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    seconds = (time.perf_counter() - start) / repeats
    return 3 * 2 * batch * channels * channels * 9 * size * size / seconds / 1e9


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", default="1", help="comma-separated intra-op thread counts")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--channels", type=int, default=64)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--repeats", type=int, default=10)
    args = p.parse_args()
    for threads in (int(t) for t in args.threads.split(",")):
        torch.set_num_threads(threads)
        for dtype in (torch.float32, torch.bfloat16):
            for channels_last in (False, True):
                load = os.getloadavg()[0]
                rate = conv_rate(args.batch, args.channels, args.size, dtype, channels_last, args.repeats)
                print(json.dumps({"threads": threads, "dtype": str(dtype).removeprefix("torch."),
                                  "channels_last": channels_last, "batch": args.batch, "channels": args.channels,
                                  "size": args.size, "gflops": round(rate, 1), "load_avg_before": round(load, 2),
                                  "load_avg_after": round(os.getloadavg()[0], 2), "torch": torch.__version__}),
                      flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
