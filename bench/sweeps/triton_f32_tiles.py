"""Tiles for f32 contractions on the tensor cores (three TF32 products, input_precision
"tf32x3"), next to cuBLAS IEEE SGEMM, cuBLAS TF32 and torch.compile in the same process.

    python3 bench/sweeps/triton_f32_tiles.py [--out DIR] [--quick]

Shapes: KernelBench level1/1 (4096^3), level2's Linear fusions (x[1024, 8192] @ W[8192, 8192]^T
+ bias, the weight in nn.Linear's [out, in] layout) and a batched GEMM. Each kspec row is one
schedule (the launch's '0.*' keys) with its error against float64 (computed on the GPU).
Prints a markdown table last; writes JSON and the table under --out.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import kspec  # noqa: E402
from timing import Budget, bench, device_info  # noqa: E402

SPECS = """
kernel mm(a: f32[M, K], b: f32[K, N]) -> c: f32[M, N] {
    c[i, j] = sum(a[i, k] * b[k, j] for k)
}
kernel linear_bias(x: f32[M, K], w: f32[N, K], bias: f32[N]) -> y: f32[M, N] {
    y[i, j] = sum(x[i, k] * w[j, k] for k) + bias[j]
}
kernel bmm(a: f32[B, M, K], b: f32[B, K, N]) -> c: f32[B, M, N] {
    c[q, i, j] = sum(a[q, i, k] * b[q, k, j] for k)
}
"""

# (BLOCK_M, BLOCK_N, BLOCK_K, STAGES, WARPS); None: the host code's own choice
TILES = [None, (128, 256, 64, 2, 8), (128, 256, 32, 3, 8), (256, 128, 32, 3, 8),
         (128, 128, 64, 3, 8), (128, 128, 32, 4, 8), (128, 128, 32, 4, 4),
         (128, 128, 64, 3, 4), (64, 128, 32, 4, 4), (128, 64, 32, 4, 4)]


def cases(quick: bool):
    g = lambda *s: torch.rand(*s, device="cuda") - 0.5   # noqa: E731  (KernelBench: rand)
    yield "4096^3", "mm", lambda: [g(4096, 4096), g(4096, 4096)], \
        lambda a, b: a @ b, 2 * 4096 ** 3
    yield "1024x8192x8192 (Linear)", "linear_bias", \
        lambda: [g(1024, 8192), g(8192, 8192), g(8192)], \
        lambda x, w, b: torch.nn.functional.linear(x, w, b), 2 * 1024 * 8192 * 8192
    if not quick:
        yield "bmm 128x512x1024x2048", "bmm", lambda: [g(128, 512, 1024), g(128, 1024, 2048)], \
            lambda a, b: torch.bmm(a, b), 2 * 128 * 512 * 1024 * 2048


def rel_error(out: torch.Tensor, truth: torch.Tensor) -> float:
    return float(((out.double() - truth).abs().max() / truth.abs().max()).item())


def schedule_of(tile, precision: str) -> dict:
    s = {"0.PRECISION": precision}
    if tile:
        s.update(zip(("0.BLOCK_M", "0.BLOCK_N", "0.BLOCK_K", "0.STAGES", "0.WARPS"), tile))
    return s


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench/results/triton-f32-tiles")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = torch.device("cuda")
    budget = Budget(warmup_ms=25, rep_ms=300, min_reps=5)
    mod = kspec.loads(SPECS)
    rows = []
    for label, name, make, torch_fn, flops in cases(args.quick):
        inputs = make()
        truth = torch_fn(*[t.double() for t in inputs])

        def record(impl: str, fn) -> None:
            try:
                out = fn(*inputs)
                err = rel_error(out, truth)
                del out
                t = bench(fn, [inputs], dev, budget)
                rows.append(dict(case=label, impl=impl, ms=t.ms, tflops=flops / t.ms / 1e9,
                                 error=err))
            except Exception as e:  # a tile that does not compile is a row, not the end
                rows.append(dict(case=label, impl=impl, ms=None, error=None,
                                 failure=f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"))
            print(rows[-1], flush=True)

        record("cuBLAS IEEE (eager)", torch_fn)
        torch.backends.cuda.matmul.allow_tf32 = True
        record("cuBLAS TF32 (eager, 1 product)", torch_fn)
        torch.backends.cuda.matmul.allow_tf32 = False
        record("torch.compile", torch.compile(torch_fn))
        kernel = mod[name]
        record("kspec ieee (default tile)", kernel.build("triton", schedule=schedule_of(None, "ieee")))
        for tile in TILES:
            record(f"kspec tf32x3 {tile or 'default'}",
                   kernel.build("triton", schedule=schedule_of(tile, "tf32x3")))
        del inputs, truth
        torch.cuda.empty_cache()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    info = device_info(dev)
    (out / "results.json").write_text(json.dumps({"device": info, "rows": rows}, indent=1))
    lines = [f"# f32 contractions, Triton tiles ({info.get('name')}, torch {info['torch']}, "
             f"triton {info['triton']})", "", "| case | impl | ms | TFLOP/s | max rel error |",
             "|---|---|---|---|---|"]
    for r in rows:
        if r.get("ms") is None:
            lines.append(f"| {r['case']} | {r['impl']} | failed: {r['failure']} | | |")
        else:
            lines.append(f"| {r['case']} | {r['impl']} | {r['ms']:.3f} | {r['tflops']:.1f} | "
                         f"{r['error']:.2e} |")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
