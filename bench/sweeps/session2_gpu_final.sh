#!/bin/bash
# Session 2, last GPU call: every C++ GPU test on the final code; the Triton autotuner on
# matmul+bias+gelu, then the benchmark with the stored kernel (KSPEC_USE_STORE=1) next to eager
# and torch.compile in the same process.
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/card.txt"
KSPEC_RESULTS="$OUT/gpu_cxx.jsonl" timeout ${T_CXX:-380} python3 -m pytest -q -o addopts="" tests/test_gpu_cxx.py -p no:cacheprovider -W ignore --tb=line > "$OUT/gpu_cxx.txt" 2>&1; tail -3 "$OUT/gpu_cxx.txt"
export KSPEC_STORE="$OUT/store.sqlite"
timeout ${T_TUNE:-100} python3 -m kspec.cli tune specs/matmul_bias_gelu.kspec --target triton --shape M=1024,N=8192,K=8192 --limit 24 --examples 4 --json "$OUT/tune_triton_mbg.json" -q 2>&1 | head -2
KSPEC_USE_STORE=1 timeout ${T_BENCH:-90} python3 bench/run.py --backends triton --only matmul_bias_gelu --out "$OUT" 2>&1 | tail -3
