"""KernelBench level 1's reductions and normalisations at their sizes (issue 15): kspec next to
PyTorch eager and torch.compile in one process, each as a fraction of the copy bandwidth for
the bytes it must move.

    python3 bench/reductions.py [--backends triton,cuda] [--problems a,b] [--out FILE.json]
    python3 bench/reductions.py --device cpu --small --compile-backend eager   # CI's path

Per problem: inputs made on the device (torch.rand, fixed seed); eager's output is the
reference (f32, TF32 off; kspec and torch.compile must agree within atol = rtol = 1e-4);
every timing is the median of CUDA-event-bracketed calls (bench/timing.py). "Bytes moved" is
the least any kernel must move: every input read once and the output written once. The copy
it is compared with is torch's `clone()` of a tensor of half those bytes (read + write: the
same bytes), timed the same way; `frac copy` = copy ms / kspec ms. The markdown table comes
last on stdout; JSON (meta, copy bandwidth, rows) goes to --out. The problems and their kspec
text: bench/reduction_problems.py. At full size on an H200 the default run (triton) takes
2-4 minutes, most of it torch.compile's compilation; the cuda backend adds nvcc's.
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path
from typing import Any, Callable

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent), str(BENCH)]

import torch  # noqa: E402

from reduction_problems import BY_NAME, PROBLEMS, Problem, load_kernel  # noqa: E402
from timing import Budget, bench, device_info  # noqa: E402

TOLERANCE = 1e-4   # atol = rtol, as KernelBench's allclose


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    ap.add_argument("--small", action="store_true", help="tiny sizes (the CPU test's)")
    ap.add_argument("--backends", default="triton", help="comma-separated kspec backends")
    ap.add_argument("--problems", default=",".join(p.name for p in PROBLEMS))
    ap.add_argument("--compile-backend", default="inductor",
                    help="torch.compile's backend (eager: no code generation, for tests)")
    ap.add_argument("--rep-ms", type=float, default=100.0, help="timed milliseconds per kernel")
    ap.add_argument("--out", type=Path, default=None, help="JSON file (default: none)")
    return ap.parse_args(argv)


def agreement(got: torch.Tensor, want: torch.Tensor) -> dict[str, Any]:
    """Elementwise agreement of got with the eager reference (shapes equal up to kept 1s)."""
    if got.numel() != want.numel():
        return {"status": "wrong", "detail": f"shape {tuple(got.shape)} != {tuple(want.shape)}"}
    g, w = got.reshape(want.shape).double(), want.double()   # on the device: GBs at full size
    err = (g - w).abs()
    ok = bool(torch.allclose(g, w, atol=TOLERANCE, rtol=TOLERANCE))
    worst = float(err.nan_to_num(float("inf")).max()) if err.numel() else 0.0
    return {"status": "ok" if ok else "wrong", "max_abs_err": worst}


def copy_ms(nbytes: int, device: torch.device, budget: Budget) -> float:
    """The median time of cloning a tensor of nbytes / 2 bytes (reads and writes nbytes)."""
    src = torch.empty(max(1, nbytes // 8), dtype=torch.float32, device=device)
    return bench(lambda: src.clone(), [[]], device, budget).ms


def timed(fn: Callable[[], torch.Tensor], want: torch.Tensor, device: torch.device,
          budget: Budget, eager_ms: float | None = None) -> dict[str, Any]:
    """Agreement with the reference, then the median time of fn (when it agrees)."""
    try:
        row = agreement(fn(), want)
    except Exception as e:   # a backend that cannot build or run here: recorded, not fatal
        return {"status": "error", "detail": f"{type(e).__name__}: {str(e).splitlines()[0]}"
                if str(e) else type(e).__name__}
    if row["status"] == "ok":
        row["ms"] = bench(fn, [[]], device, budget).ms
        if eager_ms is not None:
            row["x_eager"] = eager_ms / row["ms"]
    return row


def built_and_timed(problem: Problem, kernel: Any, backend: str, inputs: dict, want: torch.Tensor,
                    device: torch.device, budget: Budget, eager_ms: float) -> dict[str, Any]:
    try:
        fn = kernel.build(backend)
    except Exception as e:   # a backend this machine lacks (no nvcc): recorded, not fatal
        return {"status": "error", "detail": f"{type(e).__name__}: {str(e).splitlines()[0]}"
                if str(e) else type(e).__name__}
    return timed(lambda: problem.run(fn, inputs), want, device, budget, eager_ms)


def run_problem(problem: Problem, args: argparse.Namespace, device: torch.device,
                budget: Budget) -> dict[str, Any]:
    scale = "small" if args.small else "full"
    inputs = problem.make(scale, device)
    tensors = list(inputs.values())
    want = problem.eager(*tensors)
    nbytes = sum(t.nbytes for t in tensors) + want.nbytes
    row: dict[str, Any] = {"problem": problem.name, "kb": problem.kb,
                           "sizes": problem.sizes[scale], "bytes": nbytes,
                           "copy_ms": copy_ms(nbytes, device, budget)}
    row["eager_ms"] = bench(lambda: problem.eager(*tensors), [[]], device, budget).ms
    compiled = torch.compile(problem.eager, backend=args.compile_backend)
    row["compile"] = timed(lambda: compiled(*tensors), want, device, budget, row["eager_ms"])
    kernel = load_kernel(problem)
    for backend in args.backends.split(","):
        entry = built_and_timed(problem, kernel, backend, inputs, want, device, budget,
                                row["eager_ms"])
        if "ms" in entry:
            entry["frac_copy"] = row["copy_ms"] / entry["ms"]
            compile_ms = row["compile"].get("ms")
            entry["x_compile"] = compile_ms / entry["ms"] if compile_ms else None
        row[backend] = entry
    return row


def _cell(entry: dict[str, Any], key: str, digits: int = 2) -> str:
    value = entry.get(key)
    return f"{value:.{digits}f}" if isinstance(value, float) else "-"


def table(rows: list[dict[str, Any]], backends: list[str]) -> str:
    head = ["problem", "MB moved", "copy ms", "eager ms", "compile ms"]
    for b in backends:
        head += [f"{b} ms", f"{b} frac copy", f"{b} x eager", f"{b} x compile", f"{b} status"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["problem"], f"{r['bytes'] / 1e6:.1f}", f"{r['copy_ms']:.4f}",
                 f"{r['eager_ms']:.4f}", _cell(r["compile"], "ms", 4)]
        for b in backends:
            e = r[b]
            cells += [_cell(e, "ms", 4), _cell(e, "frac_copy"), _cell(e, "x_eager"),
                      _cell(e, "x_compile"), e["status"]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = False   # eager matvec in IEEE f32
    torch.backends.cudnn.allow_tf32 = False
    budget = Budget(warmup_ms=20.0, rep_ms=args.rep_ms, min_reps=5)
    if args.small:
        budget = Budget(warmup_ms=0.0, rep_ms=0.0, min_reps=1, max_reps=1)
    backends = args.backends.split(",")
    rows = []
    for name in args.problems.split(","):
        rows.append(run_problem(BY_NAME[name], args, device, budget))
        if device.type == "cuda":   # the problem's tensors are gone: give their memory back
            torch.cuda.empty_cache()
        print(json.dumps(rows[-1]), flush=True)
    result = {"meta": {**device_info(device), "date": datetime.date.today().isoformat(),
                       "scale": "small" if args.small else "full",
                       "compile_backend": args.compile_backend, "tolerance": TOLERANCE},
              "rows": rows}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))
    print(table(rows, backends))
    failed = [r["problem"] for r in rows for b in backends if r[b]["status"] != "ok"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
