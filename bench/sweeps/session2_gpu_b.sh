#!/bin/bash
# Session 2, GPU call B: the benchmark table (every workload, triton / cuda / hip-on-NVIDIA next
# to eager and torch.compile), then the autotuner for the C++ target (gains over the fixed
# schedule, same process, same card).
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
timeout ${T_BENCH:-400} python3 bench/run.py --backends triton,cuda,hip --out "$OUT" 2>&1 | tail -48
export KSPEC_STORE="$OUT/store.sqlite"
tune() {  # spec shape
  echo "=== cuda $1 ($2)"
  timeout ${T_TUNE:-60} python3 -m kspec.cli tune "specs/$1.kspec" --kernel "$1" --target cuda \
      --shape "$2" --limit ${LIMIT:-8} --examples 4 --json "$OUT/tune_cuda_$1.json" -q 2>&1 | tail -n 14
}
tune matmul M=8192,N=8192,K=8192
tune matmul_bias_gelu M=1024,N=8192,K=8192
tune layernorm M=16384,N=4096
tune softmax M=16384,N=4096
