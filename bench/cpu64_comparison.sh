#!/usr/bin/env bash
# The 64 px comparison without a GPU: every architecture's `cpu64` configuration trained on
# real frames, one after another on all of this machine's cores, then scored under one
# evaluation protocol (`evaluate --runs`: the runs' own held-out videos, reference rows
# included) and kept for the book without images or video names.
# The diffusion row is the phase-conditioned recipe (`cpu64_cond`, sampled with phases in the
# training proportions), because the same run then makes the synthetic dataset: N_DATASET
# frames through the privacy filter (`synthesize`, ES and ED in turn) and the phase utility
# test (`utility`: an ES/ED classifier trained on real, synthetic and both, tested on the
# held-out videos). Its datasheet and utility records are kept beside the comparison.
#
#   DATA=../shared/data/echonet-dynamic-128/frames bash bench/cpu64_comparison.sh
#   ARCHS="wgan medgan" DATA=... bash bench/cpu64_comparison.sh    # some architectures only
#   N_DATASET=0 DATA=... bash bench/cpu64_comparison.sh                # no synthetic dataset
#
# Stopping it (Ctrl-C, SIGTERM) is safe: a run checkpoints and running the same command
# again resumes it; finished runs, a complete dataset and its utility records are reused.
# The records land in book/measured/$LABEL (the comparison chapter's table reads them);
# KEEP=0 leaves them in $WORK only; KEEP=overwrite replaces the files of an existing $LABEL (the
# same session grown, e.g. to a larger N_DATASET).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:?set DATA to a folder of real frames (e.g. ../shared/data/echonet-dynamic-128/frames)}
WORK=${WORK:-_build/cpu64-comparison}
LABEL=${LABEL:-cpu-$(date +%F)}
N=${N:-1000}                     # generated images per row (the held-out videos give the real side)
ARCHS=${ARCHS:-stylegan2_ada wgan medgan pix2pix vqgan diffusion}
KEEP=${KEEP:-1}                  # 1, 0 or overwrite
N_DATASET=${N_DATASET:-4000}     # synthetic frames kept by the privacy filter (0: no dataset, no utility test)
UTILITY_STEPS=${UTILITY_STEPS:-} # the utility classifier's optimiser steps (default: its fixed recipe's)
MEASURED=${MEASURED:-book/measured}
CONFIG=${CONFIG:-cpu64}         # smoke: a dry run on the phantom in a minute (tests/test_cpu64_comparison.py)
RESOLUTION=${RESOLUTION:-64}
PY=${PY:-.venv/bin/python}
case "$KEEP" in 0|1|overwrite) ;; *) echo "KEEP: expected 0, 1 or overwrite, got '$KEEP'" >&2; exit 2 ;; esac
[ "$DATA" = phantom ] || [ -e "$DATA" ] || { echo "DATA: $DATA does not exist (expected a folder of real frames)" >&2; exit 2; }
mkdir -p "$WORK/runs"

# the conditioned diffusion model learns each frame's phase: from the manifest on the phantom and
# on `preprocess echonet` output, from the study's names on its shared frames (a manifest that
# points at them: no frame is copied)
LABELLED=$DATA
if [ -d "$DATA" ] && [ ! -e "$DATA/manifest.csv" ]; then
    "$PY" -m echolib preprocess study-frames --root "$DATA" --out "$WORK/study" > /dev/null
    LABELLED=$WORK/study/manifest.csv
fi
for arch in $ARCHS; do
    if [ "$arch" = diffusion ]; then config=${CONFIG}_cond data=$LABELLED; else config=$CONFIG data=$DATA; fi
    out=$WORK/runs/$arch/$config
    # a run continues with the configuration it started with, even if the named config has changed
    # since (its config.yaml says how it trained)
    recipe=$config; [ -e "$out/config.yaml" ] && recipe=$out/config.yaml
    echo "== train $arch $config"
    "$PY" -m echolib train "$arch" --config "$recipe" --data "$data" --device cpu --out "$out"
done
echo "== evaluate"
"$PY" -m echolib evaluate --real "$DATA" --runs "$WORK/runs" --resolution "$RESOLUTION" --n "$N" --extractor echo \
    --device cpu --json > "$WORK/evaluate_runs.out.tmp"
mv "$WORK/evaluate_runs.out.tmp" "$WORK/evaluate_runs.out"
if [ "$N_DATASET" -gt 0 ] && [[ " $ARCHS " == *" diffusion "* ]]; then
    echo "== synthesize $N_DATASET through the privacy filter, then the phase utility test"
    syn=$WORK/synthesize/diffusion-${CONFIG}_cond
    "$PY" -m echolib synthesize "$WORK/runs/diffusion/${CONFIG}_cond" --n "$N_DATASET" --out "$syn" \
        --privacy-filter --condition ES,ED --data "$LABELLED" --device cpu
    if [ "$WORK/utility.out" -nt "$syn/datasheet.json" ]; then
        echo "== utility: $WORK/utility.out is newer than the dataset, kept"
    else
        "$PY" -m echolib utility --real "$LABELLED" --synthetic "$syn" --task phase ${UTILITY_STEPS:+--steps "$UTILITY_STEPS"} \
            --json > "$WORK/utility.out.tmp"
        mv "$WORK/utility.out.tmp" "$WORK/utility.out"
    fi
fi
"$PY" bench/machine_info.py --device cpu > "$WORK/machine.txt"
if [ "$KEEP" != 0 ]; then
    over=; [ "$KEEP" = overwrite ] && over=--overwrite
    "$PY" bench/keep_session.py "$WORK" --label "$LABEL" --root "$MEASURED" $over
fi
