#!/usr/bin/env bash
# Rebuilds the embedded demo bundle (resources/demo/) with the project's own code, from the
# TinyStories sample in ../shared. The exact commands, seeds and settings the shipped bundle was
# made with; the README records how long each step took and the metrics it reached.
#   packaging/build-demo.sh            everything (about 45 minutes on 2 cores)
#   SKIP_LM=1 packaging/build-demo.sh  keep resources/demo/model, retrain the SAEs only
#   SKIP_RES=1 / SKIP_TC=1             keep the residual SAEs / the transcoders
set -euo pipefail
cd "$(dirname "$0")/.."
CS=${CS:-build/app/circuitscope}
CORPUS=${CORPUS:-../shared/data/tinystories-sample.txt}
OUT=resources/demo
THREADS=${THREADS:-2}
LOG=${LOG:-/tmp/circuitscope-demo-build.log}
[ -f "$CORPUS" ] || { echo "build-demo: $CORPUS not found" >&2; exit 1; }
mkdir -p "$OUT/saes"

if [ -z "${SKIP_LM:-}" ]; then
  rm -rf "$OUT/model"
  $CS --threads "$THREADS" train-lm --corpus "$CORPUS" --out "$OUT/model" --layers 4 --d-model 160 --heads 4 \
      --ctx 128 --vocab 2048 --batch 32 --steps 1300 --lr 3e-3 --seed 1 --f16 | tee -a "$LOG"
fi

for L in 0 1 2 3; do
  [ -n "${SKIP_RES:-}" ] && break
  rm -rf "$OUT/saes/res-L$L"
  echo "res-L$L" | tee -a "$LOG"
  $CS --threads "$THREADS" train-sae --model "$OUT/model" --hook "blocks.$L.hook_resid_post" --corpus "$CORPUS" \
      --out "$OUT/saes/res-L$L" --d-sae 4096 --arch topk --k 16 --tokens 6000000 --batch 1024 --lr 1e-3 --seed "$L" | tee -a "$LOG"
done
for L in 0 1 2 3; do
  [ -n "${SKIP_TC:-}" ] && break
  rm -rf "$OUT/saes/tc-L$L"
  echo "tc-L$L" | tee -a "$LOG"
  $CS --threads "$THREADS" train-sae --model "$OUT/model" --hook "blocks.$L.ln2.hook_normalized" \
      --hook-out "blocks.$L.hook_mlp_out" --corpus "$CORPUS" --out "$OUT/saes/tc-L$L" --d-sae 1024 \
      --arch jumprelu --l1 0.3 --tokens 2000000 --batch 1024 --lr 1e-3 --seed "$((10 + L))" | tee -a "$LOG"
done
du -sh "$OUT"
