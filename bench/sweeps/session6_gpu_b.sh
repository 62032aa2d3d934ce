#!/bin/bash
# Session 6, last GPU call: the derived backward kernels on every backend and the training step
# after the Triton shared-memory fit of computed operands; then the merged branches' benches
# (Triton split-K and matvec, C++ column
# reductions), each bounded so that a slow one cannot take the others' time.
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
export KSPEC_CACHE=${KSPEC_CACHE:-/tmp/kspec-cache}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/card.txt"
step() {  # step NAME SECONDS command...: output to $OUT/NAME.txt, the status line printed
    local name=$1 secs=$2; shift 2; local t0=$SECONDS
    timeout "$secs" "$@" > "$OUT/$name.txt" 2>&1
    echo "$name rc=$? $((SECONDS-t0))s"
}
step gpu_grad 110 python3 -m pytest -v -n 14 tests/test_gpu_grad.py -p no:cacheprovider -W ignore --tb=line
grep -E "(FAILED|ERROR)" "$OUT/gpu_grad.txt" | grep -v "^FAILED\|^ERROR" | cut -c1-200 | head; grep -cE "PASSED" "$OUT/gpu_grad.txt"; grep -E "^(FAILED|ERROR)" "$OUT/gpu_grad.txt" | cut -c1-250 | head -12
step training_step 90 python3 bench/training_step.py --json "$OUT/training_step.json"
step splitk 50 python3 bench/sweeps/session6_splitk.py
step cxxcol 50 python3 bench/sweeps/session6_cxxcol.py
tail -8 "$OUT/training_step.txt"
for f in splitk cxxcol; do echo "== $f"; grep "^|" "$OUT/$f.txt" | cut -c1-200 | tail -14; done
