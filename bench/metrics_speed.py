"""Time the evaluation suite; print one JSON line.

Two scenarios from the issue:

* ``--scenario cpu``: 2,000 real vs 2,000 generated, every default metric on the
  ``echo`` extractor, pinned to ``--threads`` CPU cores (default 2; the process
  sets its own CPU affinity after preparing the data). Target: under 60 s.
* ``--scenario gpu``: 10,000 vs 10,000, FID + KID + precision/recall on CUDA, for
  the ``echo`` extractor and, when its weights are available (or with
  ``--random-inception``, a random-weights file for timing only),
  ``inception-v3-compat``. Target: under 30 s.

Inputs: ``--real DIR --fake DIR`` when given, otherwise phantom frames of two
disjoint sets of hearts rendered first (not timed). Features are never cached
here (``cache=False``), so each number includes feature extraction. The JSON
holds the total, the per-stage seconds, the device and the CPU/GPU names.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path


def _pin_blas_threads(argv: list[str]) -> None:
    """BLAS thread pools size themselves when numpy loads: for the CPU scenario, pin them before any import."""
    if "gpu" in argv:
        return
    threads = argv[argv.index("--threads") + 1] if "--threads" in argv else "2"
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = threads


if __name__ == "__main__":
    _pin_blas_threads(sys.argv)

import torch


def phantom_sets(n: int, workers: int, root: Path) -> tuple[Path, Path]:
    """Two folders of ``n`` phantom frames each (seeds 101 and 202: different hearts)."""
    from echolib.data.phantom import generate

    return (
        generate(root / "real", n, 128, 101, workers=workers, progress=False),
        generate(root / "fake", n, 128, 202, workers=workers, progress=False),
    )


def random_inception_weights(path: Path) -> Path:
    """Random Inception weights of the right shapes: timing only, values meaningless."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    load, lsd = torch.load, FeatureExtractorInceptionV3.load_state_dict
    torch.load = lambda *a, **k: {}  # the constructor insists on loading something
    FeatureExtractorInceptionV3.load_state_dict = lambda self, sd, strict=True: None
    try:
        net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path="x")
    finally:
        torch.load, FeatureExtractorInceptionV3.load_state_dict = load, lsd
    torch.save(net.state_dict(), path)
    return path


def run_once(real, fake, metrics, extractor, device, n) -> dict:
    from echolib.metrics import evaluate

    timings: dict[str, float] = {}
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start, cpu_start = time.perf_counter(), time.process_time()
    records = evaluate(
        real, fake, metrics=metrics, extractor=extractor, n=n, device=device, cache=False, timings=timings
    )
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    total = time.perf_counter() - start
    return {
        "extractor": extractor,
        "seconds": round(total, 2),
        "cpu_seconds": round(time.process_time() - cpu_start, 2),  # on a shared machine, what the run itself cost
        "stages": {k: round(v, 2) for k, v in timings.items()},
        "values": {r["metric"]: r["value"] for r in records},
        "n_real": records[0]["n_real"],
        "n_fake": records[0]["n_fake"],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenario", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--real", default=None, help="folder of real frames (default: phantom)")
    p.add_argument("--fake", default=None, help="folder of generated frames (default: phantom)")
    p.add_argument("--n", type=int, default=None, help="images per set (default 2000 cpu / 10000 gpu)")
    p.add_argument("--threads", type=int, default=2, help="CPU cores for the cpu scenario")
    p.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2)), help="phantom rendering processes")
    p.add_argument(
        "--random-inception",
        action="store_true",
        help="gpu scenario: time inception-v3-compat with random weights if the real ones are missing",
    )
    args = p.parse_args()
    n = args.n or (2000 if args.scenario == "cpu" else 10_000)
    from echolib.metrics.evaluate import DEFAULT_METRICS

    with tempfile.TemporaryDirectory(prefix="metrics-bench-") as tmp:
        real, fake = (args.real, args.fake) if args.real and args.fake else phantom_sets(n, args.workers, Path(tmp))
        result = {
            "benchmark": "metrics_speed",
            "scenario": args.scenario,
            "torch": torch.__version__,
            "cpu": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "data": "given folders" if args.real and args.fake else "phantom (two disjoint sets of hearts)",
        }
        if args.scenario == "cpu":
            if hasattr(os, "sched_setaffinity"):
                os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[: args.threads]))
            torch.set_num_threads(args.threads)
            result.update(threads=args.threads, device="cpu", limit_s=60.0)
            result["runs"] = [run_once(real, fake, list(DEFAULT_METRICS), "echo", "cpu", n)]
        else:
            if not torch.cuda.is_available():
                raise SystemExit("the gpu scenario needs CUDA")
            result.update(device="cuda", gpu=torch.cuda.get_device_name(0), limit_s=30.0)
            metrics = ["fid", "kid", "precision", "recall"]
            runs = [run_once(real, fake, metrics, "echo", "cuda", n)]
            from echolib.errors import ConfigError
            from echolib.metrics import fidelity

            try:
                fidelity.inception_weights_path()
                weights = "real"
            except ConfigError:
                weights = None
                if args.random_inception:
                    os.environ[fidelity.ENV_INCEPTION_WEIGHTS] = str(random_inception_weights(Path(tmp) / "inc.pth"))
                    weights = "random (timing only; values meaningless)"
            if weights:
                runs.append(run_once(real, fake, metrics, "inception-v3-compat", "cuda", n) | {"weights": weights})
            result["runs"] = runs
        result["pass"] = all(r["seconds"] < result["limit_s"] for r in result["runs"])
    print(json.dumps(result))


if __name__ == "__main__":
    main()
