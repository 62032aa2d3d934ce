#!/bin/bash
# Final GPU pass: correctness of every backend, the portability table, the C++ memory-bound set.
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/card.txt"
timeout 170 python3 -m pytest -q tests/test_gpu_triton.py -p no:cacheprovider -W ignore --tb=line > "$OUT/gpu_triton.txt" 2>&1; tail -3 "$OUT/gpu_triton.txt"
timeout 200 python3 -m pytest -q tests/test_gpu_cxx.py -p no:cacheprovider -W ignore --tb=line > "$OUT/gpu_cxx.txt" 2>&1; tail -3 "$OUT/gpu_cxx.txt"
timeout 120 python3 -m kspec.cli check specs/softmax.kspec specs/layernorm.kspec specs/matmul.kspec --examples 4 --json "$OUT/portability.json" > "$OUT/portability.txt" 2>&1; echo "check rc=$?"; tail -40 "$OUT/portability.txt"
timeout 150 python3 bench/run.py --backends cuda,hip --no-compile --only 'vector_add,relu,gelu,softmax,log_softmax,layernorm*,rmsnorm,row_sum' --out "$OUT" 2>&1 | tail -11
