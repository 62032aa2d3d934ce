#!/bin/bash
# Session 2, GPU call A: every C++ test on the GPU (all specs x cuda / hip-on-NVIDIA x lowerings,
# the tensor-core cases, long rows), the rows sweep for layernorm, the Triton GPU tests.
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/card.txt"
export KSPEC_RESULTS="$OUT/gpu_cxx.jsonl"
timeout ${T_CXX:-330} python3 -m pytest -q -o addopts="" tests/test_gpu_cxx.py -p no:cacheprovider -W ignore --tb=line > "$OUT/gpu_cxx.txt" 2>&1; tail -4 "$OUT/gpu_cxx.txt"
timeout ${T_ROWS:-150} python3 bench/sweeps/rows_layernorm_cxx.py > "$OUT/rows.txt" 2>&1; tail -22 "$OUT/rows.txt"
unset KSPEC_RESULTS
timeout ${T_TRITON:-90} python3 -m pytest -q -o addopts="" tests/test_gpu_triton.py -p no:cacheprovider -W ignore --tb=line -x > "$OUT/gpu_triton.txt" 2>&1; tail -2 "$OUT/gpu_triton.txt"
