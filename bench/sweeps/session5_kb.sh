#!/bin/bash
# KernelBench levels 1-2, every translation, on all three backends, in parts: each call runs
# for at most $KB_SECONDS and --resume carries on from .kbrun/$KB_JSON (carried back and forth).
# Usage: [KB_LEVELS=2] [KB_BACKENDS=triton,cuda] [KB_JOBS=4] [KB_JSON=name.json] [KB_ONLY=stems] \
#        bash bench/sweeps/session5_kb.sh [seconds]
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT" .kbrun
# the compiled-module cache outside the working tree: the device machine refreshes the tree
# between calls (a cache under it was gone on the next warm call: 80 s of prebuild again)
export KSPEC_CACHE=${KSPEC_CACHE:-/tmp/kspec-cache}
KB_SECONDS=${1:-520}; KB_JSON=.kbrun/${KB_JSON:-h200-2026-12-02-s5.json}
KB_LEVELS=${KB_LEVELS:-1,2}; KB_BACKENDS=${KB_BACKENDS:-triton,cuda,hip}; KB_JOBS=${KB_JOBS:-3}
CXX=$(echo "$KB_BACKENDS" | tr , '\n' | grep -v triton | paste -sd,)
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/card.txt"
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)" | tee -a "$OUT/card.txt"
t0=$SECONDS
if [ -n "$CXX" ] && [ ! -f "$KSPEC_CACHE/.prebuilt" ]; then
    timeout 150 python3 bench/kernelbench/prebuild.py --arch sm_90a --backends "$CXX" --levels "$KB_LEVELS" --jobs 15 > "$OUT/prebuild.txt" 2>&1
    echo "prebuild rc=$? $((SECONDS-t0))s"; tail -3 "$OUT/prebuild.txt"; mkdir -p "$KSPEC_CACHE" && touch "$KSPEC_CACHE/.prebuilt"
fi
left=$((KB_SECONDS-(SECONDS-t0)))
timeout -s TERM $left python3 bench/kernelbench/run.py --kernelbench kb_checkout --levels "$KB_LEVELS" \
    --backends "$KB_BACKENDS" --jobs "$KB_JOBS" --timeout 150 --reps 30 --json "$KB_JSON" --resume ${KB_ONLY:+--only $KB_ONLY} --results-md "$OUT/RESULTS.md" \
    > "$OUT/kb.log" 2>&1
echo "kb rc=$? $((SECONDS-t0))s"
cp "$KB_JSON" "$OUT/"
python3 - "$KB_JSON" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); rows = d["problems"]
print(len(rows), "problems in the JSON")
PY
grep -c "" "$OUT/kb.log"; tail -4 "$OUT/kb.log"
