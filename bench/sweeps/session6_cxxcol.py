"""Session 6, branch cxxcol: the C++ split per row's columns orientation, (value, index)
folds and one-pass statistics (kspec/backends/cxx/split_rows.py, folds.py) at KernelBench
level 1's sizes, next to eager, torch.compile and kspec's Triton.

    python3 bench/sweeps/session6_cxxcol.py [--problems batch_norm,...] [--rep-ms 50]

Problems (bench/reduction_problems.py, inputs torch.rand on the GPU): batch_norm (33),
layer_norm (40), sum_dim1 (47), max_dim1 (49), argmax_dim1 (51) by default; also mean_dim1,
min_dim1, argmin_dim1, instance_norm, group_norm, rms_norm. Every implementation is checked
against the float64 result computed on the GPU (the eager model on x.double()): indices
exactly, values within atol = rtol = 1e-4 (KernelBench's allclose); only an agreeing one is
timed (median of CUDA-event-bracketed calls, bench/timing.py). `frac copy` = the time of a
copy of the bytes the problem must move (inputs read once, output written once) / its time.
Prints one JSON line per problem, then the table; writes $OUT/session6_cxxcol.json (or
--out). About 2-3 minutes on an H200, most of it torch.compile and nvcc the first time.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

BENCH = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(BENCH.parent), str(BENCH)]

import torch  # noqa: E402

from reduction_problems import BY_NAME, Problem, load_kernel  # noqa: E402
from timing import Budget, bench, device_info  # noqa: E402

DEFAULT = "batch_norm,layer_norm,sum_dim1,max_dim1,argmax_dim1"
IMPLS = ("eager", "compile", "cuda", "triton")
TOLERANCE = 1e-4


def agreement(got: torch.Tensor, want: torch.Tensor) -> dict[str, Any]:
    if got.numel() != want.numel():
        return {"status": "wrong", "detail": f"shape {tuple(got.shape)} != {tuple(want.shape)}"}
    got = got.reshape(want.shape)
    if not want.dtype.is_floating_point:
        wrong = int((got != want).sum())
        return {"status": "ok" if wrong == 0 else "wrong", "mismatches": wrong}
    err = (got.double() - want).abs()
    ok = bool(torch.allclose(got.double(), want, atol=TOLERANCE, rtol=TOLERANCE))
    return {"status": "ok" if ok else "wrong",
            "max_abs_err": float(err.nan_to_num(float("inf")).max())}


def checked_time(make: Callable[[], Callable[[], torch.Tensor]], want: torch.Tensor,
                 device: torch.device, budget: Budget) -> dict[str, Any]:
    try:
        fn = make()
        row = agreement(fn(), want)
    except Exception as e:   # a backend that cannot build or run: recorded, not fatal
        return {"status": "error", "detail": f"{type(e).__name__}: {str(e)[:200]}"}
    if row["status"] == "ok":
        row["ms"] = bench(fn, [[]], device, budget).ms
    return row


def run_problem(problem: Problem, device: torch.device, budget: Budget,
                scale: str = "full") -> dict[str, Any]:
    inputs = problem.make(scale, device)
    tensors = list(inputs.values())
    with torch.no_grad():
        want = problem.eager(*[t.double() for t in tensors])   # float64, on the GPU
    out_bytes = want.numel() * (8 if not want.dtype.is_floating_point else 4)
    nbytes = sum(t.nbytes for t in tensors) + out_bytes
    src = torch.empty(max(1, nbytes // 8), dtype=torch.float32, device=device)
    row: dict[str, Any] = {"problem": problem.name, "kb": problem.kb,
                           "sizes": problem.sizes[scale], "bytes": nbytes,
                           "copy_ms": bench(lambda: src.clone(), [[]], device, budget).ms}
    src = None   # its memory back before the problem's own runs
    kernel = load_kernel(problem)
    makers = {
        "eager": lambda: (lambda: problem.eager(*tensors)),
        "compile": lambda: (lambda f=torch.compile(problem.eager): f(*tensors)),
        "cuda": lambda: (lambda f=kernel.build("cuda"): problem.run(f, inputs)),
        "triton": lambda: (lambda f=kernel.build("triton"): problem.run(f, inputs)),
    }
    for impl in IMPLS:
        row[impl] = checked_time(makers[impl], want, device, budget)
        if "ms" in row[impl]:
            row[impl]["frac_copy"] = row["copy_ms"] / row[impl]["ms"]
    for impl in IMPLS:
        for base in ("eager", "compile"):
            if "ms" in row[impl] and "ms" in row[base]:
                row[impl][f"x_{base}"] = row[base]["ms"] / row[impl]["ms"]
    return row


def cell(entry: dict[str, Any], key: str, digits: int) -> str:
    value = entry.get(key)
    return f"{value:.{digits}f}" if isinstance(value, float) else entry.get("status", "-")


def table(rows: list[dict[str, Any]]) -> str:
    head = ["problem", "GB moved", "copy ms"] + [f"{i} ms" for i in IMPLS] + \
        ["cuda frac copy", "cuda x eager", "cuda x compile", "triton x eager"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["problem"], f"{r['bytes'] / 1e9:.2f}", f"{r['copy_ms']:.3f}"]
        cells += [cell(r[i], "ms", 3) for i in IMPLS]
        cells += [cell(r["cuda"], "frac_copy", 2), cell(r["cuda"], "x_eager", 2),
                  cell(r["cuda"], "x_compile", 2), cell(r["triton"], "x_eager", 2)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--problems", default=DEFAULT)
    ap.add_argument("--rep-ms", type=float, default=50.0)
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "."))
                    / "session6_cxxcol.json")
    ap.add_argument("--small", action="store_true", help="tiny sizes, for a CPU smoke run")
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    budget = Budget(warmup_ms=10.0, rep_ms=args.rep_ms, min_reps=5)
    if args.small:
        budget = Budget(warmup_ms=0.0, rep_ms=0.0, min_reps=1, max_reps=1)
    rows = []
    for name in args.problems.split(","):
        rows.append(run_problem(BY_NAME[name], device, budget,
                                "small" if args.small else "full"))
        if device.type == "cuda":
            torch.cuda.empty_cache()
        print(json.dumps(rows[-1]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": {**device_info(device),
                                             "date": datetime.date.today().isoformat(),
                                             "tolerance": TOLERANCE}, "rows": rows}, indent=1))
    print(table(rows))
    return 0 if all(r[i]["status"] == "ok" for r in rows for i in ("cuda", "triton")) else 1


if __name__ == "__main__":
    sys.exit(main())
