"""Convolutions on the tensor cores (issue 14) at KernelBench level-2 shapes, next to eager
PyTorch (cuDNN) and torch.compile in the same process, f32 with TF32 off on the PyTorch side.

    python3 bench/sweeps/session10_conv.py [--quick] [--backends triton,cuda] [--out DIR]

Each kspec row is the Triton kernel of specs/conv2d.kspec with the default schedule or one
override: the depth order (0.WINDOW: the window's offsets one per step, the channels in
BLOCK_K steps; or (c, r, s) flattened), the tile (BLOCK_M, BLOCK_K, STAGES, WARPS), and one
TF32 product instead of three ('allow_tf32': not f32 accuracy, the tensor cores' ceiling
for this kernel). Error: max |out - ref| / max |ref| against a float64 convolution on the
GPU. JSON and markdown under --out; a short table last. About 3 minutes on an H200.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import kspec  # noqa: E402
from timing import Budget, bench, device_info  # noqa: E402

# (label, N, C, O, H = W, kernel size)
CASES = [
    ("level2/1 128x64->128 128^2", 128, 64, 128, 128, 3),
    ("level2/54 64x64->64 256^2", 64, 64, 64, 256, 3),
    ("level2/25 128x16->64 256^2", 128, 16, 64, 256, 3),
    ("level2/57 128x8->64 128^2", 128, 8, 64, 128, 3),
    ("level2/21 128x8->32 256^2", 128, 8, 32, 256, 3),
]
# overrides of the default (the first call's, of the schedule before WINDOW's 16-deep steps
# and the N cap, are in results/h200-2026-12-04-s10/session10_conv_first.md)
OVERRIDES = [{"0.BLOCK_K": 32}, {"0.STAGES": 4}, {"0.STAGES": 5}, {"0.WARPS": 4},
             {"0.BLOCK_M": 64}, {"0.WINDOW": False, "0.BLOCK_K": 32},
             {"0.WINDOW": False, "0.BLOCK_K": 64}, {"allow_tf32": True}]
# the C++ kernel's (session 11: the window walk, element copies): the depth flattened, tiles
CUDA_OVERRIDES = [{"0.window": False}, {"0.tile": "64x64x32w4s4"}, {"0.tile": "128x64x32w8s5"},
                  {"0.tile": "128x64x32w8s3"}]


def rel_error(out: torch.Tensor, truth: torch.Tensor) -> float:
    return float(((out.double() - truth).abs().max() / truth.abs().max()).item())


def measure(case: str, impl: str, fn, inputs: list, truth: torch.Tensor, dev: torch.device,
            budget: Budget, schedule: dict | None) -> dict:
    try:
        out = fn(*inputs)
        err = rel_error(out, truth)
        del out
        t = bench(fn, [inputs], dev, budget)
        return dict(case=case, impl=impl, schedule=schedule, ms=t.ms, error=err)
    except Exception as e:  # a variant that fails is a row, not the end of the run
        return dict(case=case, impl=impl, schedule=schedule, ms=None,
                    failure=f"{type(e).__name__}: {str(e).splitlines()[0][:200]}")


def table(rows: list[dict], info: dict) -> list[str]:
    eager_ms = {r["case"]: r["ms"] for r in rows if r["impl"] == "eager"}
    lines = [f"# conv2d on the tensor cores ({info.get('name')}, torch {info['torch']}, "
             f"triton {info['triton']}), f32, TF32 off for PyTorch",
             "| case | impl | schedule | ms | x eager | TFLOP/s | max rel err |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        sched = json.dumps(r["schedule"]) if r.get("schedule") else "default" \
            if r["impl"].startswith("kspec") else ""
        if r.get("ms") is None:
            lines.append(f"| {r['case']} | {r['impl']} | {sched} | failed: {r['failure']} |||")
            continue
        base = eager_ms.get(r["case"])
        speed = f"{base / r['ms']:.2f}" if base else ""
        tflops = r["flops"] / r["ms"] / 1e9
        lines.append(f"| {r['case']} | {r['impl']} | {sched} | {r['ms']:.3f} | {speed} | "
                     f"{tflops:.1f} | {r['error']:.1e} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.environ.get("OUT", "bench/results/session10-conv"))
    ap.add_argument("--quick", action="store_true", help="no torch.compile, no overrides")
    ap.add_argument("--backends", default="triton",
                    help="comma-separated; the Triton overrides run on triton only")
    ap.add_argument("--name", default="session10_conv", help="the results' file stem")
    ap.add_argument("--overrides", default="triton",
                    help="comma-separated backends that also run their override lists")
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = torch.device("cuda")
    budget = Budget(warmup_ms=20, rep_ms=150, min_reps=5)
    kernel = kspec.load(ROOT / "specs" / "conv2d.kspec")["conv2d"]
    rows: list[dict] = []
    start = time.perf_counter()
    for label, n, c, o, hw, ks in CASES:
        torch.manual_seed(0)
        x = torch.rand(n, c, hw, hw, device=dev)
        w = torch.rand(o, c, ks, ks, device=dev) - 0.5
        b = torch.rand(o, device=dev)
        truth = F.conv2d(x.double(), w.double(), b.double())
        flops = 2 * n * o * (hw - ks + 1) ** 2 * c * ks * ks
        runs = [("eager", F.conv2d, None)]
        if not args.quick:
            runs.append(("torch.compile", torch.compile(F.conv2d), None))
        extra = {"triton": OVERRIDES, "cuda": CUDA_OVERRIDES}
        for backend in args.backends.split(","):
            mine = [{}] + ([] if args.quick or backend not in args.overrides.split(",")
                           else extra.get(backend, []))
            runs += [(f"kspec {backend}", kernel.build(backend, schedule=s), s) for s in mine]
        for impl, fn, schedule in runs:
            row = measure(label, impl, fn, [x, w, b], truth, dev, budget, schedule)
            rows.append({**row, "flops": flops})
            print(rows[-1], flush=True)
        del x, w, b, truth, runs
        torch.cuda.empty_cache()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    info = device_info(dev)
    (out / f"{args.name}.json").write_text(json.dumps(
        {"device": info, "seconds": time.perf_counter() - start, "rows": rows}, indent=1))
    lines = table(rows, info)
    (out / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
