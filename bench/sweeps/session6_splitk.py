"""Split-K and matrix-vector contractions (issue 14 / 15) at KernelBench's shapes, next to eager
PyTorch and torch.compile in the same process, f32 with TF32 off on the PyTorch side.

    python3 bench/sweeps/session6_splitk.py [--quick]      # the lead runs it on the GPU

Cases: level1/4 (A[2048, 1048576] @ x[1048576, 1]: the floor is reading A once, 8 GiB),
level1/6 (256 x 256 over K = 524288: split-K), level1/8 (8205 x 2949 x 5921), level1/9
(A[32768, 32] @ B[32, 32768]) and a 4096^3 control. Each kspec row is the default schedule
or one override of the new keys (0.SPLIT_K, 0m.*), with its error against a float64 matmul on
the GPU (max |out - ref| / max |ref|) and whether a second run gave the same bits (split-K
sums its partials in a fixed order: no atomics). JSON under $OUT (or --out); a short table
last. About 2-3 minutes on an H200, most of it torch.compile.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import kspec  # noqa: E402
from timing import Budget, bench, device_info  # noqa: E402

KB = ROOT / "bench" / "kernelbench" / "level1"
SPEC = {"4": "4_Matrix_vector_multiplication_", "6": "6_Matmul_with_large_K_dimension_",
        "8": "8_Matmul_with_irregular_shapes_", "9": "9_Tall_skinny_matrix_multiplication_",
        "1": "1_Square_matrix_multiplication_"}

# (label, spec, A shape, B shape, kspec schedule overrides besides the default)
CASES = [
    ("level1/4 matvec 2048x1048576", "4", (2048, 1048576), (1048576, 1),
     [{"0m.SPLIT_K": 1}, {"0m.SPLIT_K": 4}, {"0m.SPLIT_K": 8}, {"0m.WARPS": 8},
      {"0m.BLOCK_K": 1024, "0m.WARPS": 8}, {"0m.BLOCK_M": 4}, {"0.matvec": False}]),
    ("level1/6 256x256, K=524288", "6", (256, 524288), (524288, 256),
     [{"0.SPLIT_K": 16}, {"0.SPLIT_K": 66}, {"0.SPLIT_K": 132}, {"0.SPLIT_K": 256},
      {"0.SPLIT_K": 66, "0.BLOCK_N": 128, "0.WARPS": 8}]),
    ("level1/8 8205x2949x5921", "8", (8205, 2949), (2949, 5921), [{"0.DEPTH_MAJOR_B": False}]),
    ("level1/9 32768x32x32768", "9", (32768, 32), (32, 32768),
     [{"0.DEPTH_MAJOR_B": False}, {"0.BLOCK_N": 256, "0.BLOCK_K": 32}]),
    ("4096^3 control", "1", (4096, 4096), (4096, 4096), []),
]


def rel_error(out: torch.Tensor, truth: torch.Tensor) -> float:
    return float(((out.double() - truth).abs().max() / truth.abs().max()).item())


def measure(case: str, impl: str, fn, inputs: list, truth: torch.Tensor, dev: torch.device,
            budget: Budget, schedule: dict | None) -> dict:
    """One row: error against float64, same bits on a second run, median time."""
    try:
        out = fn(*inputs)
        err = rel_error(out, truth)
        same = bool(torch.equal(out, fn(*inputs)))
        del out
        t = bench(fn, [inputs], dev, budget)
        return dict(case=case, impl=impl, schedule=schedule, ms=t.ms, error=err,
                    deterministic=same)
    except Exception as e:  # a variant that fails is a row, not the end of the run
        return dict(case=case, impl=impl, schedule=schedule, ms=None,
                    failure=f"{type(e).__name__}: {str(e).splitlines()[0][:200]}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.environ.get("OUT", "bench/results/session6-splitk"))
    ap.add_argument("--quick", action="store_true", help="no torch.compile, no overrides")
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = torch.device("cuda")
    budget = Budget(warmup_ms=20, rep_ms=150, min_reps=5)
    rows: list[dict] = []
    start = time.perf_counter()
    for label, spec, a_shape, b_shape, overrides in CASES:
        kernel = next(iter(kspec.load(KB / f"{SPEC[spec]}.kspec")))
        torch.manual_seed(0)
        inputs = [torch.rand(*a_shape, device=dev), torch.rand(*b_shape, device=dev)]
        truth = inputs[0].double() @ inputs[1].double()
        runs = [("eager", torch.matmul, None)]
        if not args.quick:
            runs.append(("torch.compile", torch.compile(torch.matmul), None))
        runs += [("kspec triton", kernel.build("triton", schedule=schedule), schedule)
                 for schedule in [{}] + ([] if args.quick else overrides)]
        for impl, fn, schedule in runs:
            rows.append(measure(label, impl, fn, inputs, truth, dev, budget, schedule))
            print(rows[-1], flush=True)
        del inputs, truth, runs
        torch.cuda.empty_cache()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    info = device_info(dev)
    (out / "session6_splitk.json").write_text(json.dumps(
        {"device": info, "seconds": time.perf_counter() - start, "rows": rows}, indent=1))
    eager_ms = {r["case"]: r["ms"] for r in rows if r["impl"] == "eager"}
    lines = [f"# split-K / matvec ({info.get('name')}, torch {info['torch']}, "
             f"triton {info['triton']}), f32, TF32 off",
             "| case | impl | schedule | ms | x eager | max rel err | same bits |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        sched = json.dumps(r["schedule"]) if r.get("schedule") else "default" \
            if r["impl"].startswith("kspec") else ""
        if r.get("ms") is None:
            lines.append(f"| {r['case']} | {r['impl']} | {sched} | failed: {r['failure']} |||")
            continue
        base = eager_ms.get(r["case"])
        speed = f"{base / r['ms']:.2f}" if base else ""
        lines.append(f"| {r['case']} | {r['impl']} | {sched} | {r['ms']:.3f} | {speed} | "
                     f"{r['error']:.1e} | {'yes' if r['deterministic'] else 'NO'} |")
    (out / "session6_splitk.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
