#!/bin/bash
# The C++ tensor-core contraction on the GPU: correctness (tests/test_gpu_cxx.py's contraction
# cases, then every spec on both C++ backends), then the tile sweep against cuBLAS.
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/card.txt"
timeout ${T_TC:-200} python3 -m pytest -q -o addopts="" tests/test_gpu_cxx.py -k tensor_core -p no:cacheprovider -W ignore --tb=short -x > "$OUT/gpu_tc.txt" 2>&1; tail -25 "$OUT/gpu_tc.txt"
timeout ${T_SWEEP:-240} python3 bench/sweeps/cxx_matmul_tiles.py 2>&1 | tee "$OUT/sweep.txt" | tail -40
