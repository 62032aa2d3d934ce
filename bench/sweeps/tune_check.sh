#!/usr/bin/env bash
# Issue 6 on the GPU: autotune softmax, row_sum, rmsnorm, matmul, attention at the bench sizes
# and print each spec's gain over the fixed schedule (both timed in the same process, same card).
# Also runs the agent tests and keeps the scripted LLM transcript. Results go to $OUT/tune/.
set -u
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/kspec-tune-out}; mkdir -p "$OUT/tune"
export KSPEC_STORE="$OUT/tune/store.sqlite" KSPEC_CACHE=${KSPEC_CACHE:-/tmp/kspec-cache}
python3 -c "import openai" 2>/dev/null || pip install -q "openai>=1.0" >/dev/null 2>&1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/tune/card.txt"
LIMIT=${LIMIT:-16}
tune() {  # spec shape
  echo "=== $1 ($2)"
  timeout 100 python3 -m kspec.cli tune "specs/$1.kspec" --kernel "$1" --shape "$2" \
      --limit "$LIMIT" --examples 6 --json "$OUT/tune/$1.json" -q 2>&1 | tail -n 40
}
tune softmax   M=16384,N=4096
tune row_sum   M=16384,N=4096
tune rmsnorm   M=16384,N=4096
tune matmul    M=8192,N=8192,K=8192
tune attention B=16,H=16,S=2048,T=2048,D=64
echo "=== gains over the fixed schedule (same run, same card)"
python3 - "$OUT/tune" <<'PY'
import json, sys, pathlib
for f in sorted(pathlib.Path(sys.argv[1]).glob("*.json")):
    d = json.loads(f.read_text())
    best = next((c for c in d["candidates"] if c["id"] == d["best_id"]), None)
    print(f"{d['kernel']:10s} {d['arch']:6s} fixed {d['baseline_ms'] or float('nan'):.4f} ms "
          f"{d['baseline_schedule']}  best {d['best_ms'] or float('nan'):.4f} ms "
          f"gain {d['speedup'] or 1.0:.3f}x  {best['schedule'] if best else '(fixed)'}  "
          f"{d['counts']} pruned={d['pruned']} {d['seconds']:.0f}s")
PY
python3 -m kspec.cli store list
[ "${TESTS:-0}" = 1 ] || exit 0     # TESTS=1: also the agent tests (about 90 s)
echo "=== agent tests"
KSPEC_TEST_TRANSCRIPT_DIR="$OUT/tune" timeout 200 python -m pytest -q tests/test_agent_llm.py tests/test_agent_tune.py 2>&1 | tail -n 15
