#!/bin/bash
# Session 11, second device call: the C++ implicit GEMM (window walk, hoisted rows, 4-byte
# element copies) checked on the GPU, then timed at KernelBench level-2 conv shapes beside
# eager, torch.compile and Triton.
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
t0=$SECONDS
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/card.txt"
timeout 200 python3 -m pytest -o addopts="" -q --timeout 120 -rfE --tb=short -p no:cacheprovider \
    tests/test_cxx_conv_window.py -k gpu tests/test_cxx_tf32_gpu.py > "$OUT/pytest.log" 2>&1
echo "pytest rc=$? $((SECONDS-t0))s"; tail -8 "$OUT/pytest.log"
timeout 330 python3 bench/sweeps/session10_conv.py --backends triton,cuda --overrides cuda \
    --name session11_conv_after --out "$OUT" > "$OUT/conv.log" 2>&1; echo "conv rc=$? $((SECONDS-t0))s"
tail -3 "$OUT/conv.log" | cut -c1-300
sed -n '/^# conv2d/,$p' "$OUT/session11_conv_after.md"
