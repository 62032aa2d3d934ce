#!/bin/bash
# Session 6, first GPU call: the GPU tests of what landed in session 5 without a GPU run
# (language 1.1 constructs, scans, C++ split per row, the derived backward kernels), the
# training step next to eager and torch.compile (issue 17), the reductions bench with the
# C++ split per row (issue 15).
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
export KSPEC_CACHE=${KSPEC_CACHE:-/tmp/kspec-cache}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/card.txt"
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)" | tee -a "$OUT/card.txt"
T=(-p no:cacheprovider -W ignore --tb=short -rfE)
t0=$SECONDS
timeout 260 python3 -m pytest -q -n 14 tests/test_gpu_triton.py tests/test_gpu_cxx.py tests/test_gpu_grad.py \
    tests/test_cxx_tf32_gpu.py "${T[@]}" > "$OUT/gpu_tests.txt" 2>&1
echo "gpu tests rc=$? $((SECONDS-t0))s"; grep -E "^(FAILED|ERROR)" "$OUT/gpu_tests.txt" | cut -c1-220 | head -30; tail -2 "$OUT/gpu_tests.txt"
t0=$SECONDS
timeout 120 python3 bench/training_step.py --json "$OUT/training_step.json" > "$OUT/training_step.txt" 2>&1
echo "training step rc=$? $((SECONDS-t0))s"
t0=$SECONDS
timeout 170 python3 bench/reductions.py --backends triton,cuda --out "$OUT/reductions.json" > "$OUT/reductions.txt" 2>&1
echo "reductions rc=$? $((SECONDS-t0))s"
tail -9 "$OUT/training_step.txt"
tail -32 "$OUT/reductions.txt"
# issue 18: tune --llm end to end on the GPU against the scripted loopback server (needs the
# openai wheels carried in .whl/agent)
t0=$SECONDS
timeout 100 python3 bench/agent_gpu.py --out "$OUT/agent" > "$OUT/agent.txt" 2>&1
echo "agent rc=$? $((SECONDS-t0))s"; grep "^|" "$OUT/agent.txt" | cut -c1-230
