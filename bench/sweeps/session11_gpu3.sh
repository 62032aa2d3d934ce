#!/bin/bash
# Session 11, third device call: KernelBench level 2 on triton and cuda after the C++ implicit
# GEMM (window walk, hoisted rows, element copies), resumable (.kbrun/h200-2026-12-04-s11-l2.json).
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
KB_LEVELS=2 KB_BACKENDS=triton,cuda KB_JOBS=6 KB_JSON=h200-2026-12-04-s11-l2.json \
    bash bench/sweeps/session5_kb.sh ${1:-540}
grep -E "^SUMMARY" "$OUT/kb.log" | tail -1
