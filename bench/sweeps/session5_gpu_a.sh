#!/bin/bash
# Session 5, first GPU call: the C++ 3xTF32 fix on the card (tests + f32 bench), the reductions
# bench (issue 15, first GPU reading), the gate's GPU-side tests (issue 11).
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
export KSPEC_CACHE=${KSPEC_CACHE:-$PWD/.kcache}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/card.txt"
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)" | tee -a "$OUT/card.txt"
t0=$SECONDS
timeout 150 python3 -m pytest -q tests/test_cxx_tf32_gpu.py -p no:cacheprovider -W ignore --tb=short > "$OUT/cxx_tf32_gpu.txt" 2>&1; echo "tf32 tests rc=$? $((SECONDS-t0))s"; tail -5 "$OUT/cxx_tf32_gpu.txt"
t0=$SECONDS
timeout 200 python3 bench/f32_contractions.py --json "$OUT/f32_contractions.json" > "$OUT/f32_contractions.txt" 2>&1; echo "f32 bench rc=$? $((SECONDS-t0))s"
t0=$SECONDS
timeout 150 python3 -m pytest -q -n 8 tests/test_gate_candidates.py tests/test_verify_guards.py -p no:cacheprovider -W ignore --tb=line > "$OUT/gate_gpu.txt" 2>&1; echo "gate tests rc=$? $((SECONDS-t0))s"; tail -4 "$OUT/gate_gpu.txt"
t0=$SECONDS
timeout 220 python3 bench/reductions.py --backends triton,cuda --out "$OUT/reductions.json" > "$OUT/reductions.txt" 2>&1; echo "reductions rc=$? $((SECONDS-t0))s"
tail -30 "$OUT/f32_contractions.txt"
tail -40 "$OUT/reductions.txt"
