#!/usr/bin/env bash
# The 64 px comparison without a GPU: every architecture's `cpu64` configuration trained on
# real frames, one after another on all of this machine's cores, then scored under one
# evaluation protocol (`evaluate --runs`: the runs' own held-out videos, reference rows
# included) and kept for the book without images or video names.
#
#   DATA=../shared/data/echonet-dynamic-128/frames bash bench/cpu64_comparison.sh
#   ARCHS="wgan medgan" DATA=... bash bench/cpu64_comparison.sh    # some architectures only
#
# Stopping it (Ctrl-C, SIGTERM) is safe: a run checkpoints and running the same command
# again resumes it; finished runs are reused. The records land in book/measured/$LABEL
# (the comparison chapter's table reads them); KEEP=0 leaves them in $WORK only.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:?set DATA to a folder of real frames (e.g. ../shared/data/echonet-dynamic-128/frames)}
WORK=${WORK:-_build/cpu64-comparison}
LABEL=${LABEL:-cpu-$(date +%F)}
N=${N:-1000}                     # generated images per row (the held-out videos give the real side)
ARCHS=${ARCHS:-stylegan2_ada wgan medgan pix2pix vqgan diffusion}
KEEP=${KEEP:-1}
MEASURED=${MEASURED:-book/measured}
CONFIG=${CONFIG:-cpu64}         # smoke: a dry run on the phantom in a minute (tests/test_cpu64_comparison.py)
RESOLUTION=${RESOLUTION:-64}
PY=${PY:-.venv/bin/python}
[ "$DATA" = phantom ] || [ -e "$DATA" ] || { echo "DATA: $DATA does not exist (expected a folder of real frames)" >&2; exit 2; }
mkdir -p "$WORK/runs"

for arch in $ARCHS; do
    echo "== train $arch $CONFIG"
    "$PY" -m echolib train "$arch" --config "$CONFIG" --data "$DATA" --device cpu --out "$WORK/runs/$arch/$CONFIG"
done
echo "== evaluate"
"$PY" -m echolib evaluate --real "$DATA" --runs "$WORK/runs" --resolution "$RESOLUTION" --n "$N" --extractor echo \
    --device cpu --json > "$WORK/evaluate_runs.out.tmp"
mv "$WORK/evaluate_runs.out.tmp" "$WORK/evaluate_runs.out"
"$PY" bench/machine_info.py --device cpu > "$WORK/machine.txt"
if [ "$KEEP" = 1 ]; then
    "$PY" bench/keep_session.py "$WORK" --label "$LABEL" --root "$MEASURED"
fi
