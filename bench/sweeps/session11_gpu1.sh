#!/bin/bash
# Session 11, first device call: the convolution sweep with the CUDA backend beside Triton (the
# C++ implicit GEMM's baseline), then KernelBench level 2 on the 25 translations changed in
# session 10 (language 1.2's left-hand-side ranges; 43, 78, 89 new).
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
t0=$SECONDS
timeout 300 python3 bench/sweeps/session10_conv.py --backends triton,cuda --name session11_conv_before \
    --out "$OUT" > "$OUT/conv.log" 2>&1; echo "conv rc=$? $((SECONDS-t0))s"
KB_LEVELS=2 KB_BACKENDS=triton,cuda KB_JOBS=6 KB_JSON=h200-2026-12-04-s11.json \
KB_ONLY=$(ls bench/kernelbench/level2 | grep -E '^(43|78|89|13|16|19|42|72|10|11|15|20|34|36|38|3|49|50|58|60|61|74|77|91|96)_' | sed 's/.kspec$//' | paste -sd,) \
    bash bench/sweeps/session5_kb.sh $((560-(SECONDS-t0)))
grep -E "^(SUMMARY|.*wrong|.*failed)" "$OUT/kb.log" | tail -15
sed -n '/^# conv2d/,$p' "$OUT/session11_conv_before.md"
